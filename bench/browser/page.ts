// The browser bench page: measures, in one page, each channel raw and through troupe with the same
// messages, interleaved so noise hits both alike. Driven through `window.bench` by bench/browser/run.ts.
//   worker:    raw postMessage (structured clone) to a plain worker  vs  call/send to an actor in a worker node
//   websocket: raw WebSocket (JSON text) to a Node echo server       vs  call/send to an actor on the relay
//   webrtc:    raw peerjs DataConnection (JSON text) to another page vs  call/send to an actor in that page
import type { DataConnection, Peer } from 'peerjs';
import { createNode, type ActorRef, type Node } from '../../core/index.ts';
import { createWebSocketTransport } from '../../adapters/websocket.ts';
import {
  createWebRtcTransport,
  peerIdFor,
  type PeerServerLocation,
} from '../../adapters/webrtc.ts';
import { spawnWorkerNode } from '../../adapters/worker.ts';
import { rawAnswer, startEcho, type BenchMsg, type RawMsg } from './echo.ts';
import { percentile } from '../stats.ts';

export interface SetupOptions {
  name: string;
  wsUrl: string;
  secret: string;
  signal: PeerServerLocation;
  /** The raw WebSocket echo server. */
  rawWsUrl: string;
  /** This page's raw peerjs id (it answers raw data connections). */
  rawPeerId: string;
}

export interface MeasureOptions {
  rttN: number;
  reps: number;
  onewayN: number;
  /** One-way messages sent per task. */
  chunk: number;
}

/** Per round: RTT p50 and p99 in µs, one-way msgs/s (raw only: also batched, a task's messages in one post). */
export interface Figures {
  p50: number[];
  p99: number[];
  oneway: number[];
  onewayBatched: number[];
}

/** One channel as the bench drives it. */
interface Channel {
  rtt(m: BenchMsg): Promise<unknown>;
  send(m: BenchMsg): void;
  /** Raw only: send a task's one-way messages as one JSON message. */
  sendBatch?(ms: BenchMsg[]): void;
  /** The far end's count of one-way messages since the last query. */
  count(): Promise<number>;
}

let node: Node | undefined;
let rawPeer: Peer | undefined;
const channels = new Map<string, { raw: Channel; troupe: Channel }>();

const msgs: BenchMsg[] = Array.from({ length: 50_000 }, (_, n) => ({
  kind: 'inc',
  n,
  tag: 'bench',
}));

/** Yield a task (not clamped like setTimeout). */
const yieldTask = (): Promise<void> =>
  new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => resolve();
    ch.port2.postMessage(0);
  });

function withTimeout<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>(
      (_, reject) =>
        (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)),
    ),
  ]).finally(() => clearTimeout(timer));
}

/** A raw channel over something that posts messages and hands back replies in order. */
function rawChannel(
  post: (m: RawMsg) => void,
  onReply: (fn: (reply: unknown) => void) => void,
  postText: (text: string) => void,
): Channel {
  const waiting: ((v: unknown) => void)[] = [];
  onReply((v) => waiting.shift()?.(v));
  const ask = (m: RawMsg) =>
    new Promise<unknown>((resolve) => {
      waiting.push(resolve);
      post(m);
    });
  return {
    rtt: (m) => ask({ k: 'p', m }),
    send: (m) => post({ k: 'o', m }),
    sendBatch: (ms) => postText(JSON.stringify({ k: 'b', m: ms })),
    count: () => ask({ k: 'c' }) as Promise<number>,
  };
}

function troupeChannel(ref: ActorRef<any, any>): Channel {
  return {
    rtt: (m) => ref.call(m),
    send: (m) => ref.send(m),
    count: () => ref.call('count') as Promise<number>,
  };
}

function need(): Node {
  if (!node) throw new Error('bench.setup() first');
  return node;
}

async function waitName(name: string, ms: number): Promise<ActorRef<any, any>> {
  const until = Date.now() + ms;
  for (;;) {
    const ref = need().whereis(name);
    if (ref) return ref;
    if (Date.now() > until) throw new Error(`"${name}" not in the registry after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function rtts(ch: Channel, n: number): Promise<Float64Array> {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await ch.rtt(msgs[i % msgs.length]);
    out[i] = (performance.now() - t0) * 1000;
  }
  return out.sort();
}

async function oneway(ch: Channel, n: number, chunk: number, batched = false): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i += chunk) {
    const end = Math.min(n, i + chunk);
    if (batched) {
      const batch = new Array<BenchMsg>(end - i);
      for (let j = i; j < end; j++) batch[j - i] = msgs[j % msgs.length];
      ch.sendBatch!(batch);
    } else {
      for (let j = i; j < end; j++) ch.send(msgs[j % msgs.length]);
    }
    await yieldTask();
  }
  const got = await ch.count();
  const ms = performance.now() - t0;
  if (got !== n) throw new Error(`one-way: the far end counted ${got} of ${n} messages`);
  return n / (ms / 1000);
}

const bench = {
  crossOriginIsolated: () => globalThis.crossOriginIsolated === true,

  async setup(o: SetupOptions) {
    const rtc = createWebRtcTransport({
      signal: o.signal,
      secret: o.secret,
      peerId: peerIdFor(o.name),
      connectTimeout: 15_000,
    });
    const n = createNode({
      name: o.name,
      secret: o.secret,
      transports: [createWebSocketTransport({ secret: o.secret }), rtc],
      heartbeatTimeout: 10_000,
    });
    node = n;
    startEcho(n, `echo-${o.name}`);
    await withTimeout('listening on WebRTC', n.listen(), 20_000);
    const relay = await withTimeout('joining the relay', n.connect(o.wsUrl), 20_000);
    // Raw WebRTC: this page answers raw data connections on its own peer id.
    const { host, port, path, key, secure } = o.signal;
    const { Peer: PeerClass } = await import('peerjs'); // one chunk with the adapter's own dynamic import
    const p = new PeerClass(o.rawPeerId, {
      host,
      port,
      path,
      key,
      secure,
      config: { iceServers: [] },
      debug: 0,
    });
    rawPeer = p;
    await withTimeout(
      'the raw peer to register',
      new Promise<void>((resolve, reject) => {
        p.once('open', () => resolve());
        p.once('error', reject);
      }),
      20_000,
    );
    p.on('connection', (dc) => {
      const state = { count: 0 };
      dc.on('data', (d) => {
        const out = rawAnswer(state, JSON.parse(d as string) as RawMsg);
        if (out !== undefined) dc.send(JSON.stringify(out));
      });
    });
    return { id: n.id, relay };
  },

  /** Open the channels of `what` (the webrtc ones to the page running `otherName` / `otherRawPeerId`). */
  async open(
    what: 'worker' | 'websocket' | 'webrtc',
    o: { rawWsUrl?: string; otherName?: string; otherRawPeerId?: string; relayEcho?: string },
  ) {
    const n = need();
    if (what === 'worker') {
      const rawW = new Worker(new URL('./raw-worker.ts', import.meta.url), { type: 'module' });
      const raw = rawChannel(
        (m) => rawW.postMessage(m),
        (fn) => (rawW.onmessage = (e) => fn(e.data)),
        (text) => rawW.postMessage(text),
      );
      const tw = new Worker(new URL('./troupe-worker.ts', import.meta.url), { type: 'module' });
      await withTimeout('the worker node', spawnWorkerNode(n, tw), 20_000);
      channels.set(what, { raw, troupe: troupeChannel(await waitName('echo-worker', 20_000)) });
    } else if (what === 'websocket') {
      const ws = new WebSocket(o.rawWsUrl!);
      await withTimeout(
        'the raw WebSocket',
        new Promise<void>(
          (resolve, reject) => (
            (ws.onopen = () => resolve()),
            (ws.onerror = () => reject(new Error('raw WebSocket failed')))
          ),
        ),
        20_000,
      );
      const raw = rawChannel(
        (m) => ws.send(JSON.stringify(m)),
        (fn) => (ws.onmessage = (e) => fn(JSON.parse(e.data as string))),
        (text) => ws.send(text),
      );
      channels.set(what, { raw, troupe: troupeChannel(await waitName(o.relayEcho!, 20_000)) });
    } else {
      const dc: DataConnection = rawPeer!.connect(o.otherRawPeerId!, {
        reliable: true,
        serialization: 'raw',
      });
      await withTimeout(
        'the raw data channel',
        new Promise<void>(
          (resolve, reject) => (dc.once('open', () => resolve()), dc.once('error', reject)),
        ),
        20_000,
      );
      const raw = rawChannel(
        (m) => dc.send(JSON.stringify(m)),
        (fn) => dc.on('data', (d) => fn(JSON.parse(d as string))),
        (text) => dc.send(text),
      );
      // The troupe side must go over the direct WebRTC link (gossip makes the pages dial each other).
      const until = Date.now() + 30_000;
      while (
        !n.linkStats().some((s) => s.node === o.otherName && s.label.startsWith('webrtc://'))
      ) {
        if (Date.now() > until) throw new Error(`no WebRTC link to ${o.otherName} after 30 s`);
        await new Promise((r) => setTimeout(r, 50));
      }
      channels.set(what, {
        raw,
        troupe: troupeChannel(await waitName(`echo-${o.otherName}`, 20_000)),
      });
    }
  },

  /** Measure `what`: a warm-up, then `reps` interleaved rounds of raw and troupe. */
  async measure(
    what: string,
    o: MeasureOptions,
  ): Promise<{ raw: Figures; troupe: Figures; label?: string }> {
    const ch = channels.get(what);
    if (!ch) throw new Error(`bench.open('${what}') first`);
    const out = {
      raw: { p50: [], p99: [], oneway: [], onewayBatched: [] } as Figures,
      troupe: { p50: [], p99: [], oneway: [], onewayBatched: [] } as Figures,
    };
    for (const side of ['raw', 'troupe'] as const) {
      await rtts(ch[side], Math.min(o.rttN, 500));
      await oneway(ch[side], Math.min(o.onewayN, 2000), o.chunk);
    }
    await oneway(ch.raw, Math.min(o.onewayN, 2000), o.chunk, true);
    for (let r = 0; r < o.reps; r++) {
      for (const side of ['raw', 'troupe'] as const) {
        const s = await rtts(ch[side], o.rttN);
        out[side].p50.push(percentile(s, 50));
        out[side].p99.push(percentile(s, 99));
        out[side].oneway.push(await oneway(ch[side], o.onewayN, o.chunk));
      }
      out.raw.onewayBatched.push(await oneway(ch.raw, o.onewayN, o.chunk, true));
    }
    return out;
  },

  linkStats: () => need().linkStats(),
};

declare global {
  interface Window {
    bench: typeof bench;
  }
}
window.bench = bench;
