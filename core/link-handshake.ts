/**
 * The handshake of a link (docs/protocol.md, "Handshake"): protocol version, node ids, and an
 * HMAC challenge-response over the cluster secret in both directions.
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { type ErrorCode, isErrorCode } from './errors.ts';
import {
  HandshakeMessage,
  handshakeTranscript,
  type HandshakeParty,
  type Hello,
  PROTOCOL_VERSION,
} from './protocol.ts';

/** What a handshake needs from its link. */
export interface HandshakeHost {
  /** This node's id and incarnation. */
  readonly self: { readonly id: string; readonly incarnation: string };
  /** Whether this side dialed. */
  readonly initiator: boolean;
  /** Write one handshake message (alone in its frame). */
  sendControl(msg: object): void;
  /** Refuse the link: report, tell the peer when `tellPeer`, close. */
  fail(code: ErrorCode, message: string, tellPeer: boolean): void;
  /** The peer's hello is in and acceptable: take its id, incarnation, addresses and options. */
  learned(hello: Hello): void;
  /** The peer proved the secret: whether it may take its id (a reason to refuse, or undefined). */
  admit(): string | undefined;
  /** Both sides verified each other: the link is up. */
  up(): void;
}

/**
 * One side of a handshake. Each side sends its hello at once, its proof (`auth`) once it has
 * the peer's hello, and `ok` once the peer's proof verified; the link is up when both proofs
 * verified. What the peer sends is taken in any order — a proof that arrives before the hello it
 * answers is held and checked when the hello is in — but each message once: a repeated one is a
 * protocol error.
 */
export class Handshake {
  readonly nonce = bytesToHex(randomBytes(16));
  #host: HandshakeHost;
  #secret: string;
  /** The peer's hello, once it arrived (the proofs need its nonce, id and incarnation). */
  #peerHello: Hello | undefined;
  /** The peer's proof, when it arrived before its hello (held, checked once the hello is in). */
  #peerProof: string | undefined;
  #verified = false;
  #accepted = false;

  constructor(host: HandshakeHost, secret: string) {
    this.#host = host;
    this.#secret = secret;
  }

  /** Whether both sides verified each other. */
  get done(): boolean {
    return this.#verified && this.#accepted;
  }

  /** Take one frame from the peer while the link is not up (or a `reject` once it is). */
  take(frame: string): void {
    const host = this.#host;
    let raw: unknown;
    try {
      raw = JSON.parse(frame);
    } catch {
      raw = undefined;
    }
    const t = typeof raw === 'object' && raw !== null ? (raw as { t?: unknown }).t : undefined;
    if (t !== 'hello' && t !== 'auth' && t !== 'ok' && t !== 'reject') {
      return host.fail('UNAUTHORIZED', 'expected a handshake message before anything else', true);
    }
    const parsed = HandshakeMessage.safeParse(raw);
    if (!parsed.success) {
      // A handshake message that breaks its schema (a 10,000-character id, an id with a `|`, a
      // missing role): the peer speaks the protocol wrongly, which is not a matter of secrets.
      const issue = parsed.error.issues[0];
      return host.fail(
        'PROTOCOL_ERROR',
        `malformed ${t} message: ${issue ? `${issue.path.join('.') || t}: ${issue.message}` : 'invalid'}`,
        true,
      );
    }
    const msg = parsed.data;
    switch (msg.t) {
      case 'hello': {
        if (this.#peerHello) return host.fail('PROTOCOL_ERROR', 'second hello', true);
        if (msg.v !== PROTOCOL_VERSION) {
          return host.fail(
            'VERSION_MISMATCH',
            `peer speaks protocol ${msg.v}, this node ${PROTOCOL_VERSION}`,
            true,
          );
        }
        if (msg.node === host.self.id)
          return host.fail('PROTOCOL_ERROR', "peer has this node's own id", true);
        if (msg.r !== undefined && msg.r === (host.initiator ? 'd' : 'l')) {
          return host.fail(
            'PROTOCOL_ERROR',
            `both ends of the connection are ${host.initiator ? 'dialers' : 'listeners'}: one must dial, the other accept`,
            true,
          );
        }
        this.#peerHello = msg;
        host.learned(msg);
        host.sendControl({ t: 'auth', mac: this.#proof(host.initiator ? 'dialer' : 'listener') });
        if (this.#peerProof !== undefined) this.#verify();
        return;
      }
      case 'auth': {
        if (this.#peerProof !== undefined || this.#verified)
          return host.fail('PROTOCOL_ERROR', 'second auth', true);
        this.#peerProof = msg.mac;
        if (this.#peerHello) this.#verify();
        return;
      }
      case 'ok':
        if (this.#accepted) return host.fail('PROTOCOL_ERROR', 'second ok', true);
        this.#accepted = true;
        if (this.done) host.up();
        return;
      case 'reject': {
        const code = isErrorCode(msg.code) ? msg.code : 'PROTOCOL_ERROR';
        return host.fail(code, `peer refused the link: ${msg.message}`, false);
      }
    }
  }

  /** Check the peer's proof (its hello and its proof are both in). */
  #verify(): void {
    const host = this.#host;
    const expected = this.#proof(host.initiator ? 'listener' : 'dialer');
    const got = this.#peerProof ?? '';
    this.#peerProof = undefined;
    if (!constantTimeEqual(expected, got)) {
      return host.fail(
        'UNAUTHORIZED',
        'peer failed the cluster-secret challenge (wrong secret?)',
        true,
      );
    }
    const refused = host.admit();
    if (refused !== undefined) return host.fail('UNAUTHORIZED', refused, true);
    this.#verified = true;
    host.sendControl({ t: 'ok' });
    if (this.done) host.up();
  }

  /**
   * The proof of the cluster secret by the side in `role` on this connection: an HMAC-SHA256,
   * keyed by the secret, of {@link handshakeTranscript} (both roles' ids, incarnations and nonces,
   * and the prover's role).
   */
  #proof(role: 'dialer' | 'listener'): string {
    const { self, initiator } = this.#host;
    const hello = this.#peerHello!;
    const me: HandshakeParty = { node: self.id, inc: self.incarnation, nonce: this.nonce };
    const peer: HandshakeParty = { node: hello.node, inc: hello.inc, nonce: hello.nonce };
    const text = initiator
      ? handshakeTranscript(role, me, peer)
      : handshakeTranscript(role, peer, me);
    return bytesToHex(hmac(sha256, utf8ToBytes(this.#secret), utf8ToBytes(text)));
  }
}

function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
