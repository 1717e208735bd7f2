// The core in one process: ping-pong between two actors, then a ref passed across three nodes
// joined by memory links (A — B — C, no link between A and C) and replied through.
// Run: npm run demo:core
import { z } from 'zod';
import { createNode, behaviour, reply, downOf, type ActorRef } from '../core/index.ts';
import { connectMemory } from '../adapters/memory.ts';

const log = (...parts: unknown[]) =>
  console.log(`[${new Date().toISOString().slice(11, 23)}]`, ...parts);

const Ping = z.object({
  type: z.literal('ping'),
  n: z.number().int(),
  replyTo: z.custom<ActorRef<Pong>>(),
});
type Ping = z.infer<typeof Ping>;
type Pong = { type: 'pong'; n: number };

const a = createNode({ name: 'A', secret: 'demo' });
const b = createNode({ name: 'B', secret: 'demo' });
const c = createNode({ name: 'C', secret: 'demo' });

// --- 1. ping-pong on one node ---------------------------------------------------------------
const pong = a.spawn(
  async (self) => {
    for (;;) {
      const m = await self.receive(Ping);
      m.replyTo.send({ type: 'pong', n: m.n });
    }
  },
  { schema: Ping },
);
const ping = a.spawn(async (self) => {
  for (let n = 1; n <= 3; n++) {
    pong.send({ type: 'ping', n, replyTo: self.ref as ActorRef<Pong> });
    const m = (await self.receive((x) => (x as Pong).type === 'pong', { timeout: 1000 })) as Pong;
    log(`ping got pong ${m.n}`);
  }
  return 'three rounds';
});
const done = await a.waitDown(ping);
log(`ping ended: ${String(done.reason)}, result ${JSON.stringify(done.result)}`);

// --- 2. three nodes in a line ---------------------------------------------------------------
await connectMemory(a, b);
await connectMemory(b, c);
log(`links: A↔${a.peers().join(',')}  B↔${b.peers().join(',')}  C↔${c.peers().join(',')}`);

// A counter on A (gen_server style), registered cluster-wide.
const counter = a.spawn(
  behaviour({
    schema: z.object({ add: z.number() }),
    init: () => 0,
    handle: (m, total) => reply(total + m.add, total + m.add),
  }),
  { name: 'counter' },
);
await new Promise((r) => setTimeout(r, 10)); // let the registry replicate
log(`C sees "counter" at ${c.whereis('counter')?.key} (registered on A, replicated through B)`);

// B's forwarder passes A's ref, inside a Map inside an array, on to C's worker.
const worker = c.spawn(async (self) => {
  const job = (await self.receive()) as { items: Map<string, ActorRef<{ add: number }>>[] };
  const target = job.items[0].get('counter')!;
  log(`C received a ref to ${target.key} via B; calling it from C`);
  const total = await self.call(target, { add: 40 });
  const total2 = await self.call(target, { add: 2 });
  log(`C got replies through B: ${total}, ${total2}`);
  return total2;
});
const forwarder = b.spawn(async (self) => {
  const m = await self.receive();
  b.ref(worker.node, worker.id).send(m);
});
a.ref(forwarder.node, forwarder.id).send({ items: [new Map([['counter', counter]])] });

const watcher = a.spawn(async (self) => {
  self.monitor(a.ref(worker.node, worker.id));
  const down = await self.receive(downOf(a.ref(worker.node, worker.id)));
  log(`A saw C's worker end (${String(down.reason)}) with result ${down.result}`);
});
await a.waitDown(watcher);

// --- 3. errors are typed ---------------------------------------------------------------------
try {
  await counter.call({ add: 'x' } as never);
} catch (e) {
  log(`bad message → ${(e as { code: string }).code}`);
}
try {
  await c.ref('A', 999).call({}, { timeout: 1000 });
} catch (e) {
  log(`unknown actor → ${(e as { code: string }).code}`);
}

await Promise.all([a.shutdown(), b.shutdown(), c.shutdown()]);
log('shut down');
