/**
 * One connection to a peer, as an adapter provides it: it moves whole frames (strings) in order
 * and reports when it closes. Handshake, authentication, heartbeats, batching and routing are
 * core's job, not the adapter's.
 *
 * Contract (checked by tests/transport-contract.ts for every adapter):
 * - frames arrive whole and in the order sent;
 * - `close()` from either side fires `onclose` exactly once on both sides;
 * - `send()` after close is a no-op (never throws);
 * - a frame up to the adapter's limit arrives intact.
 */
export interface Connection {
  /** Queue one frame for the peer. Never throws; a no-op once closed. */
  send(frame: string): void;
  /** Close the connection; `onclose` fires once on both ends. */
  close(): void;
  /** Set by core: called for every frame received. */
  onframe: ((frame: string) => void) | null;
  /**
   * Set by core: called once when the connection is closed (by either side or by failure). When
   * the adapter itself closed it because the peer broke the adapter's rules (a frame over its
   * byte limit, broken framing), `reason` starts with an error code and `: ` (for example
   * `FRAME_TOO_LARGE: …`) and core reports it as a `protocolError`; other reasons are plain text.
   */
  onclose: ((reason?: string) => void) | null;
  /** Human-readable description of the remote end (an address, a peer id). */
  readonly label: string;
  /** Bytes queued but not yet written, where the transport can tell (for backpressure). */
  readonly bufferedAmount?: number;
  /**
   * Set by core (optional for adapters): call it when `bufferedAmount` has fallen after the
   * transport refused to take more (a socket's `drain`). A link holding envelopes because
   * `bufferedAmount` passed its high-water mark resumes at once; without it core polls
   * `bufferedAmount` every few milliseconds while it holds envelopes.
   */
  ondrain?: (() => void) | null;
  /**
   * Optional, called by core: accept frames of at most `maxBytes` from now on (`undefined`: the
   * adapter's own limit again). Core lowers the limit while the peer has not authenticated
   * (handshake frames are small), so an adapter that buffers partial frames (a byte stream)
   * never holds more than that for a stranger. A frame over it closes the connection with a
   * `FRAME_TOO_LARGE: …` reason, like the adapter's own limit.
   */
  limitFrameBytes?(maxBytes: number | undefined): void;
  /**
   * Optional, for links that can move objects without copying (MessagePort): have `items` go to
   * the peer with the next frames posted, moving what `transfer` lists (a `SharedArrayBuffer`
   * is shared, not moved), and return a positive id for them; a frame sent later names that id
   * and the peer's {@link takeTransfer} hands them back. Throws when the host refuses (a
   * detached buffer). Core calls {@link postStaged} once it has handed over the frame, before
   * the send returns.
   */
  stageTransfer?(items: readonly object[], transfer: readonly object[]): number;
  /**
   * Optional, with {@link stageTransfer}: post now the frames sent so far together with the
   * objects staged, so the sender's buffers are detached when its send returns (as after
   * `postMessage`). Posts nothing while the peer is not known to listen or once closed.
   */
  postStaged?(): void;
  /** Optional, with {@link stageTransfer}: the objects the peer staged under `id` (once), if they arrived. */
  takeTransfer?(id: number): readonly unknown[] | undefined;
  /**
   * Optional, set by adapters that admit connections by a credential of their own (a relay's
   * WebSocket server, by the token in the page's URL): whether the peer that proved the secret
   * may take the node id it claims, asked by core before it accepts the peer. Returns the
   * reason to refuse (the peer gets `UNAUTHORIZED` and the node a `protocolError`) or
   * `undefined` to accept.
   */
  admit?(peer: AdmitPeer): string | undefined;
}

/** What {@link Connection.admit} is shown of a peer that proved the secret. */
export interface AdmitPeer {
  /** The node id the peer claims. */
  node: string;
  /** The peer's incarnation (changes when it restarts under the same id). */
  incarnation: string;
}

/**
 * A way to reach other nodes: dial addresses it understands, and optionally accept connections.
 */
export interface Transport {
  /** Short name: `memory`, `tcp`, `worker`, `websocket`, `webrtc`. */
  readonly name: string;
  /**
   * The secret links made through this transport prove in the handshake, when it differs from
   * the node's (a relay's browser-facing transport uses the credential it hands to pages).
   */
  readonly secret?: string;
  /** Whether `connect(address)` understands this address (for example `tcp://…`). */
  canConnect(address: string): boolean;
  /** Dial `address`; resolves when the connection is open (not yet authenticated). */
  connect(address: string): Promise<Connection>;
  /** Start accepting connections; resolves with the addresses others can dial. */
  listen?(onConnection: (conn: Connection) => void): Promise<string[]>;
  /** Stop listening and close what the transport owns. */
  close(): Promise<void>;
}
