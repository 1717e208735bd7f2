import SuperJSON from 'superjson';
import { ActorRef } from './actor-ref.ts';
import { TroupeError } from './errors.ts';
import { isValidNodeId } from './protocol.ts';

/** Payload prefix: plain JSON (fast path). */
export const CODEC_JSON = 'j';
/** Payload prefix: superjson (Dates, Maps, Sets, BigInt, errors, refs, undefined, …). */
export const CODEC_SUPERJSON = 's';

/** Decoding limits; both ends enforce them. */
export interface CodecLimits {
  /** Deepest nesting of arrays/objects/maps/sets a message may have. @default 64 */
  maxDepth: number;
}

/** Binds a decoded ref `{ node, id }` (and the addresses its node listens on) to the decoding node. */
export type RefBinder = (node: string, id: number, addrs: string[] | undefined) => ActorRef<any, any>;
/** The listen addresses known for a node, to carry inside serialized refs. */
export type AddressBook = (node: string) => string[] | undefined;

/**
 * Serializes message payloads for the wire. A payload is one string whose first character names
 * its codec, so relays can forward it without looking inside. Plain JSON values take the
 * `JSON.stringify`/`JSON.parse` fast path; everything else goes through a per-node superjson
 * instance on which `ActorRef` is a registered custom type bound to the decoding node.
 */
export class Codec {
  #sj: SuperJSON;
  #maxDepth: number;

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
          if (!isRefData(v)) throw new TroupeError('INVALID_MESSAGE', 'malformed actor ref in message');
          return bind(v[0], v[1], v[2]);
        },
      },
      'troupe.ref',
    );
  }

  /**
   * Encode a value to a payload string.
   * @throws {TroupeError} `INVALID_MESSAGE` when the value nests deeper than `maxDepth` (or is
   *   cyclic); `SERIALIZATION` when it holds something that cannot cross the wire (a function).
   */
  encode(value: unknown): string {
    if (scan(value, this.#maxDepth)) {
      // undefined at top level is not JSON: let superjson carry it.
      if (value !== undefined) return CODEC_JSON + JSON.stringify(value);
    }
    try {
      return CODEC_SUPERJSON + this.#sj.stringify(value);
    } catch (err) {
      throw new TroupeError('SERIALIZATION', `message cannot be serialized: ${(err as Error).message}`, { cause: err });
    }
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
      if (kind === 106 /* j */) {
        value = JSON.parse(payload.slice(1));
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
          throw new TroupeError('INVALID_MESSAGE', `malformed payload: ${(err as Error).message}`, { cause: err });
        }
        return value;
      }
    } catch (err) {
      if (err instanceof TroupeError) throw err;
      throw new TroupeError('INVALID_MESSAGE', `malformed payload: ${(err as Error).message}`, { cause: err });
    }
    throw new TroupeError('INVALID_MESSAGE', 'payload has an unknown codec');
  }
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
  return Array.isArray(v) && v.length <= 16 && v.every((a) => typeof a === 'string' && a.length <= 512);
}

/**
 * Whether `v` is plain JSON that round-trips exactly through JSON.stringify/parse. Walks the whole
 * value (Maps and Sets too) so it can enforce the depth limit, which also catches cycles.
 */
function scan(v: unknown, depthLeft: number): boolean {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(v) && !Object.is(v, -0);
    case 'object':
      break;
    case 'function':
    case 'symbol':
      throw new TroupeError('SERIALIZATION', `a ${typeof v} cannot be sent in a message`);
    default:
      return false; // undefined, bigint
  }
  if (v === null) return true;
  if (depthLeft <= 0) throw new TroupeError('INVALID_MESSAGE', 'message nests too deeply (or is cyclic)');
  let plain = true;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!scan(v[i], depthLeft - 1)) plain = false;
    return plain;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto === Object.prototype || proto === null) {
    for (const k in v) {
      const x = (v as Record<string, unknown>)[k];
      if (x === undefined || !scan(x, depthLeft - 1)) plain = false;
    }
    return plain;
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
  return false;
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
