// Supervision across real processes: a supervisor on one process with its child on another;
// SIGKILL the child's process and the child runs again on a third, under the same name,
// reachable from every node; the old ref's monitors fire once; the lost node's return brings
// no duplicate name. The supervisor itself is supervised from the test's own node.
import { describe, it, expect } from 'vitest';
import {
  downOf,
  supervisor,
  whichChildren,
  type Down,
  type Node,
  type SupervisorRef,
  TroupeError,
} from '../core/index.ts';
import { useCluster, eventually, within } from './helpers/cluster.ts';

const SCRIPT = 'tests/fixtures/sup-node.ts';
const HB = { heartbeatInterval: 300, heartbeatTimeout: 3000 };

/**
 * Run sup.ask on node `id` (whereis + a call to `svc`, from that node) and return its result.
 * The remote spawn itself may fail while a link is still settling (a node that just rejoined,
 * a loaded machine): tried up to three times, each failure reported.
 */
async function askFrom(
  t: Node,
  id: string,
): Promise<{ whereis?: string; reply: string; registered: number }> {
  const failures: unknown[] = [];
  for (let i = 0; i < 3; i++) {
    const p = t.spawn(async (self) => {
      const r = await self.spawnOn(
        id,
        'sup.ask',
        { name: 'svc' },
        { monitor: true, timeout: 10_000 },
      );
      return ((await self.receive(downOf(r))) as Down).result;
    });
    const down = await within(t.waitDown(p), `sup.ask on ${id}`, 15_000);
    if (down.reason === 'normal' && down.result !== undefined)
      return down.result as { whereis?: string; reply: string; registered: number };
    failures.push(down.reason);
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`sup.ask on ${id} failed: ${JSON.stringify(failures)}`);
}

describe('supervision across processes', () => {
  const cluster = useCluster();

  it('SIGKILL the child node: the child restarts on a survivor, its name moves, no duplicate when the node returns', async () => {
    const a = await cluster.script('sa', SCRIPT, ['sa']);
    const b = await cluster.script('sb', SCRIPT, ['sb', a.hostPort]);
    const c = await cluster.script('sc', SCRIPT, ['sc', a.hostPort]);
    const t = await cluster.node({ name: 'st', ...HB });
    await t.join(a.address);
    await eventually(
      () => ['sa', 'sb', 'sc'].every((id) => t.isReachable(id)),
      'the test node reaches sa, sb, sc',
    );
    await eventually(
      () => b.matching(/^joined/).length && c.matching(/^joined/).length,
      'sb and sc joined',
    );

    // The top supervisor (here) supervises the tree on sa, which places svc on sb or sc.
    const top = t.spawn(
      supervisor({
        intensity: 3,
        children: [
          {
            id: 'tree',
            type: 'supervisor',
            start: { behaviour: 'sup.tree', args: { spread: ['sb', 'sc'] }, node: 'sa' },
          },
        ],
      }),
    );
    const first = await eventually(() => t.whereis('svc'), 'svc registered');
    expect(first.node).toBe('sb');
    expect(await t.call('svc', 'ping')).toBe('sb:ping');
    const tree = (await whichChildren(top))[0].ref as SupervisorRef;
    expect(tree.node).toBe('sa');

    const downs: Down[] = [];
    t.watch(first, (d) => downs.push(d));
    const killedAt = Date.now();
    await b.kill('SIGKILL');
    const moved = await eventually(
      () => {
        const r = t.whereis('svc');
        return r && r.node === 'sc' ? r : undefined;
      },
      'svc registered on sc',
      15_000,
    );
    expect(await t.call('svc', 'ping')).toBe('sc:ping');
    const elapsed = Date.now() - killedAt;
    // Detection (heartbeat timeout 3000 ms, or at once on the closed socket) plus the restart;
    // generous for a loaded machine.
    expect(elapsed).toBeLessThan(HB.heartbeatTimeout + 8000);
    console.log(`failover: svc answering on sc ${elapsed} ms after SIGKILL of sb`);
    for (const id of ['sa', 'sc']) {
      const r = await askFrom(t, id);
      expect(r).toEqual({ whereis: moved.key, reply: 'sc:ping', registered: 1 });
    }
    const err = await first.call('ping', { timeout: 3000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TroupeError);
    expect((err as TroupeError).code).toBe('NODE_DOWN');

    const info = (await whichChildren(tree))[0];
    expect(info).toMatchObject({
      id: 'svc',
      node: 'sc',
      status: 'running',
      restarts: 1,
      lastExit: 'noconnection',
      name: 'svc',
    });
    expect(info.ref!.equals(moved)).toBe(true);

    // sb comes back (a new process under the same node id): still one svc, on sc.
    const b2 = await cluster.script('sb-again', SCRIPT, ['sb', a.hostPort]);
    await eventually(() => b2.matching(/^joined/).length > 0, 'sb rejoined');
    await eventually(() => t.isReachable('sb'), 'the test node reaches sb again');
    const stale = await first.call('ping', { timeout: 3000 }).catch((e: unknown) => e);
    expect((stale as TroupeError).code).toBe('NO_ACTOR');
    for (const id of ['sa', 'sb', 'sc']) {
      const r = await askFrom(t, id);
      expect(r).toEqual({ whereis: moved.key, reply: 'sc:ping', registered: 1 });
    }
    await new Promise((r) => setTimeout(r, 1000));
    expect(downs.length).toBe(1);
    expect(downs[0].reason).toBe('noconnection');
    expect(b.matching(/^echo-start/)).toHaveLength(1);
    expect(c.matching(/^echo-start/)).toHaveLength(1);
    expect(b2.matching(/^echo-start/)).toHaveLength(0);
    expect((await whichChildren(top))[0]).toMatchObject({ status: 'running', restarts: 0 });
  }, 90_000);
});
