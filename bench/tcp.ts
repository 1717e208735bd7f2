/**
 * Two processes on 127.0.0.1: troupe over the TCP adapter beside a raw `net` socket speaking
 * length-prefixed JSON frames, with the same payloads, in the same run. The far side is
 * bench/tcp-peer.ts in a child process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { createNode, type ActorRef, type Node } from '../core/index.ts';
import {
  interleaved,
  median,
  now,
  percentile,
  tick,
  type BenchCase,
  type Result,
} from './harness.ts';
import { behaviour } from '../core/index.ts';
import { Msg, Sink } from './messages.ts';
import { makeMessages } from './messages.ts';
import { encodeFrames, frameReader } from './raw-frames.ts';

/** Round trips per measured round (and the warm-up round). */
export const RTT_N = 5_000;
const RTT_REPS = 5;
export const ONEWAY_N = 200_000;
/** Messages sent per event-loop tick: one write per tick on both sides. */
const CHUNK = 1_000;
const SECRET = 'bench-secret';
/** Handshakes get longer than the default 5 s: on a loaded machine a child may take that long to answer. */
export const HANDSHAKE_MS = 30_000;

type PeerMessage = Record<string, unknown>;

/**
 * For investigating where a child's time goes (not used by the bench itself): with
 * `BENCH_CPU_PROF=<role>[,<role>…]` (e.g. `relay`), children of those roles run with `--cpu-prof`
 * and write their profile into `BENCH_CPU_PROF_DIR` (default the working directory).
 */
function profileArgs(role: string): string[] {
  const roles = process.env.BENCH_CPU_PROF?.split(',') ?? [];
  if (!roles.includes(role)) return [];
  return ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR ?? '.'}`];
}

/** A child running bench/tcp-peer.ts, with a way to wait for its next IPC message of a kind. */
export class Peer {
  readonly child: ChildProcess;
  #inbox: PeerMessage[] = [];
  #waiters: { key: string; resolve: (m: PeerMessage) => void }[] = [];

  constructor(role: string, args: string[] = [], gc = false) {
    this.child = fork(fileURLToPath(new URL('./tcp-peer.ts', import.meta.url)), [role, ...args], {
      execArgv: ['--import', 'tsx', ...(gc ? ['--expose-gc'] : []), ...profileArgs(role)],
      env: { ...process.env, BENCH_SECRET: SECRET },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (m: PeerMessage) => {
      const i = this.#waiters.findIndex((w) => w.key in m);
      if (i >= 0) this.#waiters.splice(i, 1)[0].resolve(m);
      else this.#inbox.push(m);
    });
  }

  /** The next message carrying `key` (already received or still to come). */
  next(key: string, timeoutMs = 60_000): Promise<PeerMessage> {
    const i = this.#inbox.findIndex((m) => key in m);
    if (i >= 0) return Promise.resolve(this.#inbox.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`tcp peer sent no "${key}" within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#waiters.push({ key, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  }

  send(cmd: PeerMessage): void {
    this.child.send(cmd);
  }

  /** Arm the far sink for `n` messages; resolves (once armed) with a promise of their arrival. */
  async arm(n: number): Promise<{ done: Promise<PeerMessage> }> {
    this.send({ arm: n });
    await this.next('armed');
    // Wrapped: an async function returning a bare promise would wait for it.
    return { done: this.next('done', 60_000) };
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

/** Round-trip times of `n` sequential ping-pongs, in µs, sorted. */
export async function rtts(
  n: number,
  msgs: Msg[],
  roundTrip: (m: Msg) => Promise<unknown>,
): Promise<Float64Array> {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = now();
    await roundTrip(msgs[i]);
    out[i] = (now() - t0) * 1000;
  }
  return out.sort();
}

/** Lost messages per side (sum over rounds), when the far sink gave up waiting. */
const lost: Record<string, number> = {};

/**
 * Send `msgs` in chunks of CHUNK per tick through `sendChunk`, then wait for `arrived` (the far
 * sink's { count, idleMs }): msgs/s of what arrived, not counting the time the sink then waited.
 */
export async function oneway(
  msgs: Msg[],
  sendChunk: (from: number, to: number) => void,
  arrived: Promise<PeerMessage>,
  side = '',
): Promise<number> {
  const t0 = now();
  for (let i = 0; i < msgs.length; i += CHUNK) {
    sendChunk(i, Math.min(msgs.length, i + CHUNK));
    await tick();
  }
  const r = (await arrived) as { count?: number; idleMs?: number };
  const count = r.count ?? msgs.length;
  if (count < msgs.length) lost[side] = (lost[side] ?? 0) + msgs.length - count;
  return count / ((now() - t0 - (r.idleMs ?? 0)) / 1000);
}

/** The raw side: a socket to the raw peer, ping-pong and batched one-way. */
async function rawSide(): Promise<{
  rtt: (m: Msg) => Promise<unknown>;
  setMode: (m: 'echo' | 'sink') => Promise<void>;
  sendChunk: (msgs: Msg[], from: number, to: number) => void;
  peer: Peer;
  close: () => void;
}> {
  const peer = new Peer('raw');
  const { port } = (await peer.next('port')) as { port: number };
  const socket = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((r, j) => socket.once('connect', r).once('error', j));
  socket.setNoDelay(true);
  let waiting: ((m: unknown) => void) | undefined;
  socket.on(
    'data',
    frameReader((text) => {
      const w = waiting;
      waiting = undefined;
      w?.(JSON.parse(text));
    }),
  );
  return {
    peer,
    rtt: (m) =>
      new Promise((resolve) => {
        waiting = resolve;
        socket.write(encodeFrames([JSON.stringify(m)]));
      }),
    setMode: async (mode) => {
      peer.send({ mode });
      await peer.next('mode');
    },
    sendChunk: (msgs, from, to) => {
      const texts = new Array<string>(to - from);
      for (let i = from; i < to; i++) texts[i - from] = JSON.stringify(msgs[i]);
      socket.write(encodeFrames(texts));
    },
    close: () => {
      socket.destroy();
      peer.kill();
    },
  };
}

/** The troupe side: a node on the TCP adapter linked to the troupe peer. */
export async function troupeSide(): Promise<{
  node: Node;
  echo: ActorRef<Msg, Msg>;
  sink: ActorRef<Msg>;
  peer: Peer;
  info: { address: string; node: string; echo: number; sink: number };
}> {
  const { createTcpTransport } = await import('../adapters/tcp.ts');
  const peer = new Peer('troupe');
  try {
    const info = (await peer.next('address')) as {
      address: string;
      node: string;
      echo: number;
      sink: number;
    };
    const node = createNode({
      name: 'bench-main',
      secret: SECRET,
      transports: [createTcpTransport()],
      handshakeTimeout: HANDSHAKE_MS,
    });
    await node.connect(info.address);
    return {
      node,
      peer,
      info,
      echo: node.ref(info.node, info.echo) as ActorRef<Msg, Msg>,
      sink: node.ref(info.node, info.sink),
    };
  } catch (err) {
    peer.kill();
    throw err;
  }
}

/**
 * The relayed side: a relay process linked to the troupe peer, and a node here linked only to
 * the relay (no autoConnect, no listen address), so its envelopes to the peer are forwarded.
 */
async function relaySide(info: {
  address: string;
  node: string;
  echo: number;
  sink: number;
}): Promise<{ node: Node; echo: ActorRef<Msg, Msg>; sink: ActorRef<Msg>; relay: Peer }> {
  const { createTcpTransport } = await import('../adapters/tcp.ts');
  const relay = new Peer('relay', [info.address]);
  try {
    const r = (await relay.next('address')) as { address: string; node: string };
    const node = createNode({
      name: 'bench-via-relay',
      secret: SECRET,
      transports: [createTcpTransport()],
      autoConnect: false,
      handshakeTimeout: HANDSHAKE_MS,
    });
    await node.connect(r.address);
    const echo = node.ref(info.node, info.echo) as ActorRef<Msg, Msg>;
    // The first call finds the route (gossip from the relay may still be on its way).
    for (let i = 0; ; i++) {
      try {
        await echo.call({ kind: 'inc', n: 0, tag: 'bench' }, { timeout: 2000 });
        break;
      } catch (err) {
        if (i >= 20) throw err;
        await new Promise((res) => setTimeout(res, 100));
      }
    }
    if (node.linkStats().some((l) => l.node === info.node))
      throw new Error('the relayed node linked to the peer directly');
    return { node, relay, echo, sink: node.ref(info.node, info.sink) };
  } catch (err) {
    relay.kill();
    throw err;
  }
}

const tcp: BenchCase = {
  name: 'tcp',
  async run(): Promise<Result[]> {
    const msgs = makeMessages(Math.max(ONEWAY_N, RTT_N));
    const raw = await rawSide();
    let troupe: Awaited<ReturnType<typeof troupeSide>> | undefined;
    let relayed: Awaited<ReturnType<typeof relaySide>> | undefined;
    let pending = '';
    try {
      troupe = await troupeSide();
      relayed = await relaySide(troupe.info);
    } catch (err) {
      pending = `troupe side n/a: ${(err as Error).message.split('\n')[0]}`;
    }
    try {
      // Ping-pong: sequential round trips; per round p50 and p99, then the median of rounds.
      await raw.setMode('echo');
      const sides: Record<string, (m: Msg) => Promise<unknown>> = { raw: raw.rtt };
      if (troupe) sides.troupe = (m) => troupe!.echo.call(m);
      if (relayed) sides.relay = (m) => relayed!.echo.call(m);
      const p50: Record<string, number[]> = {};
      const p99: Record<string, number[]> = {};
      for (const k of Object.keys(sides)) {
        p50[k] = [];
        p99[k] = [];
        await rtts(RTT_N, msgs, sides[k]);
      }
      for (let r = 0; r < RTT_REPS; r++) {
        for (const k of Object.keys(sides)) {
          const a = await rtts(RTT_N, msgs, sides[k]);
          p50[k].push(percentile(a, 50));
          p99[k].push(percentile(a, 99));
        }
      }

      // One-way: CHUNK messages per tick, one write per tick; timed until the far side has them all.
      await raw.setMode('sink');
      const oneMsgs = msgs.slice(0, ONEWAY_N);
      const fns: Record<string, () => Promise<number>> = {
        raw: async () =>
          oneway(
            oneMsgs,
            (a, b) => raw.sendChunk(oneMsgs, a, b),
            (await raw.peer.arm(ONEWAY_N)).done,
            'raw',
          ),
      };
      const troupeOneway = (sink: ActorRef<Msg>, peer: Peer, side: string) => async () =>
        oneway(
          oneMsgs,
          (a, b) => {
            for (let i = a; i < b; i++) sink.send(oneMsgs[i]);
          },
          (await peer.arm(ONEWAY_N)).done,
          side,
        );
      if (troupe) fns.troupe = troupeOneway(troupe.sink, troupe.peer, 'troupe');
      if (relayed && troupe) fns.relay = troupeOneway(relayed.sink, troupe.peer, 'relay');
      const ow = await interleaved(fns, { warmup: 2, reps: 5 });
      let relayLoss = '';
      if (relayed) {
        relayed.relay.send({ stats: true });
        const st = (await relayed.relay.next('stats', 5000).catch(() => undefined))?.stats as
          | { deadLetters: number; reasons: Record<string, number> }
          | undefined;
        if (st?.deadLetters)
          relayLoss = ` The relay reported ${st.deadLetters} dead letters ${JSON.stringify(st.reasons)}.`;
      }

      const val = (xs: number[] | undefined) => (xs?.length ? median(xs) : null);
      const note = `tcp.*: two processes on 127.0.0.1. RTT: ${RTT_REPS} interleaved rounds of ${RTT_N} sequential ping-pongs (troupe: call to a typed echo behaviour; raw: echo of a length-prefixed JSON frame, no validation), median of the rounds' percentiles. tcp.oneway: ${ONEWAY_N} msgs to a typed sink, ${CHUNK} per tick, one write per tick. relay.*: the same calls and sends from a node linked only to a third process (a troupe node forwarding over TCP) that is linked to the peer, measured in the same rounds; baseline: direct troupe TCP.${Object.keys(lost).length ? ` LOST (dropped on the way, over all one-way rounds incl. warm-up): ${JSON.stringify(lost)} of ${ONEWAY_N} per round; their msgs/s count what arrived.` : ''}${relayLoss}${pending ? ` ${pending}` : ''}`;
      return [
        {
          key: 'tcp.rtt_p50_us',
          unit: 'µs',
          value: val(p50.troupe),
          baseline: median(p50.raw),
          baselineLabel: 'raw net ping-pong',
          target: { kind: 'max-ratio', ratio: 1.5 },
          note,
        },
        {
          key: 'tcp.rtt_p99_us',
          unit: 'µs',
          value: val(p99.troupe),
          baseline: median(p99.raw),
          baselineLabel: 'raw net ping-pong',
        },
        {
          key: 'tcp.oneway',
          unit: 'msgs/s',
          value: ow.troupe ?? null,
          baseline: ow.raw,
          baselineLabel: 'raw frames, 1 write/tick',
          target: { kind: 'min-ratio', ratio: 0.6 },
        },
        {
          key: 'relay.rtt_p50_us',
          unit: 'µs',
          value: val(p50.relay),
          baseline: val(p50.troupe),
          baselineLabel: 'direct troupe TCP',
          target: { kind: 'max-ratio', ratio: 1.5 },
        },
        {
          key: 'relay.rtt_p99_us',
          unit: 'µs',
          value: val(p99.relay),
          baseline: val(p99.troupe),
          baselineLabel: 'direct troupe TCP',
        },
        {
          key: 'relay.oneway',
          unit: 'msgs/s',
          value: ow.relay ?? null,
          baseline: ow.troupe ?? null,
          baselineLabel: 'direct troupe TCP',
          target: { kind: 'min-ratio', ratio: 0.7 },
        },
      ];
    } finally {
      raw.close();
      relayed?.relay.kill();
      if (troupe) troupe.peer.kill();
      await Promise.all([troupe?.node.shutdown(), relayed?.node.shutdown()]);
    }
  },
};

/** Senders per fan-in round, and the messages each sends. */
const FANIN_SENDERS = 3;
const FANIN_N = 100_000;

const fanin: BenchCase = {
  name: 'tcp.fanin',
  async run(): Promise<Result[]> {
    const { createTcpTransport } = await import('../adapters/tcp.ts');
    const total = FANIN_SENDERS * FANIN_N;
    const sink = new Sink();
    // troupe: a typed sink on a listening node here; three sender processes linked to it.
    const node = createNode({
      name: 'bench-fanin',
      secret: SECRET,
      transports: [createTcpTransport({ listen: '127.0.0.1:0' })],
      handshakeTimeout: HANDSHAKE_MS,
    });
    const [address] = await node.listen();
    const actor = node.spawn(behaviour({ schema: Msg, handle: (m) => sink.handle(m) }));
    // Links this node lost (and why), shown if a round stalls.
    const downs: Record<string, number> = {};
    node.events.on('linkDown', (e) => (downs[e.reason] = (downs[e.reason] ?? 0) + 1));
    // raw: a bare framed-JSON server here, handing each parsed message to the same handler.
    const server = net.createServer((socket) => {
      socket.setNoDelay(true);
      socket.on(
        'data',
        frameReader((text) => sink.handle(JSON.parse(text) as Msg)),
      );
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const senders: Record<'troupe' | 'raw', Peer[]> = { troupe: [], raw: [] };
    try {
      for (let i = 0; i < FANIN_SENDERS; i++) {
        senders.troupe.push(new Peer('send-troupe', [address, node.id, String(actor.id)]));
        senders.raw.push(new Peer('send-raw', [String(port)]));
      }
      await Promise.all([...senders.troupe, ...senders.raw].map((p) => p.next('ready')));
      const round = (ps: Peer[]) => async () => {
        const done = sink.arm(total);
        // What the senders saw go wrong (dead letters, lost links), shown if the round stalls.
        const trouble: unknown[] = [];
        const sent = Promise.all(
          ps.map((p) =>
            p.next('sent', 120_000).then((m) => {
              if (m.trouble && Object.keys(m.trouble).length) trouble.push(m.trouble);
              return m;
            }),
          ),
        );
        const t0 = now();
        for (const p of ps) p.send({ go: FANIN_N });
        // A lost message would leave `done` pending for ever: give up after two minutes.
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          done,
          new Promise(
            (_, reject) =>
              (timer = setTimeout(
                () =>
                  reject(
                    new Error(
                      `fan-in: ${sink.count} of ${total} arrived within 120 s; senders: ${JSON.stringify(trouble)}; receiver's lost links: ${JSON.stringify(downs)}`,
                    ),
                  ),
                120_000,
              )),
          ),
        ]);
        clearTimeout(timer);
        const rate = total / ((now() - t0) / 1000);
        await sent;
        return rate;
      };
      const r = await interleaved(
        { troupe: round(senders.troupe), raw: round(senders.raw) },
        { warmup: 1, reps: 5 },
      );
      return [
        {
          key: 'tcp.fanin_3to1',
          unit: 'msgs/s',
          value: r.troupe,
          baseline: r.raw,
          baselineLabel: '3 raw sockets, 1 write/tick',
          target: { kind: 'min-ratio', ratio: 0.7 },
          note: `tcp.fanin_3to1: ${FANIN_SENDERS} sender processes, ${FANIN_N} msgs each (${CHUNK} per tick), to one typed actor in this process; timed from the go until the actor has all ${total}. Baseline: the same from ${FANIN_SENDERS} raw sockets into one net server that parses each frame (no validation).`,
        },
      ];
    } finally {
      for (const p of [...senders.troupe, ...senders.raw]) p.kill();
      server.close();
      await node.shutdown();
    }
  },
};

/** Idle links opened to the host whose memory is measured. */
const MEM_LINKS = 200;

type Memory = { rss: number; heap: number };

const linkMemory: BenchCase = {
  name: 'tcp.link_mem',
  async run(): Promise<Result[]> {
    // One host process per kind. Its first MEM_LINKS links (cold) also pay the process's one-time
    // growth (code, allocator pools, the handshake and gossip burst), which stays after every link
    // is gone; so the per-link figures are taken after a warm-up: open MEM_LINKS, drop them,
    // then measure (after a full GC) before and after MEM_LINKS idle links, twice.
    const measure = async (kind: 'troupe' | 'raw') => {
      const host = new Peer(`host-${kind}`, [], true);
      const dialers: Peer[] = [];
      try {
        const { address } = (await host.next('address')) as { address: string };
        const mem = async () => {
          host.send({ measure: true });
          return (await host.next('memory')) as { memory: Memory; links: number };
        };
        const open = async () => {
          const d = new Peer(`dial-${kind}`, [address, String(MEM_LINKS)]);
          dialers.push(d);
          await d.next('up', 60_000);
          await new Promise((r) => setTimeout(r, 1200)); // two heartbeats
          const m = await mem();
          if (m.links !== MEM_LINKS)
            throw new Error(`host-${kind} holds ${m.links} links, expected ${MEM_LINKS}`);
          return m.memory;
        };
        const dropAll = async () => {
          dialers.pop()?.kill();
          for (let i = 0; i < 200; i++) {
            const m = await mem();
            if (m.links === 0) return m.memory;
            await new Promise((r) => setTimeout(r, 50));
          }
          throw new Error(`host-${kind} still holds links`);
        };
        const per = (a: Memory, b: Memory) => ({
          rss: (a.rss - b.rss) / MEM_LINKS / 1024,
          heap: (a.heap - b.heap) / MEM_LINKS / 1024,
        });
        const start = (await mem()).memory;
        const cold = per(await open(), start);
        const warm: { rss: number; heap: number }[] = [];
        for (let i = 0; i < 2; i++) {
          const base = await dropAll();
          warm.push(per(await open(), base));
        }
        return { cold, rss: median(warm.map((w) => w.rss)), heap: median(warm.map((w) => w.heap)) };
      } finally {
        for (const d of dialers) d.kill();
        host.kill();
      }
    };
    const troupe = await measure('troupe');
    const raw = await measure('raw');
    const note = `tcp.link_*: a host process's memory per accepted idle link after a full GC (RSS; heap = V8 heapUsed + external + arrayBuffers), ${MEM_LINKS} links opened by another process (troupe: a listening node, each link from its own dialing node, measured after two heartbeats; raw: a net server keeping each socket with a frame reader). Warm: after ${MEM_LINKS} links were opened and dropped once, median of two batches (RSS is noisy at about ±50 KB per link here). tcp.link_rss_cold_kb: the first ${MEM_LINKS} links of a fresh process, which includes the process's one-time growth.`;
    return [
      {
        key: 'tcp.link_heap_kb',
        unit: 'KB',
        value: troupe.heap,
        baseline: raw.heap,
        baselineLabel: 'raw net socket',
        target: { kind: 'max-ratio', ratio: 4 },
        note,
      },
      {
        key: 'tcp.link_rss_kb',
        unit: 'KB',
        value: troupe.rss,
        baseline: raw.rss,
        baselineLabel: 'raw net socket',
      },
      {
        key: 'tcp.link_rss_cold_kb',
        unit: 'KB',
        value: troupe.cold.rss,
        baseline: raw.cold.rss,
        baselineLabel: 'raw net socket, cold',
      },
    ];
  },
};

export const cases: BenchCase[] = [tcp, fanin, linkMemory];
