/**
 * Two processes on one nats-server (started here on a random 127.0.0.1 port): a troupe call over
 * the NATS transport beside a raw NATS request/reply, and troupe one-way sends beside raw NATS
 * publishes, with the same payloads, in the same run. The far side is bench/nats-peer.ts.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connect } from 'nats';
import { createNode, type ActorRef } from '../core/index.ts';
import { createNatsTransport } from '../adapters/nats.ts';
import { startNatsServer } from '../tests/helpers/nats-server.ts';
import {
  interleaved,
  median,
  now,
  percentile,
  tick,
  type BenchCase,
  type Result,
} from './harness.ts';
import { makeMessages, type Msg } from './messages.ts';

const RTT_N = 3_000;
const RTT_REPS = 5;
const ONEWAY_N = 100_000;
const CHUNK = 1_000;
const SECRET = 'bench-secret';

type PeerMessage = Record<string, unknown>;

class Peer {
  readonly child: ChildProcess;
  #inbox: PeerMessage[] = [];
  #waiters: { key: string; resolve: (m: PeerMessage) => void }[] = [];
  constructor(kind: 'raw' | 'troupe', url: string) {
    this.child = fork(fileURLToPath(new URL('./nats-peer.ts', import.meta.url)), [kind], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, BENCH_SECRET: SECRET, NATS_URL: url },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (m: PeerMessage) => {
      const i = this.#waiters.findIndex((w) => w.key in m);
      if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(m);
      else this.#inbox.push(m);
    });
  }
  next(key: string, timeoutMs = 30_000): Promise<PeerMessage> {
    const i = this.#inbox.findIndex((m) => key in m);
    if (i >= 0) return Promise.resolve(this.#inbox.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`nats peer sent no "${key}" within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#waiters.push({ key, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  }
  async arm(n: number): Promise<{ done: Promise<PeerMessage> }> {
    this.child.send({ arm: n });
    await this.next('armed');
    return { done: this.next('done', 120_000) };
  }
  kill(): void {
    this.child.kill('SIGKILL');
  }
}

async function rtts(
  n: number,
  msgs: Msg[],
  roundTrip: (m: Msg) => Promise<unknown>,
): Promise<Float64Array> {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = now();
    await roundTrip(msgs[i]!);
    out[i] = (now() - t0) * 1000;
  }
  return out.sort();
}

async function oneway(
  msgs: Msg[],
  sendChunk: (from: number, to: number) => void,
  arrived: Promise<unknown>,
): Promise<number> {
  const t0 = now();
  for (let i = 0; i < msgs.length; i += CHUNK) {
    sendChunk(i, Math.min(msgs.length, i + CHUNK));
    await tick();
  }
  await arrived;
  return msgs.length / ((now() - t0) / 1000);
}

const nats: BenchCase = {
  name: 'nats',
  async run(): Promise<Result[]> {
    const server = await startNatsServer();
    const rawPeer = new Peer('raw', server.url);
    const troupePeer = new Peer('troupe', server.url);
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    const nc = await connect({ servers: server.url });
    const t = createNatsTransport({ servers: server.url });
    const node = createNode({ name: 'bench-main', secret: SECRET, transports: [t] });
    try {
      await rawPeer.next('ready');
      const info = (await troupePeer.next('address')) as {
        address: string;
        node: string;
        echo: number;
        sink: number;
      };
      await node.connect(info.address);
      const echo = node.ref(info.node, info.echo) as ActorRef<Msg, Msg>;
      const sink = node.ref(info.node, info.sink) as ActorRef<Msg>;
      const msgs = makeMessages(ONEWAY_N);
      const rawRtt = async (m: Msg) =>
        JSON.parse(
          dec.decode(
            (await nc.request('bench.echo', enc.encode(JSON.stringify(m)), { timeout: 5000 })).data,
          ),
        ) as Msg;
      const troupeRtt = (m: Msg) => echo.call(m);
      await rtts(RTT_N, msgs, rawRtt);
      await rtts(RTT_N, msgs, troupeRtt);
      const p50 = { raw: [] as number[], troupe: [] as number[] };
      const p99 = { raw: [] as number[], troupe: [] as number[] };
      for (let r = 0; r < RTT_REPS; r++) {
        const a = await rtts(RTT_N, msgs, rawRtt);
        p50.raw.push(percentile(a, 50));
        p99.raw.push(percentile(a, 99));
        const b = await rtts(RTT_N, msgs, troupeRtt);
        p50.troupe.push(percentile(b, 50));
        p99.troupe.push(percentile(b, 99));
      }
      const ow = await interleaved(
        {
          raw: async () =>
            oneway(
              msgs,
              (a, b) => {
                for (let i = a; i < b; i++)
                  nc.publish('bench.sink', enc.encode(JSON.stringify(msgs[i])));
              },
              (await rawPeer.arm(ONEWAY_N)).done,
            ),
          batched: async () =>
            oneway(
              msgs,
              (a, b) => {
                nc.publish('bench.sink.batch', enc.encode(JSON.stringify(msgs.slice(a, b))));
              },
              (await rawPeer.arm(ONEWAY_N)).done,
            ),
          troupe: async () =>
            oneway(
              msgs,
              (a, b) => {
                for (let i = a; i < b; i++) sink.send(msgs[i]!);
              },
              (await troupePeer.arm(ONEWAY_N)).done,
            ),
        },
        { warmup: 1, reps: 3 },
      );
      const note = `nats.*: two processes on one local nats-server 2.9. RTT: ${RTT_REPS} rounds of ${RTT_N} sequential calls (troupe: call to a typed echo behaviour over the NATS transport; raw: nc.request to a responder), median of the rounds' percentiles. nats.oneway: ${ONEWAY_N} msgs, ${CHUNK} per tick (troupe: sends to a typed sink actor, one NATS message per tick; baseline: the tick's ${CHUNK} msgs as one JSON array in one publish, parsed and handled by the same sink; nats.oneway_per_msg: one publish per message). Raw sides do not validate.`;
      return [
        {
          key: 'nats.rtt_p50_us',
          unit: 'µs',
          value: median(p50.troupe),
          baseline: median(p50.raw),
          baselineLabel: 'raw NATS request',
          target: { kind: 'max-ratio', ratio: 1.3 },
          note,
        },
        {
          key: 'nats.rtt_p99_us',
          unit: 'µs',
          value: median(p99.troupe),
          baseline: median(p99.raw),
          baselineLabel: 'raw NATS request',
        },
        {
          key: 'nats.oneway',
          unit: 'msgs/s',
          value: ow.troupe,
          baseline: ow.batched,
          baselineLabel: `raw NATS, ${CHUNK} msgs/publish as JSON`,
          target: { kind: 'min-ratio', ratio: 0.7 },
        },
        {
          key: 'nats.oneway_per_msg',
          unit: 'msgs/s',
          value: ow.troupe,
          baseline: ow.raw,
          baselineLabel: 'raw NATS, 1 publish/msg',
        },
      ];
    } finally {
      rawPeer.kill();
      troupePeer.kill();
      await node.shutdown().catch(() => {});
      await nc.close().catch(() => {});
      await server.kill();
    }
  },
};

export const cases: BenchCase[] = [nats];
