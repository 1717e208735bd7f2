import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import type { Clock } from './clock.ts';
import { TroupeError, type ErrorCode, isErrorCode } from './errors.ts';
import { HandshakeMessage, PROTOCOL_VERSION, ENVELOPE_SEPARATOR, type Hello } from './protocol.ts';
import type { Connection } from './transport.ts';

/** Link settings, taken from the node options. */
export interface LinkSettings {
  secret: string;
  heartbeatInterval: number;
  heartbeatTimeout: number;
  handshakeTimeout: number;
  maxFrameSize: number;
}

/** What a link needs from its node. @internal */
export interface LinkOwner {
  readonly id: string;
  readonly incarnation: string;
  readonly clock: Clock;
  listenAddresses(): string[];
  linkSettings(): LinkSettings;
  onLinkUp(link: Link): void;
  onLinkFrame(link: Link, frame: string): void;
  onLinkDown(link: Link, reason: string): void;
  onLinkError(link: Link, error: TroupeError): void;
}

type LinkState = 'handshake' | 'up' | 'closed';

/**
 * One authenticated connection to a peer node. It runs the handshake (protocol version, node
 * ids, HMAC challenge-response over the cluster secret in both directions), then batches the
 * envelopes written in one tick into one frame, sends heartbeats when idle, and declares the
 * peer down when nothing arrives within the heartbeat timeout.
 */
export class Link {
  /** The peer's node id (known once the peer's hello arrived). */
  peer = '';
  /** The peer's incarnation: changes when the peer restarts under the same id. */
  peerIncarnation = '';
  /** The peer's listen addresses, from its hello. */
  peerAddresses: string[] = [];
  /** Whether this side dialed. */
  readonly initiator: boolean;
  readonly conn: Connection;
  /** Envelopes sent and received, frames sent and received (for the cluster view). */
  readonly stats = { envelopesOut: 0, framesOut: 0, framesIn: 0 };

  #owner: LinkOwner;
  #settings: LinkSettings;
  #state: LinkState = 'handshake';
  #nonce = bytesToHex(randomBytes(16));
  #peerNonce = '';
  #peerVerified = false;
  #peerAccepted = false;
  #out: string[] = [];
  #outChars = 0;
  #flushScheduled = false;
  #lastIn: number;
  #sentSinceBeat = false;
  #timer: unknown;
  #closeReason = '';

  constructor(owner: LinkOwner, conn: Connection, initiator: boolean, secret?: string) {
    this.#owner = owner;
    const settings = owner.linkSettings();
    this.#settings = secret === undefined ? settings : { ...settings, secret };
    this.conn = conn;
    this.initiator = initiator;
    this.#lastIn = owner.clock.now();
    conn.onframe = (f) => this.#onFrame(f);
    conn.onclose = (r) => this.#connClosed(r ?? 'connection closed');
    this.#timer = owner.clock.setTimeout(() => {
      if (this.#state === 'handshake') this.#fail('PROTOCOL_ERROR', 'handshake timed out', true);
    }, this.#settings.handshakeTimeout);
    this.#sendControl({
      t: 'hello',
      v: PROTOCOL_VERSION,
      node: owner.id,
      inc: owner.incarnation,
      nonce: this.#nonce,
      addrs: owner.listenAddresses(),
    } satisfies Hello);
  }

  get state(): LinkState {
    return this.#state;
  }

  get closeReason(): string {
    return this.#closeReason;
  }

  /** Queue one envelope; envelopes queued in one tick leave as one frame. */
  enqueue(text: string): void {
    if (this.#state !== 'up') return;
    this.#out.push(text);
    this.#outChars += text.length + 1;
    this.stats.envelopesOut++;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(this.#flush);
    }
  }

  /** Write what is queued now. */
  #flush = (): void => {
    this.#flushScheduled = false;
    const out = this.#out;
    if (out.length === 0 || this.#state !== 'up') return;
    this.#out = [];
    const total = this.#outChars;
    this.#outChars = 0;
    this.#sentSinceBeat = true;
    const max = this.#settings.maxFrameSize;
    if (total <= max) {
      this.stats.framesOut++;
      this.conn.send(out.length === 1 ? out[0] : out.join(ENVELOPE_SEPARATOR));
      return;
    }
    // Split into frames under the limit; each envelope alone is under it (checked at enqueue).
    let start = 0;
    let size = 0;
    for (let i = 0; i < out.length; i++) {
      const len = out[i].length + 1;
      if (size + len > max && i > start) {
        this.stats.framesOut++;
        this.conn.send(out.slice(start, i).join(ENVELOPE_SEPARATOR));
        start = i;
        size = 0;
      }
      size += len;
    }
    this.stats.framesOut++;
    this.conn.send(out.slice(start).join(ENVELOPE_SEPARATOR));
  };

  /** Close the link (and its connection) with `reason`. */
  close(reason = 'closed'): void {
    if (this.#state === 'closed') return;
    if (this.#state === 'up') this.#flush();
    this.#closeReason = reason;
    this.conn.close();
    this.#closed(reason);
  }

  /**
   * The connection closed under the link. An adapter that refused the peer's input (a frame over
   * its byte limit, broken framing) says so with an error-code prefix (`FRAME_TOO_LARGE: …`):
   * report that as a protocol error, like core's own refusals.
   */
  #connClosed(reason: string): void {
    if (this.#state === 'closed') return;
    const code = /^([A-Z_]+): /.exec(reason)?.[1];
    if (code && isErrorCode(code)) {
      const where = `${this.conn.label}${this.peer ? `, node ${this.peer}` : ''}`;
      this.#owner.onLinkError(this, new TroupeError(code, `${reason.slice(code.length + 2)} (${where})`));
    }
    this.#closed(reason);
  }

  #closed(reason: string): void {
    if (this.#state === 'closed') return;
    const wasUp = this.#state === 'up';
    this.#state = 'closed';
    if (!this.#closeReason) this.#closeReason = reason;
    this.#owner.clock.clearTimeout(this.#timer);
    this.conn.onframe = null;
    this.conn.onclose = null;
    this.#out = [];
    this.#owner.onLinkDown(this, wasUp ? this.#closeReason : `handshake failed: ${this.#closeReason}`);
  }

  #sendControl(msg: object): void {
    this.conn.send(JSON.stringify(msg));
  }

  #fail(code: ErrorCode, message: string, tellPeer: boolean): void {
    const err = new TroupeError(code, `${message} (${this.conn.label}${this.peer ? `, node ${this.peer}` : ''})`);
    this.#owner.onLinkError(this, err);
    if (tellPeer) this.#sendControl({ t: 'reject', code, message });
    this.close(`${code}: ${message}`);
  }

  #onFrame(frame: string): void {
    if (this.#state === 'closed') return;
    this.stats.framesIn++;
    if (typeof frame !== 'string') {
      this.#fail('PROTOCOL_ERROR', 'frame is not text', true);
      return;
    }
    if (frame.length > this.#settings.maxFrameSize) {
      this.#fail('FRAME_TOO_LARGE', `frame of ${frame.length} chars exceeds the limit of ${this.#settings.maxFrameSize}`, true);
      return;
    }
    this.#lastIn = this.#owner.clock.now();
    if (this.#state === 'up') {
      // A peer refusing the link after it came up (an oversize frame, say) sends the same
      // reject as during the handshake; no envelope starts like it (core writes this key order).
      if (frame.startsWith('{"t":"reject"')) return this.#onHandshake(frame);
      this.#owner.onLinkFrame(this, frame);
      return;
    }
    this.#onHandshake(frame);
  }

  #onHandshake(frame: string): void {
    let msg: HandshakeMessage;
    try {
      const parsed = HandshakeMessage.safeParse(JSON.parse(frame));
      if (!parsed.success) throw new Error('not a handshake message');
      msg = parsed.data;
    } catch {
      this.#fail('UNAUTHORIZED', 'expected a handshake message before anything else', true);
      return;
    }
    const owner = this.#owner;
    switch (msg.t) {
      case 'hello': {
        if (this.peer) return this.#fail('PROTOCOL_ERROR', 'second hello', true);
        if (msg.v !== PROTOCOL_VERSION) {
          return this.#fail('VERSION_MISMATCH', `peer speaks protocol ${msg.v}, this node ${PROTOCOL_VERSION}`, true);
        }
        if (msg.node === owner.id) return this.#fail('PROTOCOL_ERROR', 'peer has this node\'s own id', true);
        this.peer = msg.node;
        this.peerIncarnation = msg.inc;
        this.peerAddresses = msg.addrs;
        this.#peerNonce = msg.nonce;
        this.#sendControl({ t: 'auth', mac: this.#mac(msg.nonce, this.#nonce, owner.id, msg.node) });
        return;
      }
      case 'auth': {
        if (!this.peer || this.#peerVerified) return this.#fail('PROTOCOL_ERROR', 'auth out of order', true);
        const expected = this.#mac(this.#nonce, this.#peerNonce, this.peer, owner.id);
        if (!constantTimeEqual(expected, msg.mac)) {
          return this.#fail('UNAUTHORIZED', 'peer failed the cluster-secret challenge (wrong secret?)', true);
        }
        this.#peerVerified = true;
        this.#sendControl({ t: 'ok' });
        return this.#maybeUp();
      }
      case 'ok':
        if (!this.peer) return this.#fail('PROTOCOL_ERROR', 'ok out of order', true);
        this.#peerAccepted = true;
        return this.#maybeUp();
      case 'reject': {
        const code = isErrorCode(msg.code) ? msg.code : 'PROTOCOL_ERROR';
        return this.#fail(code, `peer refused the link: ${msg.message}`, false);
      }
    }
  }

  #maybeUp(): void {
    if (!this.#peerVerified || !this.#peerAccepted) return;
    this.#state = 'up';
    const clock = this.#owner.clock;
    clock.clearTimeout(this.#timer);
    this.#lastIn = clock.now();
    this.#beat();
    this.#owner.onLinkUp(this);
  }

  /** Heartbeat tick: send one when idle, declare the peer down when silent too long. */
  #beat = (): void => {
    if (this.#state !== 'up') return;
    const clock = this.#owner.clock;
    const { heartbeatInterval, heartbeatTimeout } = this.#settings;
    if (clock.now() - this.#lastIn > heartbeatTimeout) {
      this.#owner.onLinkError(this, new TroupeError('NODE_DOWN', `no heartbeat from ${this.peer} for ${heartbeatTimeout} ms`));
      this.close('heartbeat timeout');
      return;
    }
    if (!this.#sentSinceBeat) this.enqueue('{"t":"hb"}');
    this.#sentSinceBeat = false;
    this.#timer = clock.setTimeout(this.#beat, heartbeatInterval);
  };

  /** HMAC over both nonces and both ids: proves the sender knows the secret, bound to this exchange. */
  #mac(challenge: string, ownNonce: string, prover: string, verifier: string): string {
    const text = `troupe/${PROTOCOL_VERSION}|${challenge}|${ownNonce}|${prover}|${verifier}`;
    return bytesToHex(hmac(sha256, utf8ToBytes(this.#settings.secret), utf8ToBytes(text)));
  }
}

function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
