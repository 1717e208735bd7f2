// Heartbeats on an idle link (docs/protocol.md, "Liveness"): a side sends `hb` on every tick of
// heartbeatInterval on which it sent nothing else. Regression: the heartbeat written on one tick
// counted as traffic on the next, so an idle link spoke only every other interval, and a loaded
// peer (its ticks late) could go silent for longer than the timeout (tests/tcp-fanin-liveness).
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../core/index.ts';
import { createMemoryPair } from '../adapters/memory.ts';
import { settle, useNodes } from './helpers/nodes.ts';

describe('heartbeats', () => {
  const make = useNodes();

  it('an idle link sends a heartbeat on every tick, each way', async () => {
    const clock = createManualClock();
    const a = make({ name: 'a', clock, heartbeatInterval: 100, heartbeatTimeout: 1000 });
    const b = make({ name: 'b', clock, heartbeatInterval: 100, heartbeatTimeout: 1000 });
    const [ea, eb] = createMemoryPair({ record: true });
    await Promise.all([a.attach(ea, true), b.attach(eb, false)]);
    await settle();
    const beats = (sent: readonly string[]) =>
      sent.filter((f) => f.split('\n').includes('{"t":"hb"}')).length;
    const before = [beats(ea.sent), beats(eb.sent)];
    for (let i = 0; i < 10; i++) {
      clock.advance(100);
      await settle();
    }
    expect([beats(ea.sent) - before[0], beats(eb.sent) - before[1]]).toEqual([10, 10]);
    expect([a.peers(), b.peers()]).toEqual([['b'], ['a']]);
  });
});
