// The collaborative board's shared state: a "room" actor holding the notes and the participant
// list. Host-neutral (core + zod only), so the room can live on the relay (what `npm run demo`
// does: the state outlives any one tab) or, when no room exists, in the first browser that looks.
//
// Who talks to whom:
// - a participant joins by calling the room (`join`), which answers with the notes and the others,
//   monitors the participant and tells the others (`joined`); when a participant's DOWN arrives
//   the room tells the rest (`left`);
// - edits and cursors go from participant to participant directly (each page sends to every
//   other participant's ref, so they take the WebRTC link between the two pages when there is
//   one); edits also go to the room, which keeps the latest version of each note;
// - notes merge last-writer-wins on `(v, by)`, so the order edits arrive in does not matter.
//   The demo page keeps its notes in a Y.Map of the troupe/yjs document instead (see
//   BoardView.useNotes in board.ts); this path serves a board without one.
import { z } from 'zod';
import { ActorRef, NameLost, behaviour, isDown, reply, type Node } from '../core/index.ts';

/** The name the room registers under. */
export const ROOM_NAME = 'board-room';

/** Note colours (CSS classes on the page). */
export const NOTE_COLOURS = ['yellow', 'pink', 'mint', 'sky', 'lilac'] as const;

// `ActorRef<never>` accepts a ref of any message type; senders narrow it (see `peerRef` in board.ts).
const Ref = z.custom<ActorRef<never>>((v) => v instanceof ActorRef, 'an actor ref');

/** A sticky note. Positions are fractions of the board (0..1), so every screen size agrees. */
export const Note = z.object({
  id: z.string().min(1).max(64),
  x: z.number().min(0).max(1),
  y: z.number().min(0).max(1),
  text: z.string().max(500),
  colour: z.enum(NOTE_COLOURS),
  /** Version: each edit sets it above every version its author has seen. */
  v: z.number().int().min(0),
  /** Who made this version (a participant key); breaks ties between equal versions. */
  by: z.string().max(120),
  /** Deleted notes stay as tombstones so a late, older edit cannot bring them back. */
  deleted: z.boolean().optional(),
});
export type Note = z.infer<typeof Note>;

/** A participant: one actor in one page. */
export const Participant = z.object({
  ref: Ref,
  name: z.string().min(1).max(40),
  colour: z.string().max(20),
  /** The node (page) it lives on. */
  node: z.string().max(120),
});
export type Participant = z.infer<typeof Participant>;

/** What the room accepts. */
export const RoomMsg = z.discriminatedUnion('t', [
  /** Call: join (or rejoin, bringing the notes this page has). Answer: {@link RoomState}. */
  z.object({ t: z.literal('join'), who: Participant, notes: z.array(Note).max(1000) }),
  /** Cast: the latest version of a note. */
  z.object({ t: z.literal('note'), note: Note }),
  /** Call: the current state. */
  z.object({ t: z.literal('state') }),
  /** Cast: leaving on purpose (closing a page without it is seen by the monitor). */
  z.object({ t: z.literal('leave'), ref: Ref }),
]);
export type RoomMsg = z.input<typeof RoomMsg>;

/** The room's answer to `join` and `state`. */
export interface RoomState {
  notes: Note[];
  participants: Participant[];
  /** The node the room lives on. */
  host: string;
}

/** What a participant accepts (from the room and from the other participants). */
export const ParticipantMsg = z.discriminatedUnion('t', [
  z.object({ t: z.literal('joined'), who: Participant }),
  z.object({ t: z.literal('left'), ref: Ref, reason: z.string().max(200) }),
  z.object({ t: z.literal('note'), note: Note }),
  /** A pointer position (fractions of the board), sent peer to peer only. `null` x: pointer left the board. */
  z.object({
    t: z.literal('cursor'),
    from: z.string().max(120),
    x: z.number().min(0).max(1).nullable(),
    y: z.number().min(0).max(1),
  }),
]);
export type ParticipantMsg = z.input<typeof ParticipantMsg>;

/** A participant's ref, typed for sending. */
export function toParticipant(who: Participant): ActorRef<ParticipantMsg> {
  return who.ref as ActorRef<ParticipantMsg>;
}

/** Whether `a` is a later version of a note than `b`. */
export function newer(a: Note, b: Note | undefined): boolean {
  return !b || a.v > b.v || (a.v === b.v && a.by > b.by);
}

interface RoomStateInternal {
  notes: Map<string, Note>;
  participants: Map<string, { who: Participant; monitor: string }>;
}

const MAX_NOTES = 1000;

function merge(s: RoomStateInternal, note: Note): void {
  if (!s.notes.has(note.id) && s.notes.size >= MAX_NOTES) return;
  if (newer(note, s.notes.get(note.id))) s.notes.set(note.id, note);
}

function stateOf(s: RoomStateInternal, host: string): RoomState {
  return {
    notes: [...s.notes.values()],
    participants: [...s.participants.values()].map((p) => p.who),
    host,
  };
}

function drop(s: RoomStateInternal, key: string, reason: string): void {
  const p = s.participants.get(key);
  if (!p) return;
  s.participants.delete(key);
  for (const other of s.participants.values())
    toParticipant(other.who).send({ t: 'left', ref: p.who.ref, reason });
}

/** The room's behaviour: see the top of this file. */
export const roomBehaviour = behaviour({
  schema: RoomMsg,
  init: (): RoomStateInternal => ({ notes: new Map(), participants: new Map() }),
  handle: (m, s, ctx) => {
    switch (m.t) {
      case 'join': {
        const key = m.who.ref.key;
        for (const note of m.notes) merge(s, note);
        if (!s.participants.has(key)) {
          const monitor = ctx.monitor(toParticipant(m.who));
          for (const other of s.participants.values())
            toParticipant(other.who).send({ t: 'joined', who: m.who });
          s.participants.set(key, { who: m.who, monitor });
        }
        return reply(stateOf(s, ctx.node.id), s);
      }
      case 'note':
        merge(s, m.note);
        return s;
      case 'state':
        return reply(stateOf(s, ctx.node.id), s);
      case 'leave': {
        const p = s.participants.get(m.ref.key);
        if (p) ctx.demonitor(p.monitor);
        drop(s, m.ref.key, 'left');
        return s;
      }
    }
  },
  info: (msg, s, ctx) => {
    if (isDown(msg)) drop(s, msg.ref.key, typeof msg.reason === 'string' ? msg.reason : 'crashed');
    // Two pages started a room at once and this one lost the name: stop, so its participants
    // (who monitor it) rejoin the winner, bringing their notes.
    if (msg instanceof NameLost) ctx.exit('room-name-lost');
    return s;
  },
});

/**
 * Start a board room on `node`, registered as {@link ROOM_NAME}. Returns undefined when the
 * name is already taken (a room exists somewhere in the cluster).
 */
export function startRoom(node: Node): ActorRef<RoomMsg, RoomState> | undefined {
  if (node.whereis(ROOM_NAME)) return undefined;
  try {
    return node.spawn(roomBehaviour, { name: ROOM_NAME }) as ActorRef<RoomMsg, RoomState>;
  } catch {
    return undefined;
  }
}
