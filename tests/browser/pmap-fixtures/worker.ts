// A Web Worker of the parallelMap fixture's pools: a troupe node (named by the pool) serving
// `fib` and `failOn3` by name; plain functions arrive as source text.
import { z } from 'zod';
import { defineFunction } from '../../../patterns/functions.ts';
import { servePoolWorker } from '../../../patterns/browser.ts';
import { fib } from './fib.ts';

servePoolWorker({
  functions: {
    fib: defineFunction({ args: z.number().int().min(0).max(40), result: z.number(), run: fib }),
    failOn3: defineFunction({
      args: z.number(),
      result: z.number(),
      run: (n) => {
        if (n === 3) throw new Error('three is not allowed');
        return n;
      },
    }),
  },
});
