import { TroupeError, type ErrorCode, isErrorCode } from './errors.ts';
import { ACK_FRAME, PROTOCOL_VERSION, type Hello } from './protocol.ts';
import type { Connection } from './transport.ts';
import type { CloseReason } from './close-reason.ts';
import type { LinkOwnerOf, LinkSettings } from './link-owner.ts';
import { Receipts } from './link-accounting.ts';
import { Outbound } from './link-outbound.ts';
import { Handshake, HANDSHAKE_MAX_FRAME, readReject } from './link-handshake.ts';
import { isPiece, laneOf, Reassembler } from './link-lanes.ts';

export type { LinkSettings, LostReason } from './link-owner.ts';
export { HANDSHAKE_MAX_FRAME } from './link-handshake.ts';
/** What a link needs from its node. @internal */
export type LinkOwner = LinkOwnerOf<Link>;

/** The window announced when flow control is off (Infinity): the peer acks this often, for accounting only. */
const ACCOUNTING_WINDOW = 1024 * 1024;
/** The reason of a close without one. */
const CLOSED: CloseReason = { kind: 'lost', text: 'closed' };

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
  /** Admitted by another secret than the node's own (a relay's browser secret): lesser rights. */
  readonly foreign: boolean;
  readonly conn: Connection;
  /** Whether the peer reads short routed headers (its hello had `rh`). */
  shortRouted = false;
  /** Envelopes sent and received, frames sent and received (for the cluster view). */
  readonly stats = { envelopesOut: 0, framesOut: 0, framesIn: 0 };

  #owner: LinkOwner;
  #settings: LinkSettings;
  #state: LinkState = 'handshake';
  /** Until the link is up (then dropped, with its closures). */
  #handshake: Handshake | undefined;
  #reassembler: Reassembler | undefined;
  #lastIn: number;
  /** When the next heartbeat tick is due (0 before the first). */
  #beatDue = 0;
  /** Frames written when the last heartbeat tick ran, and whether that tick queued a heartbeat. */
  #framesAtBeat = 0;
  #beatQueued = 0;
  #timer: unknown;
  /** Why the link closed (undefined while it is open). */
  #closeReason: CloseReason | undefined;
  /** What this link took in and acknowledges (core/link-accounting.ts). */
  readonly #receipts: Receipts;
  /** Why the link stalled ('' while it has not). */
  #stalled = '';
  #out: Outbound;
  constructor(owner: LinkOwner, conn: Connection, initiator: boolean, secret?: string) {
    this.#owner = owner;
    const settings = owner.linkSettings();
    this.#settings = secret === undefined ? settings : { ...settings, secret };
    this.foreign = secret !== undefined && secret !== settings.secret;
    this.conn = conn;
    this.initiator = initiator;
    this.#lastIn = owner.clock.now();
    this.#receipts = new Receipts(() => owner.clock.now());
    const link = this;
    this.#out = new Outbound({
      conn,
      clock: owner.clock,
      settings: this.#settings,
      get peer() {
        return link.peer;
      },
      writable: () => this.#state === 'up' && !this.#stalled,
      overfull: (held) => {
        if (this.#stalled) return;
        // Not now: the caller is in the middle of routing. Until then, nothing more is written.
        this.#stalled = `it holds ${held} chars for the peer (maxLinkHeld ${this.#settings.maxLinkHeld})`;
        queueMicrotask(() => this.#stall());
      },
      wrote: () => {
        this.stats.framesOut++;
      },
    });
    this.#handshake = new Handshake(
      {
        self: owner,
        initiator,
        sendControl: (msg) => this.#sendControl(msg),
        fail: (code, message, tellPeer) => this.#fail(code, message, tellPeer),
        learned: (hello) => this.#learned(hello),
        admit: () => this.#owner.admit(this),
        up: () => this.#up(),
      },
      this.#settings.secret,
    );
    conn.onframe = (f) => this.#onFrame(f);
    conn.onclose = (r) => this.#connClosed(r ?? 'connection closed');
    conn.ondrain = () => this.#out.resume();
    conn.limitFrameBytes?.(HANDSHAKE_MAX_FRAME);
    this.#timer = owner.clock.setTimeout(() => {
      if (this.#state === 'handshake') this.#fail('PROTOCOL_ERROR', 'handshake timed out', true);
    }, this.#settings.handshakeTimeout);
    this.#sendControl({
      t: 'hello',
      v: PROTOCOL_VERSION,
      r: initiator ? 'd' : 'l',
      node: owner.id,
      inc: owner.incarnation,
      nonce: this.#handshake.nonce,
      addrs: owner.listenAddresses(),
      // Our window, so the peer acks often enough; none when flow control is off (Infinity).
      // With flow control off we still ack, for accounting, and announce a nominal window.
      fc:
        Number.isSafeInteger(this.#settings.highWaterMark) && this.#settings.highWaterMark > 0
          ? this.#settings.highWaterMark
          : ACCOUNTING_WINDOW,
      // This link joins chunked envelopes (docs/protocol.md, "Lanes and chunks").
      ch: 1,
      // This node reads short routed headers (docs/protocol.md, "Routed envelopes").
      rh: 1,
    } satisfies Hello);
  }

  get state(): LinkState {
    return this.#state;
  }

  /** Why the link closed (undefined while it is open). */
  get closeReason(): CloseReason | undefined {
    return this.#closeReason;
  }

  /**
   * Queue one envelope; envelopes queued in one tick leave as one frame. Calls, replies and
   * control take the priority lane, written before bulk (sends, exit and DOWN signals), but a
   * call to an actor that queued sends wait for stays behind them. False, queueing nothing,
   * only for a `droppable` envelope (send, call, spawn request) when the link holds
   * `maxLinkQueue` characters (the caller reports a `deadLetter` `overflow`, a `MAILBOX_FULL`
   * call). Replies, exit/DOWN signals and control are never refused (they are small, and
   * dropping them would break links, monitors and calls).
   */
  enqueue(text: string, droppable = false): boolean {
    if (this.#state !== 'up') return true;
    if (!this.#out.enqueue(text, droppable)) return false;
    this.stats.envelopesOut++;
    return true;
  }

  /** See `Outbound.postNow` (after an envelope with a transfer list). */
  postStaged(): void {
    this.#out.postNow();
  }

  /**
   * What the link has written that the peer has not yet taken: the transport's
   * `bufferedAmount` or, when the peer acks, the characters not yet acknowledged (the larger).
   * Above `highWaterMark` new envelopes are held (bulk lower: see core/link-outbound.ts).
   */
  get backlog(): number {
    return this.#out.backlog;
  }

  /** Characters of envelopes queued in the link and not yet written (held or about to leave). */
  get queued(): number {
    return this.#out.queued;
  }

  /** Whether the link is holding envelopes because its backlog is above the high-water mark. */
  get holding(): boolean {
    return this.#out.holding;
  }

  /** Close the link (and its connection) for `reason` (its owner's `onLinkDown` gets it). */
  close(reason: CloseReason = CLOSED): void {
    if (this.#state === 'closed') return;
    // What is queued (even held) goes out before the close: the transport sends it before its FIN.
    if (this.#state === 'up' && !this.#stalled) this.#out.flush(true);
    this.#closeReason = reason;
    this.conn.close();
    this.#closed(reason);
  }

  /**
   * The connection closed under the link. An adapter that refused the peer's input (a frame over
   * its byte limit, broken framing) says so with an error-code prefix (`FRAME_TOO_LARGE: …`):
   * report that as a protocol error, like core's own refusals.
   */
  #connClosed(text: string): void {
    if (this.#state === 'closed') return;
    // The Connection interface reports a close as text; an adapter's refusal is the one case
    // with a meaning, and this is where its text becomes a typed reason.
    const code = /^([A-Z_]+): /.exec(text)?.[1];
    if (code && isErrorCode(code)) {
      const where = `${this.conn.label}${this.peer ? `, node ${this.peer}` : ''}`;
      this.#owner.onLinkError(
        this,
        new TroupeError(code, `${text.slice(code.length + 2)} (${where})`),
      );
      this.#closed({ kind: 'refused', code, text });
      return;
    }
    this.#closed({ kind: 'lost', text });
  }

  #closed(why: CloseReason): void {
    if (this.#state === 'closed') return;
    const wasUp = this.#state === 'up';
    this.#state = 'closed';
    this.#closeReason ??= why;
    const reason = this.#closeReason;
    this.#owner.clock.clearTimeout(this.#timer);
    this.conn.onframe = null;
    this.conn.onclose = null;
    this.conn.ondrain = null;
    const lost = wasUp && reason.kind !== 'shutdown' ? this.#out.unconfirmed() : [];
    this.#out.clear();
    this.#reassembler = undefined;
    this.#owner.onLinkDown(
      this,
      wasUp ? reason : { ...reason, text: `handshake failed: ${reason.text}` },
    );
    if (lost.length !== 0)
      this.#owner.onLinkLost(this, lost, this.#stalled ? 'stalled' : 'unconfirmed');
  }

  /**
   * The peer does not take what we write (see {@link enqueue} and {@link #beat}): close the link
   * at once, without writing what is held, and report that as lost (`stalled`).
   */
  #stall(): void {
    if (this.#state !== 'up') return;
    const why = this.#stalled;
    this.#owner.onLinkError(
      this,
      new TroupeError(
        'TRANSPORT_CLOSED',
        `peer ${this.peer} stalled: ${why}; link closed (${this.conn.label})`,
      ),
    );
    this.#closeReason = { kind: 'lost', code: 'TRANSPORT_CLOSED', text: `stalled: ${why}` };
    this.conn.close();
    this.#closed(this.#closeReason);
  }

  #sendControl(msg: object): void {
    this.conn.send(JSON.stringify(msg));
  }

  #fail(code: ErrorCode, message: string, tellPeer: boolean): void {
    const err = new TroupeError(
      code,
      `${message} (${this.conn.label}${this.peer ? `, node ${this.peer}` : ''})`,
    );
    this.#owner.onLinkError(this, err);
    if (tellPeer) this.#sendControl({ t: 'reject', code, message });
    this.close({ kind: 'refused', code, text: `${code}: ${message}` });
  }

  #onFrame(frame: string): void {
    if (this.#state === 'closed') return;
    this.stats.framesIn++;
    if (typeof frame !== 'string') {
      this.#fail('PROTOCOL_ERROR', 'frame is not text', true);
      return;
    }
    if (frame.length > this.#settings.maxFrameSize) {
      this.#fail(
        'FRAME_TOO_LARGE',
        `frame of ${frame.length} chars exceeds the limit of ${this.#settings.maxFrameSize}`,
        true,
      );
      return;
    }
    if (this.#state === 'handshake' && frame.length > HANDSHAKE_MAX_FRAME) {
      this.#fail(
        'FRAME_TOO_LARGE',
        `frame of ${frame.length} chars before authentication (the limit until then is ${HANDSHAKE_MAX_FRAME})`,
        true,
      );
      return;
    }
    this.#lastIn = this.#owner.clock.now();
    if (this.#state === 'up') {
      // A reject once up (an oversize frame, say) or an ack; no envelope starts like either.
      if (frame.charCodeAt(0) === 123) {
        if (frame.startsWith('{"t":"reject"')) {
          const [code, message] = readReject(frame);
          return this.#fail(code, message, false);
        }
        if (this.#receipts.window > 0 && frame.startsWith('{"t":"k"')) {
          const m = ACK_FRAME.exec(frame);
          if (m) return this.#out.ack(Number(m[1]));
        }
      }
      let priority: boolean; // the peer's lane (pieces name it; a batch is of one lane)
      if (isPiece(frame)) {
        priority = frame.charCodeAt(1) === 48;
        const whole = (this.#reassembler ??= new Reassembler()).take(
          frame,
          this.#settings.maxFrameSize,
        );
        if (whole === null) {
          return this.#fail(
            'FRAME_TOO_LARGE',
            `chunked envelope exceeds the limit of ${this.#settings.maxFrameSize} chars`,
            true,
          );
        }
        if (whole !== undefined) this.#owner.onLinkFrame(this, whole);
      } else {
        priority = laneOf(frame) === 0;
        this.#owner.onLinkFrame(this, frame);
      }
      // Acknowledge after handling, so the window reflects what this node has processed: a
      // peer sending faster than we take frames in is held back by its window.
      const ack = this.#receipts.took(frame.length, priority);
      // Alone in its frame and never held: acks must flow while data waits.
      if (ack !== undefined && this.#state === 'up') this.conn.send(ack);
      return;
    }
    this.#handshake?.take(frame);
  }

  /** The peer's hello is in: who it is, its window, whether it joins chunks. */
  #learned(hello: Hello): void {
    this.peer = hello.node;
    this.peerIncarnation = hello.inc;
    this.peerAddresses = hello.addrs;
    this.#receipts.window = hello.fc ?? 0;
    this.#out.peerWindow = this.#receipts.window;
    this.#out.peerChunks = hello.ch === 1;
    this.shortRouted = hello.rh === 1;
  }

  #up(): void {
    if (this.#state !== 'handshake') return;
    this.#state = 'up';
    this.#handshake = undefined;
    this.conn.limitFrameBytes?.(undefined);
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
    const now = clock.now();
    // A beat that comes late means this node's event loop was busy (a flood being processed):
    // what the peer sent meanwhile may still wait unread in the transport. Silence is only
    // counted while this node could listen, so a busy node does not declare healthy peers down.
    if (this.#beatDue !== 0 && now - this.#beatDue > heartbeatInterval)
      this.#lastIn = Math.max(this.#lastIn, now - heartbeatInterval);
    this.#beatDue = now + heartbeatInterval;
    if (now - this.#lastIn > heartbeatTimeout) {
      this.#owner.onLinkError(
        this,
        new TroupeError('NODE_DOWN', `no heartbeat from ${this.peer} for ${heartbeatTimeout} ms`),
      );
      this.close({ kind: 'lost', code: 'NODE_DOWN', text: 'heartbeat timeout' });
      return;
    }
    // Write stall: holding (the backlog is above the high-water mark) and the peer has taken
    // nothing — no ack, no drain — for writeStallTimeout.
    if (this.#out.holding) {
      this.#out.resume();
      const idle = clock.now() - this.#out.progressAt;
      if (this.#out.holding && idle > this.#settings.writeStallTimeout) {
        this.#stalled = `it took nothing of a ${this.backlog}-char backlog for ${idle} ms (writeStallTimeout ${this.#settings.writeStallTimeout})`;
        this.#stall();
        return;
      }
    }
    // Acks ride on the heartbeat tick too: what arrived since the last one is confirmed soon.
    const ack = this.#receipts.pending();
    if (ack !== undefined) this.conn.send(ack);
    // The heartbeat written on the last tick is not traffic: counted as such, it made every other
    // tick skip its heartbeat, so an idle link spoke every two intervals (plus the ticks'
    // lateness), not every one.
    const sent = this.stats.framesOut - this.#framesAtBeat > this.#beatQueued;
    this.#beatQueued = sent ? 0 : 1;
    if (!sent) this.enqueue('{"t":"hb"}');
    this.#framesAtBeat = this.stats.framesOut;
    this.#timer = clock.setTimeout(this.#beat, heartbeatInterval);
  };
}
