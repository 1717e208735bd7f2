// Liveness of lazy NATS members (issue 16, false node-downs and idle cost): each node probes its
// two successors in the ring of member ids; "no responders" is the server saying a process is
// gone, an unanswered probe past presenceTimeout a frozen one. A node that is alive but slow is
// given the whole timeout, and this process's own stalls never make others late. Real
// nats-server on 127.0.0.1, real child processes stopped with SIGSTOP and killed with SIGKILL.
import { describe, expect, it } from 'vitest';
import { eventually, useCluster, type ChildNode } from './helpers/cluster.ts';
import { useNatsNodes } from './helpers/nats-nodes.ts';
import { startNatsServer } from './helpers/nats-server.ts';

const FIXTURE = 'tests/fixtures/nats-node.ts';
const HB = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('NATS membership liveness', () => {
  const cluster = useCluster();
  const { servers, nodes, natsNode } = useNatsNodes(HB, { registry: false });
  const kids = (url: string, names: string[]): Promise<ChildNode[]> =>
    Promise.all(
      names.map((name) =>
        cluster.script(name, FIXTURE, [
          '--name',
          name,
          '--servers',
          url,
          '--heartbeat-timeout',
          String(HB),
          '--lazy',
          '--no-registry',
        ]),
      ),
    );

  it('a frozen member: not down while frozen for less than the timeout; down everywhere past it (no link to it); back when it thaws', async () => {
    const s = await startNatsServer();
    servers.push(s);
    const ks = await kids(s.url, ['lv1', 'lv2', 'lv3', 'lv4']);
    const { node: me } = natsNode(s.url, 'lv0');
    const events: string[] = [];
    me.events.on('nodeDown', (e) => events.push(`down ${e.node}`));
    me.events.on('nodeUp', (e) => events.push(`up ${e.node}`));
    await me.listen();
    await eventually(() => me.nodes().length === 4, 'the four members', 15_000);
    for (const k of ks) await k.waitForLine(/^members 4$/, 'four members', 15_000);
    const marks = ks.map((k) => k.mark());
    events.length = 0;

    // Slow, not dead: frozen for less than the timeout, it answers its probes late, in time.
    ks[0]!.freeze();
    await sleep(HB * 0.4);
    ks[0]!.thaw();
    await sleep(HB * 1.5);
    expect(events).toEqual([]);
    for (const [i, k] of ks.entries()) expect(k.matching(/^nodeDown /, marks[i])).toEqual([]);

    // Frozen for good: its watchers' probes go unanswered past the timeout; every node drops it.
    ks[0]!.freeze();
    const t0 = Date.now();
    await eventually(() => events.includes('down lv1'), 'lv1 down on lv0', HB * 3);
    const took = Date.now() - t0;
    // The timeout, plus one probe period (HB / 4) and a margin for a loaded machine.
    expect(took).toBeLessThan(HB + HB / 4 + 2000);
    for (const [i, k] of ks.entries())
      if (i !== 0) await k.waitForLine(/^nodeDown lv1 /, `${k.name} drops lv1`, HB * 3, marks[i]);
    expect(me.nodes().sort()).toEqual(['lv2', 'lv3', 'lv4']);

    // It thaws, hears that it was declared down, announces itself: a member again everywhere.
    ks[0]!.thaw();
    await eventually(() => me.nodes().includes('lv1'), 'lv1 back on lv0', HB * 3);
    expect(events).toEqual(['down lv1', 'up lv1']);
    // Nobody else went down meanwhile.
    for (const [i, k] of ks.entries())
      if (i !== 0)
        expect(k.matching(/^nodeDown /, marks[i])).toEqual(['nodeDown lv1 noconnection']);
  }, 60_000);

  it("this process's own stall (a busy loop past the timeout) makes no member down here", async () => {
    const s = await startNatsServer();
    servers.push(s);
    const ks = await kids(s.url, ['st1', 'st2', 'st3']);
    const { node: me } = natsNode(s.url, 'st0');
    const downs: string[] = [];
    me.events.on('nodeDown', (e) => downs.push(e.node));
    await me.listen();
    await eventually(() => me.nodes().length === 3, 'the three members', 15_000);
    await sleep(HB); // probes in flight
    const end = Date.now() + HB * 2;
    while (Date.now() < end) {
      /* this process gets no event loop turn for twice the timeout */
    }
    await sleep(HB * 1.5);
    expect(downs).toEqual([]);
    expect(me.nodes().sort()).toEqual(['st1', 'st2', 'st3']);
    expect(ks.every((k) => !k.exit)).toBe(true);
  }, 60_000);

  it('SIGKILL: every member drops the node in well under the timeout (no responders, told by its watcher)', async () => {
    const s = await startNatsServer();
    servers.push(s);
    const ks = await kids(s.url, ['kl1', 'kl2', 'kl3', 'kl4', 'kl5']);
    const { node: me, t } = natsNode(s.url, 'kl0');
    const reasons: string[] = [];
    t.events.on('memberDown', (e) => reasons.push(`${e.node} ${e.reason}`));
    await me.listen();
    await eventually(() => me.nodes().length === 5, 'the five members', 15_000);
    for (const k of ks) await k.waitForLine(/^members 5$/, 'five members', 15_000);
    const marks = ks.map((k) => k.mark());
    await ks[2]!.kill('SIGKILL');
    const t0 = Date.now();
    await eventually(() => !me.nodes().includes('kl3'), 'kl3 down on kl0', HB * 2);
    expect(Date.now() - t0).toBeLessThan(HB);
    expect(reasons).toEqual(['kl3 no responders']);
    for (const [i, k] of ks.entries())
      if (i !== 2) await k.waitForLine(/^nodeDown kl3 /, `${k.name} drops kl3`, HB, marks[i]);
    await sleep(HB);
    for (const [i, k] of ks.entries())
      if (i !== 2)
        expect(k.matching(/^nodeDown /, marks[i])).toEqual(['nodeDown kl3 noconnection']);
  }, 60_000);

  it('idle cost does not grow with the cluster: what a node hears on the discovery subject', async () => {
    const s = await startNatsServer();
    servers.push(s);
    const count = async (n: number): Promise<number> => {
      const all = Array.from({ length: n }, (_, i) => natsNode(s.url, `ic${n}-${i}`));
      await Promise.all(all.map((x) => x.node.listen()));
      await eventually(
        () => all.every((x) => x.node.nodes().length === n - 1),
        `${n} nodes see each other`,
        15_000,
      );
      // Count what crosses the discovery subject for 3 s once they see each other.
      const nc = await all[0]!.t.connection();
      let heard = 0;
      const sub = nc.subscribe('troupe.discovery', { callback: () => heard++ });
      await sleep(3000);
      sub.unsubscribe();
      await Promise.all(all.map((x) => x.node.shutdown()));
      nodes.splice(0);
      return heard;
    };
    const small = await count(4);
    const large = await count(16);
    // Every node hears all of it: at most ~5 announcements a second whatever N (the base period
    // is 5 s, stretched to 200 ms per member), not N every 800 ms as before (16 nodes: 60 in 3 s).
    expect(small).toBeLessThanOrEqual(8);
    expect(large).toBeLessThanOrEqual(20);
  }, 60_000);
});
