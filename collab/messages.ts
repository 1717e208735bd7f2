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
const u8 = () => z.custom<Uint8Array>((v) => v instanceof Uint8Array, { message: 'expected a Uint8Array' });
const bytes = (max: number) =>
  u8().refine((b) => b.byteLength <= max, { message: `more than ${max} bytes` });
const ref = z.instanceof(ActorRef);
/** A participant's role in a document. */
export const Role = z.enum(['write', 'read']);
/** `write`: may edit; `read`: receives the document and presence but its updates are refused. */
export type Role = z.infer<typeof Role>;

/** A participant as the others see it. */
export const Participant = z.object({ ref, user: z.string().max(256), role: Role, client: z.number().int().nonnegative() });
export type Participant = z.infer<typeof Participant>;

/** Messages the document actor accepts, checked with the update size limit `max`. */
export function toActor(max: number) {
  const update = bytes(max);
  return z.discriminatedUnion('t', [
    /** Join (a call): the joiner's state vector; the answer is a {@link Joined}. */
    z.object({
      t: z.literal('join'),
      doc: DocName,
      from: ref,
      user: z.string().min(1).max(256),
      token: z.string().max(4096).optional(),
      /** The joiner's Yjs client id (its awareness state). */
      client: z.number().int().nonnegative(),
      sv: update,
    }),
    /** A Yjs update from participant `from`. */
    z.object({ t: z.literal('update'), doc: DocName, from: ref, update }),
    /** An awareness update (y-protocols/awareness) from participant `from`. */
    z.object({ t: z.literal('awareness'), doc: DocName, from: ref, update }),
    z.object({ t: z.literal('leave'), doc: DocName, from: ref }),
  ]);
}
export type ToActor = z.infer<ReturnType<typeof toActor>>;

/** The document actor's answer to a join. */
export const Joined = z.object({
  t: z.literal('joined'),
  doc: DocName,
  role: Role,
  /** What the joiner lacks (a Yjs update against its state vector). */
  update: u8(),
  /** The actor's state vector: the joiner sends what the actor lacks (offline edits). */
  sv: u8(),
  awareness: u8(),
  peers: z.array(Participant).max(4096),
});
export type Joined = z.infer<typeof Joined>;

/** Messages a participant (provider) accepts, from the document actor or directly from a peer. */
export function toParticipant(max: number) {
  const update = bytes(max);
  return z.discriminatedUnion('t', [
    z.object({ t: z.literal('update'), doc: DocName, from: ref.optional(), update }),
    z.object({ t: z.literal('awareness'), doc: DocName, from: ref.optional(), update }),
    z.object({ t: z.literal('peers'), doc: DocName, peers: z.array(Participant).max(4096) }),
    /** The actor dropped one of this participant's updates. */
    z.object({ t: z.literal('refused'), doc: DocName, reason: z.string().max(1024) }),
  ]);
}
export type ToParticipant = z.infer<ReturnType<typeof toParticipant>>;
