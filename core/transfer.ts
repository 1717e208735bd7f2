import { TroupeError } from './errors.ts';
import type { Connection } from './transport.ts';

/**
 * Transfer lists (`send(msg, { transfer })`, the same for `call` and replies): across a
 * MessagePort link (Web Workers, `worker_threads`) the objects a message holds that are in its
 * transfer list — `ArrayBuffer`s, typed arrays over them, `MessagePort`s, a `SharedArrayBuffer`
 * (shared, not moved) — travel beside the envelope instead of inside its text: the sender
 * replaces each with a placeholder, hands the objects to the connection
 * ({@link Connection.stageTransfer}), which posts them at once with the host's transfer list,
 * and the envelope's payload becomes `x<id>,<payload>`. The receiving node takes them back from
 * its connection ({@link Connection.takeTransfer}) and puts them where the placeholders are.
 * The port keeps order, so the objects are there before the envelope that needs them.
 *
 * A small message of plain data (see {@link cloneable}) with a list of buffers skips the
 * placeholders and the codec: the message itself is staged, the host's structured clone
 * carries it with the buffers inside, and the payload is just `v<id>`.
 *
 * Only on the node's own link to the target and only when the connection can do it; anywhere
 * else (TCP, a relay, a routed path) the message is encoded whole, as without a transfer list.
 */

/** Key of a placeholder object: `{ "~troupe.xfer": index }`. */
const MARK = '~troupe.xfer';
/** First character of a payload whose objects travel beside it. */
export const TRANSFER_PREFIX = 120; // x
/** First character of a payload that is only a transfer id: the message travels beside it, whole. */
export const CLONE_PREFIX = 118; // v
/**
 * Limits of a message sent as a structured clone ({@link cloneable}): it is not counted by
 * the link's flow control (only its id is), so only a small message goes that way.
 */
const CLONE_DEPTH = 16;
const CLONE_VALUES = 256;
const CLONE_CHARS = 16 * 1024;
/** Most nesting the walks look through (the codec's own default limit). */
const MAX_DEPTH = 64;

/** Options of a send, a call or a reply that carry a transfer list. */
export interface TransferOptions {
  /**
   * Objects of the message to move instead of copy on a MessagePort link (`ArrayBuffer`,
   * `MessagePort`, …; a `SharedArrayBuffer` listed here is shared). The sender's buffers are
   * detached afterwards, as with `postMessage`. Elsewhere the message is copied as usual.
   * @default []
   */
  transfer?: readonly object[];
}

/**
 * The message with every object in `list` (and every typed array over a buffer in it) replaced
 * by a placeholder, and those objects in placeholder order. Copies only the plain objects and
 * arrays on the way to a replaced object; the caller's message is never changed.
 */
export function extractTransfer(
  value: unknown,
  list: readonly object[],
): { value: unknown; items: object[] } {
  // Plain functions and one state object rather than closures made per call: this runs on every
  // send with a transfer list, beside a post that costs a few microseconds.
  // A long list is looked up through a Set and a Map; a short one (the usual one or two
  // buffers) by a scan, which costs less than building them.
  const long = list.length > SHORT_LIST;
  const x: Extraction = {
    list,
    set: long ? new Set<unknown>(list) : undefined,
    index: long ? new Map<object, number>() : undefined,
    items: [],
  };
  return { value: extract(value, 0, x), items: x.items };
}

/** Longest transfer list looked through by a scan. */
const SHORT_LIST = 8;

interface Extraction {
  list: readonly object[];
  set: Set<unknown> | undefined;
  index: Map<object, number> | undefined;
  items: object[];
}

function has(x: Extraction, o: object): boolean {
  return x.set === undefined ? x.list.includes(o) : x.set.has(o);
}

function listed(x: Extraction, v: object): boolean {
  return has(x, v) || (ArrayBuffer.isView(v) && has(x, v.buffer));
}

function placeholder(x: Extraction, v: object): { [MARK]: number } {
  let i = x.index === undefined ? x.items.indexOf(v) : (x.index.get(v) ?? -1);
  if (i < 0) {
    i = x.items.push(v) - 1;
    x.index?.set(v, i);
  }
  return { [MARK]: i };
}

function extract(v: unknown, depth: number, x: Extraction): unknown {
  if (typeof v !== 'object' || v === null || depth > MAX_DEPTH) return v;
  if (listed(x, v)) return placeholder(x, v);
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const e = extract(v[i], depth + 1, x);
      if (e !== v[i]) (out ??= v.slice())[i] = e;
    }
    return out ?? v;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return v;
  let out: Record<string, unknown> | undefined;
  for (const k of Object.keys(v)) {
    const e0 = (v as Record<string, unknown>)[k];
    const e = extract(e0, depth + 1, x);
    if (e !== e0) (out ??= { ...(v as Record<string, unknown>) })[k] = e;
  }
  return out ?? v;
}

/**
 * Put `items` back where {@link extractTransfer} left placeholders (in place: `value` was just
 * decoded). @throws {TroupeError} `INVALID_MESSAGE` for a placeholder with no item.
 */
export function restoreTransfer(value: unknown, items: readonly unknown[]): unknown {
  return restore(value, 0, items);
}

function restore(v: unknown, depth: number, items: readonly unknown[]): unknown {
  if (typeof v !== 'object' || v === null || depth > MAX_DEPTH) return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = restore(v[i], depth + 1, items);
    return v;
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1 && keys[0] === MARK) {
    const i = o[MARK];
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= items.length) {
      throw new TroupeError('INVALID_MESSAGE', 'a transferred object is missing');
    }
    return items[i];
  }
  for (const k of keys) o[k] = restore(o[k], depth + 1, items);
  return v;
}

/** What {@link fits} may still visit. */
interface CloneBudget {
  values: number;
  chars: number;
}

/**
 * Whether `value` may go as the host's structured clone instead of through the codec, with
 * nothing lost or changed that the codec would keep: a tree of at most {@link CLONE_VALUES}
 * plain objects, arrays, primitives (no symbol), buffers and views over them, no deeper than
 * {@link CLONE_DEPTH}, with at most {@link CLONE_CHARS} characters of strings and no
 * `__proto__` key (which the receiver refuses). Anything else — an actor ref, a Date, a Map, a
 * class instance, a function — takes the codec, as does a large message (the link's flow
 * control counts only the characters of what it writes). Only with a list of buffers
 * (`ArrayBuffer`, `SharedArrayBuffer`), which a port posts as they are.
 */
export function cloneable(value: unknown, list: readonly object[]): boolean {
  for (let i = 0; i < list.length; i++) {
    const x = list[i];
    if (!(x instanceof ArrayBuffer) && (SAB === undefined || !(x instanceof SAB))) return false;
  }
  return fits(value, CLONE_DEPTH, { values: CLONE_VALUES, chars: CLONE_CHARS });
}

function fits(v: unknown, depth: number, left: CloneBudget): boolean {
  switch (typeof v) {
    case 'string':
      left.chars -= v.length;
      return left.chars >= 0;
    case 'number':
    case 'boolean':
    case 'undefined':
    case 'bigint':
      return true;
    case 'object':
      break;
    default:
      return false; // a function, a symbol
  }
  if (v === null) return true;
  if (--left.values < 0 || depth <= 0) return false;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!fits(v[i], depth - 1, left)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto === Object.prototype || proto === null) {
    for (const k in v) {
      if (k === '__proto__' || !fits((v as Record<string, unknown>)[k], depth - 1, left))
        return false;
    }
    return true;
  }
  return v instanceof ArrayBuffer || ArrayBuffer.isView(v) || isShared(v);
}

/** The host's `SharedArrayBuffer`, where it has one. */
const SAB = (globalThis as { SharedArrayBuffer?: new () => object }).SharedArrayBuffer;

function isShared(v: object): boolean {
  return SAB !== undefined && v instanceof SAB;
}

/**
 * Encode `value` for the peer at the other end of `conn` with the objects of `list` beside it,
 * when `conn` can carry them (else undefined: encode as usual): `v<id>` when the value itself
 * goes as a structured clone ({@link cloneable}), else `x<id>,<payload>`.
 * @throws {TroupeError} `SERIALIZATION` when the host refuses the list (a detached buffer, …).
 */
export function encodeTransfer(
  conn: Connection | undefined,
  value: unknown,
  list: readonly object[],
  encode: (v: unknown) => string,
): string | undefined {
  if (conn?.stageTransfer === undefined || list.length === 0) return undefined;
  if (cloneable(value, list)) return `v${conn.stageTransfer([value as object], list)}`;
  const { value: stripped, items } = extractTransfer(value, list);
  const payload = encode(stripped);
  const id = conn.stageTransfer(items, list);
  return `x${id},${payload}`;
}

/**
 * Decode an `x<id>,<payload>` payload that arrived on `conn`.
 * @throws {TroupeError} `INVALID_MESSAGE` when it is malformed or its objects did not arrive.
 */
export function decodeTransfer(
  payload: string,
  conn: Connection | undefined,
  decode: (p: string) => unknown,
): unknown {
  const comma = payload.indexOf(',');
  const id = Number(payload.slice(1, comma));
  if (comma < 2 || comma > 17 || !Number.isSafeInteger(id) || id <= 0)
    throw new TroupeError('INVALID_MESSAGE', 'malformed transfer payload');
  const items = conn?.takeTransfer?.(id);
  if (items === undefined)
    throw new TroupeError(
      'INVALID_MESSAGE',
      `the objects of transfer ${id} did not arrive on this link`,
    );
  return restoreTransfer(decode(payload.slice(comma + 1)), items);
}

/**
 * Decode a `v<id>` payload that arrived on `conn`: the message is the one object staged under
 * `id`, checked as a decoded payload is (no deeper than `maxDepth`, no `__proto__` key).
 * @throws {TroupeError} `INVALID_MESSAGE` when it is malformed or did not arrive.
 */
export function decodeCloned(
  payload: string,
  conn: Connection | undefined,
  maxDepth: number,
): unknown {
  const id = Number(payload.slice(1));
  if (payload.length < 2 || payload.length > 17 || !Number.isSafeInteger(id) || id <= 0)
    throw new TroupeError('INVALID_MESSAGE', 'malformed transfer payload');
  const items = conn?.takeTransfer?.(id);
  if (items === undefined || items.length !== 1)
    throw new TroupeError(
      'INVALID_MESSAGE',
      `the message of transfer ${id} did not arrive on this link`,
    );
  checkCloned(items[0], maxDepth);
  return items[0];
}

/** A structured clone from the peer holds no more than a decoded payload may. */
function checkCloned(v: unknown, depthLeft: number): void {
  if (typeof v !== 'object' || v === null) return;
  if (depthLeft <= 0) throw new TroupeError('INVALID_MESSAGE', 'message nests too deeply');
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) checkCloned(v[i], depthLeft - 1);
    return;
  }
  if (v instanceof Map) {
    for (const [k, x] of v) {
      checkCloned(k, depthLeft - 1);
      checkCloned(x, depthLeft - 1);
    }
    return;
  }
  if (v instanceof Set) {
    for (const x of v) checkCloned(x, depthLeft - 1);
    return;
  }
  for (const k in v) {
    if (k === '__proto__') throw new TroupeError('INVALID_MESSAGE', 'message has a __proto__ key');
    checkCloned((v as Record<string, unknown>)[k], depthLeft - 1);
  }
}
