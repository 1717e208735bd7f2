import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, randomBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { PROTOCOL_VERSION, type Node } from '../../core/index.ts';
import { createMemoryPair, type MemoryConnection } from '../../adapters/memory.ts';
import {
  DIRECT_CALL,
  DIRECT_REPLY,
  DIRECT_SEND,
  directFields,
  parseDirectHeader,
} from './envelope.ts';

/** The incarnation raw peers claim in their hello. */
const RAW_INCARNATION = 'raw-incarnation';

/** The ids, incarnation and nonce of one side of a handshake. */
export interface Party {
  node: string;
  inc: string;
  nonce: string;
}

/**
 * The handshake proof of `role` (docs/protocol.md, "Handshake"), written independently of
 * core/link.ts: HMAC-SHA256 keyed by the secret over the JSON array
 * `["troupe-link-proof", version, role, dialer id, dialer incarnation, dialer nonce, listener id,
 * listener incarnation, listener nonce]`, as hex.
 */
export function handshakeProof(
  secret: string,
  role: 'dialer' | 'listener',
  dialer: Party,
  listener: Party,
): string {
  const text = JSON.stringify([
    'troupe-link-proof',
    PROTOCOL_VERSION,
    role,
    dialer.node,
    dialer.inc,
    dialer.nonce,
    listener.node,
    listener.inc,
    listener.nonce,
  ]);
  return bytesToHex(hmac(sha256, utf8ToBytes(secret), utf8ToBytes(text)));
}

/** Options of {@link rawPeer}. */
export interface RawPeerOptions {
  /** The node id this raw peer claims. @default 'raw' */
  id?: string;
  /** The secret it proves (wrong on purpose in some tests). @default the node's default */
  secret?: string;
}

/** What `node.attach` ended with. */
export type AttachResult = { ok: true; peer: string } | { ok: false; error: unknown };

/**
 * A hand-driven peer on one end of a memory pair whose other end is attached to a real node:
 * the test writes the frames, so it can speak the protocol correctly or break it on purpose.
 * Everything it receives is split into envelopes (a frame may batch several) and queued.
 */
export class RawPeer {
  readonly id: string;
  readonly conn: MemoryConnection;
  /** The node's hello, once it arrived. */
  nodeHello: { node: string; nonce: string; v: number; inc: string } | undefined;
  closed = false;
  readonly nonce = bytesToHex(randomBytes(16));
  #secret: string;
  #inbox: string[] = [];
  #waiters: { pred: (e: string) => boolean; resolve: (e: string) => void }[] = [];
  #closeWaiters: (() => void)[] = [];
  #nextCall = 1;

  constructor(conn: MemoryConnection, options: RawPeerOptions) {
    this.conn = conn;
    this.id = options.id ?? 'raw';
    this.#secret = options.secret ?? 'troupe-insecure-default';
    conn.onframe = (frame) => {
      for (const env of frame.split('\n')) this.#push(env);
    };
    conn.onclose = () => {
      this.closed = true;
      for (const w of this.#closeWaiters.splice(0)) w();
    };
  }

  /** Characters of the envelopes received after the handshake, as sent (before {@link #fromDirect}). */
  receivedChars = 0;

  #push(env: string): void {
    if (!/^\{"t":"(hello|auth|ok)"/.test(env)) this.receivedChars += env.length;
    env = this.#fromDirect(env);
    if (!this.nodeHello) {
      try {
        const m = JSON.parse(env) as {
          t?: string;
          node: string;
          nonce: string;
          v: number;
          inc: string;
        };
        if (m.t === 'hello') this.nodeHello = m;
      } catch {
        /* not JSON: keep it in the inbox */
      }
    }
    const i = this.#waiters.findIndex((w) => w.pred(env));
    if (i >= 0) {
      const [w] = this.#waiters.splice(i, 1);
      w.resolve(env);
      return;
    }
    this.#inbox.push(env);
  }

  /**
   * The node writes traffic to its direct peer in the short direct form (`S<a>`, `C<a>,<c>`,
   * `R<c>,<k>`; docs/protocol.md): rewrite it in the JSON form, so tests read one form.
   */
  #fromDirect(env: string): string {
    const kind = env.charCodeAt(0);
    if (kind !== DIRECT_SEND && kind !== DIRECT_CALL && kind !== DIRECT_REPLY) return env;
    const tab = env.indexOf('\t');
    if (!parseDirectHeader(env, tab < 0 ? env.length : tab)) return env;
    const { x, y } = directFields;
    const route = { n: this.id, o: this.nodeHello?.node ?? '?', h: 0 };
    const head =
      kind === DIRECT_SEND
        ? { t: 's', ...route, a: x }
        : kind === DIRECT_CALL
          ? { t: 'c', ...route, a: x, c: y }
          : { t: 'r', ...route, c: x, k: y };
    return JSON.stringify(head) + (tab < 0 ? '' : env.slice(tab));
  }

  /** Every envelope received and not yet taken by {@link next}. */
  get inbox(): readonly string[] {
    return this.#inbox;
  }

  /** The next received envelope satisfying `pred` (taken from the inbox). */
  next(pred: (env: string) => boolean, what: string, ms = 2000): Promise<string> {
    const i = this.#inbox.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.#inbox.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (e: string) => (clearTimeout(timer), resolve(e)) };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        reject(
          new Error(
            `raw peer: no ${what} within ${ms} ms; inbox: ${JSON.stringify(this.#inbox).slice(0, 500)}`,
          ),
        );
      }, ms);
      this.#waiters.push(w);
    });
  }

  /** The next handshake message of type `t` (parsed). */
  async nextControl<T = Record<string, unknown>>(t: string): Promise<T> {
    const text = await this.next((e) => e.startsWith(`{"t":"${t}"`), `"${t}" message`);
    return JSON.parse(text) as T;
  }

  /** Resolves when the connection closed (from either side). */
  whenClosed(ms = 2000): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`raw peer: connection not closed within ${ms} ms`)),
        ms,
      );
      this.#closeWaiters.push(() => (clearTimeout(timer), resolve()));
    });
  }

  /** Write one raw frame. */
  send(frame: string): void {
    this.conn.send(frame);
  }

  sendJson(msg: object): void {
    this.send(JSON.stringify(msg));
  }

  /** Our hello (fields can be overridden to misbehave). */
  sendHello(overrides: Record<string, unknown> = {}): void {
    this.sendJson({
      t: 'hello',
      v: PROTOCOL_VERSION,
      r: 'd',
      node: this.id,
      inc: RAW_INCARNATION,
      nonce: this.nonce,
      addrs: [],
      ...overrides,
    });
  }

  /**
   * A handshake proof as docs/protocol.md defines it (written here independently of core): the
   * raw peer is the dialer, the node the listener; `role` says whose proof it is.
   */
  proof(role: 'dialer' | 'listener', secret = this.#secret): string {
    const h = this.nodeHello;
    if (!h) throw new Error('no hello from the node yet');
    return handshakeProof(
      secret,
      role,
      { node: this.id, inc: RAW_INCARNATION, nonce: this.nonce },
      h,
    );
  }

  /**
   * Run the whole handshake as a well-behaved peer (`helloOverrides`: extra hello fields, such
   * as `rh: 1`). Resolves once both sides accepted; throws if the node's own proof of the secret
   * does not verify.
   */
  async handshake(helloOverrides: Record<string, unknown> = {}): Promise<void> {
    await this.next(() => this.nodeHello !== undefined, 'node hello');
    const hello = this.nodeHello!;
    this.sendHello(helloOverrides);
    const auth = await this.nextControl<{ mac: string }>('auth');
    if (auth.mac !== this.proof('listener'))
      throw new Error(`node failed the secret challenge (node ${hello.node})`);
    this.sendJson({ t: 'auth', mac: this.proof('dialer') });
    await this.nextControl('ok');
    this.sendJson({ t: 'ok' });
  }

  /** The node's id (from its hello). */
  get node(): string {
    if (!this.nodeHello) throw new Error('no hello from the node yet');
    return this.nodeHello.node;
  }

  /** An envelope header routed from this peer to actor `a` of the node. */
  header(t: 's' | 'c', a: number, extra: Record<string, unknown> = {}, target = this.node): string {
    return JSON.stringify({ t, n: target, o: this.id, h: 0, a, ...extra });
  }

  /** Send `value` (plain JSON codec) to actor `actorId`. */
  sendTo(actorId: number, value: unknown, target = this.node): void {
    this.send(`${this.header('s', actorId, {}, target)}\tj${JSON.stringify(value)}`);
  }

  /** Call actor `actorId` with a raw payload string; resolves with the reply header and payload. */
  async callRaw(
    actorId: number,
    payload: string,
    target = this.node,
  ): Promise<{ ok: boolean; payload: string }> {
    const c = this.#nextCall++;
    this.send(`${this.header('c', actorId, { c }, target)}\t${payload}`);
    const env = await this.next((e) => {
      if (!e.startsWith('{"t":"r"')) return false;
      const tab = e.indexOf('\t');
      return (JSON.parse(tab < 0 ? e : e.slice(0, tab)) as { c: number }).c === c;
    }, `reply to call ${c}`);
    const tab = env.indexOf('\t');
    const head = JSON.parse(env.slice(0, tab)) as { k: 0 | 1 };
    return { ok: head.k === 1, payload: env.slice(tab + 1) };
  }

  /** Call actor `actorId` with a plain-JSON value; resolves with the decoded JSON reply. */
  async call(
    actorId: number,
    value: unknown,
    target = this.node,
  ): Promise<{ ok: boolean; value: unknown }> {
    const r = await this.callRaw(actorId, `j${JSON.stringify(value)}`, target);
    if (r.payload[0] !== 'j')
      throw new Error(`raw peer: reply is not plain JSON: ${r.payload.slice(0, 100)}`);
    return { ok: r.ok, value: JSON.parse(r.payload.slice(1)) };
  }
}

/**
 * Attach one end of a fresh memory pair to `node` (as the accepting side) and return a
 * {@link RawPeer} on the other end, plus how the node's `attach` ended.
 */
export function rawPeer(
  node: Node,
  options: RawPeerOptions = {},
): { raw: RawPeer; attached: Promise<AttachResult> } {
  const [nodeEnd, rawEnd] = createMemoryPair({ label: `raw:${options.id ?? 'raw'}` });
  const raw = new RawPeer(rawEnd, options);
  const attached = node.attach(nodeEnd, false).then(
    (peer): AttachResult => ({ ok: true, peer }),
    (error: unknown): AttachResult => ({ ok: false, error }),
  );
  return { raw, attached };
}
