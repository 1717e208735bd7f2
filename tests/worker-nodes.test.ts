// A troupe node in a real worker_threads Worker (tests/fixtures/worker-node.ts, run through tsx)
// linked to the test's node with spawnWorkerNode/createWorkerNode: calls both ways, a ref that
// crosses and is answered through, leaf routing to a third node, and a worker that dies (terminate,
// crash, process.exit, clean shutdown) seen at once through the host's events. Heartbeats are set
// to a minute, so only the host's report can explain a prompt DOWN inside the test's timeout.
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { isDown, type ActorRef, type Down, type Node } from '../core/index.ts';
import { connectMemory } from '../adapters/memory.ts';
import { spawnWorkerNode } from '../adapters/worker.ts';
import { rejects, until, useNodes, within } from './helpers/nodes.ts';

const SLOW_HEARTBEAT = { heartbeatInterval: 20_000, heartbeatTimeout: 60_000 };
const bootstrap = new URL('./fixtures/tsx-worker.mjs', import.meta.url);
const entry = new URL('./fixtures/worker-node.ts', import.meta.url).href;

/** A worker_threads Worker running tests/fixtures/worker-node.ts as node `name`. */
function workerNode(name: string, data: Record<string, unknown> = {}): Worker {
  return new Worker(bootstrap, { workerData: { entry, name, ...SLOW_HEARTBEAT, ...data } });
}

describe('a node in a worker_threads Worker', () => {
  const makeNode = useNodes();
  const workers: Worker[] = [];
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.terminate()));
  });

  /** Start the fixture worker as node `name` and link it to `node`; resolves when the link is up. */
  async function startWorker(node: Node, name: string, data: Record<string, unknown> = {}) {
    const worker = workerNode(name, data);
    workers.push(worker);
    const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
    const id = await within(spawnWorkerNode(node, worker), 'the worker node links up', 20_000);
    await until(
      () => node.whereis(`ctl:${name}`) !== undefined,
      'the worker registers its control actor',
      10_000,
    );
    const ctl = node.whereis(`ctl:${name}`)!;
    return { worker, id, ctl, exited };
  }

  /** An actor on `node` that monitors `ref` and resolves with the DOWN it gets. */
  function monitorFrom(node: Node, ref: ActorRef): Promise<Down> {
    return new Promise((resolve) => {
      node.spawn(async (self) => {
        self.monitor(ref);
        resolve((await self.receive(isDown)) as Down);
      });
    });
  }

  it('answers calls from the main thread and calls back into it', async () => {
    const main = makeNode({ name: 'main', secret: 'worker-secret', ...SLOW_HEARTBEAT });
    const { id, ctl } = await startWorker(main, 'w1');
    expect(id).toBe('w1');
    expect(main.peers()).toEqual(['w1']);
    expect(await ctl.call({ op: 'echo', value: { x: [1, 'two'] } })).toEqual({
      echo: { x: [1, 'two'] },
      node: 'w1',
    });

    const doubler = main.spawn(async (self) => {
      for (;;) self.reply(((await self.receive()) as number) * 2);
    });
    expect(await ctl.call({ op: 'call', target: doubler, value: 21 })).toBe(42);
  });

  it("passes a worker actor's ref to the main node, which replies through it", async () => {
    const main = makeNode({ name: 'main', secret: 's', ...SLOW_HEARTBEAT });
    const { ctl } = await startWorker(main, 'w2');
    const seen: string[] = [];
    const incr = main.spawn(async (self) => {
      for (;;) {
        const m = (await self.receive()) as { from: ActorRef; n: number };
        seen.push(m.from.node);
        m.from.send(m.n + 1);
      }
    });
    expect(await ctl.call({ op: 'roundtrip', target: incr, n: 41 })).toBe(42);
    expect(seen).toEqual(['w2']);
  });

  it('is a leaf: reaches a third node through its parent, and is reached from it', async () => {
    const main = makeNode({ name: 'main', secret: 's', ...SLOW_HEARTBEAT });
    const far = makeNode({ name: 'far', secret: 's', ...SLOW_HEARTBEAT, autoConnect: false });
    await connectMemory(main, far);
    const { ctl } = await startWorker(main, 'w3');
    const upper = far.spawn(async (self) => {
      for (;;) self.reply(String(await self.receive()).toUpperCase());
    });
    // the worker calls an actor on `far`, a node it has no link to
    expect(await ctl.call({ op: 'call', target: upper, value: 'via the tab' })).toBe('VIA THE TAB');
    // and `far` calls into the worker through `main`
    await until(() => far.whereis('ctl:w3') !== undefined, "far sees the worker's name", 5000);
    expect(await far.call('ctl:w3', { op: 'echo', value: 'hi' })).toEqual({
      echo: 'hi',
      node: 'w3',
    });
  });

  it('worker.terminate(): a monitor gets DOWN noconnection and a pending call NODE_DOWN, without waiting for heartbeats', async () => {
    const main = makeNode({ name: 'main', secret: 's', ...SLOW_HEARTBEAT });
    const { worker, ctl } = await startWorker(main, 'w4');
    const down = monitorFrom(main, ctl);
    const pending = ctl.call({ op: 'never' }, { timeout: 120_000 });
    const nodeDown = main.events.next('nodeDown');
    await worker.terminate();
    expect((await within(nodeDown, 'nodeDown', 10_000)).node).toBe('w4');
    expect((await within(down, 'DOWN', 10_000)).reason).toBe('noconnection');
    await rejects(pending, 'NODE_DOWN', 'the pending call');
  });

  it('a crash (uncaught exception in the worker) takes its node down at once, without crashing this thread', async () => {
    const main = makeNode({ name: 'main', secret: 's', ...SLOW_HEARTBEAT });
    const { ctl, exited } = await startWorker(main, 'w5');
    const down = monitorFrom(main, ctl);
    const linkDown = main.events.next('linkDown');
    ctl.send({ op: 'crash' });
    const e = await within(linkDown, 'linkDown', 10_000);
    expect(e.reason).toMatch(/worker error: boom/);
    expect((await within(down, 'DOWN', 10_000)).reason).toBe('noconnection');
    expect(await exited).toBe(1);
  });

  it('process.exit() in the worker takes its node down at once', async () => {
    const main = makeNode({ name: 'main', secret: 's', ...SLOW_HEARTBEAT });
    const { ctl } = await startWorker(main, 'w6');
    const pending = ctl.call({ op: 'never' }, { timeout: 120_000 });
    const linkDown = main.events.next('linkDown');
    ctl.send({ op: 'exit', code: 3 });
    expect((await within(linkDown, 'linkDown', 10_000)).reason).toMatch(/worker exited \(code 3\)/);
    await rejects(pending, 'NODE_DOWN', 'the pending call');
  });

  it('a clean shutdown in the worker closes the link with a control message', async () => {
    const main = makeNode({ name: 'main', secret: 's', ...SLOW_HEARTBEAT });
    const { ctl, exited } = await startWorker(main, 'w7');
    const down = monitorFrom(main, ctl);
    const linkDown = main.events.next('linkDown');
    expect(await ctl.call({ op: 'shutdown' })).toBe('bye');
    expect((await within(linkDown, 'linkDown', 10_000)).reason).toBe('closed by peer');
    // the worker's actors ended before its link closed: the monitor hears why
    expect((await within(down, 'DOWN', 10_000)).reason).toBe('shutdown');
    // the thread ends: by itself (nothing keeps it alive) or terminated by spawnWorkerNode's link
    expect([0, 1]).toContain(await within(exited, 'the worker exits', 10_000));
  });

  it('node.disconnect(id) closes the link and terminates the worker it spawned', async () => {
    const main = makeNode({ name: 'main', secret: 's', ...SLOW_HEARTBEAT });
    const { id, exited } = await startWorker(main, 'w8');
    main.disconnect(id);
    expect(await within(exited, 'the worker is terminated', 10_000)).toBe(1);
    expect(main.isReachable(id)).toBe(false);
  });

  it('shares the link secret with the worker; a worker told a different secret is refused on both sides', async () => {
    const main = makeNode({ name: 'main', secret: 'right', ...SLOW_HEARTBEAT });
    const refused = main.events.next('protocolError');
    const worker = workerNode('w9', { secret: 'wrong' });
    workers.push(worker);
    const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
    await rejects(
      spawnWorkerNode(main, worker),
      'UNAUTHORIZED',
      'linking to a worker with the wrong secret',
    );
    expect((await refused).error.code).toBe('UNAUTHORIZED');
    // The refused worker ends: terminated by spawnWorkerNode (exit code 1), or — seen on a loaded
    // machine in CI — on its own first, once its node gave up on the refused parent link (0).
    expect([0, 1]).toContain(await within(exited, 'the refused worker is terminated', 10_000));
    expect(main.peers()).toEqual([]);
  });
});
