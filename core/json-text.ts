/**
 * JSON text of long strings without the engine's per-character escaping loop. `JSON.stringify`
 * of a 1 MB string costs about six times as much as encoding it to UTF-8 (measured on Node 20),
 * and it was the largest cost of a bulk send (issue 14). A string holding no character that
 * JSON escapes (`"`, `\`, U+0000–U+001F, a lone surrogate) is its own JSON text between two
 * quotes, and looking for those characters one at a time with `indexOf` is a `memchr` over the
 * string. The same test reads such a string back without `JSON.parse`. Shorter strings, and
 * anything holding a character to escape, go through the engine's JSON as before: the text is
 * the same either way. @internal
 */

/** Strings at least this long take the fast path; below it the engine is as fast. */
export const LONG_STRING = 2048;
/** Most values {@link stringifyJson} looks at to find a long string inside an object. */
const LOOK_LIMIT = 64;

/**
 * Every character JSON writes as an escape, except lone surrogates (see {@link isPlain}); the
 * likeliest first, so text that holds one falls back to the engine after few scans.
 */
const ESCAPED: string[] = ['"', '\\', '\n', '\r', '\t'];
for (let c = 0; c < 0x20; c++)
  if (c !== 10 && c !== 13 && c !== 9) ESCAPED.push(String.fromCharCode(c));

const hasWellFormed =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function';

/** Whether `s` holds no character that JSON escapes, so `"` + s + `"` is its JSON text. */
function isPlain(s: string): boolean {
  for (let i = 0; i < ESCAPED.length; i++) if (s.indexOf(ESCAPED[i]) !== -1) return false;
  // A lone surrogate is escaped (\udXXX) by JSON.stringify: leave those to it.
  return hasWellFormed
    ? (s as string & { isWellFormed(): boolean }).isWellFormed()
    : !/[\ud800-\udfff]/.test(s);
}

/**
 * Whether `s` may travel verbatim (the codec's `t` payload): long, without the envelope
 * separator `\n` (batched frames are split on it), and well-formed UTF-16 (a lone surrogate
 * does not survive UTF-8 transports, and JSON keeps it as an escape). Two scans of the string
 * at most (one for a one-byte string), against the 32 of {@link isPlain} and none on receipt.
 */
export function isVerbatim(s: string): boolean {
  return (
    s.length >= LONG_STRING &&
    s.indexOf('\n') === -1 &&
    (hasWellFormed
      ? (s as string & { isWellFormed(): boolean }).isWellFormed()
      : !/[\ud800-\udfff]/.test(s))
  );
}

/** JSON text of a string: the same as `JSON.stringify(s)`, faster for long plain ones. */
export function quoteJson(s: string): string {
  return s.length >= LONG_STRING && isPlain(s) ? `"${s}"` : JSON.stringify(s);
}

/**
 * `JSON.stringify(value)` for a plain JSON value (strings, finite numbers other than -0,
 * booleans, null, arrays, plain objects without undefined values: what the codec's fast path
 * admits), with long strings quoted by {@link quoteJson}. Objects are walked by hand only when
 * a long string is near the top; everything else is the engine's own `JSON.stringify`.
 */
export function stringifyJson(value: unknown): string {
  if (typeof value === 'string') return quoteJson(value);
  if (typeof value !== 'object' || value === null) return JSON.stringify(value);
  return holdsLong(value, 3, LOOK_LIMIT) === FOUND ? walk(value) : JSON.stringify(value);
}

/** What {@link holdsLong} returns when it found a long string, and when its budget ran out. */
const FOUND = -1;
const SPENT = -2;

/**
 * Whether a long string sits within `depth` levels of `v`, looking at `budget` values at most:
 * FOUND, SPENT, or what is left of the budget (no object per message for it).
 */
function holdsLong(v: object, depth: number, budget: number): number {
  let left = budget;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length && left >= 0; i++) left = lookAt(v[i], depth, left);
    return left;
  }
  for (const k in v) {
    left = lookAt((v as Record<string, unknown>)[k], depth, left);
    if (left < 0) return left;
  }
  return left;
}

function lookAt(x: unknown, depth: number, budget: number): number {
  if (budget === 0) return SPENT;
  if (typeof x === 'string') return x.length >= LONG_STRING ? FOUND : budget - 1;
  return typeof x === 'object' && x !== null && depth > 1
    ? holdsLong(x, depth - 1, budget - 1)
    : budget - 1;
}

function walk(v: unknown): string {
  if (typeof v === 'string') return quoteJson(v);
  if (typeof v !== 'object' || v === null) return JSON.stringify(v);
  if (Array.isArray(v)) {
    let out = '[';
    for (let i = 0; i < v.length; i++) out += (i === 0 ? '' : ',') + walk(v[i]);
    return `${out}]`;
  }
  let out = '{';
  let first = true;
  for (const k of Object.keys(v)) {
    out += `${first ? '' : ','}${JSON.stringify(k)}:${walk((v as Record<string, unknown>)[k])}`;
    first = false;
  }
  return `${out}}`;
}

/**
 * Read the JSON text `text` from index `from` on: for a long string literal holding no escape
 * the string itself (a slice, no parse); anything else through `JSON.parse`.
 * @throws what `JSON.parse` throws, for malformed text.
 */
export function parseJson(text: string, from: number): unknown {
  const last = text.length - 1;
  if (
    last - from - 1 >= LONG_STRING &&
    text.charCodeAt(from) === 34 &&
    text.charCodeAt(last) === 34
  ) {
    const inner = text.slice(from + 1, last);
    // No quote, backslash or control character inside: exactly the string JSON.parse returns
    // (a lone surrogate is taken as it is, as JSON.parse does).
    let plain = true;
    for (let i = 0; i < ESCAPED.length && plain; i++)
      if (inner.indexOf(ESCAPED[i]) !== -1) plain = false;
    if (plain) return inner;
  }
  return JSON.parse(from === 0 ? text : text.slice(from));
}
