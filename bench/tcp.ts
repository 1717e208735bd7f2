/**
 * Two processes on 127.0.0.1: troupe over the TCP adapter beside a raw `net` socket speaking
 * length-prefixed JSON frames, with the same payloads, in the same run. The far side is
 * bench/tcp-peer.ts in a child process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { createNode, type ActorRef, type Node } from '../core/index.ts';
import { interleaved, median, now, percentile, tick, type BenchCase, type Result } from './harness.ts';
import { makeMessages, type Msg } from './messages.ts';
import { encodeFrames, frameReader } from './raw-frames.ts';

/** Round trips per measured round (and the warm-up round). */
const RTT_N = 5_000;
const RTT_REPS = 5;
const ONEWAY_N = 200_000;
/** Messages sent per event-loop tick: one write per tick on both sides. */
const CHUNK = 1_000;
const SECRET = 'bench-secret';

type PeerMessage = Record<string, unknown>;

/** A child running bench/tcp-peer.ts, with a way to wait for its next IPC message of a kind. */
class Peer {
  readonly child: ChildProcess;
  #inbox: PeerMessage[] = [];
  #waiters: { key: string; resolve: (m: PeerMessage) => void }[] = [];

  constructor(kind: 'raw' | 'troupe') {
    this.child = fork(fileURLToPath(new URL('./tcp-peer.ts', import.meta.url)), [kind], {
      execArgv: ['--import', 'tsx'],
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
  next(key: string, timeoutMs = 20_000): Promise<PeerMessage> {
    const i = this.#inbox.findIndex((m) => key in m);
    if (i >= 0) return Promise.resolve(this.#inbox.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`tcp peer sent no "${key}" within ${timeoutMs} ms`)), timeoutMs);
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
async function rtts(n: number, msgs: Msg[], roundTrip: (m: Msg) => Promise<unknown>): Promise<Float64Array> {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = now();
    await roundTrip(msgs[i]);
    out[i] = (now() - t0) * 1000;
  }
  return out.sort();
}

/** Send `msgs` in chunks of CHUNK per tick through `sendChunk`, then wait for `arrived`. */
async function oneway(msgs: Msg[], sendChunk: (from: number, to: number) => void, arrived: Promise<unknown>): Promise<number> {
  const t0 = now();
  for (let i = 0; i < msgs.length; i += CHUNK) {
    sendChunk(i, Math.min(msgs.length, i + CHUNK));
    await tick();
  }
  await arrived;
  return msgs.length / ((now() - t0) / 1000);
}

/** The raw side: a socket to the raw peer, ping-pong and batched one-way. */
async function rawSide(): Promise<{ rtt: (m: Msg) => Promise<unknown>; setMode: (m: 'echo' | 'sink') => Promise<void>; sendChunk: (msgs: Msg[], from: number, to: number) => void; peer: Peer; close: () => void }> {
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
async function troupeSide(): Promise<{ node: Node; echo: ActorRef<Msg, Msg>; sink: ActorRef<Msg>; peer: Peer }> {
  const { createTcpTransport } = await import('../adapters/tcp.ts');
  const peer = new Peer('troupe');
  try {
    const info = (await peer.next('address')) as { address: string; node: string; echo: number; sink: number };
    const node = createNode({ name: 'bench-main', secret: SECRET, transports: [createTcpTransport()] });
    await node.connect(info.address);
    return { node, peer, echo: node.ref(info.node, info.echo) as ActorRef<Msg, Msg>, sink: node.ref(info.node, info.sink) };
  } catch (err) {
    peer.kill();
    throw err;
  }
}

const tcp: BenchCase = {
  name: 'tcp',
  async run(): Promise<Result[]> {
    const msgs = makeMessages(Math.max(ONEWAY_N, RTT_N));
    const raw = await rawSide();
    let troupe: Awaited<ReturnType<typeof troupeSide>> | undefined;
    let pending = '';
    try {
      troupe = await troupeSide();
    } catch (err) {
      pending = `troupe side n/a: ${(err as Error).message.split('\n')[0]}`;
    }
    try {
      // Ping-pong: sequential round trips; per round p50 and p99, then the median of rounds.
      await raw.setMode('echo');
      const p50 = { raw: [] as number[], troupe: [] as number[] };
      const p99 = { raw: [] as number[], troupe: [] as number[] };
      const rawRtt = raw.rtt;
      const troupeRtt = troupe ? (m: Msg) => troupe!.echo.call(m) : undefined;
      await rtts(RTT_N, msgs, rawRtt);
      if (troupeRtt) await rtts(RTT_N, msgs, troupeRtt);
      for (let r = 0; r < RTT_REPS; r++) {
        const a = await rtts(RTT_N, msgs, rawRtt);
        p50.raw.push(percentile(a, 50));
        p99.raw.push(percentile(a, 99));
        if (troupeRtt) {
          const b = await rtts(RTT_N, msgs, troupeRtt);
          p50.troupe.push(percentile(b, 50));
          p99.troupe.push(percentile(b, 99));
        }
      }

      // One-way: CHUNK messages per tick, one write per tick; timed until the far side has them all.
      await raw.setMode('sink');
      const oneMsgs = msgs.slice(0, ONEWAY_N);
      const fns: Record<string, () => Promise<number>> = {
        raw: async () => oneway(oneMsgs, (a, b) => raw.sendChunk(oneMsgs, a, b), (await raw.peer.arm(ONEWAY_N)).done),
      };
      if (troupe) {
        const { sink, peer } = troupe;
        fns.troupe = async () =>
          oneway(
            oneMsgs,
            (a, b) => {
              for (let i = a; i < b; i++) sink.send(oneMsgs[i]);
            },
            (await peer.arm(ONEWAY_N)).done,
          );
      }
      const ow = await interleaved(fns, { warmup: 2, reps: 5 });

      const val = (xs: number[]) => (xs.length ? median(xs) : null);
      const note = `tcp.*: two processes on 127.0.0.1. RTT: ${RTT_REPS} rounds of ${RTT_N} sequential ping-pongs (troupe: call to a typed echo behaviour; raw: echo of a length-prefixed JSON frame), median of the rounds' percentiles. tcp.oneway: ${ONEWAY_N} msgs, ${CHUNK} per tick, one write per tick.${pending ? ` ${pending}` : ''}`;
      return [
        { key: 'tcp.rtt_p50_us', unit: 'µs', value: val(p50.troupe), baseline: median(p50.raw), baselineLabel: 'raw net ping-pong', target: { kind: 'max-ratio', ratio: 1.5 }, note },
        { key: 'tcp.rtt_p99_us', unit: 'µs', value: val(p99.troupe), baseline: median(p99.raw), baselineLabel: 'raw net ping-pong' },
        { key: 'tcp.oneway', unit: 'msgs/s', value: ow.troupe ?? null, baseline: ow.raw, baselineLabel: 'raw frames, 1 write/tick', target: { kind: 'min-ratio', ratio: 0.6 } },
      ];
    } finally {
      raw.close();
      if (troupe) {
        troupe.peer.kill();
        await troupe.node.shutdown();
      }
    }
  },
};

export const cases: BenchCase[] = [tcp];
