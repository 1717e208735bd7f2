// The shared transport contract over the MessagePort adapter (troupe/worker): a MessageChannel,
// and a real worker_threads Worker object on one end (a bridge worker passes messages to a port
// the test holds). Then what is particular to ports: one message per tick, frames held until the
// other end listens, app messages ignored, the host's reports of a dead worker or closed port.
import { readFileSync } from 'node:fs';
import { MessageChannel, Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { createNode } from '../core/index.ts';
import {
  connectPort,
  connectToParent,
  createPortConnection,
  spawnWorkerNode,
  type PortControl,
} from '../adapters/worker.ts';
import { runTransportContract } from './transport-contract.ts';
import { rejects, until, within } from './helpers/nodes.ts';
import { closedWith, useCleanups } from './helpers/transport.ts';

runTransportContract('worker (MessageChannel)', async () => {
  const { port1, port2 } = new MessageChannel();
  return {
    a: createPortConnection(port1, { label: 'port1' }),
    b: createPortConnection(port2, { label: 'port2' }),
    cleanup: () => {
      port1.close();
      port2.close();
    },
  };
});

/**
 * A port seen the way a browser shows one: `postMessage`, `addEventListener` with `event.data`,
 * `start()`, and no Node `on`/`off`, so the adapter takes its browser path.
 */
function browserStylePort(port: import('node:worker_threads').MessagePort) {
  return {
    postMessage: (m: unknown) => port.postMessage(m),
    addEventListener: (type: string, fn: (e: unknown) => void) =>
      port.addEventListener(type, fn as (e: Event) => void),
    removeEventListener: (type: string, fn: (e: unknown) => void) =>
      port.removeEventListener(type, fn as (e: Event) => void),
    start: () => port.start(),
  };
}

runTransportContract('worker (MessageChannel, browser-style EventTarget endpoints)', async () => {
  const { port1, port2 } = new MessageChannel();
  return {
    a: createPortConnection(browserStylePort(port1), { label: 'port1' }),
    b: createPortConnection(browserStylePort(port2), { label: 'port2' }),
    cleanup: () => {
      port1.close();
      port2.close();
    },
  };
});

runTransportContract('worker (worker_threads Worker)', async () => {
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(new URL('./fixtures/port-bridge.mjs', import.meta.url), {
    workerData: { port: port2 },
    transferList: [port2],
  });
  return {
    a: createPortConnection(worker, { label: 'worker' }),
    b: createPortConnection(port1, { label: 'port in the test, bridged by the worker' }),
    cleanup: async () => {
      port1.close();
      await worker.terminate();
    },
  };
});

/** Collects what arrives raw on a port. */
function rawPort(port: import('node:worker_threads').MessagePort) {
  const got: unknown[] = [];
  port.on('message', (m) => got.push(m));
  return got;
}

describe('worker adapter', () => {
  const { cleanups } = useCleanups();
  function channel() {
    const ch = new MessageChannel();
    cleanups.push(() => {
      ch.port1.close();
      ch.port2.close();
    });
    return ch;
  }

  it("says open, holds frames until the other end answers, then posts a tick's frames as one message", async () => {
    const { port1, port2 } = channel();
    const raw = rawPort(port2);
    const conn = createPortConnection(port1);
    conn.onframe = () => {};
    conn.send('early-1');
    conn.send('early-2');
    await until(() => raw.length >= 1, 'the open message');
    await new Promise((r) => setTimeout(r, 20));
    expect(raw).toEqual([{ troupe: 'open' }]); // nothing else until the other end is known to listen
    port2.postMessage({ troupe: 'open' } satisfies PortControl);
    await until(() => raw.length >= 3, 'the answer and the held frames');
    expect(raw.slice(1)).toEqual([
      { troupe: 'ready' },
      { troupe: 'frames', frames: ['early-1', 'early-2'] },
    ]);
    conn.send('alone');
    await until(() => raw.length >= 4, 'a single frame');
    expect(raw[3]).toBe('alone'); // a lone frame is the plain string
    for (let i = 0; i < 100; i++) conn.send(`f${i}`);
    await until(() => raw.length >= 5, 'a batch');
    await new Promise((r) => setTimeout(r, 20));
    expect(raw.slice(4)).toEqual([
      { troupe: 'frames', frames: Array.from({ length: 100 }, (_, i) => `f${i}`) },
    ]);
    conn.close();
    await until(() => raw.length >= 6, 'the close message');
    expect(raw[5]).toEqual({ troupe: 'close' });
  });

  it('counts what waits to be posted in bufferedAmount, and calls ondrain once it is posted', async () => {
    const { port1, port2 } = channel();
    const a = createPortConnection(port1);
    const b = createPortConnection(port2);
    await a.opened;
    let drains = 0;
    a.ondrain = () => drains++;
    a.send('x'.repeat(1000));
    a.send('y'.repeat(24));
    expect(a.bufferedAmount).toBe(1024);
    await Promise.resolve();
    expect(a.bufferedAmount).toBe(0);
    expect(drains).toBe(1);
    a.close();
    b.close();
  });

  it("ignores messages that are not troupe's (objects of the app sharing the endpoint)", async () => {
    const { port1, port2 } = channel();
    const a = createPortConnection(port1);
    const b = createPortConnection(port2);
    const got: string[] = [];
    b.onframe = (f) => got.push(f);
    port1.postMessage({ app: 'config', n: 1 });
    port1.postMessage(null);
    port1.postMessage(42);
    a.send('frame');
    await until(() => got.length === 1, 'the frame');
    expect(got).toEqual(['frame']);
    a.close();
  });

  it('closes with PROTOCOL_ERROR on a malformed batch, and tells the other end', async () => {
    const { port1, port2 } = channel();
    const raw = rawPort(port2);
    const conn = createPortConnection(port1);
    const reason = closedWith(conn);
    port2.postMessage({ troupe: 'open' });
    port2.postMessage({ troupe: 'frames', frames: ['ok', 7] });
    expect(await reason).toMatch(/^PROTOCOL_ERROR: /);
    await until(() => raw.some((m) => (m as PortControl).troupe === 'close'), 'the close message');
  });

  it('closes when the other port is closed (Node reports it), though no close message came', async () => {
    const { port1, port2 } = channel();
    const conn = createPortConnection(port1);
    const reason = closedWith(conn);
    port2.close();
    expect(await reason).toBe('port closed');
  });

  it('reports a close that happened before anyone set onclose, once it is set', async () => {
    const { port1, port2 } = channel();
    const conn = createPortConnection(port1);
    port2.postMessage({ troupe: 'close' });
    await rejects(conn.opened, 'TRANSPORT_CLOSED', 'opened of a connection closed first');
    expect(await closedWith(conn)).toBe('closed by peer');
  });

  it('delivers frames that arrived before onframe was set, after the one who sets it is done', async () => {
    const { port1, port2 } = channel();
    const a = createPortConnection(port1);
    const b = createPortConnection(port2);
    a.send('one');
    a.send('two');
    await b.opened;
    await new Promise((r) => setTimeout(r, 20)); // the frames are in, nobody listens yet
    const got: string[] = [];
    b.onframe = (f) => got.push(f);
    expect(got).toEqual([]); // not inside the setter
    await until(() => got.length === 2, 'the early frames');
    expect(got).toEqual(['one', 'two']);
    a.close();
  });

  it('closes at once when a Worker exits or throws, with the reason', async () => {
    const exits = new Worker('setTimeout(() => process.exit(7), 50)', { eval: true });
    const throws = new Worker('setTimeout(() => { throw new Error("kaput") }, 50)', { eval: true });
    const [onExit, onThrow] = [
      closedWith(createPortConnection(exits)),
      closedWith(createPortConnection(throws)),
    ];
    expect(await onExit).toBe('worker exited (code 7)');
    expect(await onThrow).toBe('worker error: kaput');
  });

  it('terminates a worker it owns when it closes', async () => {
    const worker = new Worker('setInterval(() => {}, 1000)', { eval: true });
    const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
    const conn = createPortConnection(worker, { terminate: true });
    await new Promise((resolve) => worker.once('online', resolve));
    conn.close();
    expect(await within(exited, 'the worker ends', 10_000)).toBe(1);
  });

  it('links two nodes over a MessageChannel with connectPort, and cuts them apart on close', async () => {
    const { port1, port2 } = channel();
    const a = createNode({ name: 'a', secret: 's' });
    const b = createNode({ name: 'b', secret: 's' });
    cleanups.push(() => Promise.all([a.shutdown(), b.shutdown()]));
    expect(
      await Promise.all([connectPort(a, port1, { initiator: true }), connectPort(b, port2)]),
    ).toEqual(['b', 'a']);
    const echo = b.spawn(async (self) => {
      for (;;) self.reply(await self.receive());
    });
    expect(await a.call(echo, 'over a port')).toBe('over a port');
    const down = a.events.next('nodeDown');
    b.disconnect('a');
    expect((await within(down, 'nodeDown')).node).toBe('b');
  });

  it('refuses a port whose other node has a different secret, on both sides', async () => {
    const { port1, port2 } = channel();
    const a = createNode({ name: 'a', secret: 'one' });
    const b = createNode({ name: 'b', secret: 'other' });
    cleanups.push(() => Promise.all([a.shutdown(), b.shutdown()]));
    const [ea, eb] = [a.events.next('protocolError'), b.events.next('protocolError')];
    const [ra, rb] = await Promise.allSettled([
      connectPort(a, port1, { initiator: true }),
      connectPort(b, port2),
    ]);
    expect([ra.status, rb.status]).toEqual(['rejected', 'rejected']);
    expect([(await ea).error.code, (await eb).error.code]).toEqual([
      'UNAUTHORIZED',
      'UNAUTHORIZED',
    ]);
  });

  it('connectToParent outside a worker rejects with TRANSPORT_CLOSED', async () => {
    const node = createNode();
    cleanups.push(() => node.shutdown());
    await rejects(connectToParent(node), 'TRANSPORT_CLOSED', 'connectToParent in the main thread');
  });

  it('connectToParent gives up when the parent never answers', async () => {
    const { port1 } = channel();
    const node = createNode();
    cleanups.push(() => node.shutdown());
    const err = await rejects(
      connectToParent(node, { endpoint: port1, timeout: 50 }),
      'TRANSPORT_CLOSED',
      'a silent parent',
    );
    expect(err.message).toContain('did not answer within 50 ms');
  });

  it('spawnWorkerNode reports a worker that fails to start at once (TRANSPORT_CLOSED), not after the handshake timeout', async () => {
    const node = createNode({ handshakeTimeout: 120_000 });
    cleanups.push(() => node.shutdown());
    const worker = new Worker(new URL('./fixtures/does-not-exist.mjs', import.meta.url));
    cleanups.push(() => worker.terminate());
    const err = await rejects(
      spawnWorkerNode(node, worker),
      'TRANSPORT_CLOSED',
      'a worker that cannot load',
    );
    expect(err.message).toMatch(/worker error: .*does-not-exist/);
  });

  it('is browser-safe: worker.ts, websocket.ts and the files they import use no Node module or global', () => {
    const browserSafe = [
      'worker.ts',
      'port-connection.ts',
      'websocket.ts',
      'base-connection.ts',
      'byte-string.ts',
    ];
    for (const file of browserSafe) {
      const src = readFileSync(new URL(`../adapters/${file}`, import.meta.url), 'utf8');
      const imports = [...src.matchAll(/^import[^'"]*['"]([^'"]+)['"]/gm)].map((m) => m[1]);
      const allowed = (i: string) =>
        i === '../core/index.ts' || browserSafe.some((f) => i === `./${f}`);
      expect(imports.every(allowed), `${file} imports ${imports.join(', ')}`).toBe(true);
      // `process.versions`/`getBuiltinModule` only through a guarded globalThis lookup (worker.ts finding parentPort)
      expect(src).not.toMatch(
        /\b(require\(|Buffer\.|__dirname|process\.(?!versions|getBuiltinModule))/,
      );
    }
  });
});
