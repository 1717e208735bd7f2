import { Buffer } from 'node:buffer';
import { TroupeError } from '../core/index.ts';

/**
 * Default largest frame the TCP adapter accepts, in bytes: core's default frame limit is 4 Mi
 * UTF-16 code units, and one code unit takes at most 3 bytes in UTF-8 (a surrogate pair, two
 * units, takes 4). Core still checks its own limit, in characters, on every decoded frame.
 */
export const DEFAULT_MAX_FRAME_BYTES = 3 * 4 * 1024 * 1024;

/** Bytes of the length prefix in front of every frame (unsigned, big-endian). */
export const FRAME_HEADER_BYTES = 4;

/**
 * Top bit of the length prefix: the frame's bytes are Latin-1 (one byte per character, a byte
 * string from the codec's binary attachments) rather than UTF-8. The other 31 bits are the length.
 */
export const LATIN1_FLAG = 0x8000_0000;

/** Turns a byte stream back into frames; see {@link createFrameDecoder}. */
export interface FrameDecoder {
  /**
   * Feed the next chunk read from the stream; `onFrame` gets each frame it completes, in order.
   * @throws {TroupeError} `FRAME_TOO_LARGE` when a frame declares more than the limit, after
   * `onFrame` got the frames before it; the stream is unusable afterwards (close it).
   */
  push(chunk: Uint8Array, onFrame: (frame: string) => void): void;
  /** Bytes held back waiting for the rest of a frame. */
  readonly pending: number;
  /**
   * The current limit; it may be changed between pushes (core lowers it until the peer has
   * authenticated). A frame already being read is checked against the new limit on the next push.
   */
  maxBytes: number;
}

/**
 * A decoder for length-prefixed frames: each frame is a 4-byte big-endian byte count followed by
 * that many bytes of UTF-8 text (or of Latin-1 when the count has its top bit,
 * {@link LATIN1_FLAG}, set). It accepts chunks cut anywhere (inside the prefix too) and
 * chunks holding many frames, and refuses a frame whose declared length exceeds `maxBytes`
 * before buffering any of it, so a hostile peer cannot make it allocate more than that.
 * Invalid UTF-8 decodes to U+FFFD; the text is core's to judge.
 *
 * @example
 * const decoder = createFrameDecoder(1 << 20);
 * socket.on('data', (chunk) => decoder.push(chunk, handle));
 */
export function createFrameDecoder(maxBytes: number = DEFAULT_MAX_FRAME_BYTES): FrameDecoder {
  return new LengthPrefixDecoder(maxBytes);
}

/**
 * The decoder {@link createFrameDecoder} makes: a class, so that an idle connection holds one
 * small object (no closures, no context) until bytes arrive.
 */
class LengthPrefixDecoder implements FrameDecoder {
  maxBytes: number;
  // Bytes held back: the start of a length prefix (#need < 0) or of the frame being read
  // (#need >= 0). Only that frame's bytes are kept, as the chunks' own views, so a frame arriving
  // in several chunks is copied at most once and the rest of a chunk is never copied.
  #parts: Buffer[] = [];
  #held = 0;
  // Length of the frame being read, or -1 while its prefix is incomplete.
  #need = -1;
  // Encoding of the frame being read (from its prefix's top bit).
  #encoding: 'utf8' | 'latin1' = 'utf8';

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  get pending(): number {
    return this.#held;
  }

  #checkLength(len: number): void {
    if (len > this.maxBytes) {
      throw new TroupeError(
        'FRAME_TOO_LARGE',
        `peer announced a frame of ${len} bytes; the limit is ${this.maxBytes}`,
      );
    }
  }

  /** A prefix was read: the frame being read is `prefix`'s. */
  #begin(prefix: number): void {
    this.#encoding = prefix >= LATIN1_FLAG ? 'latin1' : 'utf8';
    this.#need = prefix & ~LATIN1_FLAG;
    this.#checkLength(this.#need);
  }

  push(chunk: Uint8Array, onFrame: (frame: string) => void): void {
    let buf = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.#held > 0 || this.#need >= 0) {
      if (this.#need < 0) {
        // Complete the prefix from the chunk's first bytes (the held ones are fewer than 4).
        const missing = FRAME_HEADER_BYTES - this.#held;
        if (buf.length < missing) {
          this.#hold(buf);
          return;
        }
        this.#parts.push(buf.subarray(0, missing));
        const prefix = Buffer.concat(this.#parts, FRAME_HEADER_BYTES).readUInt32BE(0);
        buf = buf.subarray(missing);
        this.#parts = [];
        this.#held = 0;
        this.#begin(prefix);
      } else this.#checkLength(this.#need); // the limit may have been lowered meanwhile
      const missing = this.#need - this.#held;
      if (buf.length < missing) {
        this.#hold(buf);
        return;
      }
      this.#parts.push(buf.subarray(0, missing));
      const frame = joinParts(this.#parts, this.#need, this.#encoding);
      buf = buf.subarray(missing);
      this.#parts = [];
      this.#held = 0;
      this.#need = -1;
      onFrame(frame);
    }
    // Fast path: parse frames in place from the chunk.
    let at = 0;
    const end = buf.length;
    while (end - at >= FRAME_HEADER_BYTES) {
      const prefix = buf.readUInt32BE(at);
      const len = prefix & ~LATIN1_FLAG;
      this.#checkLength(len);
      const encoding = prefix >= LATIN1_FLAG ? 'latin1' : 'utf8';
      if (end - at - FRAME_HEADER_BYTES < len) {
        this.#begin(prefix);
        at += FRAME_HEADER_BYTES;
        break;
      }
      const start = at + FRAME_HEADER_BYTES;
      at = start + len;
      onFrame(buf.toString(encoding, start, at));
    }
    if (at < end) this.#hold(buf.subarray(at));
  }

  #hold(buf: Buffer): void {
    if (buf.length === 0) return;
    this.#parts.push(buf);
    this.#held += buf.length;
  }
}

/**
 * The text of a frame held as `parts` (`total` bytes). Parts whose boundaries fall between
 * characters (Latin-1, or UTF-8 where each part but the last ends in an ASCII byte, so no
 * sequence crosses a boundary and the decoder starts afresh at each) are decoded one by one and
 * the strings joined, which is cheaper than joining the bytes first; otherwise the bytes are joined.
 */
function joinParts(parts: Buffer[], total: number, encoding: 'utf8' | 'latin1'): string {
  if (parts.length === 1) return parts[0].toString(encoding);
  if (encoding === 'utf8') {
    for (let i = 0; i < parts.length - 1; i++) {
      const p = parts[i];
      if (p.length > 0 && p[p.length - 1] >= 0x80)
        return Buffer.concat(parts, total).toString(encoding);
    }
  }
  let text = '';
  for (const p of parts) text += p.toString(encoding);
  return text;
}

/**
 * Encode frames into one buffer, each behind its length prefix. `sizes[i]` must be
 * `Buffer.byteLength(frames[i])`, or, for a frame to send as Latin-1 (see
 * {@link LATIN1_FLAG}), `frames[i].length | LATIN1_FLAG`; `total` is the sum of the byte
 * lengths plus a prefix per frame.
 */
export function encodeFrames(
  frames: readonly string[],
  sizes: readonly number[],
  total: number,
): Buffer {
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (let i = 0; i < frames.length; i++) {
    out.writeUInt32BE(sizes[i] >>> 0, at);
    at += FRAME_HEADER_BYTES;
    at += out.write(frames[i], at, sizes[i] < 0 || sizes[i] >= LATIN1_FLAG ? 'latin1' : 'utf8');
  }
  return out;
}

/**
 * Write `frame` behind its length prefix into `out` at `at`, where `out` has room for
 * {@link maxFrameBytes} of it; the offset after it. Encoding straight into room for the worst
 * case spares the scan `Buffer.byteLength` makes of every frame (as much CPU as the encoding):
 * the byte count is what the encoder wrote. A byte string with characters above U+007F (binary
 * attachments) is written again as Latin-1, as {@link framePrefix} chooses.
 */
export function writeFrame(out: Buffer, at: number, frame: string): number {
  const start = at + FRAME_HEADER_BYTES;
  let bytes = out.write(frame, start, 'utf8');
  let prefix = bytes;
  if (bytes !== frame.length && !NOT_BYTE.test(frame)) {
    bytes = out.write(frame, start, 'latin1');
    prefix = (frame.length | LATIN1_FLAG) >>> 0;
  }
  out.writeUInt32BE(prefix, at);
  return start + bytes;
}

/**
 * {@link writeFrame} into room for one byte per character: `out` holds, from `at`, the prefix and
 * characters of this frame and of the frames still to be written, plus {@link FIT_SPARE_BYTES}.
 * The offset after the frame, or -1 when it needs more room (text above U+00FF: encode the batch
 * again with {@link writeFrame}). A frame that did not fit wrote at least one byte more than its
 * characters (the encoder stops short of the end by less than one character's 4 bytes), so
 * writing exactly as many bytes as characters means pure ASCII, written whole.
 */
export function writeFrameFit(out: Buffer, at: number, frame: string): number {
  const start = at + FRAME_HEADER_BYTES;
  let bytes = out.write(frame, start, 'utf8');
  let prefix = bytes;
  if (bytes !== frame.length) {
    if (NOT_BYTE.test(frame)) return -1;
    bytes = out.write(frame, start, 'latin1');
    prefix = (frame.length | LATIN1_FLAG) >>> 0;
  }
  out.writeUInt32BE(prefix, at);
  return start + bytes;
}

/** Spare bytes at the end of the room {@link writeFrameFit} writes into. */
export const FIT_SPARE_BYTES = 4;

/** Room {@link writeFrame} needs for `frame`: its prefix and 3 bytes per UTF-16 code unit. */
export function maxFrameBytes(frame: string): number {
  return FRAME_HEADER_BYTES + 3 * frame.length;
}

/**
 * The length prefix of `frame` (the size to pass to {@link encodeFrames}); its byte length on the
 * wire is `prefix & ~LATIN1_FLAG`. A frame that is a byte string with characters above U+007F
 * (binary attachments) goes as Latin-1, anything else as UTF-8.
 */
export function framePrefix(frame: string): number {
  const utf8 = Buffer.byteLength(frame, 'utf8');
  if (utf8 === frame.length || NOT_BYTE.test(frame)) return utf8;
  return (frame.length | LATIN1_FLAG) >>> 0;
}

const NOT_BYTE = /[^\u0000-\u00ff]/;
