import type { ErrorCode } from './errors.ts';

/**
 * Why a link closed, as a typed value: what the link hands its owner when it goes down, what a
 * failed `attach` and the connector's redial decision read. `text` is for people (the
 * `linkDown` event, error messages) and is never read back.
 */
export type CloseReason =
  /** This node is shutting down. */
  | { readonly kind: 'shutdown'; readonly text: string }
  /** This node ended the link on purpose (a disconnect, a duplicate or replaced link). */
  | { readonly kind: 'deliberate'; readonly text: string }
  /** The handshake or the link failed with a protocol-level code (sent by the peer or found here). */
  | { readonly kind: 'refused'; readonly code: ErrorCode; readonly text: string }
  /**
   * The transport closed, or the link gave up on its peer: `NODE_DOWN` for a heartbeat timeout,
   * `TRANSPORT_CLOSED` for a peer that stalled; no code for a connection that closed under it.
   */
  | {
      readonly kind: 'lost';
      readonly code?: 'NODE_DOWN' | 'TRANSPORT_CLOSED';
      readonly text: string;
    };

/** The codes a failed link reports to whoever attached it; any other failure is `TRANSPORT_CLOSED`. */
export type LinkFailureCode = Extract<
  ErrorCode,
  'UNAUTHORIZED' | 'VERSION_MISMATCH' | 'FRAME_TOO_LARGE' | 'PROTOCOL_ERROR'
>;

const FAILURE_CODES: ReadonlySet<ErrorCode> = new Set<LinkFailureCode>([
  'UNAUTHORIZED',
  'VERSION_MISMATCH',
  'FRAME_TOO_LARGE',
  'PROTOCOL_ERROR',
]);

/** The error code a link that closed for `reason` fails its `attach` with. */
export function linkFailure(reason: CloseReason): LinkFailureCode | 'TRANSPORT_CLOSED' {
  return reason.kind === 'refused' && FAILURE_CODES.has(reason.code)
    ? (reason.code as LinkFailureCode)
    : 'TRANSPORT_CLOSED';
}

/**
 * Whether a dialed link that closed for `reason` is redialed: not after a shutdown or a
 * deliberate close, nor when the peer refused this node's secret or protocol version.
 */
export function isRedialed(reason: CloseReason): boolean {
  if (reason.kind === 'shutdown' || reason.kind === 'deliberate') return false;
  return !(
    reason.kind === 'refused' &&
    (reason.code === 'UNAUTHORIZED' || reason.code === 'VERSION_MISMATCH')
  );
}
