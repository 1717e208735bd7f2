/**
 * The raw baseline's wire: each frame is a 4-byte big-endian byte length and UTF-8 JSON. Kept
 * minimal and separate from the TCP adapter so the baseline measures the bare technique.
 */
import { Buffer } from 'node:buffer';

/** One buffer holding every text behind its length prefix (one write per batch). */
export function encodeFrames(texts: string[]): Buffer {
  let total = 0;
  const sizes = new Array<number>(texts.length);
  for (let i = 0; i < texts.length; i++) total += (sizes[i] = Buffer.byteLength(texts[i])) + 4;
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (let i = 0; i < texts.length; i++) {
    out.writeUInt32BE(sizes[i], at);
    at += 4;
    at += out.write(texts[i], at, 'utf8');
  }
  return out;
}

/** Calls `onFrame` with every complete frame's text, however the stream is cut. */
export function frameReader(onFrame: (text: string) => void): (chunk: Buffer) => void {
  let rest: Buffer | undefined;
  return (chunk) => {
    const buf = rest ? Buffer.concat([rest, chunk]) : chunk;
    rest = undefined;
    let at = 0;
    while (buf.length - at >= 4) {
      const len = buf.readUInt32BE(at);
      if (buf.length - at - 4 < len) break;
      onFrame(buf.toString('utf8', at + 4, at + 4 + len));
      at += 4 + len;
    }
    if (at < buf.length) rest = buf.subarray(at);
  };
}
