// Zero-configuration discovery over UDP multicast on 127.0.0.1 (adapters/multicast.ts), with
// real node processes (demo-node/dist-discovery.ts) and no seed addresses.
import dgram from 'node:dgram';
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { freshGroup, groupArgs, useDist, eventually, within, type Group } from './dist-fixtures.ts';

const SECRET = 'discovery-secret';

/** A socket on `g` set up as TESTING.md says (loopback only), for sniffing and injecting. */
async function rawSocket(g: Group): Promise<{
  socket: dgram.Socket;
  got: Buffer[];
  send(buf: Buffer | string): Promise<void>;
  close(): Promise<void>;
}> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  const got: Buffer[] = [];
  socket.on('message', (b) => got.push(b));
  await new Promise<void>((resolve) => socket.bind(g.port, g.group, () => resolve()));
  socket.setMulticastInterface('127.0.0.1');
  socket.addMembership(g.group, '127.0.0.1');
  socket.setMulticastLoopback(true);
  socket.setMulticastTTL(0);
  return {
    socket,
    got,
    send: (buf) => new Promise((resolve) => socket.send(buf, g.port, g.group, () => resolve())),
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}

describe('multicast discovery', () => {
  const dist = useDist();

  it('three node processes find each other with no seeds; another secret is never joined; leaving is seen', async () => {
    const g = freshGroup();
    const [a, b, c] = await Promise.all(
      ['mc-a', 'mc-b', 'mc-c'].map((n) =>
        dist.start(n, 'dist-discovery.ts', ['--name', n, ...groupArgs(g, SECRET)]),
      ),
    );
    // Each sees the two others come up.
    for (const p of [a, b, c]) {
      for (const other of [a, b, c]) {
        if (other !== p)
          await p.waitForLine(new RegExp(`peer up ${other.id}$`), `peer up ${other.id}`, 15_000);
      }
    }

    // An observer in this process joins the same way and counts what it drops.
    const refused: string[] = [];
    const { node: observer } = await dist.node('mc-observer', g, SECRET);
    observer.events.on('protocolError', (e) => refused.push(`${e.error.code} ${e.label ?? ''}`));
    const { discovery: d2 } = await dist.node('mc-observer-2', g, SECRET);
    await eventually(
      () => observer.peers().length === 4 && observer.peers().sort().join(','),
      'the observer linked to all',
    );

    // A node with another secret announces on the same group and cluster name.
    const intruder = await dist.start('mc-intruder', 'dist-discovery.ts', [
      '--name',
      'mc-intruder',
      ...groupArgs(g, 'another-secret'),
    ]);
    const before = d2.stats().ignored['bad-mac'];
    // Wait until its announcements were heard several times (and dropped)…
    await eventually(
      () => d2.stats().ignored['bad-mac'] >= before + 3,
      'several announcements of the intruder dropped for a bad MAC',
    );
    // …then nobody has dialed it or been dialed by it: no link, and not even a refused handshake.
    for (const p of [a, b, c])
      expect(
        p.lines.some((l) => l.includes('mc-intruder')),
        `${p.name} never heard of the intruder`,
      ).toBe(false);
    expect(intruder.lines.filter((l) => /peer up|refused/.test(l))).toEqual([]);
    expect(observer.peers()).not.toContain('mc-intruder');
    expect(observer.nodes()).not.toContain('mc-intruder');
    expect(refused).toEqual([]);

    // A node stopped cleanly (SIGTERM) is seen leaving by every other node.
    const leftB = observer.events.next('nodeDown', (e) => e.node === b.id);
    await b.kill('SIGTERM');
    expect((await b.exited).code).toBe(0);
    await within(leftB, 'the observer sees mc-b leave', 10_000);
    await a.waitForLine(new RegExp(`peer down ${b.id} `), 'a sees b leave', 10_000);
    await c.waitForLine(new RegExp(`peer down ${b.id} `), 'c sees b leave', 10_000);
    // Its goodbye removed it from the discovery's list at once.
    await eventually(() => !d2.known().some((k) => k.id === b.id), 'mc-b gone from the known list');

    // A node killed outright is seen leaving too (its links break).
    const leftC = observer.events.next('nodeDown', (e) => e.node === c.id);
    await c.kill('SIGKILL');
    await within(leftC, 'the observer sees mc-c leave', 10_000);
    await a.waitForLine(new RegExp(`peer down ${c.id} `), 'a sees c leave', 10_000);
    expect(observer.peers().sort()).toEqual(['mc-a', 'mc-observer-2']);
  }, 60_000);

  it('drops replayed, stale, forged and malformed announcements', async () => {
    const g = freshGroup();
    const raw = await rawSocket(g);
    try {
      const { node: listener, discovery } = await dist.node('mc-listener', g, SECRET);
      await dist.node('mc-speaker', g, SECRET);
      await eventually(() => listener.peers().includes('mc-speaker'), 'the two nodes linked');
      await eventually(
        () => raw.got.some((b) => b.includes('"id":"mc-speaker"')),
        'a sniffed announcement of mc-speaker',
      );
      const genuine = raw.got.find((b) => b.includes('"id":"mc-speaker"'))!;

      const s0 = discovery.stats().ignored;
      // The same datagram again: a replay.
      await raw.send(genuine);
      await eventually(() => discovery.stats().ignored.replay > s0.replay, 'the replay dropped');

      // An old announcement, correctly signed with the secret (as if recorded long ago).
      const key = createHmac('sha256', SECRET).update('troupe-discovery-v1').digest();
      const sign = (body: Record<string, unknown>): string => {
        const text = JSON.stringify([
          body.v,
          body.t,
          body.c,
          body.id,
          body.inc,
          body.a,
          body.ts,
          body.n,
        ]);
        return JSON.stringify({
          ...body,
          mac: createHmac('sha256', key).update(text).digest('hex'),
        });
      };
      const body = {
        v: 1,
        t: 'hello',
        c: g.cluster,
        id: 'ghost',
        inc: 'x',
        a: ['tcp://127.0.0.1:9'],
        ts: Date.now() - 60_000,
        n: 'ab'.repeat(16),
      };
      await raw.send(sign(body));
      await eventually(
        () => discovery.stats().ignored.stale > s0.stale,
        'the stale announcement dropped',
      );

      // Signed with another secret; then a tampered MAC; then garbage.
      const otherKey = createHmac('sha256', 'wrong').update('troupe-discovery-v1').digest();
      const forged = { ...body, ts: Date.now(), n: 'cd'.repeat(16) };
      const text = JSON.stringify([
        forged.v,
        forged.t,
        forged.c,
        forged.id,
        forged.inc,
        forged.a,
        forged.ts,
        forged.n,
      ]);
      await raw.send(
        JSON.stringify({
          ...forged,
          mac: createHmac('sha256', otherKey).update(text).digest('hex'),
        }),
      );
      await raw.send('not json at all');
      await raw.send(JSON.stringify({ v: 1, t: 'hello' }));
      await eventually(
        () =>
          discovery.stats().ignored['bad-mac'] > s0['bad-mac'] &&
          discovery.stats().ignored.malformed >= s0.malformed + 2,
        'forged and malformed dropped',
      );

      // Another cluster name with the right secret: heard, not joined.
      await raw.send(sign({ ...body, c: 'someone-else', ts: Date.now(), n: 'ef'.repeat(16) }));
      await eventually(
        () => discovery.stats().ignored['other-cluster'] > s0['other-cluster'],
        'the other cluster dropped',
      );

      expect(discovery.known().map((k) => k.id)).toEqual(['mc-speaker']);
      expect(listener.peers()).toEqual(['mc-speaker']);
    } finally {
      await raw.close();
    }
  }, 30_000);
});
