import { z } from 'zod';
import { ActorRef } from '../core/index.ts';

/**
 * The messages of troupe/yjs, checked with zod where they arrive. Yjs updates, state vectors and
 * awareness updates are `Uint8Array`s: they travel as bytes (troupe's codec carries binary
 * values without base64, see docs/protocol.md).
 */

/** Largest Yjs update (or join state) accepted by default, in bytes. @default 4 MiB */
export const DEFAULT_MAX_UPDATE_BYTES = 4 * 1024 * 1024;

/** Document names: 1–128 characters, no control characters. */
export const DocName = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[^\u0000-\u001f\u007f]+$/, 'a document name holds no control characters');

/** Any `Uint8Array` (a Node `Buffer` too), whatever its buffer. */
const u8 = () =>
  z.custom<Uint8Array>((v) => v instanceof Uint8Array, { message: 'expected a Uint8Array' });
const bytes = (max: number) =>
  u8().refine((b) => b.byteLength <= max, { message: `more than ${max} bytes` });
const ref = z.instanceof(ActorRef);
/** A participant's role in a document. */
export const Role = z.enum(['write', 'read']);
/** `write`: may edit; `read`: receives the document and presence but its updates are refused. */
export type Role = z.infer<typeof Role>;

/** A participant as the others see it. */
export const Participant = z.object({
  ref,
  user: z.string().max(256),
  role: Role,
  client: z.number().int().nonnegative(),
});
export type Participant = z.infer<typeof Participant>;

/**
 * A per-membership session key: made by the document actor at random on each join and sent only
 * to the joining participant's ref. Every later message of that membership carries it (both
 * ways); the actor finds the member by its key, never by a ref a message claims.
 */
export const SessionKey = z.string().regex(/^[0-9a-f]{32}$/, 'a session key is 32 hex digits');

/** Messages the document actor accepts, checked with the update size limit `max`. */
export function toActor(max: number) {
  const update = bytes(max);
  return z.discriminatedUnion('t', [
    /**
     * Join (a call, answered `{ t: 'joining' }` or `{ t: 'denied' }`): the {@link Joined} with the
     * session key goes to `from` only, so claiming another ref gains nothing.
     */
    z.object({
      t: z.literal('join'),
      doc: DocName,
      from: ref,
      user: z.string().min(1).max(256),
      token: z.string().max(4096).optional(),
      /** The joiner's Yjs client id (its awareness state). */
      client: z.number().int().nonnegative(),
      sv: update,
      /** Echoed in the {@link Joined}: the joiner takes no `joined` it did not ask for. */
      nonce: SessionKey,
      /** The joiner's previous session key, if any: that membership ends (a rejoin). */
      previous: SessionKey.optional(),
    }),
    /** A Yjs update from the member holding `session`. */
    z.object({ t: z.literal('update'), doc: DocName, session: SessionKey, update }),
    /** An awareness update (y-protocols/awareness) from the member holding `session`. */
    z.object({ t: z.literal('awareness'), doc: DocName, session: SessionKey, update }),
    z.object({ t: z.literal('leave'), doc: DocName, session: SessionKey }),
  ]);
}
export type ToActor = z.infer<ReturnType<typeof toActor>>;

/** The document actor's answer to a join, sent to the joining ref only. */
export const Joined = z.object({
  t: z.literal('joined'),
  doc: DocName,
  /** The joiner's nonce, echoed. */
  nonce: SessionKey,
  /** This membership's session key (secret between the actor and this participant). */
  session: SessionKey,
  role: Role,
  /** What the joiner lacks (a Yjs update against its state vector). */
  update: u8(),
  /** The actor's state vector: the joiner sends what the actor lacks (offline edits). */
  sv: u8(),
  awareness: u8(),
  peers: z.array(Participant).max(4096),
});
export type Joined = z.infer<typeof Joined>;

/**
 * Messages a participant (provider) accepts — only from the document actor: each carries the
 * participant's own session key, which nobody else holds, so a forged one is dropped.
 */
export function toParticipant(max: number) {
  const update = bytes(max);
  return z.discriminatedUnion('t', [
    Joined,
    z.object({ t: z.literal('update'), doc: DocName, session: SessionKey, update }),
    z.object({ t: z.literal('awareness'), doc: DocName, session: SessionKey, update }),
    z.object({
      t: z.literal('peers'),
      doc: DocName,
      session: SessionKey,
      peers: z.array(Participant).max(4096),
    }),
    /** The actor dropped one of this participant's updates. */
    z.object({
      t: z.literal('refused'),
      doc: DocName,
      session: SessionKey,
      reason: z.string().max(1024),
    }),
  ]);
}
export type ToParticipant = z.infer<ReturnType<typeof toParticipant>>;

/** A fresh random 128-bit key as 32 hex digits (Web Crypto: browsers, workers and Node alike). */
export function randomKey(): string {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}
