// The demo's parallel job: a Mandelbrot image cut into tiles. Pure functions, no DOM and no Node
// API, so the same code runs in Web Workers, in the page (the single-threaded reference) and on
// Node nodes — and so every host computes bit-identical iteration counts.
import { z } from 'zod';

/** One image to compute: its size in pixels, the tile edge, the view and the iteration limit. */
export const MandelbrotJob = z.object({
  width: z.number().int().min(1).max(4096),
  height: z.number().int().min(1).max(4096),
  tile: z.number().int().min(8).max(512),
  /** Centre of the view in the complex plane. */
  cx: z.number(),
  cy: z.number(),
  /** Complex-plane units per pixel. */
  scale: z.number().positive(),
  maxIter: z.number().int().min(1).max(20_000),
});
export type MandelbrotJob = z.infer<typeof MandelbrotJob>;

/** One rectangle of the image. */
export const Tile = z.object({
  index: z.number().int().min(0),
  x: z.number().int().min(0),
  y: z.number().int().min(0),
  w: z.number().int().min(1).max(512),
  h: z.number().int().min(1).max(512),
});
export type Tile = z.infer<typeof Tile>;

/** The job the demo runs: the edge of "seahorse valley", about a second of work on one core. */
export const DEFAULT_JOB: MandelbrotJob = {
  width: 768,
  height: 480,
  tile: 48,
  cx: -0.7435,
  cy: 0.1314,
  scale: 2.4e-5,
  maxIter: 1000,
};

/** The tiles of `job`, row by row. */
export function tilesOf(job: MandelbrotJob): Tile[] {
  const tiles: Tile[] = [];
  for (let y = 0; y < job.height; y += job.tile) {
    for (let x = 0; x < job.width; x += job.tile) {
      tiles.push({
        index: tiles.length,
        x,
        y,
        w: Math.min(job.tile, job.width - x),
        h: Math.min(job.tile, job.height - y),
      });
    }
  }
  return tiles;
}

/** Escape-time iteration counts of one tile, row-major; `maxIter` marks points in the set. */
export function computeTile(job: MandelbrotJob, tile: Tile): Uint16Array {
  const out = new Uint16Array(tile.w * tile.h);
  const { maxIter, scale } = job;
  const x0 = job.cx - (job.width / 2) * scale;
  const y0 = job.cy - (job.height / 2) * scale;
  let k = 0;
  for (let py = 0; py < tile.h; py++) {
    const ci = y0 + (tile.y + py) * scale;
    for (let px = 0; px < tile.w; px++) {
      const cr = x0 + (tile.x + px) * scale;
      let zr = 0;
      let zi = 0;
      let zr2 = 0;
      let zi2 = 0;
      let n = 0;
      while (n < maxIter && zr2 + zi2 <= 4) {
        zi = 2 * zr * zi + ci;
        zr = zr2 - zi2 + cr;
        zr2 = zr * zr;
        zi2 = zi * zi;
        n++;
      }
      out[k++] = n;
    }
  }
  return out;
}

// Counts travel as a string, one UTF-16 unit per pixel, offset past the control characters (so
// JSON keeps them as one character). Messages are strings on every troupe transport; this is 3x
// smaller than a JSON array of numbers. maxIter ≤ 20000 keeps every unit below the surrogates.
const OFFSET = 32;

/** Pack iteration counts into a string (see {@link decodeCounts}). */
export function encodeCounts(counts: Uint16Array): string {
  const parts: string[] = [];
  const step = 4096;
  for (let i = 0; i < counts.length; i += step) {
    const slice = counts.subarray(i, i + step);
    const units = new Array<number>(slice.length);
    for (let j = 0; j < slice.length; j++) units[j] = slice[j] + OFFSET;
    parts.push(String.fromCharCode(...units));
  }
  return parts.join('');
}

/** Unpack what {@link encodeCounts} made; throws on a string of the wrong length. */
export function decodeCounts(text: string, length: number): Uint16Array {
  if (text.length !== length)
    throw new Error(`tile data has ${text.length} pixels, expected ${length}`);
  const out = new Uint16Array(length);
  for (let i = 0; i < length; i++) out[i] = text.charCodeAt(i) - OFFSET;
  return out;
}

/** Copy a tile's counts into the whole image's counts (row-major, `job.width` wide). */
export function placeTile(
  job: MandelbrotJob,
  tile: Tile,
  counts: Uint16Array,
  image: Uint16Array,
): void {
  for (let row = 0; row < tile.h; row++) {
    image.set(
      counts.subarray(row * tile.w, (row + 1) * tile.w),
      (tile.y + row) * job.width + tile.x,
    );
  }
}

/**
 * FNV-1a (32 bit) over the whole image's counts, row-major: the same image gives the same
 * checksum whatever the tile order or the number of workers.
 */
export function checksum(image: Uint16Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < image.length; i++) {
    const v = image[i];
    h = Math.imul(h ^ (v & 0xff), 0x01000193);
    h = Math.imul(h ^ (v >>> 8), 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

/** A colour table for counts 0..maxIter (RGBA packed little-endian, for a Uint32Array view). */
export function palette(maxIter: number): Uint32Array {
  // Stops of a cyclic gradient: ink blue → teal → pale gold → ember → ink blue.
  const stops: [number, number, number][] = [
    [9, 12, 40],
    [18, 84, 136],
    [62, 170, 180],
    [250, 240, 200],
    [240, 150, 50],
    [130, 30, 60],
    [9, 12, 40],
  ];
  const table = new Uint32Array(maxIter + 1);
  for (let n = 0; n < maxIter; n++) {
    // Square-root scaling spreads the many low counts near the edge over the gradient.
    const t = (Math.sqrt(n / maxIter) * 3.2) % 1;
    const f = t * (stops.length - 1);
    const i = Math.floor(f);
    const u = f - i;
    const a = stops[i];
    const b = stops[i + 1];
    const r = Math.round(a[0] + (b[0] - a[0]) * u);
    const g = Math.round(a[1] + (b[1] - a[1]) * u);
    const bl = Math.round(a[2] + (b[2] - a[2]) * u);
    table[n] = (255 << 24) | (bl << 16) | (g << 8) | r;
  }
  table[maxIter] = (255 << 24) | (6 << 16) | (4 << 8) | 4; // inside the set: near black
  return table;
}

/** Colour `counts` (one tile) into RGBA pixels. */
export function paint(counts: Uint16Array, colours: Uint32Array, rgba: Uint8ClampedArray): void {
  const px = new Uint32Array(rgba.buffer, rgba.byteOffset, counts.length);
  for (let i = 0; i < counts.length; i++) px[i] = colours[counts[i]];
}

/** What a tile worker answers. */
export interface TileResult {
  index: number;
  /** {@link encodeCounts} of the tile. */
  counts: string;
  /** Milliseconds the worker spent computing. */
  ms: number;
  /** The node that computed it. */
  node: string;
}

/** The argument of the `tile` function (tile-functions.ts; its answer is a {@link TileResult}). */
export const TileRequest = z.object({ job: MandelbrotJob, tile: Tile });
export type TileRequest = z.infer<typeof TileRequest>;
