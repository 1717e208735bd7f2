// Issue 3 — three `troupe node` processes form a cluster through one seed; membership gossip
// makes a full mesh; a name registered on one node is found from every other node.
import { describe, expect, test } from 'vitest';
import { ActorRef } from '../core/index.ts';
import { useCluster, eventually } from './helpers/cluster.ts';

const cluster = useCluster();

describe('cluster formation over TCP (real processes)', () => {
  test('three nodes joined through one seed form a full mesh; a name registered on one is found from the others', async () => {
    const a = await cluster.start({ name: 'mesh-a' });
    // The second and third only know the first.
    const [b, c] = await Promise.all([
      cluster.start({ name: 'mesh-b', seeds: [a.hostPort] }),
      cluster.start({ name: 'mesh-c', seeds: [a.hostPort] }),
    ]);
    const children = [a, b, c];

    // Gossip alone links b and c: each prints a link to the other, though neither was told of it.
    await b.waitForLine(/link up: mesh-c /, 'its link to mesh-c (learned from the seed)');
    await c.waitForLine(/link up: mesh-b /, 'its link to mesh-b (learned from the seed)');

    // The test process joins through the seed too, and gossip links it to every member.
    const t = await cluster.node({ name: 'mesh-test' });
    expect(await t.join(a.address)).toBe('mesh-a');
    await eventually(
      () => ['mesh-a', 'mesh-b', 'mesh-c'].every((n) => t.peers().includes(n)),
      'the test node to link to all three',
    );

    // Each child's own view: a direct link to both others.
    const inspectors = await Promise.all(children.map((ch) => t.spawn(ch.id, 'inspector')));
    for (const [i, ch] of children.entries()) {
      const others = children.filter((x) => x !== ch).map((x) => x.id);
      const peers = await eventually(
        async () => {
          const p = (await inspectors[i].call({ op: 'peers' })) as string[];
          return others.every((o) => p.includes(o)) && p;
        },
        `${ch.name} to have direct links to ${others.join(', ')}`,
      );
      expect(peers).toEqual(expect.arrayContaining([...others, 'mesh-test']));
    }

    // Register a name on b (a remote spawn of `named`, which registers itself in init).
    const service = await t.spawn(b.id, 'named', { name: 'mesh-service' });
    expect(service.node).toBe('mesh-b');
    await eventually(
      () => t.whereis('mesh-service')?.equals(service),
      'the test node to see mesh-service',
    );
    for (const [i, ch] of children.entries()) {
      const seen = await eventually(
        async () =>
          ((await inspectors[i].call({
            op: 'whereis',
            name: 'mesh-service',
          })) as ActorRef | null) ?? undefined,
        `${ch.name} to see mesh-service`,
      );
      expect(seen).toBeInstanceOf(ActorRef);
      expect(seen.equals(service), `${ch.name} sees mesh-service as ${seen.key}`).toBe(true);
      // The ref a child handed over is a working address.
      expect(await seen.call({ via: ch.name })).toEqual({ via: ch.name });
    }
    // By name, from the test node: send-by-name resolves through its replicated view.
    expect(await t.call('mesh-service', 'by name')).toBe('by name');

    // The name vanishes everywhere with its actor.
    const down = t.waitDown(service);
    service.exit('shutdown');
    expect((await down).reason).toBe('shutdown');
    await eventually(
      () => t.whereis('mesh-service') === undefined,
      'mesh-service to vanish on the test node',
    );
    for (const [i, ch] of children.entries()) {
      await eventually(
        async () => (await inspectors[i].call({ op: 'whereis', name: 'mesh-service' })) === null,
        `mesh-service to vanish on ${ch.name}`,
      );
    }
  });
});
