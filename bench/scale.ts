/**
 * `npm run bench -- scale`: N node processes (N = 10, 50, 100; `SCALE_N=10,50` to choose) once as
 * a TCP mesh (all joined through the first as seed; membership gossip and the repair pass link
 * the rest) and once on NATS (one local nats-server; lazy links: nodes find each other by
 * presence on the discovery subject and link only when they talk). Each process is
 * tests/fixtures/nats-node.ts. For each: the time for every node to see every other (mesh: a
 * direct link to each; NATS: each in `node.nodes()`), bounded by 60 s ("n/a" and a note if
 * not), the direct links per node, sockets per node (from
 * /proc/<pid>/fd, less the three stdio pipes), idle CPU of all nodes together and RSS per node over 5 s after convergence, the
 * time for a name registered on one node to be visible on all, the time for all survivors to see
 * a SIGKILLed node down, and the node-downs other than that one (false node-downs).
 * Linux only (reads /proc). Heavy: run it on a quiet machine, and at most now and then.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { startNatsServer } from '../tests/helpers/nats-server.ts';
import type { BenchCase, Result } from './harness.ts';

const FIXTURE = fileURLToPath(new URL('../tests/fixtures/nats-node.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../', import.meta.url));
const CONVERGE_MS = 60_000;
const BATCH = Number(process.env.SCALE_BATCH ?? 10);
const START_MS = Number(process.env.SCALE_START_MS ?? 240_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Proc {
  name: string;
  child: ChildProcess;
  lines: { at: number; text: string }[];
  id: string;
  address: string;
  peers: number;
  members: number;
}

function launch(name: string, args: string[]): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, '--name', name, ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  const p: Proc = { name, child, lines: [], id: '', address: '', peers: 0, members: 0 };
  let rest = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop()!;
    const at = performance.now();
    for (const text of parts) {
      p.lines.push({ at, text });
      if (text.startsWith('listening ')) [, p.id = '', p.address = ''] = text.split(' ');
      else if (text.startsWith('peers ')) p.peers = Number(text.slice(6));
      else if (text.startsWith('members ')) p.members = Number(text.slice(8));
    }
  });
  child.stderr!.resume();
  return p;
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (cond()) return true;
    await sleep(20);
  }
  return cond();
}

function sockets(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:');
      } catch {
        return false;
      }
    }).length;
  } catch {
    return NaN;
  }
}

function cpuTicks(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return NaN;
  }
}

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** One configuration; returns its figures (null where it could not be measured). */
async function runOne(mode: 'tcp' | 'nats', n: number): Promise<Result[]> {
  const server = mode === 'nats' ? await startNatsServer() : undefined;
  const procs: Proc[] = [];
  const notes: string[] = [];
  const key = (k: string) => `scale.${mode}.${n}.${k}`;
  try {
    const common = ['--heartbeat-timeout', '2500'];
    // Started in batches of BATCH, each once the previous one listens: a hundred processes
    // loading TypeScript at once starve the ones already running on a 2-core machine.
    const startBy = performance.now() + START_MS;
    const batch = async (from: number, to: number, args: (i: number) => string[]) => {
      for (let i = from; i < to; i++) procs.push(launch(`s${i}`, args(i)));
      await until(() => procs.every((p) => p.id !== ''), Math.max(0, startBy - performance.now()));
    };
    if (mode === 'nats') {
      for (let i = 0; i < n; i += BATCH)
        await batch(i, Math.min(n, i + BATCH), () => [
          '--servers',
          server!.url,
          '--lazy',
          ...common,
        ]);
    } else {
      const seed = launch('s0', ['--tcp', ...common]);
      procs.push(seed);
      if (!(await until(() => seed.address !== '', START_MS)))
        throw new Error('the seed never listened');
      for (let i = 1; i < n; i += BATCH)
        await batch(i, Math.min(n, i + BATCH), () => ['--tcp', '--seed', seed.address, ...common]);
    }
    // Processes that did not start in time (a loaded machine) are killed; the rest are measured
    // among themselves, and the note says how many there were.
    const late = procs.filter((p) => p.id === '');
    if (late.length) {
      if (procs.length - late.length < 2)
        throw new Error(`only ${procs.length - late.length}/${n} processes started`);
      for (const p of late) p.child.kill('SIGKILL');
      procs.splice(0, procs.length, ...procs.filter((p) => p.id !== ''));
      notes.push(
        `only ${procs.length} of ${n} processes started in ${START_MS / 1000} s: measured among them`,
      );
      await sleep(CONVERGE_MS / 12);
    }
    const m = procs.length;
    const t0 = performance.now();
    const sees = (p: Proc): number => (mode === 'nats' ? p.members : p.peers);
    const converged = await until(() => procs.every((p) => sees(p) >= m - 1), CONVERGE_MS);
    const convergeS = converged ? (performance.now() - t0) / 1000 : null;
    if (!converged)
      notes.push(
        `${mode} N=${n}: not converged in ${CONVERGE_MS / 1000} s (the node that sees fewest: ${Math.min(...procs.map(sees))}/${m - 1})`,
      );
    await sleep(1000);
    // Minus the three stdio pipes (Unix sockets in Node's child_process).
    const sock = avg(procs.map((p) => sockets(p.child.pid!) - 3));
    const links = avg(procs.map((p) => p.peers));
    const c0 = procs.map((p) => cpuTicks(p.child.pid!));
    const w0 = performance.now();
    await sleep(5000);
    const c1 = procs.map((p) => cpuTicks(p.child.pid!));
    const idleCpu =
      (c1.reduce((a, b, i) => a + (b - c0[i]!), 0) / 100 / ((performance.now() - w0) / 1000)) * 100;
    const rss = avg(procs.map((p) => rssMb(p.child.pid!)));
    // A name registered on the first node, until every node sees it (each polls whereis every
    // 5 ms from now on; not during the idle measurement).
    for (const p of procs) p.child.stdin!.write('watch scale-name\n');
    await sleep(300);
    const nameAt = performance.now();
    procs[0]!.child.stdin!.write('register scale-name\n');
    const seen = await until(
      () => procs.every((p) => p.lines.some((l) => l.text.startsWith('name scale-name '))),
      30_000,
    );
    const nameMs = seen
      ? Math.max(
          ...procs.map((p) => p.lines.find((l) => l.text.startsWith('name scale-name '))!.at),
        ) - nameAt
      : null;
    // SIGKILL the last node; every survivor must see it down.
    const victim = procs[m - 1]!;
    const killAt = performance.now();
    victim.child.kill('SIGKILL');
    const survivors = procs.slice(0, -1);
    const downRe = new RegExp(`^nodeDown ${victim.id} `);
    const downLine = (p: Proc) => p.lines.find((l) => l.at >= killAt && downRe.test(l.text));
    const allDown = await until(() => survivors.every((p) => downLine(p)), 30_000);
    const downMs = allDown ? Math.max(...survivors.map((p) => downLine(p)!.at)) - killAt : null;
    await sleep(1000);
    // Every node-down but the victim's after its kill is false (the victim was alive before).
    const isFalse = (l: { at: number; text: string }) =>
      l.text.startsWith('nodeDown ') && (l.at < killAt || !downRe.test(l.text));
    const falseDowns = survivors.reduce((a, p) => a + p.lines.filter(isFalse).length, 0);
    const falseLines = survivors.flatMap((p) =>
      p.lines.filter(isFalse).map((l) => `${p.id}: ${l.text}`),
    );
    if (falseLines.length)
      notes.push(`false node-downs, first ones: ${falseLines.slice(0, 4).join(' | ')}`);
    // Which detector fired for each false one (NATS: the discovery's memberDown reason; a
    // node-down with no memberDown came from a link's heartbeats or a failed dial).
    const why = new Map<string, number>();
    for (const p of survivors)
      for (const l of p.lines)
        if (
          l.text.startsWith('memberDown ') &&
          (l.at < killAt || !l.text.startsWith(`memberDown ${victim.id} `))
        ) {
          const r = l.text.split(' ')[2] ?? '?';
          why.set(r, (why.get(r) ?? 0) + 1);
        }
    if (why.size)
      notes.push(
        `false member drops by detector: ${[...why].map(([r, c]) => `${r} ${c}`).join(', ')}`,
      );
    notes.push(
      `load average ${loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')} at the end`,
    );
    const note = notes.join('; ');
    return [
      { key: key('converge_s'), unit: 's', value: convergeS, baseline: null, note },
      { key: key('links_per_node'), unit: 'links', value: links, baseline: null },
      { key: key('sockets_per_node'), unit: 'sockets', value: sock, baseline: null },
      { key: key('idle_cpu_pct_all'), unit: '% core', value: idleCpu, baseline: null },
      { key: key('rss_mb_per_node'), unit: 'MB', value: rss, baseline: null },
      { key: key('name_visible_ms'), unit: 'ms', value: nameMs, baseline: null },
      { key: key('down_after_kill_ms'), unit: 'ms', value: downMs, baseline: null },
      { key: key('false_node_downs'), unit: 'downs', value: falseDowns, baseline: null },
    ];
  } finally {
    for (const p of procs) p.child.kill('SIGKILL');
    await sleep(500);
    await server?.kill();
  }
}

const scale: BenchCase = {
  name: 'scale',
  async run(): Promise<Result[]> {
    // Hundreds of processes: only when asked for by name (`npm run bench -- scale`).
    if (!process.argv.slice(2).includes('scale')) {
      return [
        {
          key: 'scale.skipped',
          unit: '',
          value: null,
          baseline: null,
          note: 'scale: not run by default (it starts up to 200 processes); run `npm run bench -- scale`',
        },
      ];
    }
    const sizes = (process.env.SCALE_N ?? '10,50,100')
      .split(',')
      .map(Number)
      .filter((x) => x > 1);
    const modes = (process.env.SCALE_MODES ?? 'tcp,nats').split(',') as ('tcp' | 'nats')[];
    const out: Result[] = [];
    for (const n of sizes) {
      for (const mode of modes) {
        let rs: Result[];
        try {
          rs = await runOne(mode, n);
        } catch (err) {
          rs = [
            {
              key: `scale.${mode}.${n}.converge_s`,
              unit: 's',
              value: null,
              baseline: null,
              note: `${mode} N=${n}: ${(err as Error).message}`,
            },
          ];
        }
        out.push(...rs);
        // Printed as it goes: a long run that is cut short still leaves its figures.
        console.log(
          `\n[scale] ${mode} N=${n}: ${rs.map((r) => `${r.key.split('.').pop()}=${r.value === null ? 'n/a' : Math.round(r.value * 100) / 100}`).join(' ')}${
            rs.some((r) => r.note)
              ? ` (${rs
                  .map((r) => r.note)
                  .filter(Boolean)
                  .join('; ')})`
              : ''
          }`,
        );
      }
    }
    return out;
  },
};

export const cases: BenchCase[] = [scale];
