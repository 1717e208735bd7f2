// The actor that computes Mandelbrot tiles. Host-neutral: Web Workers define it, and so do the
// demo's Node nodes, so a page can spread one image over workers and cluster nodes alike.
import { behaviour, type Node } from '../core/index.ts';
import { TileRequest, computeTile, encodeCounts, type TileResult } from './mandelbrot.ts';

/** The name under which nodes define the tile actor (for `node.spawn(nodeId, TILE_BEHAVIOUR)`). */
export const TILE_BEHAVIOUR = 'mandelbrot-tiles';

/** Names under which the demo's Node nodes register a tile actor (`tiles@<node id>`). */
export const NODE_TILES_PREFIX = 'tiles@';

/** Answers each call `{ job, tile }` with the tile's {@link TileResult}. */
export const tileActor = behaviour({
  schema: TileRequest,
  handle: (m, _state: undefined, ctx) => {
    const t0 = performance.now();
    const counts = computeTile(m.job, m.tile);
    const result: TileResult = { index: m.tile.index, counts: encodeCounts(counts), ms: performance.now() - t0, node: ctx.node.id };
    ctx.reply(result);
  },
});

/** Let other nodes spawn tile actors on `node`. */
export function defineTileBehaviour(node: Node): void {
  node.define(TILE_BEHAVIOUR, undefined, tileActor);
}
