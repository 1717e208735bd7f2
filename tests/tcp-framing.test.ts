// The TCP adapter's frame decoder, fed raw bytes: split at every byte boundary, coalesced frames,
// zero-length frames, multi-byte UTF-8 cut mid-character, and announced lengths over the limit.
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { TroupeError } from '../core/index.ts';
import {
  createFrameDecoder,
  encodeFrames,
  framePrefix,
  maxFrameBytes,
  writeFrame,
  writeFrameFit,
  FIT_SPARE_BYTES,
  type FrameDecoder,
} from '../adapters/tcp-framing.ts';

function encode(...frames: string[]): Buffer {
  const sizes = frames.map((f) => Buffer.byteLength(f));
  return encodeFrames(
    frames,
    sizes,
    sizes.reduce((n, s) => n + s + 4, 0),
  );
}

/** Push a chunk and return the frames it completed. */
function feed(d: FrameDecoder, chunk: Uint8Array): string[] {
  const out: string[] = [];
  d.push(chunk, (f) => out.push(f));
  return out;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

const sample = [
  'hello',
  '',
  'héllo wörld',
  '漢字かな',
  'emoji 😀🎉 and more',
  'x'.repeat(300),
  '{"t":"hb"}',
];

describe('frame encoding', () => {
  it('writes a 4-byte big-endian byte count before the UTF-8 text', () => {
    expect([...encode('hé')]).toEqual([0, 0, 0, 3, 0x68, 0xc3, 0xa9]);
    expect([...encode('')]).toEqual([0, 0, 0, 0]);
    expect([...encode('a', 'b')]).toEqual([0, 0, 0, 1, 0x61, 0, 0, 0, 1, 0x62]);
  });
});

describe('writeFrame', () => {
  it('writes the bytes encodeFrames writes with the exact prefixes, UTF-8 or Latin-1, without a byte count first', () => {
    const frames = [
      ...sample,
      'bytes \u0080\u00ff\u00e9', // a byte string: Latin-1
      'lone \ud800 surrogate',
      '\ud83d\ude00'.repeat(50),
    ];
    const room = frames.reduce((n, f) => n + maxFrameBytes(f), 0);
    const out = Buffer.alloc(room);
    let at = 0;
    for (const f of frames) at = writeFrame(out, at, f);
    const sizes = frames.map(framePrefix);
    const total = sizes.reduce((n, s) => n + (s & 0x7fff_ffff) + 4, 0);
    expect(at).toBe(total);
    expect(out.subarray(0, at)).toEqual(encodeFrames(frames, sizes, total));
    const d = createFrameDecoder(1024);
    expect(feed(d, out.subarray(0, at))).toEqual(
      frames.map((f) => Buffer.from(f, 'utf8').toString('utf8')),
    );
  });
});

describe('writeFrameFit (room for one byte per character: a write holds no 3x buffer)', () => {
  /** Encode `frames` into room for one byte per character; null when one needed more. */
  function encodeFit(frames: string[]): Buffer | null {
    const room = frames.reduce((n, f) => n + 4 + f.length, 0);
    const out = Buffer.alloc(room + FIT_SPARE_BYTES);
    let at = 0;
    for (let i = 0; i < frames.length && at >= 0; i++) at = writeFrameFit(out, at, frames[i]);
    return at < 0 ? null : out.subarray(0, at);
  }

  it('writes ASCII and Latin-1 byte strings exactly as encodeFrames does, in room for their characters', () => {
    for (const frames of [
      sample.filter((f) => !/[^\u0000-\u00ff]/.test(f)),
      ['bytes \u0080\u00ff\u00e9', 'ascii'],
      ['ascii', '\u00e9a'], // 2 bytes of UTF-8 for its first character: must not pass as ASCII
      ['\u00e9'],
      [`${'x'.repeat(100_000)}\u00ff`, 'S1\tj2'],
    ]) {
      const sizes = frames.map(framePrefix);
      const total = sizes.reduce((n, s) => n + (s & 0x7fff_ffff) + 4, 0);
      expect(encodeFit(frames), frames.join('|').slice(0, 30)).toEqual(
        encodeFrames(frames, sizes, total),
      );
      expect(total).toBe(frames.reduce((n, f) => n + 4 + f.length, 0));
    }
  });

  it('gives up (-1) on text above U+00FF, wherever it is in the batch, so the batch is encoded again', () => {
    expect(encodeFit(['ascii', 'lone \ud800 surrogate'])).toBeNull();
    expect(encodeFit(['\ud83d\ude00', 'ascii'])).toBeNull();
    expect(encodeFit(['ascii', `${'a'.repeat(1000)}\u20ac`])).toBeNull();
    expect(encodeFit(['\u0100'])).toBeNull();
  });
});

describe('createFrameDecoder', () => {
  it('decodes a frame split into parts the same as whole, with invalid UTF-8 on either side of a cut', () => {
    const bodies = [
      Buffer.from('abc\u00e9def', 'utf8'),
      Buffer.from([0x61, 0x80, 0x62, 0xc3]), // a stray continuation byte, a truncated sequence
      Buffer.from([0x61, 0x62, 0xe2, 0x82, 0xac, 0x63]),
    ];
    for (const body of bodies) {
      const whole = body.toString('utf8');
      const bytes = Buffer.concat([Buffer.from([0, 0, 0, body.length]), body]);
      for (let a = 1; a < bytes.length; a++)
        for (let b = a; b < bytes.length; b++) {
          const d = createFrameDecoder(64);
          const out = [
            ...feed(d, bytes.subarray(0, a)),
            ...feed(d, bytes.subarray(a, b)),
            ...feed(d, bytes.subarray(b)),
          ];
          expect(out).toEqual([whole]);
          expect(d.pending).toBe(0);
        }
    }
  });

  it('decodes many frames coalesced into one chunk', () => {
    const d = createFrameDecoder(1024);
    expect(feed(d, encode(...sample))).toEqual(sample);
    expect(d.pending).toBe(0);
  });

  it('decodes a stream split at every byte boundary, one byte per chunk', () => {
    const bytes = encode(...sample);
    const d = createFrameDecoder(1024);
    const out: string[] = [];
    for (let i = 0; i < bytes.length; i++) out.push(...feed(d, bytes.subarray(i, i + 1)));
    expect(out).toEqual(sample);
    expect(d.pending).toBe(0);
  });

  it('decodes the stream cut into two chunks at every possible position', () => {
    const bytes = encode(...sample);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const d = createFrameDecoder(1024);
      const out = [...feed(d, bytes.subarray(0, cut)), ...feed(d, bytes.subarray(cut))];
      expect(out, `cut at ${cut}`).toEqual(sample);
    }
  });

  it('decodes the stream cut into three chunks at every pair of positions', () => {
    const frames = ['ab', '', 'ü😀', 'end'];
    const bytes = encode(...frames);
    for (let i = 0; i <= bytes.length; i++) {
      for (let j = i; j <= bytes.length; j++) {
        const d = createFrameDecoder(64);
        const out = [
          ...feed(d, bytes.subarray(0, i)),
          ...feed(d, bytes.subarray(i, j)),
          ...feed(d, bytes.subarray(j)),
        ];
        expect(out, `cuts at ${i}, ${j}`).toEqual(frames);
      }
    }
  });

  it('decodes zero-length frames, alone and in a row', () => {
    const d = createFrameDecoder(16);
    expect(feed(d, encode(''))).toEqual(['']);
    expect(feed(d, encode('', '', ''))).toEqual(['', '', '']);
    expect(feed(d, Buffer.from([0, 0]))).toEqual([]);
    expect(feed(d, Buffer.from([0, 0]))).toEqual(['']);
  });

  it('keeps multi-byte characters whole when a chunk ends inside one', () => {
    const text = '€😀'.repeat(1000);
    const bytes = encode(text);
    const d = createFrameDecoder(1 << 20);
    const out: string[] = [];
    for (let i = 0; i < bytes.length; i += 7) out.push(...feed(d, bytes.subarray(i, i + 7)));
    expect(out).toEqual([text]);
  });

  it('decodes a 1 MiB frame arriving in 64 KiB chunks, with the next frame glued to its end', () => {
    const big = 'é'.repeat(512 * 1024); // 1 MiB of UTF-8
    const bytes = encode(big, 'next');
    const d = createFrameDecoder(2 << 20);
    const out: string[] = [];
    for (let i = 0; i < bytes.length; i += 65536)
      out.push(...feed(d, bytes.subarray(i, i + 65536)));
    expect(out.length).toBe(2);
    expect(out[0] === big).toBe(true);
    expect(out[1]).toBe('next');
  });

  it('accepts a frame of exactly the limit', () => {
    const d = createFrameDecoder(5);
    expect(feed(d, encode('12345'))).toEqual(['12345']);
  });

  it('refuses a frame announcing more than the limit, before its body arrives', () => {
    const d = createFrameDecoder(5);
    const err = thrown(() => feed(d, Buffer.from([0, 0, 0, 6])));
    expect(err).toBeInstanceOf(TroupeError);
    expect((err as TroupeError).code).toBe('FRAME_TOO_LARGE');
    expect((err as TroupeError).message).toMatch(/6 bytes.*limit is 5/);
  });

  it('refuses an oversize length whose prefix is split across chunks', () => {
    const d = createFrameDecoder(1000);
    expect(feed(d, Buffer.from([0xff, 0xff]))).toEqual([]);
    expect((thrown(() => feed(d, Buffer.from([0xff, 0xff]))) as TroupeError).code).toBe(
      'FRAME_TOO_LARGE',
    );
  });

  it('refuses an oversize length that follows good frames in the same chunk, after delivering them', () => {
    const d = createFrameDecoder(1000);
    const bytes = Buffer.concat([encode('ok', 'fine'), Buffer.from('GET / HTTP/1.1\r\n')]);
    const got: string[] = [];
    const err = thrown(() => d.push(bytes, (f) => got.push(f)));
    expect((err as TroupeError).code).toBe('FRAME_TOO_LARGE');
    expect(got).toEqual(['ok', 'fine']);
  });

  it('turns invalid UTF-8 into replacement characters instead of throwing', () => {
    const d = createFrameDecoder(16);
    expect(feed(d, Buffer.from([0, 0, 0, 2, 0xff, 0xfe]))).toEqual(['\ufffd\ufffd']);
  });

  it('accepts plain Uint8Array chunks', () => {
    const bytes = encode('abc', 'déf');
    const d = createFrameDecoder(16);
    const copy = new Uint8Array(bytes.length + 3).subarray(3);
    copy.set(bytes);
    expect(feed(d, copy)).toEqual(['abc', 'déf']);
  });

  it('property: any frames, cut anywhere, come back unchanged and in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: 'binary', maxLength: 200 }), { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (frames, cutSeeds) => {
          // Lone surrogates cannot survive UTF-8; core never produces them (JSON escapes them).
          const clean = frames.map((f) => Buffer.from(f, 'utf8').toString('utf8'));
          const bytes = encode(...clean);
          const cuts = [...new Set(cutSeeds.map((c) => c % (bytes.length + 1)))].sort(
            (x, y) => x - y,
          );
          const d = createFrameDecoder(1024);
          const out: string[] = [];
          let at = 0;
          for (const c of [...cuts, bytes.length]) {
            out.push(...feed(d, bytes.subarray(at, c)));
            at = c;
          }
          expect(out).toEqual(clean);
          expect(d.pending).toBe(0);
        },
      ),
    );
  });
});
