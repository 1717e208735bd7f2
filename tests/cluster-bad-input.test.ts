// Issue 3 — a `troupe node` process refuses bad peers: a wrong secret, a wrong protocol version,
// garbage bytes, a frame larger than the limit, a client that connects and says nothing. Each
// is refused with a clear event (the node prints `refused: CODE …`; the other side gets a
// `reject` frame or a protocolError event), nothing it sent is delivered, and the node keeps
// serving its other links.
import { describe, expect, test } from 'vitest';
import { TroupeError, type ActorRef, type Node } from '../core/index.ts';
import { useCluster, eventually, SECRET, within, type ChildNode } from './helpers/cluster.ts';

const cluster = useCluster();

interface Guarded {
  n: ChildNode;
  t: Node;
  logger: ActorRef;
  /** Links from the test node to the guarded node that went down. */
  linkDowns: string[];
}

/** A node with a registered logger (it prints every message it gets), joined by the test node. */
async function guarded(): Promise<Guarded> {
  const n = await cluster.start({ name: 'guard-n' });
  const t = await cluster.node({ name: 'guard-test' });
  await t.connect(n.address);
  const linkDowns: string[] = [];
  t.events.on('linkDown', (e) => linkDowns.push(`${e.node}: ${e.reason}`));
  const logger = await t.spawn(n.id, 'logger', { name: 'guard-log' });
  return { n, t, logger, linkDowns };
}

/** An envelope sending `text` to `logger` as if from node `from`. */
function sendEnvelope(logger: ActorRef, from: string, text: string): string {
  return `${JSON.stringify({ t: 's', n: logger.node, o: from, h: 0, a: logger.id })}\tj${JSON.stringify(text)}`;
}

/**
 * The guarded node still serves the test node's link: a call is answered, and a message sent
 * after everything else is printed — while none of the `markers` (sent by refused peers) ever was.
 */
async function stillServing(g: Guarded, markers: string[]): Promise<void> {
  expect(await g.logger.call('GOOD after the bad peers')).toBeGreaterThanOrEqual(1);
  await g.n.waitForLine(/guard-log: GOOD after the bad peers/, 'the good message');
  const echo = await g.t.spawn(g.n.id, 'echo');
  expect(await echo.call({ still: 'serving' })).toEqual({ still: 'serving' });
  for (const m of markers)
    expect(g.n.matching(new RegExp(m)), `${m} must not be delivered`).toEqual([]);
  expect(g.linkDowns).toEqual([]);
  expect(g.t.peers()).toEqual(['guard-n']);
}

describe('a node process refuses bad peers and keeps serving', () => {
  test('wrong secret: an in-process node and a raw client are both refused with UNAUTHORIZED', async () => {
    const g = await guarded();
    const from = g.n.mark();

    // An in-process node with the wrong secret: its connect fails and it reports why.
    const intruder = await cluster.node({ name: 'guard-intruder', secret: 'not-the-secret' });
    const intruderErrors: TroupeError[] = [];
    intruder.events.on('protocolError', (e) => intruderErrors.push(e.error));
    const err = await intruder.connect(g.n.address).then(
      () => undefined,
      (e: TroupeError) => e,
    );
    expect(err).toBeInstanceOf(TroupeError);
    expect(err!.code).toBe('UNAUTHORIZED');
    expect(intruderErrors.map((e) => e.code)).toContain('UNAUTHORIZED');
    expect(intruder.peers()).toEqual([]);
    await g.n.waitForLine(
      /refused: UNAUTHORIZED .*cluster-secret challenge/,
      'the refusal of the wrong secret',
      5000,
      from,
    );

    // A raw client that proves a wrong secret, then tries to deliver a message in the same write.
    const raw = await cluster.raw(g.n.hostPort);
    const h = await raw.nodeHello();
    raw.sendFrames(
      raw.hello('guard-raw'),
      JSON.stringify({ t: 'auth', mac: '0'.repeat(64) }),
      JSON.stringify({ t: 'ok' }),
      sendEnvelope(g.logger, 'guard-raw', 'MARKER-secret'),
    );
    const reject = JSON.parse(
      await raw.nextFrame((f) => f.startsWith('{"t":"reject"'), 'a reject frame'),
    );
    expect(reject).toMatchObject({ t: 'reject', code: 'UNAUTHORIZED' });
    await within(raw.closed, 'the node to close the refused connection', 5000);
    expect(h.node).toBe('guard-n');
    expect(g.n.matching(/refused: UNAUTHORIZED/, from)).toHaveLength(2);

    await stillServing(g, ['MARKER-secret']);
  });

  test('wrong protocol version, garbage bytes, oversized frames: refused with a clear code, nothing delivered', async () => {
    const g = await guarded();
    const from = g.n.mark();

    // A hello speaking protocol 999, followed in the same write by a message.
    const v999 = await cluster.raw(g.n.hostPort);
    await v999.nodeHello();
    v999.sendFrames(
      v999.hello('guard-v999', { v: 999 }),
      sendEnvelope(g.logger, 'guard-v999', 'MARKER-version'),
    );
    expect(
      JSON.parse(await v999.nextFrame((f) => f.startsWith('{"t":"reject"'), 'a reject frame')),
    ).toMatchObject({
      code: 'VERSION_MISMATCH',
    });
    await within(v999.closed, 'the version-mismatch connection to close', 5000);
    await g.n.waitForLine(
      /refused: VERSION_MISMATCH .*999/,
      'the refusal of protocol 999',
      5000,
      from,
    );

    // Garbage inside a well-formed frame: not a handshake message.
    const junk = await cluster.raw(g.n.hostPort);
    junk.sendFrames(
      '\u0000\u00ff garbage {not json',
      sendEnvelope(g.logger, 'guard-junk', 'MARKER-junk'),
    );
    expect(
      JSON.parse(await junk.nextFrame((f) => f.startsWith('{"t":"reject"'), 'a reject frame')),
    ).toMatchObject({ code: 'UNAUTHORIZED' });
    await within(junk.closed, 'the garbage connection to close', 5000);
    await g.n.waitForLine(
      /refused: UNAUTHORIZED expected a handshake message/,
      'the refusal of the garbage frame',
      5000,
      from,
    );

    // Garbage with no framing at all (an HTTP request): its first bytes read as a huge length.
    const http = await cluster.raw(g.n.hostPort);
    http.sendBytes('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nMARKER-http');
    await within(http.closed, 'the HTTP connection to close', 5000);
    await g.n.waitForLine(
      /refused: FRAME_TOO_LARGE /,
      'the refusal of the unframed bytes',
      5000,
      from,
    );

    // A frame announced larger than the transport's byte limit (12 MiB), before any handshake.
    const huge = await cluster.raw(g.n.hostPort);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(64 * 1024 * 1024, 0);
    huge.sendBytes(Buffer.concat([head, Buffer.from('MARKER-huge')]));
    await within(huge.closed, 'the oversized-frame connection to close', 5000);
    await eventually(
      () => g.n.matching(/refused: FRAME_TOO_LARGE /, from).length >= 2,
      'the refusal of the 64 MiB frame',
    );

    // An authenticated peer that sends one frame over core's 4 Mi-character limit.
    const big = await cluster.raw(g.n.hostPort);
    expect(await big.handshake('guard-big', SECRET)).toBe('guard-n');
    big.sendFrames(sendEnvelope(g.logger, 'guard-big', 'RAW-OK before the big frame'));
    await g.n.waitForLine(
      /guard-log: RAW-OK before the big frame/,
      'the authenticated raw peer to deliver a normal message',
      5000,
      from,
    );
    big.sendFrames(
      sendEnvelope(g.logger, 'guard-big', `MARKER-big ${'x'.repeat(4_300_000)}`),
      sendEnvelope(g.logger, 'guard-big', 'MARKER-after-big'),
    );
    expect(
      JSON.parse(await big.nextFrame((f) => f.startsWith('{"t":"reject"'), 'a reject frame')),
    ).toMatchObject({ code: 'FRAME_TOO_LARGE' });
    await within(big.closed, 'the link with the oversized frame to close', 5000);
    await g.n.waitForLine(
      /refused: FRAME_TOO_LARGE frame of \d+ chars exceeds the limit/,
      "core's refusal of the big frame",
      5000,
      from,
    );
    await g.n.waitForLine(
      /link down: guard-big \(FRAME_TOO_LARGE/,
      'the link to guard-big to go down',
      5000,
      from,
    );

    await stillServing(g, [
      'MARKER-version',
      'MARKER-junk',
      'MARKER-http',
      'MARKER-huge',
      'MARKER-big',
      'MARKER-after-big',
    ]);
  });

  test('a client that connects and says nothing is dropped after the handshake timeout', async () => {
    const g = await guarded();
    const from = g.n.mark();
    const silent = await cluster.raw(g.n.hostPort);
    // The node speaks first (its hello), then gives up on us: handshakeTimeout (5 s by default).
    await silent.nodeHello();
    expect(
      JSON.parse(
        await silent.nextFrame((f) => f.startsWith('{"t":"reject"'), 'a reject frame', 10_000),
      ),
    ).toMatchObject({
      code: 'PROTOCOL_ERROR',
      message: 'handshake timed out',
    });
    await within(silent.closed, 'the silent connection to close', 5000);
    await g.n.waitForLine(
      /refused: PROTOCOL_ERROR handshake timed out/,
      'the refusal of the silent client',
      5000,
      from,
    );
    await stillServing(g, []);
  });
});
