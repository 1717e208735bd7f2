/**
 * `npm run bench [-- filter…]`: run the bench cases (all, or those whose area or name contains
 * a filter), print a table with each figure beside its baseline and target, and merge the
 * figures into bench/results/latest.json as `{ key: { value, unit, baseline, ratio, at } }` plus
 * `_run: { date, machine, load }`. Areas in OPT_IN (peers) run only when a filter names them.
 *
 * `--runs N` runs the selected cases N times (round after round, so every run of a case sees the
 * same window) and prints, per key, the median ratio with its spread and in how many runs the
 * target held; latest.json then holds the medians and `runs: { n, ratio, met }`.
 *
 * Each case runs in a fresh child process (this file again, with TROUPE_BENCH_CASE set), so its
 * figures do not depend on which cases ran before it: code made polymorphic and a heap grown by
 * other cases once cost local.oneway half its throughput in the last rounds of a `--runs 3`.
 */
import { fork } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  describeTarget,
  hasGc,
  now,
  spread,
  targetMet,
  type BenchCase,
  type Result,
} from './harness.ts';

/** Area files, in run order. Add one here when you add `bench/<area>.ts`. */
const AREAS = [
  'local',
  'memlink',
  'tcp',
  'worker',
  'browser',
  'supervisor',
  'flow',
  'collab',
  'nats',
  'bundle',
  'scale',
  'peers',
] as const;
/** Areas that run only when a filter names them (`npm run bench -- peers`, `-- scale`). */
const OPT_IN = new Set<string>(['peers', 'scale']);

const here = dirname(fileURLToPath(import.meta.url));
const resultsFile = join(here, 'results', 'latest.json');

function fmt(v: number | null, unit: string): string {
  if (v === null || !Number.isFinite(v)) return 'n/a';
  if (unit === 's') return v.toFixed(3);
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(1)} k`;
  if (a >= 100) return v.toFixed(0);
  return v.toFixed(1);
}

function round(v: number | null): number | null {
  if (v === null || !Number.isFinite(v)) return null;
  return Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 1000) / 1000;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]) =>
    r
      .map((cell, c) =>
        c === 0 || c === 3 || c >= 5 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]),
      )
      .join('  ')
      .trimEnd();
  return [
    line(rows[0]),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.slice(1).map(line),
  ].join('\n');
}

/** Child mode: run the one case named by TROUPE_BENCH_AREA/TROUPE_BENCH_CASE, send its results. */
async function runChild(area: string, name: string): Promise<void> {
  const cases = ((await import(`./${area}.ts`)) as { cases: BenchCase[] }).cases;
  const c = cases.find((x) => x.name === name);
  if (!c) throw new Error(`no case ${name} in bench/${area}.ts`);
  const results = await c.run();
  await new Promise<void>((resolve) => process.send!({ results }, () => resolve()));
}

/** Run `c` of `area` in a fresh process with this process's flags; its output passes through. */
function runInChild(area: string, c: BenchCase): Promise<Result[]> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), [], {
      execArgv: process.execArgv,
      env: { ...process.env, TROUPE_BENCH_AREA: area, TROUPE_BENCH_CASE: c.name },
    });
    let results: Result[] | undefined;
    child.on('message', (m: { results?: Result[] }) => {
      if (m.results) results = m.results;
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (results) resolve(results);
      else
        reject(new Error(`the case's process ended (${signal ?? `code ${code}`}) without results`));
    });
  });
}

async function main(): Promise<void> {
  const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const matches = (area: string, name: string) =>
    OPT_IN.has(area)
      ? filters.some((f) => f === area || name.includes(f))
      : filters.length === 0 || filters.some((f) => area.includes(f) || name.includes(f));
  if (!hasGc())
    console.log(
      'note: node runs without --expose-gc: actor.idle_bytes will be n/a (npm run bench passes it)',
    );

  const runsArg = process.argv.find((a) => a.startsWith('--runs'));
  const runs = runsArg
    ? Number(
        runsArg.includes('=')
          ? runsArg.split('=')[1]
          : process.argv[process.argv.indexOf(runsArg) + 1],
      )
    : 1;
  if (!Number.isInteger(runs) || runs < 1 || runs > 20) {
    console.log('--runs takes a whole number from 1 to 20');
    process.exitCode = 2;
    return;
  }
  const filterArgs =
    runsArg && !runsArg.includes('=') ? filters.filter((f) => f !== String(runs)) : filters;
  filters.splice(0, filters.length, ...filterArgs);
  /** Every run's results, by key, in run order. */
  const perRun: Result[][] = [];
  const failures: string[] = [];
  const t0 = now();
  const cpus = os.cpus();
  const machine = `${cpus.length} x ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${process.platform}/${process.arch}, node ${process.version}`;
  const load = () =>
    os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
  const startedAt = new Date().toISOString();
  const loadBefore = load();
  console.log(`${startedAt}  ${machine}  load ${loadBefore}`);
  const selected: { area: string; c: BenchCase }[] = [];
  for (const area of AREAS) {
    let cases: BenchCase[];
    try {
      cases = ((await import(`./${area}.ts`)) as { cases: BenchCase[] }).cases;
    } catch (err) {
      if (matches(area, area)) failures.push(`${area}: cannot load: ${(err as Error).message}`);
      continue;
    }
    for (const c of cases) if (matches(area, c.name)) selected.push({ area, c });
  }
  for (let run = 1; run <= runs; run++) {
    if (runs > 1) console.log(`\nrun ${run} of ${runs}, load ${load()}`);
    const got: Result[] = [];
    for (const { area, c } of selected) {
      const start = now();
      process.stdout.write(`running ${c.name} … `);
      try {
        const rs = await runInChild(area, c);
        got.push(...rs);
        console.log(`${((now() - start) / 1000).toFixed(1)} s`);
      } catch (err) {
        console.log('failed');
        failures.push(`${runs > 1 ? `run ${run}: ` : ''}${c.name}: ${(err as Error).stack ?? err}`);
      }
    }
    perRun.push(got);
  }
  const results = combine(perRun);
  if (results.length === 0 && failures.length === 0) {
    console.log(`no case matches ${filters.join(' ')} (areas: ${AREAS.join(', ')})`);
    process.exitCode = 1;
    return;
  }

  const rows = [['key', 'troupe', 'unit', 'baseline', 'base value', 'ratio', 'target', 'met']];
  for (const r of results) {
    const ratio = r.value !== null && r.baseline ? `${(r.value / r.baseline).toFixed(2)}x` : '';
    const met = targetMet(r);
    rows.push([
      r.key,
      fmt(r.value, r.unit),
      r.unit,
      r.baselineLabel ?? '',
      fmt(r.baseline, r.unit),
      ratio,
      describeTarget(r.target, r.unit),
      met === undefined ? (r.target ? 'n/a' : '') : met ? 'yes' : 'NO',
    ]);
  }
  if (results.length)
    console.log(`\n${runs > 1 ? `median of ${runs} runs\n` : ''}${table(rows)}\n`);
  if (runs > 1 && results.length) {
    const spreadRows = [['key', 'ratio median', 'min', 'max', 'target', `met (of ${runs})`]];
    for (const r of results) {
      if (!r.runs) continue;
      const x = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)}x` : 'n/a');
      spreadRows.push([
        r.key,
        x(r.runs.ratio.median),
        x(r.runs.ratio.min),
        x(r.runs.ratio.max),
        describeTarget(r.target, r.unit),
        r.target ? String(r.runs.met) : '',
      ]);
    }
    console.log(`run to run (ratio to the same run's baseline)\n${table(spreadRows)}\n`);
  }
  for (const r of results) if (r.note) console.log(`- ${r.note}`);
  const loadAfter = load();
  console.log(
    `\n${startedAt}  ${machine}  load (1, 5, 15 min) before ${loadBefore}, after ${loadAfter}; total ${((now() - t0) / 1000).toFixed(1)} s`,
  );

  type Entry = {
    value: number | null;
    unit: string;
    baseline: number | null;
    ratio?: number | null;
    label?: string;
    target?: string;
    met?: boolean;
    at?: string;
    runs?: {
      n: number;
      ratio: { median: number | null; min: number | null; max: number | null };
      met: number;
    };
  };
  let merged: Record<string, Entry | { date: string; machine: string; load: string }> = {};
  try {
    merged = JSON.parse(readFileSync(resultsFile, 'utf8'));
  } catch {
    // first run, or an unreadable file: start over
  }
  for (const r of results) {
    const ratio =
      r.value !== null && r.baseline ? Math.round((r.value / r.baseline) * 1000) / 1000 : null;
    const met = targetMet(r);
    merged[r.key] = {
      value: round(r.value),
      unit: r.unit,
      baseline: round(r.baseline),
      ratio: r.runs ? round(r.runs.ratio.median) : ratio,
      label: r.baselineLabel,
      target: r.target ? describeTarget(r.target, r.unit) : undefined,
      met,
      at: startedAt,
      ...(r.runs
        ? {
            runs: {
              n: r.runs.n,
              ratio: {
                median: round(r.runs.ratio.median),
                min: round(r.runs.ratio.min),
                max: round(r.runs.ratio.max),
              },
              met: r.runs.met,
            },
          }
        : {}),
    };
  }
  // The run that wrote this file last (each key keeps the date of the run that measured it).
  merged._run = { date: startedAt, machine, load: `before ${loadBefore}, after ${loadAfter}` };
  mkdirSync(dirname(resultsFile), { recursive: true });
  writeFileSync(resultsFile, `${JSON.stringify(merged, null, 2)}\n`);
  console.log(`wrote ${resultsFile}`);

  if (failures.length) {
    console.log(`\n${failures.length} case(s) failed:\n${failures.join('\n')}`);
    process.exitCode = 1;
  }
}

type Combined = Result & {
  runs?: { n: number; ratio: { median: number; min: number; max: number }; met: number };
};

/**
 * One result per key: a single run as it is; several runs as the median value and baseline, with
 * the spread of the per-run ratios and the number of runs whose target held.
 */
function combine(perRun: Result[][]): Combined[] {
  if (perRun.length === 1) return perRun[0]!;
  const keys: string[] = [];
  const byKey = new Map<string, Result[]>();
  for (const got of perRun)
    for (const r of got) {
      if (!byKey.has(r.key)) {
        keys.push(r.key);
        byKey.set(r.key, []);
      }
      byKey.get(r.key)!.push(r);
    }
  return keys.map((key) => {
    const rs = byKey.get(key)!;
    const mid = (xs: (number | null)[]): number | null => {
      const ok = xs.filter((x): x is number => x !== null && Number.isFinite(x));
      return ok.length ? spread(ok).median : null;
    };
    const ratios = rs
      .filter((r) => r.value !== null && r.baseline)
      .map((r) => r.value! / r.baseline!);
    const first = rs[0]!;
    return {
      ...first,
      value: mid(rs.map((r) => r.value)),
      baseline: mid(rs.map((r) => r.baseline)),
      note: rs.map((r) => r.note).find((n) => n !== undefined),
      runs: {
        n: rs.length,
        ratio: ratios.length ? spread(ratios) : { median: NaN, min: NaN, max: NaN },
        met: rs.filter((r) => targetMet(r) === true).length,
      },
    };
  });
}

const childArea = process.env.TROUPE_BENCH_AREA;
const childCase = process.env.TROUPE_BENCH_CASE;
(childArea && childCase ? runChild(childArea, childCase) : main()).then(
  // Child processes and sockets are closed by the cases; exit anyway so a stray handle cannot hang the run.
  () => process.exit(),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
