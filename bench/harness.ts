/**
 * The bench harness: what a case returns, how targets are checked, and small helpers for timing.
 * Each area file (`local.ts`, `memlink.ts`, `tcp.ts`, …) exports `cases: BenchCase[]`; `run.ts`
 * runs them and writes `bench/results/latest.json`.
 */

/** A goal for one figure, checked against the value (and its baseline). */
export type Target =
  /** value ≥ ratio × baseline (throughput) */
  | { kind: 'min-ratio'; ratio: number }
  /** value ≤ ratio × baseline (latency) */
  | { kind: 'max-ratio'; ratio: number }
  /** value ≤ limit */
  | { kind: 'max'; limit: number }
  /** value ≥ limit */
  | { kind: 'min'; limit: number };

/** One measured figure. `value` null means it could not be measured (printed `n/a`). */
export interface Result {
  key: string;
  unit: string;
  value: number | null;
  baseline: number | null;
  /** What the baseline is, in a few words (printed). */
  baselineLabel?: string;
  target?: Target;
  /** Printed under the table (why n/a, what was measured). */
  note?: string;
}

/** A bench case: runs a fixed amount of work and returns its figures. */
export interface BenchCase {
  /** Short name, matched by the filter argument of `npm run bench -- <filter>`. */
  name: string;
  run(): Promise<Result[]>;
}

export { median, percentile, p50, p99, summary, spread } from './stats.ts';
import { median } from './stats.ts';

/** Milliseconds, high resolution. */
export const now = (): number => performance.now();

/** Yield to the event loop (timers and I/O run). */
export const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Run the garbage collector if node was started with --expose-gc. */
export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) {
    g();
    g();
  }
}

export const hasGc = (): boolean => typeof (globalThis as { gc?: unknown }).gc === 'function';

/**
 * Run `warmup` unmeasured rounds, then `reps` measured rounds of each of the named functions,
 * interleaved (a, b, a, b, …) so noise hits both alike. Each function returns its figure for one
 * round. Returns every round's figure per name.
 */
export async function interleavedSamples<K extends string>(
  fns: Record<K, () => Promise<number> | number>,
  { warmup, reps }: { warmup: number; reps: number },
): Promise<Record<K, number[]>> {
  const names = Object.keys(fns) as K[];
  for (let i = 0; i < warmup; i++) for (const n of names) await fns[n]();
  const samples = {} as Record<K, number[]>;
  for (const n of names) samples[n] = [];
  for (let i = 0; i < reps; i++) {
    for (const n of names) {
      gc();
      samples[n].push(await fns[n]());
    }
  }
  return samples;
}

/** {@link interleavedSamples}, reduced to the median round per name. */
export async function interleaved<K extends string>(
  fns: Record<K, () => Promise<number> | number>,
  opts: { warmup: number; reps: number },
): Promise<Record<K, number>> {
  const samples = await interleavedSamples(fns, opts);
  const out = {} as Record<K, number>;
  for (const n of Object.keys(samples) as K[]) out[n] = median(samples[n]);
  return out;
}

/** Whether `r` meets its target; undefined when there is no target or nothing to compare. */
export function targetMet(r: Result): boolean | undefined {
  const t = r.target;
  if (!t || r.value === null) return undefined;
  switch (t.kind) {
    case 'max':
      return r.value <= t.limit;
    case 'min':
      return r.value >= t.limit;
    case 'min-ratio':
      return r.baseline === null ? undefined : r.value >= t.ratio * r.baseline;
    case 'max-ratio':
      return r.baseline === null ? undefined : r.value <= t.ratio * r.baseline;
  }
}

export function describeTarget(t: Target | undefined, unit: string): string {
  if (!t) return '';
  switch (t.kind) {
    case 'max':
      return `≤ ${t.limit} ${unit}`;
    case 'min':
      return `≥ ${t.limit} ${unit}`;
    case 'min-ratio':
      return `≥ ${Math.round(t.ratio * 100)}% of base`;
    case 'max-ratio':
      return `≤ ${t.ratio}x base`;
  }
}
