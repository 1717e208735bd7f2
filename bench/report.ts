/**
 * `node --import tsx bench/report.ts [prefix…]`: print bench/results/latest.json as the Markdown
 * table the README's Performance section is copied from (keys starting with a prefix, or all).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

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

const file = fileURLToPath(new URL('./results/latest.json', import.meta.url));
const data = JSON.parse(readFileSync(file, 'utf8')) as Record<
  string,
  Entry | { date: string; machine: string; load: string }
>;
const prefixes = process.argv.slice(2);

function fmt(v: number | null, unit: string): string {
  if (v === null) return 'n/a';
  const a = Math.abs(v);
  const n =
    unit === 's'
      ? v.toFixed(2)
      : a >= 1e6
        ? `${(v / 1e6).toFixed(2)} M`
        : a >= 1e4
          ? `${(v / 1e3).toFixed(0)} k`
          : a >= 100
            ? v.toFixed(0)
            : v.toFixed(1);
  return `${n} ${unit}`;
}

const rows = [
  '| key | troupe | baseline (same run) | ratio | target | met | run |',
  '|---|---|---|---|---|---|---|',
];
for (const [key, e] of Object.entries(data)) {
  if (key.startsWith('_') || !('unit' in e)) continue;
  if (prefixes.length && !prefixes.some((p) => key.startsWith(p))) continue;
  const ratio = e.ratio === null || e.ratio === undefined ? '' : `${e.ratio.toFixed(2)}x`;
  const met = e.met === undefined ? '' : e.met ? 'yes' : '**no**';
  rows.push(
    `| \`${key}\` | ${fmt(e.value, e.unit)} | ${e.label ?? ''} ${fmt(e.baseline, e.unit)} | ${ratio} | ${e.target ?? ''} | ${met} | ${e.at?.slice(0, 16).replace('T', ' ') ?? ''} |`,
  );
}
console.log(rows.join('\n'));
const run = data._run as { date: string; machine: string; load: string } | undefined;
if (run) console.log(`\nLast run ${run.date}: ${run.machine}; load ${run.load}.`);
