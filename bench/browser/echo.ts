// What the far end of every browser bench channel runs, troupe side and raw side alike: echo a
// ping, count a one-way message, answer 'count' with the count (and reset it).
import { z } from 'zod';
import { behaviour, type Node } from '../../core/index.ts';
import { Msg } from '../messages.ts';

/** A bench message: about 40 characters of JSON, the one of bench/messages.ts. */
export type BenchMsg = Msg;

/**
 * Raw channels carry `{ k, m }`: `p` ping (echo it), `o` one-way (count it), `b` a batch of
 * one-way messages (count each), `c` count query.
 */
export type RawMsg =
  | { k: 'p'; m: BenchMsg }
  | { k: 'o'; m: BenchMsg }
  | { k: 'b'; m: BenchMsg[] }
  | { k: 'c' };

/** What the troupe echo accepts, checked by zod as a user's actor would. */
export const EchoMsg = z.union([Msg, z.literal('count')]);

/** The troupe echo: a call is answered with its message; a send is counted; the call 'count' returns and resets the count. */
export const echoBehaviour = behaviour({
  schema: EchoMsg,
  init: () => 0,
  handle(m, count, ctx) {
    if (m === 'count') {
      ctx.reply(count);
      return 0;
    }
    // A plain send has no caller: reply() is then a no-op returning false.
    if (ctx.reply(m)) return count;
    return count + 1;
  },
});

/** Spawn the echo on `node` under `name`. */
export function startEcho(node: Node, name: string): void {
  node.spawn(echoBehaviour, { name });
}

/** The raw far end: what to send back for one raw message (undefined: nothing). */
export function rawAnswer(state: { count: number }, msg: RawMsg): RawMsg | number | undefined {
  if (msg.k === 'p') return msg;
  if (msg.k === 'o') {
    state.count++;
    return undefined;
  }
  if (msg.k === 'b') {
    for (let i = 0; i < msg.m.length; i++) if (msg.m[i].kind === 'inc') state.count++;
    return undefined;
  }
  const c = state.count;
  state.count = 0;
  return c;
}
