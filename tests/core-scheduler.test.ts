// Regression (found by the demo): a scheduler turn had a message budget but no time budget, so
// the reply to a slow call waited until every other queued message was handled too.
import { describe, it, expect } from 'vitest';
import { createNode, behaviour } from '../core/index.ts';
import { connectMemory } from '../adapters/memory.ts';

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    /* a CPU-bound handler */
  }
}

describe('scheduler turns are time-boxed', () => {
  it('answers the first slow call before handling the next one', async () => {
    const node = createNode();
    const log: string[] = [];
    const slow = node.spawn(
      behaviour<number, undefined>({
        handle(n, _s, ctx) {
          log.push(`handle ${n}`);
          busy(30);
          ctx.reply(n);
        },
      }),
    );
    const calls = [1, 2, 3].map((n) => slow.call(n).then(() => log.push(`reply ${n}`)));
    await Promise.all(calls);
    expect(log).toEqual(['handle 1', 'reply 1', 'handle 2', 'reply 2', 'handle 3', 'reply 3']);
    await node.shutdown();
  });

  it('flushes a reply across a link before handling the next slow message', async () => {
    const a = createNode({ name: 'a' });
    const b = createNode({ name: 'b' });
    await connectMemory(a, b);
    const log: string[] = [];
    const slow = b.spawn(
      behaviour<number, undefined>({
        handle(n, _s, ctx) {
          log.push(`handle ${n}`);
          busy(30);
          ctx.reply(n);
        },
      }),
    );
    const remote = a.ref<number>(slow.node, slow.id);
    await Promise.all([1, 2].map((n) => remote.call(n).then(() => log.push(`reply ${n}`))));
    expect(log.indexOf('reply 1')).toBeLessThan(log.indexOf('handle 2'));
    await Promise.all([a.shutdown(), b.shutdown()]);
  });
});
