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
 * Only on the node's own link to the target and only when the connection can do it; anywhere
 * else (TCP, a relay, a routed path) the message is encoded whole, as without a transfer list.
 */

/** Key of a placeholder object: `{ "~troupe.xfer": index }`. */
const MARK = '~troupe.xfer';
/** First character of a payload whose objects travel beside it. */
export const TRANSFER_PREFIX = 120; // x
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

/**
 * Encode `value` for the peer at the other end of `conn` with the objects of `list` beside it,
 * when `conn` can carry them (else undefined: encode as usual).
 * @throws {TroupeError} `SERIALIZATION` when the host refuses the list (a detached buffer, …).
 */
export function encodeTransfer(
  conn: Connection | undefined,
  value: unknown,
  list: readonly object[],
  encode: (v: unknown) => string,
): string | undefined {
  if (conn?.stageTransfer === undefined || list.length === 0) return undefined;
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
