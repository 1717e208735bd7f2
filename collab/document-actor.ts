import * as Y from 'yjs';
import {
  Awareness,
  applyAwarenessUpdate,
  encodeAwarenessUpdate,
  removeAwarenessStates,
} from 'y-protocols/awareness';
import { Emitter, isDown, type ActorRef, type Node } from '../core/index.ts';
import {
  DEFAULT_MAX_UPDATE_BYTES,
  randomKey,
  toActor,
  type Joined,
  type Participant,
  type Role,
  type ToActor,
  type ToParticipant,
} from './messages.ts';
import { createMemoryStore, type DocStore } from './store.ts';

/** What {@link DocumentServerOptions.authorize} is asked. */
export interface JoinRequest {
  doc: string;
  user: string;
  token: string | undefined;
  /** The node the joining participant runs on. */
  node: string;
}

/** Options of {@link serveDocuments}. */
export interface DocumentServerOptions {
  /** The cluster-wide name the document actor registers. @default 'yjs' */
  name?: string;
  /** Where documents are kept. @default a memory store (nothing survives the process) */
  store?: DocStore;
  /**
   * Who may join which document, and whether they may edit: `'write'`, `'read'` (their updates
   * are refused with a `refused` event) or `false` (the join is denied).
   * @default everyone writes
   */
  authorize?: (request: JoinRequest) => Role | false | Promise<Role | false>;
  /** Largest update (and join state vector) accepted, in bytes. @default 4 MiB */
  maxUpdateBytes?: number;
  /** Write a compacted snapshot after this many appended updates of one document. @default 500 */
  compactEvery?: number;
}

/** Events of a {@link DocumentServer}. */
export interface DocumentServerEvents {
  /** A participant joined `doc` with `role`. */
  joined: { doc: string; user: string; role: Role; ref: ActorRef };
  /** A join was denied: by `authorize`, or because another member holds its Yjs client id. */
  denied: { doc: string; user: string; node: string };
  /** A participant left (said so, or its actor or node went down: `reason`). */
  left: { doc: string; user: string; ref: ActorRef; reason: string };
  /**
   * A message was dropped: an update from a read-only member (`'read-only participant'`), an
   * update, awareness or leave under a session key the actor never gave or already ended
   * (`'unknown session'`: `user` is undefined, `from` is `'?'`), a malformed update or awareness
   * update (`'malformed awareness'`), or an awareness update that speaks for a Yjs client other
   * than the member's own (`"awareness for another member's client"`).
   * `from` is the member's ref key.
   */
  refused: { doc: string; user: string | undefined; from: string; reason: string };
  /** A message failed its schema (too large, malformed). */
  invalid: { error: string };
  /** The store failed (the update stays applied in memory). */
  storeError: { doc: string; error: unknown };
}

/** A running document actor; see {@link serveDocuments}. */
export interface DocumentServer {
  /** The document actor (also registered under its name). */
  readonly ref: ActorRef;
  readonly events: Emitter<DocumentServerEvents>;
  /** The document `name`, loaded from the store if needed (read it; edits made here reach everyone). */
  doc(name: string): Promise<Y.Doc>;
  /** The participants of `name` now. */
  participants(name: string): Participant[];
  /** Stop the actor, compact every document and close the store. */
  close(): Promise<void>;
}

interface Member extends Participant {
  monitor: string;
}

/** What a handler needs of the actor's context. */
interface Ctx {
  reply(v: unknown): boolean;
  monitor(r: ActorRef): string;
  demonitor(id: string): void;
}

interface Held {
  ydoc: Y.Doc;
  awareness: Awareness;
  /** By session key (see {@link SessionKey}). */
  members: Map<string, Member>;
  appended: number;
}

/**
 * Start a document actor on `node`: it holds a `Y.Doc` per document name, answers joins with what
 * the joiner lacks (Yjs sync step 2 against its state vector) and its own state vector (step 1),
 * applies and persists every update from a participant with write rights and passes it on to the
 * others, relays awareness (cursors, names), and removes a participant's presence as soon as its
 * actor or node is seen down (troupe's failure detection, not Yjs's 30 s awareness timeout).
 *
 * @example
 * import { serveDocuments } from 'troupe/yjs';
 * import { createFileStore } from 'troupe/yjs/file-store';
 * const server = await serveDocuments(node, { store: createFileStore('./docs') });
 */
export async function serveDocuments(
  node: Node,
  options: DocumentServerOptions = {},
): Promise<DocumentServer> {
  const store = options.store ?? createMemoryStore();
  const max = options.maxUpdateBytes ?? DEFAULT_MAX_UPDATE_BYTES;
  const compactEvery = options.compactEvery ?? 500;
  const authorize = options.authorize ?? (() => 'write' as const);
  const schema = toActor(max);
  const events = new Emitter<DocumentServerEvents>();
  const docs = new Map<string, Promise<Held>>();
  const loaded = new Map<string, Held>();
  let self!: ActorRef;

  const load = (name: string): Promise<Held> => {
    let p = docs.get(name);
    if (!p) {
      p = (async () => {
        const ydoc = new Y.Doc({ gc: true });
        for (const u of await store.load(name)) Y.applyUpdate(ydoc, u, 'store');
        const awareness = new Awareness(ydoc);
        awareness.setLocalState(null);
        const held: Held = { ydoc, awareness, members: new Map(), appended: 0 };
        loaded.set(name, held);
        return held;
      })();
      docs.set(name, p);
    }
    return p;
  };

  const peersOf = (h: Held): Participant[] =>
    [...h.members.values()].map(({ ref, user, role, client }) => ({ ref, user, role, client }));
  /** Send `msg` to every member but `except`, each copy with that member's own session key. */
  const tell = (
    h: Held,
    msg: DistributiveOmit<ToParticipant, 'session'>,
    except?: string,
  ): void => {
    for (const [session, m] of h.members) if (session !== except) m.ref.send({ ...msg, session });
  };

  const persist = async (name: string, h: Held, update: Uint8Array): Promise<void> => {
    try {
      await store.append(name, update);
      if (++h.appended >= compactEvery) {
        h.appended = 0;
        await store.compact(name, Y.encodeStateAsUpdate(h.ydoc));
      }
    } catch (error) {
      events.emit('storeError', { doc: name, error });
    }
  };

  const drop = (name: string, h: Held, session: string, reason: string): void => {
    const m = h.members.get(session);
    if (!m) return;
    h.members.delete(session);
    events.emit('left', { doc: name, user: m.user, ref: m.ref, reason });
    // Remove its presence at once and tell the others (as an awareness update).
    if (h.awareness.states.has(m.client)) {
      removeAwarenessStates(h.awareness, [m.client], 'down');
      tell(h, {
        t: 'awareness',
        doc: name,
        update: encodeAwarenessUpdate(h.awareness, [m.client]),
      });
    }
    tell(h, { t: 'peers', doc: name, peers: peersOf(h) });
  };

  const refuse = (doc: string, reason: string, m?: Member, session?: string): void => {
    events.emit('refused', { doc, user: m?.user, from: m ? m.ref.key : '?', reason });
    // Told only to a known member, under its own key: an unknown key names nobody to tell.
    if (m && session) m.ref.send({ t: 'refused', doc, session, reason } satisfies ToParticipant);
  };

  const handle = async (msg: ToActor, ctx: Ctx) => {
    const h = await load(msg.doc);
    if (msg.t === 'join') {
      // `from` is only a claim: the answer (and its session key) goes to that ref alone, so a
      // caller naming someone else's ref learns nothing and gains no rights.
      const role = await authorize({
        doc: msg.doc,
        user: msg.user,
        token: msg.token,
        node: msg.from.node,
      });
      if (role !== 'write' && role !== 'read') {
        events.emit('denied', { doc: msg.doc, user: msg.user, node: msg.from.node });
        ctx.reply({ t: 'denied', doc: msg.doc, reason: 'not authorized' });
        return;
      }
      // A rejoin ends the previous membership, if the joiner proves it held it.
      const old = msg.previous ? h.members.get(msg.previous) : undefined;
      if (old && old.ref.equals(msg.from)) {
        ctx.demonitor(old.monitor);
        h.members.delete(msg.previous!);
      }
      // A Yjs client id names one member's presence: a join claiming one that another live member
      // holds (from another ref) is denied, or it could speak for that member's cursor.
      for (const other of h.members.values()) {
        if (other.client === msg.client && !other.ref.equals(msg.from)) {
          events.emit('denied', { doc: msg.doc, user: msg.user, node: msg.from.node });
          ctx.reply({ t: 'denied', doc: msg.doc, reason: 'client id in use' });
          return;
        }
      }
      const session = randomKey();
      h.members.set(session, {
        ref: msg.from,
        user: msg.user,
        role,
        client: msg.client,
        monitor: ctx.monitor(msg.from),
      });
      let update: Uint8Array;
      try {
        update = Y.encodeStateAsUpdate(h.ydoc, msg.sv);
      } catch {
        update = Y.encodeStateAsUpdate(h.ydoc);
      }
      const joined: Joined = {
        t: 'joined',
        doc: msg.doc,
        nonce: msg.nonce,
        session,
        role,
        update,
        sv: Y.encodeStateVector(h.ydoc),
        awareness: encodeAwarenessUpdate(h.awareness, [...h.awareness.states.keys()]),
        peers: peersOf(h),
      };
      msg.from.send(joined);
      ctx.reply({ t: 'joining', doc: msg.doc });
      events.emit('joined', { doc: msg.doc, user: msg.user, role, ref: msg.from });
      tell(h, { t: 'peers', doc: msg.doc, peers: peersOf(h) }, session);
      return;
    }
    const session = msg.session;
    const m = h.members.get(session);
    if (!m) {
      refuse(msg.doc, 'unknown session');
      return;
    }
    switch (msg.t) {
      case 'update': {
        if (m.role !== 'write') {
          refuse(msg.doc, 'read-only participant', m, session);
          return;
        }
        try {
          Y.applyUpdate(h.ydoc, msg.update, session);
        } catch (err) {
          events.emit('refused', {
            doc: msg.doc,
            user: m.user,
            from: m.ref.key,
            reason: `malformed update: ${(err as Error).message}`,
          });
          m.ref.send({
            t: 'refused',
            doc: msg.doc,
            session,
            reason: 'malformed update',
          } satisfies ToParticipant);
          return;
        }
        tell(h, { t: 'update', doc: msg.doc, update: msg.update }, session);
        await persist(msg.doc, h, msg.update);
        return;
      }
      case 'awareness': {
        // A member speaks only for its own Yjs client: an update that sets (or clears) another
        // client's presence is refused whole, so no one can move, rename or remove someone else.
        const clients = awarenessClients(msg.update);
        if (clients === undefined || clients.some((c) => c !== m.client)) {
          refuse(
            msg.doc,
            clients === undefined ? 'malformed awareness' : "awareness for another member's client",
            m,
            session,
          );
          return;
        }
        try {
          applyAwarenessUpdate(h.awareness, msg.update, session);
        } catch {
          refuse(msg.doc, 'malformed awareness', m, session);
          return;
        }
        tell(h, { t: 'awareness', doc: msg.doc, update: msg.update }, session);
        return;
      }
      case 'leave': {
        ctx.demonitor(m.monitor);
        drop(msg.doc, h, session, 'left');
        return;
      }
    }
  };

  // Documents already stored are loaded at start.
  for (const name of await store.list()) await load(name);

  let stopped!: () => void;
  const done = new Promise<void>((r) => (stopped = r));
  self = node.spawn(async (ctx) => {
    try {
      for (;;) {
        const raw = await ctx.receive();
        if (isDown(raw)) {
          for (const [name, p] of docs) {
            const h = await p;
            for (const [session, m] of h.members)
              if (m.monitor === raw.monitor) drop(name, h, session, String(raw.reason));
          }
          continue;
        }
        if ((raw as { t?: unknown })?.t === 'stop') return;
        const parsed = schema.safeParse(raw);
        if (!parsed.success) {
          events.emit('invalid', { error: parsed.error.message.slice(0, 500) });
          ctx.reply({ t: 'denied', doc: '', reason: 'invalid message' });
          continue;
        }
        await handle(parsed.data, ctx);
      }
    } finally {
      // Stopped by close(), or its node shut down: no awareness timer may outlive it.
      for (const h of loaded.values()) h.awareness.destroy();
      stopped();
    }
  });
  node.register(options.name ?? 'yjs', self);

  return {
    ref: self,
    events,
    doc: async (name) => (await load(name)).ydoc,
    participants: (name) => {
      const h = loaded.get(name);
      return h ? peersOf(h) : [];
    },
    async close() {
      self.send({ t: 'stop' });
      await done;
      for (const [name, p] of docs) {
        const h = await p;
        await store.compact(name, Y.encodeStateAsUpdate(h.ydoc)).catch(() => {});
      }
      await store.close?.();
    },
  };
}

/** `Omit` applied to each member of a union. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * The Yjs client ids an awareness update (y-protocols' encoding: a count, then per entry a client
 * id, a clock and a JSON string, each length or number an unsigned LEB128 varint) speaks for, or
 * undefined when it is not well formed.
 */
function awarenessClients(update: Uint8Array): number[] | undefined {
  let at = 0;
  const varUint = (): number | undefined => {
    let n = 0;
    for (let shift = 0; shift < 53; shift += 7) {
      if (at >= update.length) return undefined;
      const b = update[at++]!;
      n += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return n;
    }
    return undefined;
  };
  const count = varUint();
  if (count === undefined || count > 4096) return undefined;
  const clients: number[] = [];
  for (let i = 0; i < count; i++) {
    const client = varUint();
    const clock = varUint();
    const len = varUint();
    if (client === undefined || clock === undefined || len === undefined) return undefined;
    at += len;
    if (at > update.length) return undefined;
    clients.push(client);
  }
  return at === update.length ? clients : undefined;
}
