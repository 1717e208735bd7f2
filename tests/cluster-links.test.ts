// Issue 3 — one link per pair of nodes: when two nodes dial each other at once, both links come
// up and each node drops the same one. Whatever was already sent on the dropped link must still
// arrive. Regression: the dropped link was closed at once, so calls and spawns sent on it in the
// first moments were lost without a trace and hung until their timeout (seen in the cluster tests
// as a remote spawn timing out right after gossip made two nodes dial each other).
// In-process nodes over real TCP: only they can be made to dial at the same instant.
import { describe, expect, test } from 'vitest';
import { behaviour } from '../core/index.ts';
import { useCluster, within } from './helpers/cluster.ts';

const cluster = useCluster();

const echo = behaviour({ handle: (m: unknown, _s: undefined, ctx) => void ctx.reply(m) });

describe('simultaneous dials over TCP', () => {
  test('both nodes dial each other and call at once: nothing sent on the link that loses is lost', async () => {
    for (let round = 0; round < 8; round++) {
      const a = await cluster.node({ name: `dup-a${round}`, callTimeout: 3000 });
      const b = await cluster.node({ name: `dup-b${round}`, callTimeout: 3000 });
      a.define('echo', undefined, echo);
      b.define('echo', undefined, echo);
      // Each side starts calling the moment its own dial is up, on whichever link that is.
      const calls = (from: typeof a, to: string) =>
        Array.from({ length: 5 }, (_, i) =>
          from.spawn(to, 'echo').then((r) => r.call(`${from.id}:${i}`)),
        );
      const results = await within(
        Promise.all([
          a.connect(b.addresses[0]).then(() => Promise.all(calls(a, b.id))),
          b.connect(a.addresses[0]).then(() => Promise.all(calls(b, a.id))),
        ]),
        `round ${round}: every call over the racing links to be answered`,
        10_000,
      );
      const sent = (id: string) => [0, 1, 2, 3, 4].map((i) => `${id}:${i}`);
      expect(results).toEqual([sent(a.id), sent(b.id)]);
      // And they settled on one link, the same one on both sides.
      expect(a.peers()).toEqual([b.id]);
      expect(b.peers()).toEqual([a.id]);
    }
  });
});
