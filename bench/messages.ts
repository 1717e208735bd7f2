/**
 * The messages every bench case sends, and the handler both sides call per message, so a troupe
 * figure and its raw baseline do the same work on the same objects.
 */
import { z } from 'zod';

/** A small typed message (about 40 characters of JSON). */
export const Msg = z.object({ kind: z.literal('inc'), n: z.number(), tag: z.string() });
export type Msg = z.infer<typeof Msg>;

/** `count` distinct message objects, made once and reused by every round. */
export function makeMessages(count: number): Msg[] {
  const out = new Array<Msg>(count);
  for (let i = 0; i < count; i++) out[i] = { kind: 'inc', n: i, tag: 'bench' };
  return out;
}

/**
 * Counts messages and sums a field (so the work cannot be optimized away); resolves `done`
 * when `expect` messages were seen.
 */
export class Sink {
  count = 0;
  sum = 0;
  #expect = 0;
  #resolve: (() => void) | undefined;

  /** Reset and return a promise of the `expect`-th message. */
  arm(expect: number): Promise<void> {
    this.count = 0;
    this.sum = 0;
    this.#expect = expect;
    return new Promise((r) => (this.#resolve = r));
  }

  handle(m: Msg): void {
    this.sum += m.n;
    if (++this.count === this.#expect) this.#resolve?.();
  }
}
