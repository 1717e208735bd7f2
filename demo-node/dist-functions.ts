// The functions the job-distribution demos and tests serve: each has zod schemas for its argument
// and its result. `makeFunctions(by)` stamps results with who computed them, so a caller can tell
// a remote result from a local one. The module also exports `functions` (stamped 'thread') for
// createThreadPool({ functions: … }).
import { z } from 'zod';
import { defineFunction, type FunctionTable } from '../patterns/index.ts';

/** Fibonacci by iteration (exact up to n = 78 in a double). */
export function fibOf(n: number): number {
  let a = 0;
  let b = 1;
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

/** Fibonacci by naive recursion: a CPU-bound job for speedup measurements. */
export function slowFib(n: number): number {
  return n < 2 ? n : slowFib(n - 1) + slowFib(n - 2);
}

/** A result stamped with the worker that computed it. */
export const Stamped = z.object({ value: z.number(), by: z.string() });

export function makeFunctions(by: string): FunctionTable {
  return {
    /** fib(n), stamped. */
    fib: defineFunction({
      args: z.number().int().min(0).max(78),
      result: Stamped,
      run: (n) => ({ value: fibOf(n), by }),
    }),
    /** n², stamped, after `ms` milliseconds (a job that stays running for a while). */
    slowSquare: defineFunction({
      args: z.object({ n: z.number(), ms: z.number().int().min(0).max(60_000) }),
      result: Stamped,
      run: async ({ n, ms }) => {
        await new Promise((r) => setTimeout(r, ms));
        return { value: n * n, by };
      },
    }),
    /** Naive recursive fib (CPU-bound), unstamped: for parallel maps. */
    cpuFib: defineFunction({
      args: z.number().int().min(0).max(40),
      result: z.number(),
      run: slowFib,
    }),
    /** Prints a line with console.log and returns it (for log redirection). */
    say: defineFunction({
      args: z.string().max(1000),
      result: z.string(),
      run: (text) => {
        console.log(`${by} says: ${text}`);
        return text;
      },
    }),
    /** Always throws (a job failure, not a worker failure). */
    broken: defineFunction({
      args: z.unknown(),
      result: z.never(),
      run: () => {
        throw new Error('broken on purpose');
      },
    }),
  };
}

export const functions = makeFunctions('thread');
