// The behaviour table every `troupe node` process has: small, named behaviours other nodes can
// spawn remotely (`node.spawn(nodeId, 'name', args)`). The demos and the multi-process tests use
// them; they double as examples of both actor styles.
import { z } from 'zod';
import { behaviour, reply, isDown, type ActorRef, type Node } from '../core/index.ts';

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
 * - `linker` `{ to, trap? }` — links itself to `to` and reports any EXIT it traps to `to`'s node log;
 * - `chunk` `{ fn, items, index }` — maps `fn` over `items` and ends with the result;
 * - `pmap` `{ fn, items, nodes?, chunk? }` — a parallel map: spawns one `chunk` per slice on the
 *   given nodes (round robin) with a monitor, collects each chunk's DOWN carrying its result, and
 *   ends with the whole result in order (Erlangen's parallel map).
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

  node.define('linker', z.object({ to: z.custom<ActorRef>((v) => typeof v === 'object' && v !== null), trap: z.boolean().optional() }), async (self, args: { to: ActorRef; trap?: boolean }) => {
    if (args.trap) self.trapExit(true);
    self.link(args.to);
    for (;;) {
      const m = await self.receive();
      log(`linker ${self.ref.key} got ${(m as { type?: string }).type ?? 'message'}: ${JSON.stringify((m as { reason?: unknown }).reason)}`);
      if (args.trap) args.to.send({ trapped: (m as { reason?: unknown }).reason });
    }
  });

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
      refs.push(await self.spawnOn(nodes[k % nodes.length], 'chunk', { fn: args.fn, items, index: k }, { monitor: true }));
    }
    const parts: number[][] = [];
    for (let left = refs.length; left > 0; left--) {
      const down = await self.receive(isDown);
      const { reason, result } = down as { reason: unknown; result?: { index: number; out: number[] } };
      if (reason !== 'normal' || !result) throw new Error(`a chunk failed: ${JSON.stringify(reason)}`);
      parts[result.index] = result.out;
    }
    return parts.flat();
  });
}

export { reply };
