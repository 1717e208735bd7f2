import { ERROR_CODES } from '../core/index.ts';

/**
 * The error codes the patterns add to the core's (README, "Error codes"): a {@link TroupeError}
 * from a function server, the distributor, parallel map or master/worker may carry one of them.
 * - `NO_WORKER`: no live worker serves the function.
 * - `WORKER_LOST`: a worker died with the job (at-most-once, or out of retries).
 * (`JOB_FAILED` is the core's: a stream's producer fails with it too.)
 */
export const PATTERN_ERROR_CODES = ['NO_WORKER', 'WORKER_LOST'] as const;

/** One of {@link PATTERN_ERROR_CODES}. */
export type PatternErrorCode = (typeof PATTERN_ERROR_CODES)[number];

/** Every code a caller of the core and the patterns can observe. */
export const ALL_ERROR_CODES: readonly ((typeof ERROR_CODES)[number] | PatternErrorCode)[] = [
  ...ERROR_CODES,
  ...PATTERN_ERROR_CODES,
];

declare module '../core/errors.ts' {
  interface ErrorCodeExtensions {
    /** No live worker serves the function. */
    NO_WORKER: true;
    /** A worker died with the job, and it was at-most-once or out of retries. */
    WORKER_LOST: true;
  }
}
