import type { ErrorCode } from './errors.ts';

/**
 * Why a link closed, as a typed value. A failed attach reads the link's typed `closeCode`
 * ({@link linkFailure}); the connector's redial decision still reads the close as text
 * (`handshake failed: CODE: message`, `shutdown`, `heartbeat timeout`, …): this module is the
 * one place that reads that text, so the rest of the core works with the values below.
 */
export type CloseReason =
  /** This node or its peer ended the link on purpose: it is not redialed. */
  | { kind: 'deliberate'; text: string }
  /** The handshake or the link failed with a protocol-level code (sent by the peer or found here). */
  | { kind: 'refused'; code: LinkFailureCode; text: string }
  /** The transport closed, a timeout fired, or the link stalled. */
  | { kind: 'lost'; text: string };

/** The codes a failed link reports to whoever attached it; any other failure is `TRANSPORT_CLOSED`. */
export type LinkFailureCode = Extract<
  ErrorCode,
  'UNAUTHORIZED' | 'VERSION_MISMATCH' | 'FRAME_TOO_LARGE' | 'PROTOCOL_ERROR'
>;

const FAILURE_CODES: ReadonlySet<string> = new Set<LinkFailureCode>([
  'UNAUTHORIZED',
  'VERSION_MISMATCH',
  'FRAME_TOO_LARGE',
  'PROTOCOL_ERROR',
]);

/** Closes made on purpose (a code among them means the peer refused us: no point redialing). */
const DELIBERATE = [
  'shutdown',
  'disconnected',
  'duplicate link',
  'peer restarted',
  'peer redialed',
] as const;

/** The typed reason of a link closed with `text` (see the note on {@link CloseReason}). */
export function closeReasonOf(text: string): CloseReason {
  for (const d of DELIBERATE) if (text.startsWith(d)) return { kind: 'deliberate', text };
  const body = text.startsWith('handshake failed: ') ? text.slice(18) : text;
  const colon = body.indexOf(':');
  const code = colon > 0 ? body.slice(0, colon) : '';
  if (FAILURE_CODES.has(code) && /^[A-Z_]+$/.test(code))
    return { kind: 'refused', code: code as LinkFailureCode, text };
  return { kind: 'lost', text };
}

/** The error code a link that closed with `code` (its typed `closeCode`) fails its `attach` with. */
export function linkFailure(code: ErrorCode | undefined): LinkFailureCode | 'TRANSPORT_CLOSED' {
  return code !== undefined && FAILURE_CODES.has(code)
    ? (code as LinkFailureCode)
    : 'TRANSPORT_CLOSED';
}

/** Whether a link closed with `text` must not be redialed (a deliberate close, or refused for its secret or version). */
export function isDeliberateClose(text: string): boolean {
  return (
    closeReasonOf(text).kind === 'deliberate' ||
    text.startsWith('UNAUTHORIZED') ||
    text.startsWith('VERSION_MISMATCH')
  );
}
