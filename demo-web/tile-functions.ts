// The actor that computes Mandelbrot tiles. Host-neutral: Web Workers define it, and so do the
// demo's Node nodes, so a page can spread one image over workers and cluster nodes alike.
import { behaviour, type Node } from '../core/index.ts';
import { TileRequest, computeTile, encodeCounts, type TileResult } from './mandelbrot.ts';

/** The name under which nodes define the tile actor (for `node.spawn(nodeId, TILE_BEHAVIOUR)`). */
export const TILE_BEHAVIOUR = 'mandelbrot-tiles';

/** Names under which the demo's Node nodes register a tile actor (`tiles@<node id>`). */
export const NODE_TILES_PREFIX = 'tiles@';

/** Run `fn` in an event-loop task of its own (a message-channel hop: no timer clamping). */
function inOwnTask(fn: () => void): void {
  const { port1, port2 } = new MessageChannel();
  port1.onmessage = () => {
    port1.close();
    fn();
  };
  port2.postMessage(null);
}

/**
 * Answers each call `{ job, tile }` with the tile's {@link TileResult}.
 *
 * Each tile is computed in a task of its own, not inside the scheduler turn that delivered the
 * request: replies made in one turn leave together when the turn ends, so computing two queued
 * tiles in one turn would hold the first answer back until the second is done, and the caller's
 * pipelining (two requests in flight) would gain nothing.
 */
export const tileActor = behaviour({
  schema: TileRequest,
  handle: (m, _state: undefined, ctx) => {
    const answer = ctx.deferReply();
    const node = ctx.node.id;
    inOwnTask(() => {
      const t0 = performance.now();
      const counts = computeTile(m.job, m.tile);
      const result: TileResult = { index: m.tile.index, counts: encodeCounts(counts), ms: performance.now() - t0, node };
      answer(result);
    });
  },
});

/** Let other nodes spawn tile actors on `node`. */
export function defineTileBehaviour(node: Node): void {
  node.define(TILE_BEHAVIOUR, undefined, tileActor);
}
