// The bench's percentile helper on distributions whose percentiles are known exactly. (No timing
// here: benchmarks are `npm run bench`, never tests.)
import { describe, expect, it } from 'vitest';
import { median, p50, p99, percentile, sorted, spread, summary } from '../bench/stats.ts';

/** 1, 2, …, n */
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/** A deterministic shuffle (LCG), so unsorted inputs are tested without flakiness. */
function shuffled(xs: number[], seed = 7): number[] {
  const out = [...xs];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe('percentile (0–100, nearest rank)', () => {
  it('gives the exact ranks of 1..100 and 1..1000', () => {
    const a = range(100);
    expect(percentile(a, 0)).toBe(1);
    expect(percentile(a, 1)).toBe(1);
    expect(percentile(a, 50)).toBe(50);
    expect(percentile(a, 99)).toBe(99);
    expect(percentile(a, 100)).toBe(100);
    const b = range(1000);
    expect(percentile(b, 50)).toBe(500);
    expect(percentile(b, 99)).toBe(990);
    expect(percentile(b, 99.9)).toBe(999);
    expect(percentile(b, 0.5)).toBe(5); // the 0.5th percentile: what worker.rtt_us used to report
  });

  it('handles small and degenerate samples', () => {
    expect(percentile([], 50)).toBeNaN();
    expect(percentile([42], 0)).toBe(42);
    expect(percentile([42], 99)).toBe(42);
    expect(percentile([1, 2], 50)).toBe(1);
    expect(percentile([1, 2], 51)).toBe(2);
    expect(percentile([3, 3, 3, 3], 99)).toBe(3);
  });

  it('refuses a percentile outside 0–100 and unsorted samples', () => {
    expect(() => percentile(range(10), -1)).toThrow(RangeError);
    expect(() => percentile(range(10), 101)).toThrow(RangeError);
    expect(() => percentile(range(10), NaN)).toThrow(RangeError);
    expect(() => percentile([3, 1, 2], 50)).toThrow(/ascending/);
  });

  it('p50 and p99 sort a copy of shuffled samples', () => {
    const xs = shuffled(range(1000));
    const before = [...xs];
    expect(p50(xs)).toBe(500);
    expect(p99(xs)).toBe(990);
    expect(xs).toEqual(before);
    expect(Array.from(sorted(Float64Array.from(xs)))).toEqual(range(1000));
  });

  it('finds the modes of a bimodal latency distribution', () => {
    // 90% fast (10 µs), 10% slow (100 µs): the median is fast, the 99th percentile slow.
    const xs = shuffled([...Array(900).fill(10), ...Array(100).fill(100)]);
    expect(p50(xs)).toBe(10);
    expect(percentile(sorted(xs), 90)).toBe(10);
    expect(percentile(sorted(xs), 90.1)).toBe(100);
    expect(p99(xs)).toBe(100);
  });

  it('summary and spread', () => {
    const s = summary(shuffled(range(200)));
    expect(s).toEqual({ p50: 100, p99: 198, min: 1, max: 200, n: 200 });
    expect(spread([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3 });
    expect(spread([4, 1, 2, 3])).toEqual({ median: 2.5, min: 1, max: 4 });
  });
});

describe('median', () => {
  it('of odd and even counts, unsorted, without changing the input', () => {
    const xs = [5, 1, 4, 2, 3];
    expect(median(xs)).toBe(3);
    expect(xs).toEqual([5, 1, 4, 2, 3]);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});
