/**
 * Order statistics for the bench, in one place so every case computes them the same way (and
 * tests/bench-stats.test.ts checks them on known distributions).
 *
 * Percentiles are on the 0–100 scale, nearest rank: the p-th percentile of n samples is the
 * smallest sample with at least p% of the samples at or below it. A fraction such as 0.5 is a
 * valid percentile (the 0.5th, near the minimum), which is how `worker.rtt_us` once reported its
 * fastest round trips as the median; use {@link p50} / {@link p99} or {@link summary}.
 */

/** Median of numbers (copy-sorted; the mean of the two middle values for an even count). */
export function median(xs: ArrayLike<number>): number {
  if (xs.length === 0) return NaN;
  const s = Float64Array.from(xs).sort();
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * The p-th percentile (0 ≤ p ≤ 100) of `sorted` (ascending), nearest rank. NaN when empty.
 * @throws {RangeError} when p is outside 0–100 or `sorted` is not ascending.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is outside 0–100`);
  const n = sorted.length;
  if (n === 0) return NaN;
  for (let i = 1; i < n; i++)
    if (sorted[i] < sorted[i - 1])
      throw new RangeError('percentile() needs ascending samples (sort them first)');
  // 1-based; 0 for p = 0. The epsilon keeps float noise (99.9 / 100 * 1000 = 999.0000000000001)
  // from moving the rank up by one.
  const rank = Math.ceil((p * n) / 100 - 1e-9);
  return sorted[Math.min(n - 1, Math.max(0, rank - 1))];
}

/** Samples sorted ascending, as a new Float64Array. */
export const sorted = (xs: ArrayLike<number>): Float64Array => Float64Array.from(xs).sort();

/** The median (50th percentile, nearest rank) of unsorted samples. */
export const p50 = (xs: ArrayLike<number>): number => percentile(sorted(xs), 50);

/** The 99th percentile (nearest rank) of unsorted samples. */
export const p99 = (xs: ArrayLike<number>): number => percentile(sorted(xs), 99);

/** p50, p99, minimum and maximum of unsorted samples. */
export function summary(xs: ArrayLike<number>): {
  p50: number;
  p99: number;
  min: number;
  max: number;
  n: number;
} {
  const s = sorted(xs);
  return {
    p50: percentile(s, 50),
    p99: percentile(s, 99),
    min: s.length ? s[0] : NaN,
    max: s.length ? s[s.length - 1] : NaN,
    n: s.length,
  };
}

/** Median and spread (min, max) of a few per-round figures, for the run-to-run table. */
export function spread(xs: ArrayLike<number>): { median: number; min: number; max: number } {
  const s = sorted(xs);
  return { median: median(s), min: s.length ? s[0] : NaN, max: s.length ? s[s.length - 1] : NaN };
}
