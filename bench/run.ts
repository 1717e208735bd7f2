/**
 * `npm run bench [-- filter…]`: run the bench cases (all, or those whose area or name contains
 * a filter), print a table with each figure beside its baseline and target, and merge the
 * figures into bench/results/latest.json as `{ key: { value, unit, baseline, ratio, at } }` plus
 * `_run: { date, machine, load }`. Areas in OPT_IN (peers) run only when a filter names them.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeTarget, hasGc, now, targetMet, type BenchCase, type Result } from './harness.ts';

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

  const results: Result[] = [];
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
  for (const area of AREAS) {
    let cases: BenchCase[];
    try {
      cases = ((await import(`./${area}.ts`)) as { cases: BenchCase[] }).cases;
    } catch (err) {
      if (matches(area, area)) failures.push(`${area}: cannot load: ${(err as Error).message}`);
      continue;
    }
    for (const c of cases) {
      if (!matches(area, c.name)) continue;
      const start = now();
      process.stdout.write(`running ${c.name} … `);
      try {
        const rs = await c.run();
        results.push(...rs);
        console.log(`${((now() - start) / 1000).toFixed(1)} s`);
      } catch (err) {
        console.log('failed');
        failures.push(`${c.name}: ${(err as Error).stack ?? err}`);
      }
    }
  }
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
  if (results.length) console.log(`\n${table(rows)}\n`);
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
      ratio,
      label: r.baselineLabel,
      target: r.target ? describeTarget(r.target, r.unit) : undefined,
      met,
      at: startedAt,
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

main().then(
  // Child processes and sockets are closed by the cases; exit anyway so a stray handle cannot hang the run.
  () => process.exit(),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
