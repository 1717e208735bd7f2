/**
 * Cheap validation for the common shapes of actor messages. A zod `safeParse` costs tens to a
 * hundred nanoseconds even for `{ kind: 'inc', n: 1 }` (a context, a result, the output copy);
 * a local one-way send costs about as much in all. For a schema made only of plain objects
 * (zod's default: unknown keys stripped), strings, finite numbers, booleans and literals — with
 * no refinement, transform, coercion, default or optional part — a check compiled from the
 * schema gives exactly zod's output (a fresh object with the schema's keys, in the schema's
 * order). Anything it cannot vouch for, it hands to zod, which also reports the issues.
 */
import type { z } from 'zod';

/** What an actor validates its messages with (a zod schema, or a {@link SchemaCheck} of one). */
export interface MessageSchema {
  safeParse(
    msg: unknown,
  ): { success: true; data: unknown } | { success: false; error: { issues: unknown } };
}

/** Returned by a compiled check when it cannot accept a value (zod then decides). */
const NO = Symbol('no');
type Fast = (value: unknown) => unknown;

/** The part of zod's schema definition a check is compiled from. */
interface Def {
  type?: string;
  checks?: readonly unknown[];
  coerce?: boolean;
  values?: readonly unknown[];
  shape?: Record<string, unknown>;
  catchall?: unknown;
}

/** Most keys, and deepest nesting, of an object schema a check is compiled for. */
const MAX_KEYS = 32;
const MAX_DEPTH = 4;

const isString: Fast = (v) => (typeof v === 'string' ? v : NO);
const isNumber: Fast = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : NO);
const isBoolean: Fast = (v) => (typeof v === 'boolean' ? v : NO);

function compile(schema: unknown, depth: number): Fast | undefined {
  const def = (schema as { _zod?: { def?: Def } } | undefined)?._zod?.def;
  if (def === undefined || def.coerce === true || (def.checks?.length ?? 0) !== 0) return;
  switch (def.type) {
    case 'string':
      return isString;
    case 'number':
      return isNumber;
    case 'boolean':
      return isBoolean;
    case 'literal': {
      const values = def.values ?? [];
      if (values.length !== 1) return;
      const only = values[0];
      if (typeof only !== 'string' && typeof only !== 'boolean' && typeof only !== 'number') return;
      if (typeof only === 'number' && !Number.isFinite(only)) return;
      return (v) => (v === only ? v : NO);
    }
    case 'object': {
      const shape = def.shape;
      if (def.catchall !== undefined || shape === undefined || depth >= MAX_DEPTH) return;
      const keys = Object.keys(shape);
      // `"__proto__": x` in a literal would set the prototype: leave such a shape to zod.
      if (keys.length > MAX_KEYS || keys.includes('__proto__')) return;
      const fields: Fast[] = [];
      for (const k of keys) {
        const f = compile(shape[k], depth + 1);
        if (f === undefined) return;
        fields.push(f);
      }
      return objectCheck(keys, fields);
    }
    default:
      return;
  }
}

/**
 * The check of an object shape: one function with the keys written out (zod's output is an
 * object literal in the schema's key order), since stores under keys held in variables cost
 * several times zod's whole parse. Keys enter the source only as JSON string literals; the
 * field checks are arguments. Where the host forbids code generation (a CSP without
 * 'unsafe-eval'), there is no check and zod validates.
 */
function objectCheck(keys: string[], fields: Fast[]): Fast | undefined {
  const lines = ['if (typeof v !== "object" || v === null || Array.isArray(v)) return NO;'];
  const props: string[] = [];
  keys.forEach((k, i) => {
    lines.push(`const x${i} = f[${i}](v[${JSON.stringify(k)}]); if (x${i} === NO) return NO;`);
    props.push(`${JSON.stringify(k)}: x${i}`);
  });
  lines.push(`return { ${props.join(', ')} };`);
  try {
    const make = new Function('NO', 'f', `return (v) => { ${lines.join(' ')} };`);
    return make(NO, fields) as Fast;
  } catch {
    return undefined;
  }
}

/**
 * A zod schema with a compiled check in front of it (see the module note); made once per
 * schema by {@link checkOf}. @internal
 */
export class SchemaCheck implements MessageSchema {
  readonly #schema: z.ZodType;
  readonly #fast: Fast;
  /**
   * The success result, reused: its reader takes `data` at once (an actor validating one
   * message), so one object serves every message.
   */
  readonly #ok = { success: true as const, data: undefined as unknown };

  constructor(schema: z.ZodType, fast: Fast) {
    this.#schema = schema;
    this.#fast = fast;
  }

  /** As zod's `safeParse`; the success result is reused (read `data` before the next call). */
  safeParse(
    msg: unknown,
  ): { success: true; data: unknown } | { success: false; error: { issues: unknown } } {
    const v = this.#fast(msg);
    if (v === NO) return this.#schema.safeParse(msg);
    this.#ok.data = v;
    return this.#ok;
  }
}

/**
 * What to validate with for `schema`: a {@link SchemaCheck} when its shape is a common one, else
 * the schema itself. `cache` (the node's) keeps one per schema, so spawning many actors of one
 * behaviour compiles once.
 */
export function checkOf(
  schema: z.ZodType,
  cache: WeakMap<z.ZodType, MessageSchema>,
): MessageSchema {
  let c = cache.get(schema);
  if (c === undefined) {
    const fast = compile(schema, 0);
    c = fast === undefined ? schema : new SchemaCheck(schema, fast);
    cache.set(schema, c);
  }
  return c;
}
