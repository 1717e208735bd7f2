// The behaviour table every `troupe node` process has: small, named behaviours other nodes can
// spawn remotely (`node.spawn(nodeId, 'name', args)`). The demos and the multi-process tests use
// them; they double as examples of both actor styles.
import { z } from 'zod';
import { behaviour, reply, isDown, downOf, type ActorRef, type Node } from '../core/index.ts';

/** Pure functions a parallel map can apply by name (functions do not cross the wire; names do). */
export const MAP_FUNCTIONS = {
  square: (x: number) => x * x,
  fib: (n: number): number => (n < 2 ? n : fibIter(n)),
  isPrime: (n: number) => {
    if (n < 2) return 0;
    for (let d = 2; d * d <= n; d++) if (n % d === 0) return 0;
    return 1;
  },
} as const;

function fibIter(n: number): number {
  let a = 0;
  let b = 1;
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

const FnName = z.enum(Object.keys(MAP_FUNCTIONS) as [keyof typeof MAP_FUNCTIONS]);

/** `pmap` arguments: apply `fn` to `items`, in chunks spread over `nodes` (default: this node). */
export const PmapArgs = z.object({
  fn: FnName,
  items: z.array(z.number()).max(1_000_000),
  nodes: z.array(z.string()).optional(),
  chunk: z.number().int().positive().optional(),
});

/** `chunk` arguments: one slice of a parallel map. */
const ChunkArgs = z.object({ fn: FnName, items: z.array(z.number()), index: z.number().int() });

/** Echo: answers every call with the message it got. */
export const echo = behaviour({
  schema: z.unknown(),
  handle: (m: unknown, _s: undefined, ctx) => {
    ctx.reply(m);
  },
});

/**
 * Define the standard behaviours on `node`:
 * - `echo` — answers every call with the message;
 * - `named` `{ name }` — registers itself under `name`, then echoes;
 * - `logger` `{ name, prefix? }` — registers under `name` and prints every message it gets;
 * - `sleeper` — answers a call `{ ms }` after `ms` milliseconds (for timeout demos);
 * - `crasher` — throws on the first message it gets;
 * - `linker` `{ to, trap?, report? }` — links itself to `to`, logs any EXIT it traps and sends
 *   `{ trapped: reason }` to `report` (default `to`);
 * - `chunk` `{ fn, items, index }` — maps `fn` over `items` and ends with the result;
 * - `pmap` `{ fn, items, nodes?, chunk? }` — a parallel map: spawns one `chunk` per slice on the
 *   given nodes (round robin) with a monitor, collects each chunk's DOWN carrying its result, and
 *   ends with the whole result in order (Erlangen's parallel map);
 * - and the probes of {@link defineProbeBehaviours} (`inspector`, `watcher`, `source`, `sink`).
 */
export function defineStandardBehaviours(node: Node, log: (line: string) => void = () => {}): void {
  node.define('echo', undefined, echo);

  node.define(
    'named',
    z.object({ name: z.string().min(1) }),
    behaviour({
      schema: z.unknown(),
      init: (args: { name: string }, ctx) => {
        if (!ctx.register(args.name)) throw new Error(`name ${args.name} is taken`);
      },
      handle: (m: unknown, _s: undefined, ctx) => {
        ctx.reply(m);
      },
      info: (m) => log(`named actor got ${m.type}`),
    }),
  );

  node.define(
    'logger',
    z.object({ name: z.string().min(1), prefix: z.string().optional() }),
    behaviour({
      schema: z.unknown(),
      init: (args: { name: string; prefix?: string }, ctx) => {
        if (!ctx.register(args.name)) throw new Error(`name ${args.name} is taken`);
        return { prefix: args.prefix ?? args.name, count: 0 };
      },
      handle: (m: unknown, s, ctx) => {
        log(`${s.prefix}: ${typeof m === 'string' ? m : JSON.stringify(m)}`);
        ctx.reply(s.count + 1);
        return { ...s, count: s.count + 1 };
      },
    }),
  );

  node.define(
    'sleeper',
    undefined,
    behaviour({
      schema: z.object({ ms: z.number().int().min(0).max(600_000) }),
      handle: (m, _s: undefined, ctx) => {
        const answer = ctx.deferReply();
        setTimeout(() => answer(`slept ${m.ms} ms`), m.ms);
      },
    }),
  );

  node.define(
    'crasher',
    undefined,
    behaviour({
      schema: z.unknown(),
      handle: () => {
        throw new Error('crasher was asked to crash');
      },
    }),
  );

  const Ref = z.custom<ActorRef>((v) => typeof v === 'object' && v !== null);
  node.define(
    'linker',
    z.object({ to: Ref, trap: z.boolean().optional(), report: Ref.optional() }),
    async (self, args: { to: ActorRef; trap?: boolean; report?: ActorRef }) => {
      if (args.trap) self.trapExit(true);
      self.link(args.to);
      for (;;) {
        const m = await self.receive();
        log(
          `linker ${self.ref.key} got ${(m as { type?: string }).type ?? 'message'}: ${JSON.stringify((m as { reason?: unknown }).reason)}`,
        );
        if (args.trap)
          (args.report ?? args.to).send({ trapped: (m as { reason?: unknown }).reason });
      }
    },
  );

  node.define('chunk', ChunkArgs, async (_self, args: z.infer<typeof ChunkArgs>) => {
    const f = MAP_FUNCTIONS[args.fn];
    return { index: args.index, out: args.items.map(f) };
  });

  node.define('pmap', PmapArgs, async (self, args: z.infer<typeof PmapArgs>) => {
    const nodes = args.nodes?.length ? args.nodes : [self.node.id];
    const size = args.chunk ?? Math.max(1, Math.ceil(args.items.length / (nodes.length * 4)));
    const refs: ActorRef[] = [];
    for (let i = 0, k = 0; i < args.items.length; i += size, k++) {
      const items = args.items.slice(i, i + size);
      refs.push(
        await self.spawnOn(
          nodes[k % nodes.length],
          'chunk',
          { fn: args.fn, items, index: k },
          { monitor: true },
        ),
      );
    }
    const parts: number[][] = [];
    for (let left = refs.length; left > 0; left--) {
      const down = await self.receive(isDown);
      const { reason, result } = down as {
        reason: unknown;
        result?: { index: number; out: number[] };
      };
      if (reason !== 'normal' || !result)
        throw new Error(`a chunk failed: ${JSON.stringify(reason)}`);
      parts[result.index] = result.out;
    }
    return parts.flat();
  });

  defineProbeBehaviours(node);
}

/** The payload `source` sends with message `seq` (multi-byte characters on purpose) and `sink` checks. */
export function padFor(seq: number): string {
  return `${'é✓😀'.repeat(seq % 5)}#${seq}`;
}

/** A `sink`'s count: messages received, how many broke the order or had a wrong payload. */
export interface SinkStats {
  received: number;
  outOfOrder: number;
  badPayload: number;
  lastSeq: number;
}

/**
 * Behaviours that let another process look at this node and drive traffic (the multi-process
 * tests use them; so can a script):
 * - `inspector` — answers a call `{ op: 'whereis', name }` with the ref this node sees for `name`
 *   (or `null`), and `{ op: 'peers' }` with the ids of the nodes it has a direct link to;
 * - `watcher` `{ target, report }` — monitors `target` and sends `{ down: reason, result }` to
 *   `report` when it ends;
 * - `source` `{ to, count, burst? }` — sends `{ seq, pad }` for seq 0..count-1 to `to`, `burst`
 *   messages per event-loop turn, then ends with `count` as its result;
 * - `sink` `{ expect, report? }` — counts `{ seq, pad }` messages, checking order and payload;
 *   answers a call `{ op: 'stats' }` with its {@link SinkStats}, and sends them to `report` once
 *   `expect` messages arrived.
 */
export function defineProbeBehaviours(node: Node): void {
  const Ref = z.custom<ActorRef>((v) => typeof v === 'object' && v !== null);

  node.define(
    'inspector',
    undefined,
    behaviour({
      schema: z.union([
        z.object({ op: z.literal('whereis'), name: z.string() }),
        z.object({ op: z.literal('peers') }),
      ]),
      handle: (m, _s: undefined, ctx) => {
        ctx.reply(
          m.op === 'whereis' ? (ctx.node.whereis(m.name) ?? null) : ctx.node.peers().sort(),
        );
      },
    }),
  );

  node.define(
    'watcher',
    z.object({ target: Ref, report: Ref }),
    async (self, args: { target: ActorRef; report: ActorRef }) => {
      self.monitor(args.target);
      const down = await self.receive(downOf(args.target));
      args.report.send({ down: down.reason, result: down.result });
    },
  );

  node.define(
    'source',
    z.object({
      to: Ref,
      count: z.number().int().min(0).max(10_000_000),
      burst: z.number().int().positive().optional(),
    }),
    async (_self, args: { to: ActorRef; count: number; burst?: number }) => {
      const burst = args.burst ?? 1000;
      for (let seq = 0; seq < args.count; seq++) {
        args.to.send({ seq, pad: padFor(seq) });
        // Yield now and then so the stream leaves in many writes, not one.
        if (seq % burst === burst - 1) await new Promise((r) => setImmediate(r));
      }
      return args.count;
    },
  );

  const Item = z.object({ seq: z.number().int(), pad: z.string() });
  node.define(
    'sink',
    z.object({ expect: z.number().int().min(0), report: Ref.optional() }),
    behaviour({
      schema: z.union([Item, z.object({ op: z.literal('stats') })]),
      init: (args: { expect: number; report?: ActorRef }) => ({
        ...args,
        stats: { received: 0, outOfOrder: 0, badPayload: 0, lastSeq: -1 } as SinkStats,
      }),
      handle: (m, s, ctx) => {
        if ('op' in m) {
          ctx.reply(s.stats);
          return;
        }
        const st = s.stats;
        st.received++;
        if (m.seq !== st.lastSeq + 1) st.outOfOrder++;
        if (m.pad !== padFor(m.seq)) st.badPayload++;
        st.lastSeq = m.seq;
        if (st.received === s.expect) s.report?.send({ ...st });
      },
    }),
  );
}

export { reply };
