/**
 * Byte strings: frames whose characters are all U+0000–U+00FF (troupe's codec writes binary
 * attachments that way, one character per byte). Message transports that carry bytes send such a
 * frame as its Latin-1 bytes (one byte per character) instead of UTF-8 (two bytes for each
 * character from U+0080), so binary payloads cross at about 1x their size. Host-neutral (no
 * `Buffer`, no `TextDecoder`: the Encoding standard's `latin1` is windows-1252, not Latin-1).
 */

const NOT_BYTE = /[^\u0000-\u00ff]/;
const NOT_ASCII = /[\u0080-\u00ff]/;

/**
 * Whether sending `frame` as Latin-1 bytes is both possible (no character above U+00FF) and worth
 * it (some character above U+007F: for pure ASCII, UTF-8 text is the same bytes).
 */
export function isByteString(frame: string): boolean {
  return NOT_ASCII.test(frame) && !NOT_BYTE.test(frame);
}

/** The Latin-1 bytes of `text` (every character must be ≤ U+00FF), after `prefix` bytes of room. */
export function byteStringToBytes(text: string, prefix = 0): Uint8Array {
  const out = new Uint8Array(prefix + text.length);
  for (let i = 0; i < text.length; i++) out[prefix + i] = text.charCodeAt(i);
  return out;
}

/** The byte string of `bytes[from..]` (one character per byte). */
export function bytesToByteString(bytes: Uint8Array, from = 0): string {
  let text = '';
  const step = 8192;
  for (let i = from; i < bytes.length; i += step) {
    text += String.fromCharCode.apply(
      null,
      bytes.subarray(i, Math.min(i + step, bytes.length)) as unknown as number[],
    );
  }
  return text;
}
