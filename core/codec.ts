import SuperJSON from 'superjson';
import { ActorRef } from './actor-ref.ts';
import { TroupeError } from './errors.ts';
import { isValidNodeId } from './protocol.ts';
import { isVerbatim, LONG_STRING, parseJson, stringifyJson } from './json-text.ts';

/** Payload prefix: plain JSON (fast path). */
export const CODEC_JSON = 'j';
/** Payload prefix: superjson (Dates, Maps, Sets, BigInt, errors, refs, undefined, …). */
export const CODEC_SUPERJSON = 's';
/**
 * Payload prefix: superjson with binary attachments. Every `Uint8Array` (a Node `Buffer` too) and
 * `ArrayBuffer` in the message leaves the JSON and travels after it as a byte string, one
 * character per byte (see {@link Codec} and docs/protocol.md, "Binary payloads").
 */
export const CODEC_BINARY = 'b';
/**
 * Payload prefix: a long string as itself, `t<the string>` (no quotes, no escapes), for a string
 * message of at least 2048 characters holding no `\n` and no lone surrogate (docs/protocol.md,
 * "Payloads"). It spares the sender the JSON escaping scan and the receiver its parse: the
 * costliest steps of a bulk send of a long string (issue 14).
 */
export const CODEC_TEXT = 't';

/** Most binary attachments (Uint8Array / ArrayBuffer values) one message may hold. */
export const MAX_ATTACHMENTS = 4096;

/** Decoding limits; both ends enforce them. */
export interface CodecLimits {
  /** Deepest nesting of arrays/objects/maps/sets a message may have. @default 64 */
  maxDepth: number;
}

/** Binds a decoded ref `{ node, id }` (and the addresses its node listens on) to the decoding node. */
export type RefBinder = (
  node: string,
  id: number,
  addrs: string[] | undefined,
) => ActorRef<any, any>;
/** The listen addresses known for a node, to carry inside serialized refs. */
export type AddressBook = (node: string) => string[] | undefined;

/**
 * Serializes message payloads for the wire. A payload is one string whose first character names
 * its codec, so relays can forward it without looking inside. Plain JSON values take the
 * `JSON.stringify`/`JSON.parse` fast path; everything else goes through a per-node superjson
 * instance on which `ActorRef` is a registered custom type bound to the decoding node.
 *
 * Binary values (`Uint8Array`, `ArrayBuffer`) are not turned into JSON (superjson would write a
 * `Uint8Array` as an array of numbers, about 3.6 characters per byte; base64 would be 1.33): they
 * follow the JSON as byte strings, one character (U+0000–U+00FF) per byte, with `\n` (which
 * separates envelopes in a frame) and the escape character `\v` written as two characters. A
 * frame made only of such characters stays one byte per character end to end: JavaScript
 * engines store it as a one-byte string (structured clone: MessagePort, BroadcastChannel), and
 * the TCP, WebSocket and WebRTC adapters send it as Latin-1 bytes instead of UTF-8.
 */
export class Codec {
  #sj: SuperJSON;
  #maxDepth: number;
  /** Attachments gathered while encoding / handed out while decoding one message (both synchronous). */
  #out: (Uint8Array | ArrayBuffer)[] = [];
  #in: Uint8Array[] = [];

  constructor(bind: RefBinder, limits: CodecLimits, addressesOf: AddressBook = () => undefined) {
    this.#maxDepth = limits.maxDepth;
    this.#sj = new SuperJSON();
    this.#sj.registerCustom<ActorRef<any, any>, [string, number] | [string, number, string[]]>(
      {
        isApplicable: (v): v is ActorRef<any, any> => v instanceof ActorRef,
        // A ref carries its node's listen addresses where known, so a receiver with no link to
        // that node can dial it directly (transitive connection, as in Erlang).
        serialize: (r) => {
          const addrs = addressesOf(r.node);
          return addrs && addrs.length ? [r.node, r.id, addrs] : [r.node, r.id];
        },
        deserialize: (v) => {
          if (!isRefData(v))
            throw new TroupeError('INVALID_MESSAGE', 'malformed actor ref in message');
          return bind(v[0], v[1], v[2]);
        },
      },
      'troupe.ref',
    );
    // Registered before superjson's own typed-array rule is consulted, so a Uint8Array becomes an
    // attachment index rather than an array of numbers.
    this.#sj.registerCustom<Uint8Array, number>(
      {
        isApplicable: (v): v is Uint8Array => v instanceof Uint8Array,
        serialize: (v) => this.#out.push(v) - 1,
        deserialize: (i) => this.#attachment(i),
      },
      'troupe.u8',
    );
    this.#sj.registerCustom<ArrayBuffer, number>(
      {
        isApplicable: (v): v is ArrayBuffer => v instanceof ArrayBuffer,
        serialize: (v) => this.#out.push(v) - 1,
        deserialize: (i) => {
          const u = this.#attachment(i);
          return (
            u.buffer.byteLength === u.byteLength ? u.buffer : u.slice().buffer
          ) as ArrayBuffer;
        },
      },
      'troupe.ab',
    );
  }

  #attachment(i: unknown): Uint8Array {
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= this.#in.length) {
      throw new TroupeError('INVALID_MESSAGE', 'malformed binary attachment reference in message');
    }
    return this.#in[i];
  }

  /**
   * Encode a value to a payload string.
   * @throws {TroupeError} `INVALID_MESSAGE` when the value nests deeper than `maxDepth` (or is
   *   cyclic); `SERIALIZATION` when it holds something that cannot cross the wire (a function).
   */
  encode(value: unknown): string {
    if (typeof value === 'string' && isVerbatim(value)) return CODEC_TEXT + value;
    const found = scan(value, this.#maxDepth);
    // undefined at top level is not JSON: let superjson carry it. Without a long string
    // anywhere, stringifyJson would find none to quote by hand: the engine's JSON at once.
    if ((found & PLAIN) !== 0 && value !== undefined)
      return CODEC_JSON + ((found & LONG) !== 0 ? stringifyJson(value) : JSON.stringify(value));
    let json: string;
    let attachments: (Uint8Array | ArrayBuffer)[];
    try {
      json = this.#sj.stringify(value);
    } catch (err) {
      throw new TroupeError(
        'SERIALIZATION',
        `message cannot be serialized: ${(err as Error).message}`,
        { cause: err },
      );
    } finally {
      attachments = this.#out;
      this.#out = [];
    }
    if (attachments.length === 0) return CODEC_SUPERJSON + json;
    if (attachments.length > MAX_ATTACHMENTS) {
      throw new TroupeError(
        'INVALID_MESSAGE',
        `message holds ${attachments.length} binary values; the limit is ${MAX_ATTACHMENTS}`,
      );
    }
    // b<json length>,<byte length of each attachment>…:<json><attachments as byte strings>
    let head = CODEC_BINARY + json.length;
    const parts: string[] = [];
    for (const a of attachments) {
      const bytes = a instanceof Uint8Array ? a : new Uint8Array(a);
      head += ',' + bytes.byteLength;
      parts.push(bytesToText(bytes));
    }
    return head + ':' + json + parts.join('');
  }

  /**
   * Decode a payload string.
   * @throws {TroupeError} `INVALID_MESSAGE` for malformed text, an unknown codec, excess depth,
   *   a `__proto__` key or a malformed ref.
   */
  decode(payload: string): unknown {
    const kind = payload.charCodeAt(0);
    let value: unknown;
    try {
      if (kind === 116 /* t */) return payload.slice(1);
      if (kind === 106 /* j */) {
        value = parseJson(payload, 1);
        checkDecoded(value, this.#maxDepth);
        return value;
      }
      if (kind === 115 /* s */) {
        const raw = JSON.parse(payload.slice(1));
        checkDecoded(raw, this.#maxDepth + 4);
        value = this.#sj.deserialize(raw);
        // superjson's reference table (`referentialEqualities`) can make a peer's payload decode
        // to a cyclic or deeper value than its JSON, or copy an inherited method into it (a
        // source path of `valueOf`): hold the result to what the encoder itself would accept.
        try {
          scan(value, this.#maxDepth);
        } catch (err) {
          throw new TroupeError('INVALID_MESSAGE', `malformed payload: ${(err as Error).message}`, {
            cause: err,
          });
        }
        return value;
      }
      if (kind === 98 /* b */) return this.#decodeBinary(payload);
    } catch (err) {
      if (err instanceof TroupeError) throw err;
      throw new TroupeError('INVALID_MESSAGE', `malformed payload: ${(err as Error).message}`, {
        cause: err,
      });
    }
    throw new TroupeError('INVALID_MESSAGE', 'payload has an unknown codec');
  }

  #decodeBinary(payload: string): unknown {
    const colon = payload.indexOf(':');
    // The head is at most MAX_ATTACHMENTS + 1 numbers of at most 16 digits.
    if (colon < 0 || colon > (MAX_ATTACHMENTS + 1) * 17)
      throw new TroupeError('INVALID_MESSAGE', 'malformed binary payload head');
    const head = payload.slice(1, colon).split(',');
    const numbers = head.map(Number);
    if (
      head.length < 2 ||
      !head.every((h, i) => /^\d{1,16}$/.test(h) && Number.isSafeInteger(numbers[i]))
    ) {
      throw new TroupeError('INVALID_MESSAGE', 'malformed binary payload head');
    }
    const jsonEnd = colon + 1 + numbers[0];
    if (jsonEnd > payload.length)
      throw new TroupeError('INVALID_MESSAGE', 'binary payload shorter than its head says');
    const raw = JSON.parse(payload.slice(colon + 1, jsonEnd));
    checkDecoded(raw, this.#maxDepth + 4);
    const attachments: Uint8Array[] = [];
    let at = jsonEnd;
    for (let i = 1; i < numbers.length; i++) {
      const bytes = new Uint8Array(numbers[i]);
      at = textToBytes(payload, at, bytes);
      attachments.push(bytes);
    }
    if (at !== payload.length)
      throw new TroupeError('INVALID_MESSAGE', 'binary payload longer than its head says');
    this.#in = attachments;
    let value: unknown;
    try {
      value = this.#sj.deserialize(raw);
    } finally {
      this.#in = [];
    }
    try {
      scan(value, this.#maxDepth);
    } catch (err) {
      throw new TroupeError('INVALID_MESSAGE', `malformed payload: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return value;
  }
}

/** Escape character of byte strings: `\v\x01` stands for byte 0x0A, `\v\x02` for 0x0B. */
const ESCAPE = 0x0b;

/** Bytes as a byte string (one char per byte), `\n` and `\v` escaped. */
function bytesToText(bytes: Uint8Array): string {
  let text = '';
  const step = 8192;
  for (let i = 0; i < bytes.length; i += step) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + step) as unknown as number[]);
  }
  return text.replace(/[\n\v]/g, (c) => (c === '\n' ? '\v\x01' : '\v\x02'));
}

/**
 * Read a byte string from `text` at `at` into `out` (its length says how many bytes); returns
 * where it ended.
 * @throws {TroupeError} `INVALID_MESSAGE` when the text ends early or holds a character that is
 *   not a byte or a bad escape.
 */
function textToBytes(text: string, at: number, out: Uint8Array): number {
  const n = out.length;
  let p = at;
  for (let j = 0; j < n; j++) {
    let c = text.charCodeAt(p++);
    if (c === ESCAPE) {
      const d = text.charCodeAt(p++);
      if (d === 1) c = 0x0a;
      else if (d === 2) c = ESCAPE;
      else throw new TroupeError('INVALID_MESSAGE', 'bad escape in a binary attachment');
    } else if (!(c <= 0xff) || c === 0x0a) {
      // NaN (past the end) fails `c <= 0xff` too.
      throw new TroupeError(
        'INVALID_MESSAGE',
        'binary attachment is truncated or holds a character that is not a byte',
      );
    }
    out[j] = c;
  }
  return p;
}

function isRefData(v: unknown): v is [string, number, string[] | undefined] {
  return (
    Array.isArray(v) &&
    (v.length === 2 || (v.length === 3 && isAddressList(v[2]))) &&
    isValidNodeId(v[0]) &&
    Number.isSafeInteger(v[1]) &&
    (v[1] as number) > 0
  );
}

function isAddressList(v: unknown): v is string[] {
  return (
    Array.isArray(v) && v.length <= 16 && v.every((a) => typeof a === 'string' && a.length <= 512)
  );
}

/** What {@link scan} found: the value is plain JSON; it holds a long string (`LONG_STRING`). */
const PLAIN = 1;
const LONG = 2;

/**
 * Whether `v` is plain JSON that round-trips exactly through JSON.stringify/parse (`PLAIN`), and
 * whether it holds a string of at least `LONG_STRING` characters (`LONG`: only then can
 * `stringifyJson`'s look near the top find one). Walks the whole value (Maps and Sets too) so
 * it can enforce the depth limit, which also catches cycles.
 */
function scan(v: unknown, depthLeft: number): number {
  switch (typeof v) {
    case 'string':
      return v.length >= LONG_STRING ? PLAIN | LONG : PLAIN;
    case 'boolean':
      return PLAIN;
    case 'number':
      return Number.isFinite(v) && !Object.is(v, -0) ? PLAIN : 0;
    case 'object':
      break;
    case 'function':
    case 'symbol':
      throw new TroupeError('SERIALIZATION', `a ${typeof v} cannot be sent in a message`);
    default:
      return 0; // undefined, bigint
  }
  if (v === null) return PLAIN;
  if (depthLeft <= 0)
    throw new TroupeError('INVALID_MESSAGE', 'message nests too deeply (or is cyclic)');
  let plain = PLAIN;
  let long = 0;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const f = scan(v[i], depthLeft - 1);
      plain &= f;
      long |= f;
    }
    return plain | (long & LONG);
  }
  const proto = Object.getPrototypeOf(v);
  if (proto === Object.prototype || proto === null) {
    for (const k in v) {
      const x = (v as Record<string, unknown>)[k];
      const f = x === undefined ? 0 : scan(x, depthLeft - 1);
      plain &= f;
      long |= f;
    }
    return plain | (long & LONG);
  }
  if (v instanceof Map) {
    for (const [k, x] of v) {
      scan(k, depthLeft - 1);
      scan(x, depthLeft - 1);
    }
  } else if (v instanceof Set) {
    for (const x of v) scan(x, depthLeft - 1);
  } else if (v instanceof Error) {
    // superjson carries name and message
  }
  return 0;
}

/** Depth and prototype-pollution check of freshly parsed JSON. */
function checkDecoded(v: unknown, depthLeft: number): void {
  if (typeof v !== 'object' || v === null) return;
  if (depthLeft <= 0) throw new TroupeError('INVALID_MESSAGE', 'message nests too deeply');
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) checkDecoded(v[i], depthLeft - 1);
    return;
  }
  for (const k in v) {
    if (k === '__proto__') throw new TroupeError('INVALID_MESSAGE', 'message has a __proto__ key');
    checkDecoded((v as Record<string, unknown>)[k], depthLeft - 1);
  }
}
