// The function that computes Mandelbrot tiles, as a function server serves it. Host-neutral: the
// page's Web Workers serve it (servePoolWorker), and so do the demo's Node nodes (serveFunctions),
// so a page can spread one image over workers and cluster nodes alike with `parallelMap('tile', …)`.
import { z } from 'zod';
import { defineFunction, type FunctionTable } from '../patterns/functions.ts';
import { TileRequest, computeTile, encodeCounts, type TileResult } from './mandelbrot.ts';

/** The name the tile function is served under. */
export const TILE_FUNCTION = 'tile';

/** What the tile function answers (checked where it is computed, as every result is). */
const TileResultSchema = z.object({
  index: z.number().int().min(0),
  counts: z.string(),
  ms: z.number(),
  node: z.string(),
});

/**
 * The functions the demo's workers serve: `tile` answers `{ job, tile }` with the tile's
 * {@link TileResult} (its counts, compute time and the node that computed it, which `nodeId`
 * tells: the node may not exist yet when its functions are defined).
 */
export function tileFunctions(nodeId: () => string): FunctionTable {
  return {
    [TILE_FUNCTION]: defineFunction({
      args: TileRequest,
      result: TileResultSchema,
      run: ({ job, tile }): TileResult => {
        const t0 = performance.now();
        const counts = computeTile(job, tile);
        return {
          index: tile.index,
          counts: encodeCounts(counts),
          ms: performance.now() - t0,
          node: nodeId(),
        };
      },
    }),
  };
}
