// Issue 6 — fuzzing the TCP frame decoder (adapters/tcp-framing.ts), the first code a hostile byte
// stream meets. Properties: valid streams cut anywhere decode to exactly the frames sent; random
// and mutated byte streams never make it throw anything but FRAME_TOO_LARGE, never make it hold
// more than one frame's worth of bytes, never yield a frame over the limit; an announced length
// over the limit is refused before any of it is buffered.
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TroupeError } from '../core/index.ts';
import { createFrameDecoder, encodeFrames, FRAME_HEADER_BYTES } from '../adapters/tcp-framing.ts';
import { guardProcess, params } from './helpers/fuzz.ts';

guardProcess();

const MAX = 4096;

function encode(frames: string[]): Buffer {
  const sizes = frames.map((f) => Buffer.byteLength(f));
  return encodeFrames(
    frames,
    sizes,
    sizes.reduce((a, s) => a + s + FRAME_HEADER_BYTES, 0),
  );
}

/** Cut `buf` at the given points (taken modulo its length) into chunks, in order. */
function chunk(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => (buf.length ? c % (buf.length + 1) : 0)))].sort(
    (a, b) => a - b,
  );
  const out: Buffer[] = [];
  let at = 0;
  for (const p of points) {
    out.push(buf.subarray(at, p));
    at = p;
  }
  out.push(buf.subarray(at));
  return out;
}

/** Feed chunks; returns the frames and how it ended. Checks the invariants after every push. */
function feed(
  chunks: Uint8Array[],
  max = MAX,
): { frames: string[]; error?: unknown; maxPending: number } {
  const d = createFrameDecoder(max);
  const frames: string[] = [];
  let maxPending = 0;
  for (const c of chunks) {
    try {
      d.push(c, (f) => frames.push(f));
    } catch (error) {
      return { frames, error, maxPending };
    }
    maxPending = Math.max(maxPending, d.pending);
  }
  return { frames, maxPending };
}

/** The text a frame becomes after a trip through UTF-8 (lone surrogates turn into U+FFFD). */
const wire = (s: string) => Buffer.from(s, 'utf8').toString('utf8');

const frameText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.string({ unit: 'grapheme', maxLength: 200 }),
  fc.constantFrom('', '\n', '\t', '{"t":"hb"}', '\u0000', '😀'.repeat(50)),
);

describe('TCP frame decoder under fuzzing', () => {
  it('valid streams cut at any points decode to exactly the frames sent, in order', () => {
    fc.assert(
      fc.property(
        fc.array(frameText, { maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (frames, cuts) => {
          const r = feed(chunk(encode(frames), cuts));
          expect(r.error).toBeUndefined();
          expect(r.frames).toEqual(frames.map(wire));
        },
      ),
      params(0.12),
    );
  });

  it('random bytes in random chunks: only FRAME_TOO_LARGE is ever thrown, nothing over the limit is held or yielded', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 600 }), { maxLength: 20 }), (chunks) => {
        const r = feed(chunks);
        if (r.error !== undefined) {
          expect(r.error).toBeInstanceOf(TroupeError);
          expect((r.error as TroupeError).code).toBe('FRAME_TOO_LARGE');
        }
        expect(r.maxPending).toBeLessThanOrEqual(MAX + FRAME_HEADER_BYTES);
        for (const f of r.frames) expect(f.length).toBeLessThanOrEqual(MAX);
      }),
      params(0.12),
    );
  });

  it('mutated valid streams (bytes flipped, dropped, duplicated, truncated): the same invariants hold', () => {
    const mutation = fc.oneof(
      fc.record({
        op: fc.constant('flip' as const),
        at: fc.nat(),
        byte: fc.integer({ min: 0, max: 255 }),
      }),
      fc.record({
        op: fc.constant('drop' as const),
        at: fc.nat(),
        len: fc.integer({ min: 1, max: 8 }),
      }),
      fc.record({
        op: fc.constant('dup' as const),
        at: fc.nat(),
        len: fc.integer({ min: 1, max: 8 }),
      }),
      fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
    );
    fc.assert(
      fc.property(
        fc.array(frameText, { minLength: 1, maxLength: 10 }),
        fc.array(mutation, { minLength: 1, maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (frames, muts, cuts) => {
          let buf = Buffer.from(encode(frames));
          for (const m of muts) {
            const at = buf.length ? m.at % buf.length : 0;
            if (m.op === 'flip' && buf.length) buf[at] = m.byte;
            else if (m.op === 'drop')
              buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at + m.len)]);
            else if (m.op === 'dup')
              buf = Buffer.concat([buf.subarray(0, at + m.len), buf.subarray(at)]);
            else if (m.op === 'truncate') buf = buf.subarray(0, at);
          }
          const r = feed(chunk(buf, cuts));
          if (r.error !== undefined) expect((r.error as TroupeError).code).toBe('FRAME_TOO_LARGE');
          expect(r.maxPending).toBeLessThanOrEqual(MAX + FRAME_HEADER_BYTES);
          for (const f of r.frames) expect(f.length).toBeLessThanOrEqual(MAX);
        },
      ),
      params(0.06),
    );
  });

  it('an announced length over the limit is refused at once, before its body is buffered, after the frames before it', () => {
    fc.assert(
      fc.property(
        fc.array(frameText, { maxLength: 5 }),
        fc.integer({ min: MAX + 1, max: 0xffffffff }),
        fc.uint8Array({ maxLength: 100 }),
        fc.array(fc.nat(), { maxLength: 5 }),
        (before, len, junk, cuts) => {
          const head = Buffer.alloc(FRAME_HEADER_BYTES);
          head.writeUInt32BE(len, 0);
          const r = feed(chunk(Buffer.concat([encode(before), head, junk]), cuts));
          expect(r.error).toBeInstanceOf(TroupeError);
          expect((r.error as TroupeError).code).toBe('FRAME_TOO_LARGE');
          expect(r.frames).toEqual(before.map(wire));
          expect(r.maxPending).toBeLessThanOrEqual(MAX + FRAME_HEADER_BYTES);
        },
      ),
      params(0.03),
    );
  });

  it('a frame of exactly the limit is accepted; one byte more is refused (boundary)', () => {
    const exact = 'x'.repeat(MAX);
    expect(feed([encode([exact])]).frames).toEqual([exact]);
    const over = feed([encode([`${exact}y`])]);
    expect((over.error as TroupeError).code).toBe('FRAME_TOO_LARGE');
    // Multi-byte characters count in bytes, not characters.
    const wide = '€'.repeat(Math.floor(MAX / 3) + 1); // 3 bytes each
    expect((feed([encode([wide])]).error as TroupeError).code).toBe('FRAME_TOO_LARGE');
  });
});
