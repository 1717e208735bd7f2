// Issue 6 — fuzzing a real TCP listener: random byte streams (garbage, valid length prefixes with
// random bodies, oversize announcements, handshake-looking frames) on fresh sockets. The node
// closes or ignores each one, never crashes, lets none of them in, and keeps serving its
// authenticated link throughout.
import net from 'node:net';
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNode, PROTOCOL_VERSION, type ActorRef, type Node } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { guardProcess, params } from './helpers/fuzz.ts';

guardProcess();

const SECRET = 'fuzz-tcp-secret';
let server: Node;
let friend: Node;
let address = '';
let echo: ActorRef;
const linkUps: string[] = [];

beforeAll(async () => {
  server = createNode({
    name: 'fuzz-server',
    secret: SECRET,
    transports: [createTcpTransport({ listen: '127.0.0.1:0', maxFrameBytes: 64 * 1024 })],
    maxFrameSize: 20_000,
    handshakeTimeout: 300,
  });
  [address] = await server.listen();
  server.events.on('linkUp', (e) => linkUps.push(e.node));
  echo = server.spawn(async (self) => {
    for (;;) self.reply(await self.receive());
  });
  friend = createNode({ name: 'fuzz-friend', secret: SECRET, transports: [createTcpTransport()] });
  await friend.connect(address);
});

afterAll(async () => {
  await friend.shutdown();
  await server.shutdown();
});

function frame(body: Buffer | string): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const head = Buffer.alloc(4);
  head.writeUInt32BE(b.length, 0);
  return Buffer.concat([head, b]);
}

const chunk = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)),
  fc.string({ unit: 'binary', maxLength: 200 }).map(frame),
  fc.constantFrom(
    frame(
      JSON.stringify({
        t: 'hello',
        v: PROTOCOL_VERSION,
        node: 'intruder',
        inc: 'x',
        nonce: '0'.repeat(32),
        addrs: [],
      }),
    ),
    frame(JSON.stringify({ t: 'auth', mac: 'f'.repeat(64) })),
    frame('{"t":"ok"}'),
    frame('{"t":"s","n":"fuzz-server","o":"intruder","h":0,"a":1}\tj"sneaky"'),
    frame('{"t":"k","b":10}'),
  ),
  fc.integer({ min: 64 * 1024 + 1, max: 0xffffffff }).map((n) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n, 0);
    return b;
  }),
);

/** Open a socket, write the chunks, and wait until the node closes it (or give up after a while). */
function attack(chunks: Buffer[]): Promise<void> {
  const at = address.replace('tcp://', '').split(':');
  return new Promise((resolve) => {
    const s = net.connect({ host: at[0], port: Number(at[1]) });
    s.on('error', () => {});
    s.on('data', () => {});
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve();
    };
    const timer = setTimeout(done, 2000);
    s.once('close', done);
    s.once('connect', () => {
      for (const c of chunks) s.write(c);
    });
  });
}

describe('a TCP listener under fuzzed byte streams', () => {
  it('random streams never get in, never crash the node, and its authenticated link keeps working', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(chunk, { minLength: 1, maxLength: 6 }), async (chunks) => {
        await attack(chunks);
        if (++n % 25 === 0) expect(await friend.call(friend.ref(echo.node, echo.id), n)).toBe(n);
      }),
      params(0.02),
    );
    expect(linkUps).toEqual(['fuzz-friend']);
    expect(server.peers()).toEqual(['fuzz-friend']);
    expect(await friend.call(friend.ref(echo.node, echo.id), 'still here')).toBe('still here');
  }, 600_000);
});
