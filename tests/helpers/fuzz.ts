// Shared by the fuzz suites (tests/fuzz-*.test.ts): how many cases each property runs, and a
// guard that fails the suite if anything escaped as an uncaught exception or an unhandled
// rejection while it ran.
import { afterAll, afterEach, beforeAll, expect } from 'vitest';

/**
 * Cases for the whole fuzz run: about 10k in `npm test`; `npm run fuzz` sets FUZZ_RUNS (default
 * 200k there). Each property takes a share of it.
 */
export const FUZZ_TOTAL =
  Number(process.env.FUZZ_RUNS) > 0 ? Number(process.env.FUZZ_RUNS) : 10_000;

/** The number of runs for a property that takes `share` (0..1) of {@link FUZZ_TOTAL}. */
export function runs(share: number): number {
  return Math.max(10, Math.round(FUZZ_TOTAL * share));
}

/** fast-check parameters: the runs, plus a fixed seed when FUZZ_SEED is set (to replay a failure). */
export function params(share: number): { numRuns: number; seed?: number } {
  const seed = Number(process.env.FUZZ_SEED);
  return Number.isFinite(seed) && process.env.FUZZ_SEED
    ? { numRuns: runs(share), seed }
    : { numRuns: runs(share) };
}

/**
 * Record uncaught exceptions and unhandled rejections for the calling suite and fail each test
 * during which one happened (vitest also reports them; this names the test).
 */
export function guardProcess(): void {
  const escaped: unknown[] = [];
  const onError = (err: unknown) => escaped.push(err);
  beforeAll(() => {
    process.on('uncaughtException', onError);
    process.on('unhandledRejection', onError);
  });
  afterAll(() => {
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
  });
  afterEach(() => {
    const seen = escaped.splice(0);
    expect(seen, 'uncaught exceptions / unhandled rejections').toEqual([]);
  });
}
