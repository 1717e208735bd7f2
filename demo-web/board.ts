// The collaborative board: this page's participant actor, the notes, the live cursors and the
// participant list. The participant list lives in the room actor (board-room.ts) and cursors go
// from participant to participant directly, so between two pages they ride the WebRTC link.
// The notes are a Y.Map (one nested Y.Map per note: x, y, text, colour, deleted, by) in the same
// troupe/yjs document as the shared text ({@link BoardView.useNotes}): two pages changing
// different fields of one note at once both keep their change.
import * as Y from 'yjs';
import { behaviour, isDown, type ActorRef, type Node } from '../core/index.ts';
import {
  NOTE_COLOURS,
  Note,
  ROOM_NAME,
  ParticipantMsg,
  newer,
  startRoom,
  toParticipant,
  type Participant,
  type RoomMsg,
  type RoomState,
} from './board-room.ts';
import { transportOf } from './cluster-probe.ts';
import { el, hex } from './dom.ts';

type RoomRef = ActorRef<RoomMsg, RoomState>;
type PeerRef = ActorRef<ParticipantMsg>;

/** How this page reaches a participant. */
export type PeerRoute = 'self' | 'webrtc' | 'relay' | 'other';

/** A participant as the page shows it. */
export interface PeerView {
  key: string;
  name: string;
  colour: string;
  node: string;
  route: PeerRoute;
  self: boolean;
}

const ADJECTIVES = [
  'Amber',
  'Brisk',
  'Cobalt',
  'Dapper',
  'Eager',
  'Fuzzy',
  'Gentle',
  'Hazel',
  'Indigo',
  'Jolly',
  'Keen',
  'Lucky',
  'Mellow',
  'Nimble',
  'Olive',
  'Plucky',
  'Quiet',
  'Rusty',
  'Sunny',
  'Tidy',
];
const ANIMALS = [
  'Otter',
  'Badger',
  'Heron',
  'Lynx',
  'Marten',
  'Newt',
  'Owl',
  'Puffin',
  'Quokka',
  'Raven',
  'Seal',
  'Tapir',
  'Vole',
  'Wren',
  'Yak',
  'Zebu',
  'Ibis',
  'Gecko',
  'Fox',
  'Crane',
];
const PEOPLE_COLOURS = [
  '#e4572e',
  '#2e86ab',
  '#17a398',
  '#8e44ad',
  '#d35400',
  '#c0392b',
  '#16a085',
  '#2c3e50',
  '#b8860b',
  '#1f6feb',
];

/** A random friendly participant name and colour. */
export function randomIdentity(): { name: string; colour: string } {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(Math.random() * a.length)];
  return { name: `${pick(ADJECTIVES)} ${pick(ANIMALS)}`, colour: pick(PEOPLE_COLOURS) };
}

/** The board view and this page's participant. */
export class BoardView {
  #node: Node;
  #root: HTMLElement;
  #me!: PeerRef;
  #who: Participant | undefined;
  #identity: { name: string; colour: string };
  #room: RoomRef | undefined;
  #roomHost = '';
  #notes = new Map<string, Note>();
  #peers = new Map<string, { who: Participant; monitor?: string }>();
  #clock = 0;
  #colour: Note['colour'] = 'yellow';
  #board!: HTMLElement;
  #peerList!: HTMLElement;
  #log!: HTMLElement;
  #roomInfo!: HTMLElement;
  #routeInfo!: HTMLElement;
  #cursors = new Map<string, HTMLElement>();
  #noteEls = new Map<string, HTMLElement>();
  #pendingCursor: { x: number | null; y: number } | undefined;
  #cursorFrame = 0;
  #roomTimers = new Map<string, ReturnType<typeof setTimeout>>();
  #joined!: Promise<void>;
  #joinedResolve!: () => void;
  #rejoining = false;
  /** The shared notes (see {@link BoardView.useNotes}); without it, the room's last-writer-wins notes. */
  #ynotes: Y.Map<Y.Map<unknown>> | undefined;

  constructor(root: HTMLElement, node: Node, identity = randomIdentity()) {
    this.#root = root;
    this.#node = node;
    this.#identity = identity;
    this.#joined = new Promise((r) => (this.#joinedResolve = r));
    this.#build();
  }

  /** This page's participant (undefined until started). */
  get participant(): Participant | undefined {
    return this.#who;
  }

  /** Resolves once this page has joined the room. */
  get joined(): Promise<void> {
    return this.#joined;
  }

  /**
   * Keep the notes in `map` (a Y.Map of Y.Maps in a shared document) instead of the room's
   * last-writer-wins copies: local edits change the fields they touch, remote ones are rendered.
   */
  useNotes(map: Y.Map<Y.Map<unknown>>): void {
    this.#ynotes = map;
    map.observeDeep((events) => {
      const ids = new Set<string>();
      for (const e of events) {
        if (e.target === map) for (const k of e.changes.keys.keys()) ids.add(k);
        else if (e.path.length > 0) ids.add(String(e.path[0]));
      }
      for (const id of ids) this.#loadNote(id);
    });
    for (const id of map.keys()) this.#loadNote(id);
  }

  /** Move a note (as dragging would). */
  moveNote(id: string, x: number, y: number): void {
    this.#edit(id, { x: clamp01(x, 0.92), y: clamp01(y, 0.88) }, true);
  }

  /** Live notes (tombstones left out). */
  notes(): Note[] {
    return [...this.#notes.values()].filter((n) => !n.deleted);
  }

  /** The participants, this page first. */
  participants(): PeerView[] {
    const me = this.#who;
    const out: PeerView[] = me
      ? [
          {
            key: me.ref.key,
            name: me.name,
            colour: me.colour,
            node: me.node,
            route: 'self',
            self: true,
          },
        ]
      : [];
    for (const [key, p] of this.#peers)
      out.push({
        key,
        name: p.who.name,
        colour: p.who.colour,
        node: p.who.node,
        route: this.#routeTo(p.who.node),
        self: false,
      });
    return out;
  }

  /** The node the room lives on. */
  get roomHost(): string {
    return this.#roomHost;
  }

  /** Spawn the participant actor and join the room. */
  async start(): Promise<void> {
    this.#me = this.#node.spawn(
      behaviour({
        schema: ParticipantMsg,
        handle: (m, _s: undefined, ctx) => {
          switch (m.t) {
            case 'joined':
              if (m.who.ref.equals(ctx.ref) || this.#peers.has(m.who.ref.key)) return;
              // Each participant monitors the others: closing a page shows up as a DOWN here.
              this.#peers.set(m.who.ref.key, {
                who: m.who,
                monitor: ctx.monitor(toParticipant(m.who)),
              });
              this.#logLine(`${m.who.name} joined`, m.who.colour);
              this.#renderPeers();
              return;
            case 'left': {
              const p = this.#peers.get(m.ref.key);
              if (!p) return;
              if (p.monitor) ctx.demonitor(p.monitor);
              this.#dropPeer(m.ref.key, m.reason);
              return;
            }
            case 'note':
              if (!this.#ynotes) this.#apply(m.note);
              return;
            case 'cursor':
              this.#moveCursor(m.from, m.x, m.y);
              return;
          }
        },
        info: (msg) => {
          if (isDown(msg))
            this.#dropPeer(msg.ref.key, typeof msg.reason === 'string' ? msg.reason : 'crashed');
        },
      }),
    ) as PeerRef;
    this.#who = {
      ref: this.#me,
      name: this.#identity.name,
      colour: this.#identity.colour,
      node: this.#node.id,
    };
    this.#node.events.on('linkUp', () => this.#renderPeers());
    this.#node.events.on('linkDown', () => this.#renderPeers());
    setInterval(() => this.#renderPeers(), 1000);
    // No goodbye message when the page closes: the others learn it from their monitors (DOWN
    // noconnection), as they would from a crash.
    await this.#join();
  }

  /** Add a note at board position (x, y) (fractions); returns its id. */
  addNote(text = '', x = 0.1 + Math.random() * 0.6, y = 0.12 + Math.random() * 0.55): string {
    const note: Note = {
      id: `${this.#node.id}-${hex(3)}`,
      x,
      y,
      text,
      colour: this.#colour,
      v: ++this.#clock,
      by: this.#me.key,
    };
    const shared = this.#ynotes;
    if (shared) {
      const fields = new Y.Map<unknown>();
      shared.doc!.transact(() => {
        shared.set(note.id, fields);
        for (const k of ['x', 'y', 'text', 'colour', 'by'] as const) fields.set(k, note[k]);
      });
      return note.id;
    }
    this.#apply(note);
    this.#publish(note, true);
    return note.id;
  }

  /** Change a note's text (as typing would). */
  editNote(id: string, text: string): void {
    this.#edit(id, { text }, true);
  }

  /** Delete a note. */
  deleteNote(id: string): void {
    this.#edit(id, { deleted: true, text: '' }, true);
  }

  // ------------------------------------------------------------------------------------------
  // Joining

  async #findRoom(): Promise<RoomRef> {
    // The room normally lives on the relay; its name reaches this page with the registry when
    // the link comes up. No room in the cluster after a short wait: host one here.
    // The jitter makes two pages that open together unlikely to both start one (if they do, the
    // registry keeps one and the other room stops; see board-room.ts).
    const until = Date.now() + 2000 + Math.random() * 1500;
    for (;;) {
      const ref = this.#node.whereis(ROOM_NAME);
      if (ref) return ref as RoomRef;
      if (Date.now() > until) {
        const mine = startRoom(this.#node);
        if (mine) {
          this.#logLine('No room in the cluster: this page hosts it', undefined);
          return mine;
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async #join(): Promise<void> {
    const room = await this.#findRoom();
    const notes = this.#ynotes ? [] : [...this.#notes.values()];
    const state = await room.call({ t: 'join', who: this.#who!, notes }, { timeout: 8000 });
    this.#room = room;
    this.#roomHost = state.host;
    this.#merge(state);
    this.#renderRoomInfo();
    // Edits made while the join was on its way reach the room but not this page: ask again soon.
    setTimeout(() => {
      if (this.#room === room)
        room.call({ t: 'state' }, { timeout: 5000 }).then(
          (s) => this.#merge(s),
          () => {},
        );
    }, 1200);
    // The room going away (its node lost): find or host a new one and bring our notes there.
    this.#node.watch(room, (down) => {
      if (this.#room !== room) return;
      this.#room = undefined;
      this.#logLine(`The room went away (${String(down.reason)}); rejoining…`, undefined);
      this.#renderRoomInfo();
      void this.#rejoin();
    });
    this.#logLine(`You joined as ${this.#who!.name}`, this.#who!.colour);
    this.#joinedResolve();
  }

  async #rejoin(): Promise<void> {
    if (this.#rejoining) return;
    this.#rejoining = true;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await new Promise((r) => setTimeout(r, 300 + Math.random() * 500));
          await this.#join();
          return;
        } catch {
          if (attempt > 20) return this.#logLine('Could not rejoin the room', undefined);
        }
      }
    } finally {
      this.#rejoining = false;
    }
  }

  #merge(state: RoomState): void {
    if (!this.#ynotes) for (const note of state.notes) this.#apply(note);
    for (const who of state.participants) this.#me.send({ t: 'joined', who });
    this.#renderPeers();
  }

  // ------------------------------------------------------------------------------------------
  // Notes

  #apply(note: Note): void {
    this.#clock = Math.max(this.#clock, note.v);
    if (!newer(note, this.#notes.get(note.id))) return;
    this.#notes.set(note.id, note);
    this.#renderNote(note);
  }

  /** Read note `id` from the shared map (checked like any note from outside) and render it. */
  #loadNote(id: string): void {
    const fields = this.#ynotes?.get(id);
    if (!(fields instanceof Y.Map)) return;
    const parsed = Note.safeParse({ ...fields.toJSON(), id, v: 0 });
    if (!parsed.success) return;
    this.#notes.set(id, parsed.data);
    this.#renderNote(parsed.data);
  }

  #edit(
    id: string,
    change: Partial<Pick<Note, 'x' | 'y' | 'text' | 'colour' | 'deleted'>>,
    toRoom: boolean,
  ): void {
    const shared = this.#ynotes;
    if (shared) {
      // Only the fields this edit touches: a concurrent change to another field survives.
      const fields = shared.get(id);
      if (!(fields instanceof Y.Map) || fields.get('deleted') === true) return;
      shared.doc!.transact(() => {
        for (const [k, v] of Object.entries(change)) fields.set(k, v);
        fields.set('by', this.#me.key);
      });
      return;
    }
    const cur = this.#notes.get(id);
    if (!cur || cur.deleted) return;
    const note: Note = { ...cur, ...change, v: ++this.#clock, by: this.#me.key };
    this.#apply(note);
    this.#publish(note, toRoom);
  }

  /** Send a note to every participant directly, and (now or soon) to the room. */
  #publish(note: Note, toRoom: boolean): void {
    for (const p of this.#peers.values()) toParticipant(p.who).send({ t: 'note', note });
    const pending = this.#roomTimers.get(note.id);
    if (pending) clearTimeout(pending);
    const flush = () => {
      this.#roomTimers.delete(note.id);
      const latest = this.#notes.get(note.id);
      if (latest) this.#room?.send({ t: 'note', note: latest });
    };
    if (toRoom) flush();
    else this.#roomTimers.set(note.id, setTimeout(flush, 250));
  }

  // ------------------------------------------------------------------------------------------
  // Peers

  #dropPeer(key: string, reason: string): void {
    const p = this.#peers.get(key);
    if (!p) return;
    this.#peers.delete(key);
    this.#cursors.get(key)?.remove();
    this.#cursors.delete(key);
    this.#logLine(`${p.who.name} left (${reason})`, p.who.colour, 'left');
    this.#renderPeers();
  }

  #routeTo(node: string): PeerRoute {
    if (node === this.#node.id) return 'self';
    const link = this.#node.linkStats().find((l) => l.node === node);
    if (!link) return 'relay';
    const t = transportOf(link.label);
    return t === 'webrtc' ? 'webrtc' : 'other';
  }

  // ------------------------------------------------------------------------------------------
  // Cursors

  #sendCursor(x: number | null, y: number): void {
    this.#pendingCursor = { x, y };
    if (this.#cursorFrame) return;
    // At most one cursor message per peer per frame.
    this.#cursorFrame = requestAnimationFrame(() => {
      this.#cursorFrame = 0;
      const c = this.#pendingCursor;
      if (!c) return;
      this.#pendingCursor = undefined;
      for (const p of this.#peers.values())
        toParticipant(p.who).send({ t: 'cursor', from: this.#me.key, x: c.x, y: c.y });
    });
  }

  #moveCursor(from: string, x: number | null, y: number): void {
    const p = this.#peers.get(from);
    if (!p) return;
    let c = this.#cursors.get(from);
    if (x === null) {
      c?.classList.add('gone');
      return;
    }
    if (!c) {
      c = el('div', {
        class: 'cursor',
        'data-testid': 'board-cursor',
        'data-key': from,
        'aria-hidden': 'true',
      });
      c.innerHTML =
        '<svg width="18" height="20" viewBox="0 0 18 20"><path d="M1 1 L1 16 L5 12 L8 19 L11 18 L8 11 L14 11 Z" /></svg>';
      c.append(el('span', { class: 'cursor-name' }, p.who.name));
      c.style.setProperty('--who', p.who.colour);
      this.#board.append(c);
      this.#cursors.set(from, c);
    }
    c.classList.remove('gone');
    c.style.left = `${x * 100}%`;
    c.style.top = `${y * 100}%`;
  }

  // ------------------------------------------------------------------------------------------
  // Rendering

  #build(): void {
    const add = el(
      'button',
      { type: 'button', class: 'primary', 'data-testid': 'board-add-note' },
      '+ Add note',
    );
    add.addEventListener('click', () => {
      const id = this.addNote();
      (this.#noteEls.get(id)?.querySelector('textarea') as HTMLTextAreaElement | null)?.focus();
    });
    const swatches = el('div', {
      class: 'swatches',
      role: 'radiogroup',
      'aria-label': 'Colour of new notes',
    });
    for (const c of NOTE_COLOURS) {
      const b = el('button', {
        type: 'button',
        class: `swatch-btn note-${c}`,
        role: 'radio',
        'aria-checked': String(c === this.#colour),
        'aria-label': c,
        title: c,
      });
      b.addEventListener('click', () => {
        this.#colour = c;
        for (const s of swatches.children) s.setAttribute('aria-checked', String(s === b));
      });
      swatches.append(b);
    }
    this.#roomInfo = el(
      'span',
      { class: 'muted', 'data-testid': 'board-room' },
      'joining the room…',
    );
    this.#board = el('div', {
      class: 'board',
      'data-testid': 'board',
      role: 'region',
      'aria-label': 'Shared board',
    });
    this.#board.append(
      el(
        'p',
        { class: 'board-hint' },
        'Add a note, drag it by its top bar, type in it. Everyone in the room sees it at once.',
      ),
    );
    this.#board.addEventListener('pointermove', (e) => {
      const r = this.#board.getBoundingClientRect();
      this.#sendCursor(
        clamp01((e.clientX - r.left) / r.width),
        clamp01((e.clientY - r.top) / r.height),
      );
    });
    this.#board.addEventListener('pointerleave', () => this.#sendCursor(null, 0));
    this.#peerList = el('ul', { class: 'peers', 'data-testid': 'board-participants' });
    this.#log = el('ol', { class: 'log', 'data-testid': 'board-log', 'aria-live': 'polite' });
    this.#routeInfo = el('p', { class: 'muted small', 'data-testid': 'board-routes' });
    this.#root.append(
      el(
        'div',
        { class: 'board-layout' },
        el(
          'div',
          { class: 'card board-main' },
          el(
            'div',
            { class: 'toolbar' },
            add,
            swatches,
            el('span', { class: 'spacer' }),
            this.#roomInfo,
          ),
          this.#board,
        ),
        el(
          'aside',
          { class: 'card board-side' },
          el('h2', {}, 'Participants'),
          this.#peerList,
          this.#routeInfo,
          el('h2', {}, 'Activity'),
          this.#log,
        ),
      ),
    );
  }

  #renderRoomInfo(): void {
    this.#board.classList.toggle('has-notes', this.#noteEls.size > 0);
    if (!this.#room) {
      this.#roomInfo.textContent = 'no room — rejoining…';
      return;
    }
    const where = this.#roomHost === this.#node.id ? 'this page' : this.#roomHost;
    const n = this.notes().length;
    this.#roomInfo.textContent = `Room “${ROOM_NAME}” on ${where} · ${n} note${n === 1 ? '' : 's'}`;
  }

  #renderPeers(): void {
    const items = this.participants().map((p) => {
      const badge =
        p.route === 'self'
          ? el('span', { class: 'badge self' }, 'you')
          : p.route === 'webrtc'
            ? el(
                'span',
                {
                  class: 'badge webrtc',
                  title: 'Cursors go straight to this page over a WebRTC data channel',
                },
                'WebRTC · direct',
              )
            : p.route === 'relay'
              ? el(
                  'span',
                  {
                    class: 'badge relay',
                    title: 'No direct link yet: messages go through the relay over WebSocket',
                  },
                  'via relay',
                )
              : el('span', { class: 'badge' }, 'direct');
      return el(
        'li',
        {
          'data-testid': 'board-participant',
          'data-key': p.key,
          'data-node': p.node,
          'data-route': p.route,
          'data-self': String(p.self),
        },
        el('span', { class: 'dot', style: `background:${p.colour}`, 'aria-hidden': 'true' }),
        el('span', { class: 'peer-name' }, p.name, el('small', {}, p.node)),
        badge,
      );
    });
    this.#peerList.replaceChildren(...items);
    const others = this.participants().filter((p) => !p.self);
    const direct = others.filter((p) => p.route === 'webrtc').length;
    this.#routeInfo.textContent = others.length
      ? `Cursors and edits: ${direct} of ${others.length} peer${others.length > 1 ? 's' : ''} over WebRTC, ${others.length - direct} through the relay.`
      : 'Open this page in another tab or browser to collaborate.';
    this.#renderRoomInfo();
  }

  #renderNote(note: Note): void {
    let e = this.#noteEls.get(note.id);
    if (note.deleted) {
      e?.remove();
      this.#noteEls.delete(note.id);
      this.#renderRoomInfo();
      return;
    }
    if (!e) {
      e = this.#makeNoteEl(note.id);
      this.#noteEls.set(note.id, e);
      this.#board.append(e);
      this.#renderRoomInfo();
    }
    e.className = `note note-${note.colour}`;
    e.style.left = `${note.x * 100}%`;
    e.style.top = `${note.y * 100}%`;
    e.dataset.by = note.by;
    const ta = e.querySelector('textarea')!;
    // Never overwrite what the user is typing with an echo of an older keystroke.
    if (document.activeElement !== ta || note.by !== this.#me.key) ta.value = note.text;
    const author =
      [...this.#peers.values()].find((p) => p.who.ref.key === note.by)?.who ??
      (note.by === this.#me.key ? this.#who : undefined);
    e.style.setProperty('--who', author?.colour ?? '#888');
    e.querySelector('.note-author')!.textContent = author?.name ?? '';
  }

  #makeNoteEl(id: string): HTMLElement {
    const grip = el(
      'div',
      { class: 'note-grip', title: 'Drag to move' },
      el('span', { class: 'note-author' }),
    );
    const del = el(
      'button',
      {
        type: 'button',
        class: 'note-delete',
        'aria-label': 'Delete note',
        'data-testid': 'board-note-delete',
      },
      '×',
    );
    const ta = el('textarea', {
      'aria-label': 'Note text',
      maxlength: '500',
      placeholder: 'Write something…',
      'data-testid': 'board-note-text',
    }) as HTMLTextAreaElement;
    const note = el(
      'div',
      { class: 'note', 'data-testid': 'board-note', 'data-note-id': id },
      grip,
      del,
      ta,
    );
    del.addEventListener('click', () => this.deleteNote(id));
    ta.addEventListener('input', () => this.#edit(id, { text: ta.value }, false));
    ta.addEventListener('blur', () => {
      const n = this.#notes.get(id);
      if (n && !this.#ynotes) this.#room?.send({ t: 'note', note: n });
    });
    grip.addEventListener('pointerdown', (down) => {
      down.preventDefault();
      this.#board.append(note); // the note being moved comes to the front
      grip.setPointerCapture(down.pointerId);
      const board = this.#board.getBoundingClientRect();
      const start = this.#notes.get(id);
      if (!start) return;
      const ox = down.clientX;
      const oy = down.clientY;
      note.classList.add('dragging');
      const move = (e: PointerEvent) => {
        const x = clamp01(start.x + (e.clientX - ox) / board.width, 0.92);
        const y = clamp01(start.y + (e.clientY - oy) / board.height, 0.88);
        this.#edit(id, { x, y }, false);
        this.#sendCursor(
          clamp01((e.clientX - board.left) / board.width),
          clamp01((e.clientY - board.top) / board.height),
        );
      };
      const up = () => {
        note.classList.remove('dragging');
        grip.removeEventListener('pointermove', move);
        grip.removeEventListener('pointerup', up);
        grip.removeEventListener('pointercancel', up);
        const n = this.#notes.get(id);
        if (n && !this.#ynotes) this.#room?.send({ t: 'note', note: n });
      };
      grip.addEventListener('pointermove', move);
      grip.addEventListener('pointerup', up);
      grip.addEventListener('pointercancel', up);
    });
    // Keyboard: arrow keys on the focused grip move the note.
    grip.tabIndex = 0;
    grip.setAttribute('role', 'button');
    grip.setAttribute('aria-label', 'Move note (arrow keys)');
    grip.addEventListener('keydown', (e) => {
      const step = e.shiftKey ? 0.05 : 0.01;
      const d = {
        ArrowLeft: [-step, 0],
        ArrowRight: [step, 0],
        ArrowUp: [0, -step],
        ArrowDown: [0, step],
      }[e.key];
      const n = this.#notes.get(id);
      if (!d || !n) return;
      e.preventDefault();
      this.#edit(id, { x: clamp01(n.x + d[0], 0.92), y: clamp01(n.y + d[1], 0.88) }, true);
    });
    return note;
  }

  #logLine(text: string, colour: string | undefined, kind = 'info'): void {
    const time = new Date().toLocaleTimeString([], {
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hour12: false,
    });
    const li = el('li', { 'data-kind': kind }, el('time', {}, time), ' ');
    if (colour)
      li.append(
        el('span', { class: 'dot', style: `background:${colour}`, 'aria-hidden': 'true' }),
        ' ',
      );
    li.append(text);
    this.#log.prepend(li);
    while (this.#log.children.length > 30) this.#log.lastElementChild!.remove();
  }
}

function clamp01(v: number, max = 1): number {
  return Math.min(max, Math.max(0, v));
}
