// A bounded randomized run (30 s): random kills and crashes of children, of whole supervisors
// and of nodes (shut down and started again under the same id) under a supervision tree that
// spans four nodes over memory links. Afterwards: every child a supervisor lists runs exactly
// once (one live actor, the one it lists), no actor runs that no supervisor lists, every name
// maps to one ref on every node, and once the tree and the nodes are stopped no actor and no
// timer is left.
import { describe, it, expect } from 'vitest';
import {
  createNode,
  serveSupervision,
  startChild,
  supervisor,
  whichChildren,
  type ActorContext,
  type ChildInfo,
  type Clock,
  type Node,
  type SupervisorRef,
} from '../core/index.ts';
import { connectMemory } from '../adapters/memory.ts';

const RUN_MS = 30_000;

/** A clock on the host's timers that knows which timers are still pending. */
function countingClock(): { clock: Clock; pending: Set<unknown> } {
  const pending = new Set<unknown>();
  const clock: Clock = {
    now: () => Date.now(),
    setTimeout(fn, ms) {
      const h = setTimeout(() => {
        pending.delete(h);
        fn();
      }, ms);
      pending.add(h);
      return h;
    },
    clearTimeout(h) {
      pending.delete(h);
      clearTimeout(h as ReturnType<typeof setTimeout>);
    },
  };
  return { clock, pending };
}

/** A deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('supervision under random failures', () => {
  it(
    `${RUN_MS / 1000} s of random kills of children, supervisors and nodes: every child once, no duplicate name, no leak`,
    async () => {
      const seed = Number(process.env.SUP_SEED ?? Date.now() % 100_000);
      const random = prng(seed);
      const { clock, pending } = countingClock();
      /** Live worker actors, everywhere: ref key → tag. */
      const live = new Map<string, string>();
      const worker = async (self: ActorContext<unknown>, tag: unknown): Promise<void> => {
        live.set(self.ref.key, String(tag));
        try {
          for (;;) {
            const m = await self.receive();
            if (m === 'crash') throw new Error('chaos');
            if (m === 'ping') self.reply(tag);
          }
        } finally {
          live.delete(self.ref.key);
        }
      };
      const setup = (n: Node): Node => {
        serveSupervision(n);
        n.define('r.worker', undefined, (self, args) => worker(self, args));
        return n;
      };
      const names = ['n1', 'n2', 'n3', 'n4'];
      const nodes = new Map<string, Node>(
        names.map((id) => [id, setup(createNode({ name: id, clock }))]),
      );
      for (let i = 0; i < names.length; i++)
        for (let j = i + 1; j < names.length; j++)
          await connectMemory(nodes.get(names[i])!, nodes.get(names[j])!);
      const n1 = nodes.get('n1')!;
      const spread = { spread: ['n2', 'n3', 'n4'] };
      const local = supervisor({
        strategy: 'one_for_all',
        intensity: 20,
        period: 1000,
        children: [
          { id: 'l1', start: worker, args: 'l1' },
          { id: 'l2', start: worker, args: 'l2', name: 'l2' },
          { id: 't1', start: worker, args: 't1', restart: 'transient' },
        ],
      });
      const remote = supervisor({
        strategy: 'rest_for_one',
        intensity: 20,
        period: 1000,
        backoff: { initial: 5, max: 50 },
        children: ['r1', 'r2', 'r3'].map((id) => ({
          id,
          name: id,
          start: { behaviour: 'r.worker', args: id, node: spread },
        })),
      });
      const dyn = supervisor({
        strategy: 'simple_one_for_one',
        intensity: 1000,
        period: 1000,
        children: [{ id: 'w', start: worker }],
      });
      const top = n1.spawn(
        supervisor({
          intensity: 50,
          period: 1000,
          children: [
            { id: 'local', type: 'supervisor', start: local },
            { id: 'remote', type: 'supervisor', start: remote },
            { id: 'dyn', type: 'supervisor', start: dyn },
          ],
        }),
      );
      const topDown = n1.waitDown(top);
      let topEnded = false;
      void topDown.then(() => (topEnded = true));
      const sub = async (id: string): Promise<SupervisorRef | undefined> =>
        (await whichChildren(top)).find((c) => c.id === id)?.ref as SupervisorRef | undefined;
      const d = await sub('dyn');
      for (let i = 0; i < 3; i++) await startChild(d!, { args: `d${i}` });

      // Everything the tree lists, supervisors included, as [supervisor, child] pairs.
      const tree = async (): Promise<{ sup: SupervisorRef; child: ChildInfo }[]> => {
        const out: { sup: SupervisorRef; child: ChildInfo }[] = [];
        const walk = async (s: SupervisorRef): Promise<void> => {
          for (const child of await whichChildren(s, 5000)) {
            out.push({ sup: s, child });
            if (child.type === 'supervisor' && child.ref) await walk(child.ref as SupervisorRef);
          }
        };
        await walk(top);
        return out;
      };

      const counts = { childKills: 0, crashes: 0, supKills: 0, nodeRestarts: 0, calls: 0 };
      const end = Date.now() + RUN_MS;
      while (Date.now() < end && !topEnded) {
        const r = random();
        const all = await tree().catch(() => []);
        const workers = all.filter((x) => x.child.type === 'worker' && x.child.ref);
        if (r < 0.4 && workers.length) {
          const w = workers[Math.floor(random() * workers.length)].child.ref!;
          const host = nodes.get(w.node);
          if (random() < 0.5) {
            host?.kill(w);
            counts.childKills++;
          } else {
            host?.send(w, 'crash');
            counts.crashes++;
          }
        } else if (r < 0.5) {
          const sups = all.filter((x) => x.child.type === 'supervisor' && x.child.ref);
          if (sups.length) {
            n1.kill(sups[Math.floor(random() * sups.length)].child.ref!);
            counts.supKills++;
          }
        } else if (r < 0.6) {
          const id = names[1 + Math.floor(random() * 3)];
          await nodes.get(id)!.shutdown();
          const fresh = setup(createNode({ name: id, clock }));
          nodes.set(id, fresh);
          for (const other of names)
            if (other !== id) await connectMemory(fresh, nodes.get(other)!);
          counts.nodeRestarts++;
        } else {
          const from = nodes.get(names[Math.floor(random() * 4)])!;
          await from
            .call(`r${1 + Math.floor(random() * 3)}`, 'ping', { timeout: 1000 })
            .catch(() => undefined);
          counts.calls++;
        }
        await new Promise((res) => setTimeout(res, 10 + random() * 60));
      }
      expect(topEnded, `the top supervisor survived (seed ${seed})`).toBe(false);

      // Quiesce: every listed child running, and the same listing twice in a row.
      let listed: { sup: SupervisorRef; child: ChildInfo }[] = [];
      const quietBy = Date.now() + 20_000;
      for (let prev = ''; ; ) {
        await new Promise((res) => setTimeout(res, 200));
        listed = await tree();
        const key = JSON.stringify(
          listed.map((x) => [x.child.id, x.child.status, x.child.ref?.key]),
        );
        if (listed.every((x) => x.child.status === 'running') && key === prev) break;
        prev = key;
        if (Date.now() > quietBy) throw new Error(`the tree did not settle (seed ${seed}): ${key}`);
      }
      const listedWorkers = listed.filter((x) => x.child.type === 'worker');
      // Every listed worker is live exactly once, and nothing else runs.
      expect([...live.keys()].sort(), `seed ${seed}`).toEqual(
        listedWorkers.map((x) => x.child.ref!.key).sort(),
      );
      const tags = [...live.values()];
      expect(new Set(tags).size, `no tag runs twice (seed ${seed})`).toBe(tags.length);
      for (const t of ['l1', 'l2', 't1', 'r1', 'r2', 'r3']) expect(tags).toContain(t);
      // Names: one ref per name on every node, the one the supervisor lists.
      for (const name of ['l2', 'r1', 'r2', 'r3']) {
        const owner = listedWorkers.find((x) => x.child.name === name)!.child.ref!;
        for (const n of nodes.values())
          expect(n.whereis(name)?.key, `${name} on ${n.id} (seed ${seed})`).toBe(owner.key);
      }
      for (const id of ['r1', 'r2', 'r3'])
        expect(await n1.call(id, 'ping', { timeout: 5000 })).toBe(id);

      // Stop the tree: no actor left anywhere; stop the nodes: no timer left.
      n1.exit(top, 'shutdown');
      expect((await topDown).reason).toBe('shutdown');
      expect(live.size).toBe(0);
      await new Promise((res) => setTimeout(res, 20)); // the waitDown watcher ends just after it reports
      for (const n of nodes.values()) expect(n.actorCount, `actors left on ${n.id}`).toBe(0);
      await Promise.all([...nodes.values()].map((n) => n.shutdown()));
      await new Promise((res) => setTimeout(res, 50));
      expect(pending.size, 'timers left').toBe(0);
      console.log(`supervision chaos (seed ${seed}): ${JSON.stringify(counts)}`);
      expect(counts.childKills + counts.crashes).toBeGreaterThan(20);
      expect(counts.nodeRestarts).toBeGreaterThan(3);
    },
    RUN_MS + 60_000,
  );
});
