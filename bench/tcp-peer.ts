/**
 * The far sides of the TCP bench, run as child processes by bench/tcp.ts. `tcp-peer.ts <role> …`:
 *   raw                     — a raw `net` server: echoes frames, or counts them (sink)
 *   troupe                  — a troupe node on the TCP adapter with a typed echo and a typed sink
 *   relay <address>         — a troupe node that listens and links to <address>; it forwards
 *                             between the nodes linked to it (the relay of relay.*)
 *   send-troupe <address> <node> <sink>   — a troupe node linked to <address>; { go: n } sends
 *                             n messages to actor <sink> of <node>, CHUNK per tick
 *   send-raw <port>         — a raw socket to 127.0.0.1:<port>; { go: n } sends n frames, CHUNK
 *                             per tick, one write per tick
 *   host-troupe | host-raw  — a listener that only holds the links made to it; { measure: true }
 *                             answers its memory after a full GC (needs --expose-gc)
 *   dial-troupe <address> <k> | dial-raw <port> <k> — open k idle links (k nodes, or k sockets)
 * Each reports its address or port over IPC, then takes IPC commands:
 *   { arm: n }  → replies { armed: true }, and { done: true } once n messages reached the sink
 *   { mode }    → raw only: 'echo' or 'sink' for the accepted connection
 */
import net from 'node:net';
import { behaviour, createNode, type Node } from '../core/index.ts';
import { Msg, Sink, makeMessages } from './messages.ts';
import { encodeFrames, frameReader } from './raw-frames.ts';

/** Messages sent per event-loop tick by the senders (the same as bench/tcp.ts). */
export const CHUNK = 1_000;

const send = (m: unknown) => process.send!(m);
const sink = new Sink();
let onCommand: (cmd: Record<string, unknown>) => void = () => {};
process.on('message', (cmd: Record<string, unknown>) => {
  if (cmd.exit) process.exit(0);
  if (typeof cmd.arm === 'number') {
    // Done when all n arrived, or (some lost) when the count stood still for 5 s (checked
    // every 100 ms, so no clock read per message): the reply says how many came and for how long
    // the count had stood still when it gave up.
    let settled = false;
    sink.arm(cmd.arm).then(() => {
      settled = true;
      send({ done: true, count: sink.count, idleMs: 0 });
    });
    let seen = -1;
    let stillSince = performance.now();
    const watch = setInterval(() => {
      if (settled) return clearInterval(watch);
      const t = performance.now();
      if (sink.count !== seen) {
        seen = sink.count;
        stillSince = t;
      } else if (t - stillSince > 5000) {
        clearInterval(watch);
        send({ done: true, count: sink.count, idleMs: t - stillSince });
      }
    }, 100);
    send({ armed: true });
    return;
  }
  onCommand(cmd);
});
// The parent's death ends this process too.
process.on('disconnect', () => process.exit(0));

const tick = () => new Promise<void>((r) => setImmediate(r));
const secret = process.env.BENCH_SECRET;
const [role, ...args] = process.argv.slice(2);

async function tcpNode(listen: boolean, name?: string): Promise<Node> {
  const { createTcpTransport } = await import('../adapters/tcp.ts');
  return createNode({
    name,
    secret,
    transports: [createTcpTransport(listen ? { listen: '127.0.0.1:0' } : {})],
    handshakeTimeout: 30_000,
  });
}

/** Free memory now and report it: RSS and V8 heap after two full GCs. */
async function memory(): Promise<{
  rss: number;
  heap: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
}> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 20));
  }
  const m = process.memoryUsage();
  return {
    rss: m.rss,
    heap: m.heapUsed + m.external + m.arrayBuffers,
    heapTotal: m.heapTotal,
    heapUsed: m.heapUsed,
    external: m.external,
  };
}

if (role === 'raw') {
  let mode = 'echo';
  onCommand = (cmd) => {
    if (typeof cmd.mode === 'string') mode = cmd.mode;
    send({ mode });
  };
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on(
      'data',
      frameReader((text) => {
        const m = JSON.parse(text) as Msg;
        if (mode === 'echo') socket.write(encodeFrames([JSON.stringify(m)]));
        else sink.handle(m);
      }),
    );
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1', () => send({ port: (server.address() as net.AddressInfo).port }));
} else if (role === 'troupe') {
  const node = await tcpNode(true, 'bench-peer');
  const [address] = await node.listen();
  // As a user's actors would: both validate with a zod schema.
  const echo = node.spawn(
    behaviour({
      schema: Msg,
      handle(m, _s, ctx) {
        ctx.reply(m);
      },
    }),
  );
  const counter = node.spawn(behaviour({ schema: Msg, handle: (m) => sink.handle(m) }));
  send({ address, node: node.id, echo: echo.id, sink: counter.id });
} else if (role === 'relay') {
  const node = await tcpNode(true, 'bench-relay');
  const [address] = await node.listen();
  await node.connect(args[0]);
  // What the relay lost, if anything: { stats: true } → { stats: { deadLetters, reasons } }.
  const reasons: Record<string, number> = {};
  let deadLetters = 0;
  node.events.on('deadLetter', (e) => {
    deadLetters++;
    reasons[e.reason] = (reasons[e.reason] ?? 0) + 1;
  });
  onCommand = (cmd) => {
    if (cmd.stats)
      send({ stats: { deadLetters, reasons, links: node.linkStats(), cpu: process.cpuUsage() } });
  };
  send({ address, node: node.id });
} else if (role === 'send-troupe') {
  const node = await tcpNode(false);
  await node.connect(args[0]);
  const target = node.ref<Msg>(args[1], Number(args[2]));
  const msgs = makeMessages(1_000_000);
  // What this sender lost or saw go wrong, reported with { sent } (a fan-in round that stalls
  // says why).
  const trouble: Record<string, number> = {};
  const note = (k: string) => (trouble[k] = (trouble[k] ?? 0) + 1);
  node.events.on('deadLetter', (e) => note(`deadLetter ${e.reason}`));
  node.events.on('linkDown', (e) => note(`linkDown ${e.reason}`));
  node.events.on('protocolError', (e) => note(`protocolError ${e.error.message.slice(0, 80)}`));
  onCommand = async (cmd) => {
    const n = cmd.go as number;
    for (let i = 0; i < n; ) {
      const end = Math.min(n, i + CHUNK);
      for (; i < end; i++) target.send(msgs[i % msgs.length]);
      await tick();
    }
    send({ sent: n, trouble: { ...trouble } });
  };
  send({ ready: true });
} else if (role === 'send-raw') {
  const socket = net.connect({ host: '127.0.0.1', port: Number(args[0]) });
  await new Promise<void>((r, j) => socket.once('connect', r).once('error', j));
  socket.setNoDelay(true);
  const msgs = makeMessages(1_000_000);
  onCommand = async (cmd) => {
    const n = cmd.go as number;
    for (let i = 0; i < n; ) {
      const end = Math.min(n, i + CHUNK);
      const texts: string[] = [];
      for (; i < end; i++) texts.push(JSON.stringify(msgs[i % msgs.length]));
      socket.write(encodeFrames(texts));
      await tick();
    }
    send({ sent: n });
  };
  send({ ready: true });
} else if (role === 'host-troupe' || role === 'host-raw') {
  const base = await memory();
  let address: string;
  let links: () => number;
  if (role === 'host-troupe') {
    const node = await tcpNode(true, 'bench-host');
    [address] = await node.listen();
    links = () => node.linkStats().length;
  } else {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      // What a bare framed-JSON server keeps per connection: the socket and a frame reader.
      sockets.add(socket);
      socket.setNoDelay(true);
      // With BENCH_CHATTER set, answer each frame (as a peer answers a heartbeat).
      socket.on(
        'data',
        frameReader(
          (text) => (
            JSON.parse(text),
            process.env.BENCH_CHATTER && socket.write(encodeFrames(['{"t":"hb"}']))
          ),
        ),
      );
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    address = String((server.address() as net.AddressInfo).port);
    links = () => sockets.size;
  }
  onCommand = async (cmd) => {
    if (cmd.measure) send({ memory: await memory(), base, links: links() });
    // For investigating what a link holds (not used by the bench itself).
    if (typeof cmd.snapshot === 'string') {
      await memory();
      const { writeHeapSnapshot } = await import('node:v8');
      send({ snapshot: writeHeapSnapshot(cmd.snapshot) });
    }
  };
  send({ address });
} else if (role === 'dial-troupe' || role === 'dial-raw') {
  const k = Number(args[1]);
  if (role === 'dial-troupe') {
    const { createTcpTransport } = await import('../adapters/tcp.ts');
    for (let i = 0; i < k; i++) {
      const node = createNode({
        secret,
        transports: [createTcpTransport()],
        autoConnect: false,
        handshakeTimeout: 30_000,
      });
      await node.connect(args[0]);
    }
  } else {
    for (let i = 0; i < k; i++) {
      const socket = net.connect({ host: '127.0.0.1', port: Number(args[0]) });
      await new Promise<void>((r, j) => socket.once('connect', r).once('error', j));
      socket.on('error', () => {});
      // With BENCH_CHATTER set, a small frame every 500 ms (as troupe's heartbeats).
      if (process.env.BENCH_CHATTER)
        setInterval(() => socket.write(encodeFrames(['{"t":"hb"}'])), 500);
    }
  }
  send({ up: k });
} else {
  throw new Error(`tcp-peer.ts: unknown role ${role}`);
}
