/**
 * `npm run bench -- peers`: troupe beside other systems doing the same work, interleaved round by
 * round in one run (so the machine's load hits both alike). Not part of a plain `npm run bench`.
 *
 *   Erlang/OTP  local one-way (`+S 1`, one scheduler, and the default), spawn 1M and bytes per
 *               process, distribution one-way and RTT between two nodes on 127.0.0.1
 *               (bench/erlang/troupe_bench.erl; Debian's erlang-base, installed here as root when
 *               missing, else skipped with the command to run)
 *   Comlink     a call to a worker_threads worker (p50, p99) beside troupe's call to a worker node
 *   nact        local one-way to a stateful actor beside troupe's
 *
 * Each figure is `peer.<system>.<what>`: value = troupe, baseline = the peer, so the ratio is
 * troupe / peer (above 1 is better for throughput, below 1 for latency, time and bytes).
 */
import { execFileSync, spawn as spawnProcess, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { behaviour, createNode } from '../core/index.ts';
import { gc, hasGc, median, now, summary, tick, type BenchCase, type Result } from './harness.ts';
import { Msg, Sink, makeMessages } from './messages.ts';
import {
  ONEWAY_N as TCP_ONEWAY_N,
  RTT_N as TCP_RTT_N,
  oneway as tcpOneway,
  rtts as tcpRtts,
  troupeSide,
} from './tcp.ts';
import { roundTrips, startThread, troupeWorker } from './worker.ts';
import { comlinkEndpoint } from './comlink-endpoint.ts';

const ROUNDS = 3;
const LOCAL_N = 1_000_000;
/** Messages the troupe producer sends per tick (as bench/local.ts). */
const LOCAL_CHUNK = 10_000;
const SPAWN_N = 1_000_000;
const IDLE_N = 200_000;
const NACT_N = 200_000;
const WORKER_RTT_N = 5_000;
const ERL_SOURCE = fileURLToPath(new URL('./erlang/troupe_bench.erl', import.meta.url));

// ---------------------------------------------------------------------------------------------
// Erlang

/** Where erl and erlc are, installing Debian's erlang-base if they are missing and we are root. */
function findErlang(): { ok: true } | { ok: false; why: string } {
  const have = () => {
    try {
      execFileSync('sh', ['-c', 'command -v erl && command -v erlc && command -v epmd'], {
        stdio: 'ignore',
      });
      return true;
    } catch {
      return false;
    }
  };
  if (have()) return { ok: true };
  const cmd = 'apt-get install -y --no-install-recommends erlang-base';
  if (process.getuid?.() !== 0)
    return { ok: false, why: `Erlang/OTP not installed; run as root: ${cmd}` };
  console.log(`\n  installing Erlang/OTP: ${cmd}`);
  try {
    execFileSync('sh', ['-c', `${cmd} || (apt-get update && ${cmd})`], {
      stdio: 'ignore',
      timeout: 300_000,
    });
  } catch (err) {
    return {
      ok: false,
      why: `installing Erlang failed (${(err as Error).message.split('\n')[0]}); run as root: ${cmd}`,
    };
  }
  return have()
    ? { ok: true }
    : { ok: false, why: `erl still missing after install; run as root: ${cmd}` };
}

/** Run `erl … -s troupe_bench main <args>`; resolves with its RESULT lines (the last of each key). */
function erl(
  dir: string,
  vmArgs: string[],
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 120_000,
): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const child = spawnProcess(
      'erl',
      ['-noshell', '-pa', dir, ...vmArgs, '-s', 'troupe_bench', 'main', ...args],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const r: Record<string, number> = {};
      for (const m of out.matchAll(/^RESULT (\S+) (\S+)$/gm)) r[m[1]] = Number(m[2]);
      if (code !== 0 || Object.keys(r).length === 0)
        reject(new Error(`erl ${args.join(' ')} exited ${code}: ${out.slice(-400)}`));
      else resolve(r);
    });
  });
}

/** A free TCP port on 127.0.0.1. */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

/** epmd on its own port and an Erlang node serving echo and sink, both on 127.0.0.1. */
async function erlangServer(dir: string): Promise<{
  env: NodeJS.ProcessEnv;
  vmArgs: (name: string) => string[];
  node: string;
  stop: () => void;
}> {
  const port = await freePort();
  const env = { ERL_EPMD_PORT: String(port), ERL_EPMD_ADDRESS: '127.0.0.1' };
  const procs: ChildProcess[] = [];
  const stop = () => {
    for (const p of procs.reverse()) p.kill('SIGKILL');
  };
  try {
    const epmd = spawnProcess('epmd', ['-address', '127.0.0.1', '-port', String(port)], {
      stdio: 'ignore',
    });
    procs.push(epmd);
    await new Promise((r) => setTimeout(r, 300));
    const cookie = `bench${process.pid}`;
    const vmArgs = (name: string) => [
      '-name',
      `${name}@127.0.0.1`,
      '-setcookie',
      cookie,
      '-kernel',
      'inet_dist_use_interface',
      '{127,0,0,1}',
    ];
    const node = `troupe_bench_b${process.pid}@127.0.0.1`;
    const b = spawnProcess(
      'erl',
      [
        '-noshell',
        '-pa',
        dir,
        ...vmArgs(`troupe_bench_b${process.pid}`),
        '-s',
        'troupe_bench',
        'main',
        'dist_server',
      ],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    procs.push(b);
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(
        () => reject(new Error(`the Erlang node did not start: ${out}`)),
        30_000,
      );
      b.stdout!.on('data', (d) => {
        out += d;
        if (out.includes('READY')) {
          clearTimeout(timer);
          resolve();
        }
      });
      b.once('exit', (code) => reject(new Error(`the Erlang node exited ${code}: ${out}`)));
    });
    return { env, vmArgs, node, stop };
  } catch (err) {
    stop();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// troupe sides (the same work as bench/local.ts, bench/tcp.ts, bench/worker.ts)

/** troupe local one-way: `n` msgs to a typed behaviour, LOCAL_CHUNK per tick; msgs/s. */
async function troupeLocal(n: number, msgs: Msg[]): Promise<number> {
  const node = createNode({ name: 'bench-peers-local' });
  const sink = new Sink();
  const ref = node.spawn(behaviour({ schema: Msg, handle: (m) => sink.handle(m) }));
  const run = async () => {
    const done = sink.arm(n);
    const t0 = now();
    for (let i = 0; i < n; ) {
      const end = Math.min(n, i + LOCAL_CHUNK);
      for (; i < end; i++) ref.send(msgs[i]);
      if (i < n) await tick();
    }
    await done;
    return n / ((now() - t0) / 1000);
  };
  await run(); // warm-up, as the Erlang side runs twice and keeps the second
  const r = await run();
  await node.shutdown();
  return r;
}

/** troupe spawn: seconds for SPAWN_N idle behaviours, and heap bytes per idle behaviour. */
async function troupeSpawn(): Promise<{ seconds: number; bytes: number | null }> {
  const idle = behaviour<unknown, undefined>({ handle() {} });
  // Bytes first, on a clean heap: heapUsed after full GCs, before and after IDLE_N idle behaviours.
  let bytes: number | null = null;
  if (hasGc()) {
    const settle = async () => {
      for (let i = 0; i < 3; i++) {
        gc();
        await tick();
      }
      return process.memoryUsage().heapUsed;
    };
    const h0 = await settle();
    const keep = createNode({ name: 'bench-peers-idle' });
    for (let i = 0; i < IDLE_N; i++) keep.spawn(idle);
    bytes = ((await settle()) - h0) / IDLE_N;
    if (keep.whereis('none') !== undefined) console.log(keep.id); // keep `keep` alive until here
  }
  const warm = createNode({ name: 'bench-peers-spawn' });
  for (let i = 0; i < SPAWN_N / 10; i++) warm.spawn(idle);
  gc();
  const node = createNode({ name: 'bench-peers-spawn' });
  const t0 = now();
  for (let i = 0; i < SPAWN_N; i++) node.spawn(idle);
  const seconds = (now() - t0) / 1000;
  return { seconds, bytes };
}

/** nact local one-way: `n` msgs to a stateful nact actor that validates with the same zod schema. */
async function nactLocal(n: number, msgs: Msg[]): Promise<number> {
  const nact = (await import('nact')).default as typeof import('nact');
  const system = nact.start();
  const sink = new Sink();
  const actor = nact.spawn(system, (state: number = 0, msg: unknown) => {
    // nact has no schema: a user's actor would check its messages itself.
    const r = Msg.safeParse(msg);
    if (r.success) sink.handle(r.data);
    return state + 1;
  });
  const run = async () => {
    const done = sink.arm(n);
    const t0 = now();
    for (let i = 0; i < n; ) {
      const end = Math.min(n, i + LOCAL_CHUNK);
      for (; i < end; i++) nact.dispatch(actor, msgs[i]);
      if (i < n) await tick();
    }
    await done;
    return n / ((now() - t0) / 1000);
  };
  await run();
  const r = await run();
  nact.stop(system);
  return r;
}

// ---------------------------------------------------------------------------------------------

const peers: BenchCase = {
  name: 'peers',
  async run(): Promise<Result[]> {
    const out: Result[] = [];
    const msgs = makeMessages(LOCAL_N);
    const erlang = findErlang();
    const dir = mkdtempSync(join(os.tmpdir(), 'troupe-bench-erl-'));
    let server: Awaited<ReturnType<typeof erlangServer>> | undefined;
    let tcp: Awaited<ReturnType<typeof troupeSide>> | undefined;
    const comlinkThread = startThread('comlink');
    let tw: Awaited<ReturnType<typeof troupeWorker>> | undefined;
    let erlangWhy = erlang.ok ? '' : erlang.why;
    try {
      if (erlang.ok) {
        try {
          execFileSync('erlc', ['-o', dir, ERL_SOURCE], { stdio: 'pipe' });
          server = await erlangServer(dir);
        } catch (err) {
          erlangWhy = `Erlang side failed: ${(err as Error).message.split('\n')[0]}`;
        }
      }
      tcp = await troupeSide();
      tw = await troupeWorker('bench-peers-worker');
      const Comlink = await import('comlink');
      const remote = Comlink.wrap<{ echo(m: Msg): Msg }>(await comlinkEndpoint(comlinkThread));

      const s: Record<string, number[]> = {};
      const add = (k: string, v: number | null | undefined) => {
        if (v === null || v === undefined || !Number.isFinite(v)) return;
        (s[k] ??= []).push(v);
      };
      const erlOk = () => erlangWhy === '';
      const tryErl = async <T>(f: () => Promise<T>): Promise<T | undefined> => {
        try {
          return await f();
        } catch (err) {
          erlangWhy = `Erlang side failed: ${(err as Error).message.split('\n')[0]}`;
          return undefined;
        }
      };

      // Warm-up of the troupe sides that run in this process.
      await tcpRtts(500, msgs, (m) => tcp!.echo.call(m));
      await roundTrips(500, msgs, (m) => tw!.echo.call(m));
      await roundTrips(500, msgs, (m) => remote.echo(m));

      for (let r = 0; r < ROUNDS; r++) {
        process.stdout.write(`\n  round ${r + 1}/${ROUNDS}: local`);
        add('troupe.local', await troupeLocal(LOCAL_N, msgs));
        if (erlOk())
          add(
            'erlang_s1.local',
            (await tryErl(() => erl(dir, ['+S', '1'], ['local_oneway', String(LOCAL_N)])))
              ?.local_oneway,
          );
        add('troupe.local', await troupeLocal(LOCAL_N, msgs));
        if (erlOk())
          add(
            'erlang.local',
            (await tryErl(() => erl(dir, [], ['local_oneway', String(LOCAL_N)])))?.local_oneway,
          );

        process.stdout.write(', nact');
        add('troupe.local_nact', await troupeLocal(NACT_N, msgs));
        add('nact.local', await nactLocal(NACT_N, msgs));

        process.stdout.write(', worker call');
        const tc = summary(await roundTrips(WORKER_RTT_N, msgs, (m) => tw!.echo.call(m)));
        const cc = summary(await roundTrips(WORKER_RTT_N, msgs, (m) => remote.echo(m)));
        add('troupe.worker_p50', tc.p50);
        add('troupe.worker_p99', tc.p99);
        add('comlink.worker_p50', cc.p50);
        add('comlink.worker_p99', cc.p99);

        process.stdout.write(', distribution');
        const rt = await tcpRtts(TCP_RTT_N, msgs, (m) => tcp!.echo.call(m));
        add('troupe.tcp_p50', summary(rt).p50);
        add('troupe.tcp_p99', summary(rt).p99);
        const oneMsgs = msgs.slice(0, TCP_ONEWAY_N);
        const { sink, peer } = tcp;
        add(
          'troupe.tcp_oneway',
          await tcpOneway(
            oneMsgs,
            (a, b) => {
              for (let i = a; i < b; i++) sink.send(oneMsgs[i]);
            },
            (await peer.arm(TCP_ONEWAY_N)).done,
          ),
        );
        if (erlOk() && server) {
          const d = await tryErl(() =>
            erl(
              dir,
              server!.vmArgs(`troupe_bench_a${process.pid}_${r}`),
              ['dist_client', server!.node, String(TCP_RTT_N), String(TCP_ONEWAY_N)],
              server!.env,
            ),
          );
          add('erlang.dist_p50', d?.dist_rtt_p50_us);
          add('erlang.dist_p99', d?.dist_rtt_p99_us);
          add('erlang.dist_oneway', d?.dist_oneway);
        }
      }
      // Spawning a million is slow in Erlang here (many seconds): one round each.
      process.stdout.write(`\n  spawn ${SPAWN_N}`);
      const ts = await troupeSpawn();
      add('troupe.spawn', ts.seconds);
      add('troupe.bytes', ts.bytes);
      if (erlOk()) {
        const e = await tryErl(() =>
          erl(dir, ['+P', String(SPAWN_N * 2)], ['spawn', String(SPAWN_N)], {}, 300_000),
        );
        add('erlang.spawn', e?.spawn_seconds);
        add('erlang.bytes', e?.process_bytes);
      }
      process.stdout.write('\n  ');

      const v = (k: string) => (s[k]?.length ? median(s[k]) : null);
      const spreadOf = (k: string) =>
        s[k]?.length
          ? `${Math.min(...s[k]).toPrecision(3)}–${Math.max(...s[k]).toPrecision(3)}`
          : 'n/a';
      const erlNote = erlangWhy ? ` Erlang n/a: ${erlangWhy}` : '';
      out.push(
        {
          key: 'peer.erlang_s1.local_oneway',
          unit: 'msgs/s',
          value: v('troupe.local'),
          baseline: v('erlang_s1.local'),
          baselineLabel: 'Erlang/OTP, +S 1',
          target: { kind: 'min-ratio', ratio: 1.3 },
          note:
            `peer.*: value = troupe, baseline = the peer, ${ROUNDS} interleaved rounds (median; per-round ranges below). ` +
            `local_oneway: ${LOCAL_N} msgs, troupe to a behaviour with a zod schema (${LOCAL_CHUNK} per tick), Erlang from one process to a counter whose receive guards check the tuple's shape, ` +
            `each after a warm-up run, timed inside the Erlang VM (startup excluded). Ranges: troupe ${spreadOf('troupe.local')}, Erlang +S 1 ${spreadOf('erlang_s1.local')}, default ${spreadOf('erlang.local')}. ` +
            `spawn: ${SPAWN_N} idle actors / processes, once; bytes: troupe heapUsed per idle behaviour, Erlang erlang:memory(processes) per process. ` +
            `dist: troupe TCP (call to a typed echo; ${TCP_ONEWAY_N} sends to a typed sink, 1000 per tick) vs two Erlang nodes on 127.0.0.1 (echo and a guarded sink, ${TCP_RTT_N} round trips, ${TCP_ONEWAY_N} sends in a loop); ranges: troupe ${spreadOf('troupe.tcp_oneway')}, Erlang ${spreadOf('erlang.dist_oneway')} msgs/s. ` +
            `comlink: ${WORKER_RTT_N} sequential calls to a worker_threads worker, troupe: call to a typed echo in a worker node. nact: ${NACT_N} msgs to a stateful nact actor that checks them with the same zod schema.${erlNote}`,
        },
        {
          key: 'peer.erlang.local_oneway',
          unit: 'msgs/s',
          value: v('troupe.local'),
          baseline: v('erlang.local'),
          baselineLabel: 'Erlang/OTP, default schedulers',
        },
        {
          key: 'peer.erlang.spawn_1m_s',
          unit: 's',
          value: v('troupe.spawn'),
          baseline: v('erlang.spawn'),
          baselineLabel: 'Erlang/OTP spawn',
        },
        {
          key: 'peer.erlang.process_bytes',
          unit: 'B',
          value: v('troupe.bytes'),
          baseline: v('erlang.bytes'),
          baselineLabel: 'Erlang/OTP process',
        },
        {
          key: 'peer.erlang.dist_oneway',
          unit: 'msgs/s',
          value: v('troupe.tcp_oneway'),
          baseline: v('erlang.dist_oneway'),
          baselineLabel: 'Erlang distribution',
        },
        {
          key: 'peer.erlang.dist_rtt_p50_us',
          unit: 'µs',
          value: v('troupe.tcp_p50'),
          baseline: v('erlang.dist_p50'),
          baselineLabel: 'Erlang distribution',
        },
        {
          key: 'peer.erlang.dist_rtt_p99_us',
          unit: 'µs',
          value: v('troupe.tcp_p99'),
          baseline: v('erlang.dist_p99'),
          baselineLabel: 'Erlang distribution',
        },
        {
          key: 'peer.comlink.call_p50_us',
          unit: 'µs',
          value: v('troupe.worker_p50'),
          baseline: v('comlink.worker_p50'),
          baselineLabel: 'Comlink, worker_threads',
        },
        {
          key: 'peer.comlink.call_p99_us',
          unit: 'µs',
          value: v('troupe.worker_p99'),
          baseline: v('comlink.worker_p99'),
          baselineLabel: 'Comlink, worker_threads',
        },
        {
          key: 'peer.nact.local_oneway',
          unit: 'msgs/s',
          value: v('troupe.local_nact'),
          baseline: v('nact.local'),
          baselineLabel: 'nact actor + zod',
        },
      );
      return out;
    } finally {
      server?.stop();
      if (tcp) {
        tcp.peer.kill();
        await tcp.node.shutdown();
      }
      if (tw) {
        await tw.node.shutdown();
        await tw.thread.terminate();
      }
      await comlinkThread.terminate();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export const cases: BenchCase[] = [peers];
