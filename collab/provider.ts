import * as Y from 'yjs';
import {
  Awareness,
  applyAwarenessUpdate,
  encodeAwarenessUpdate,
  removeAwarenessStates,
} from 'y-protocols/awareness';
import { Emitter, isDown, type ActorContext, type ActorRef, type Node } from '../core/index.ts';
import {
  DEFAULT_MAX_UPDATE_BYTES,
  randomKey,
  toParticipant,
  type Joined,
  type Participant,
  type Role,
  type ToActor,
  type ToParticipant,
} from './messages.ts';

/** Options of {@link joinDocument}. */
export interface ProviderOptions {
  /** The document's name. */
  name: string;
  /** Who joins (shown to others, passed to the server's `authorize`). */
  user: string;
  /** Credential passed to the server's `authorize`. */
  token?: string;
  /** The document actor: its registered name or ref. @default 'yjs' */
  server?: string | ActorRef;
  /** The document to keep in sync. @default a new `Y.Doc` */
  doc?: Y.Doc;
  /** Presence (cursor, selection, name, colour) to share. @default a new `Awareness` on the doc */
  awareness?: Awareness;
  /** Largest update accepted from others, in bytes. @default 4 MiB */
  maxUpdateBytes?: number;
  /** Wait this long between attempts to (re)join while the document actor is unreachable (ms). @default 1000 */
  retryInterval?: number;
  /** Timeout of one join call (ms). @default 5000 */
  joinTimeout?: number;
}

/** Connection state of a {@link YjsProvider}. */
export type ProviderStatus = 'connecting' | 'connected' | 'offline';

/** Events of a {@link YjsProvider}. */
export interface ProviderEvents {
  status: { status: ProviderStatus };
  /** Joined (again) and merged with the document actor's state. */
  synced: { role: Role };
  /** The document actor dropped one of our updates (read-only, malformed). */
  refused: { reason: string };
  /** The join was denied by the server's `authorize`. */
  denied: { reason: string };
  /** The participants changed. */
  peers: { peers: Participant[] };
}

/**
 * A participant in a shared document (a page, a worker or a Node process): keeps `doc` in sync
 * with the document actor and the other participants, shares presence through `awareness`, and
 * rejoins on its own when the document actor comes back (offline edits merge then).
 */
export class YjsProvider {
  readonly doc: Y.Doc;
  readonly awareness: Awareness;
  readonly events = new Emitter<ProviderEvents>();
  /** Role given by the document actor (`undefined` until joined). */
  role: Role | undefined;
  #status: ProviderStatus = 'connecting';
  #node: Node;
  #opts: Required<Omit<ProviderOptions, 'token' | 'doc' | 'awareness'>> & { token?: string };
  #self!: ActorRef;
  #peers: Participant[] = [];
  #wanted = true;
  #destroyed = false;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #serverRef: ActorRef | undefined;
  #joining = false;
  #unsubscribe: (() => void)[] = [];
  #ownAwareness: boolean;
  /** This membership's key, from the document actor (see `SessionKey` in messages.ts). */
  #session: string | undefined;
  /** A membership not ended by a leave (a rejoin after a failed attempt names it, so the actor drops it). */
  #stale: string | undefined;
  /** The join waiting for its `joined`: the nonce it sent and where to hand the answer. */
  #pending: { nonce: string; done: (j: Joined) => void } | undefined;

  /** @internal Use {@link joinDocument}. */
  constructor(node: Node, options: ProviderOptions) {
    this.#node = node;
    this.doc = options.doc ?? new Y.Doc();
    this.#ownAwareness = options.awareness === undefined;
    this.awareness = options.awareness ?? new Awareness(this.doc);
    this.#opts = {
      name: options.name,
      user: options.user,
      token: options.token,
      server: options.server ?? 'yjs',
      maxUpdateBytes: options.maxUpdateBytes ?? DEFAULT_MAX_UPDATE_BYTES,
      retryInterval: options.retryInterval ?? 1000,
      joinTimeout: options.joinTimeout ?? 5000,
    };
    const schema = toParticipant(this.#opts.maxUpdateBytes);
    this.#self = node.spawn(async (ctx) => {
      try {
        await this.#loop(ctx, schema);
      } finally {
        // Stopped by destroy(), or its node shut down: no timer may outlive it.
        this.#teardown();
      }
    });
    const onUpdate = (update: Uint8Array, origin: unknown) => {
      if (origin !== this) this.#toServer({ t: 'update', doc: this.#opts.name, update });
    };
    this.doc.on('update', onUpdate);
    this.#unsubscribe.push(() => this.doc.off('update', onUpdate));
    const onAwareness = (
      { added, updated, removed }: { added: number[]; updated: number[]; removed: number[] },
      origin: unknown,
    ) => {
      if (origin !== 'local') return;
      const changed = [...added, ...updated, ...removed];
      this.#toServer({
        t: 'awareness',
        doc: this.#opts.name,
        update: encodeAwarenessUpdate(this.awareness, changed),
      });
    };
    this.awareness.on('update', onAwareness);
    this.#unsubscribe.push(() => this.awareness.off('update', onAwareness));
    void this.#join();
  }

  async #loop(ctx: ActorContext, schema: ReturnType<typeof toParticipant>): Promise<void> {
    for (;;) {
      const raw = await ctx.receive();
      if (isDown(raw)) {
        if (this.#serverRef && raw.ref.equals(this.#serverRef)) this.#lost();
        continue;
      }
      const t = (raw as { t?: unknown })?.t;
      if (t === 'stop') return;
      if (t === 'watch') {
        // Sent by #join: monitor the document actor, so its loss (or its node's) is seen.
        const ref = (raw as { ref?: unknown }).ref;
        if (this.#serverRef && ref === this.#serverRef) ctx.monitor(this.#serverRef);
        continue;
      }
      const parsed = schema.safeParse(raw);
      if (!parsed.success || parsed.data.doc !== this.#opts.name) continue;
      const msg = parsed.data;
      if (msg.t === 'joined') {
        // Only the answer to our own join (its nonce): an unasked `joined` is dropped.
        if (this.#pending && msg.nonce === this.#pending.nonce) this.#pending.done(msg);
        continue;
      }
      // Everything else only from the document actor, under our own session key.
      if (this.#session !== undefined && msg.session === this.#session) this.#onMessage(msg);
    }
  }

  #teardown(): void {
    this.#destroyed = true;
    clearTimeout(this.#retry);
    for (const off of this.#unsubscribe.splice(0)) off();
    if (this.#status !== 'offline') {
      this.#status = 'offline';
      this.events.emit('status', { status: 'offline' });
    }
    if (this.#ownAwareness) this.awareness.destroy();
  }

  /** `connecting`, `connected` or `offline`. */
  get status(): ProviderStatus {
    return this.#status;
  }

  /** The other participants, as the document actor last said. */
  get peers(): Participant[] {
    return this.#peers.filter((p) => !p.ref.equals(this.#self));
  }

  /** This participant's actor. */
  get ref(): ActorRef {
    return this.#self;
  }

  /** Resolves once joined and synced (now, if it is). */
  whenSynced(): Promise<void> {
    if (this.#status === 'connected') return Promise.resolve();
    return this.events.next('synced').then(() => {});
  }

  /** Go offline on purpose: leave the document (others see this presence go) and keep editing locally. */
  disconnect(): void {
    this.#wanted = false;
    clearTimeout(this.#retry);
    if (this.#status === 'connected') this.#toServer({ t: 'leave', doc: this.#opts.name });
    this.#session = undefined;
    this.#stale = undefined;
    this.#goOffline();
  }

  /** Come back: rejoin, and merge what was edited on both sides meanwhile. */
  connect(): void {
    if (this.#destroyed) return;
    this.#wanted = true;
    if (this.#status === 'offline') void this.#join();
  }

  /**
   * Leave and stop the participant's actor (also done when its node shuts down). The doc stays
   * usable; an awareness the provider made itself is destroyed (its renewal timer stops).
   */
  destroy(): void {
    if (this.#destroyed) return;
    this.disconnect();
    this.#destroyed = true;
    this.#self.send({ t: 'stop' });
  }

  #server(): ActorRef {
    return this.#serverRef ?? (this.#node.whereis(this.#opts.server as string) as ActorRef);
  }

  #setStatus(status: ProviderStatus): void {
    if (this.#status === status) return;
    this.#status = status;
    this.events.emit('status', { status });
  }

  /**
   * Send to the document actor under this membership's key. Edits and presence go through the
   * actor only (it checks the sender's rights), never straight to other participants: a message
   * between participants could not be told from a forgery.
   */
  #toServer(
    msg:
      | { t: 'update' | 'awareness'; doc: string; update: Uint8Array }
      | { t: 'leave'; doc: string },
  ): void {
    if (this.#status !== 'connected' || this.#session === undefined) return; // sent on the next join (state vector diff)
    this.#server().send({ ...msg, session: this.#session } satisfies ToActor);
  }

  async #join(): Promise<void> {
    if (this.#joining || this.#destroyed || !this.#wanted) return;
    this.#joining = true;
    this.#setStatus('connecting');
    try {
      const target = this.#opts.server;
      const nonce = randomKey();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const answered = new Promise<Joined>((resolve, reject) => {
        this.#pending = { nonce, done: resolve };
        timer = setTimeout(() => reject(new Error('no joined answer')), this.#opts.joinTimeout);
      });
      answered.catch(() => {});
      const previous = this.#session ?? this.#stale;
      this.#stale = previous;
      this.#session = undefined;
      const answer = await this.#node
        .call(
          target,
          {
            t: 'join',
            doc: this.#opts.name,
            from: this.#self,
            user: this.#opts.user,
            token: this.#opts.token,
            client: this.doc.clientID,
            sv: Y.encodeStateVector(this.doc),
            nonce,
            previous,
          } satisfies ToActor,
          { timeout: this.#opts.joinTimeout },
        )
        .catch((err: unknown) => {
          clearTimeout(timer);
          throw err;
        });
      if ((answer as { t?: string })?.t === 'denied') {
        clearTimeout(timer);
        this.#wanted = false;
        this.#setStatus('offline');
        this.events.emit('denied', { reason: String((answer as { reason?: unknown }).reason) });
        return;
      }
      const joined = await answered.finally(() => clearTimeout(timer));
      if (!this.#wanted || this.#destroyed) return;
      this.#session = joined.session;
      this.#stale = undefined;
      this.role = joined.role;
      this.#serverRef = typeof target === 'string' ? this.#node.whereis(target) : target;
      if (this.#serverRef) this.#self.send({ t: 'watch', ref: this.#serverRef });
      Y.applyUpdate(this.doc, joined.update, this);
      applyAwarenessUpdate(this.awareness, joined.awareness, this);
      this.#setPeers(joined.peers);
      this.#setStatus('connected');
      // Sync step 2 the other way: what we have and the actor lacks (edits made offline).
      const missing = Y.encodeStateAsUpdate(this.doc, joined.sv);
      if (missing.byteLength > 2)
        this.#toServer({ t: 'update', doc: this.#opts.name, update: missing });
      const local = this.awareness.getLocalState();
      if (local !== null)
        this.#toServer({
          t: 'awareness',
          doc: this.#opts.name,
          update: encodeAwarenessUpdate(this.awareness, [this.doc.clientID]),
        });
      this.events.emit('synced', { role: joined.role });
    } catch {
      this.#setStatus('offline');
      this.#scheduleRejoin();
    } finally {
      this.#pending = undefined;
      this.#joining = false;
    }
  }

  #scheduleRejoin(): void {
    clearTimeout(this.#retry);
    if (!this.#wanted || this.#destroyed) return;
    this.#retry = setTimeout(() => void this.#join(), this.#opts.retryInterval);
  }

  #lost(): void {
    this.#serverRef = undefined;
    this.#session = undefined;
    this.#goOffline();
    this.#scheduleRejoin();
  }

  #goOffline(): void {
    this.#setStatus('offline');
    this.#setPeers([]);
    // Others' presence is unknown while offline: drop it (it comes back on the next join).
    const others = [...this.awareness.getStates().keys()].filter((c) => c !== this.doc.clientID);
    if (others.length) removeAwarenessStates(this.awareness, others, this);
  }

  #setPeers(peers: Participant[]): void {
    this.#peers = peers;
    this.events.emit('peers', { peers: this.peers });
  }

  #onMessage(msg: ToParticipant): void {
    switch (msg.t) {
      case 'update': {
        if (this.#status !== 'connected') return;
        try {
          Y.applyUpdate(this.doc, msg.update, this);
        } catch {
          // a malformed update from a peer changes nothing
        }
        return;
      }
      case 'awareness':
        if (this.#status !== 'connected') return;
        try {
          applyAwarenessUpdate(this.awareness, msg.update, this);
        } catch {
          // ignore
        }
        return;
      case 'peers':
        this.#setPeers(msg.peers);
        return;
      case 'refused':
        this.events.emit('refused', { reason: msg.reason });
        return;
    }
  }
}

/**
 * Join the shared document `options.name`: the returned provider keeps `provider.doc` in sync
 * with the document actor (see {@link serveDocuments}) and the other participants, and shares
 * `provider.awareness`.
 *
 * @example
 * import { joinDocument } from 'troupe/yjs';
 * const provider = joinDocument(node, { name: 'notes', user: 'ada' });
 * await provider.whenSynced();
 * provider.doc.getText('body').insert(0, 'hello');
 */
export function joinDocument(node: Node, options: ProviderOptions): YjsProvider {
  return new YjsProvider(node, options);
}
