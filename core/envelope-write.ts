import type { z } from 'zod';
import {
  DIRECT_CALL,
  DIRECT_SEND,
  EnvelopeReader,
  isDirect,
  isShortRouted,
  ROUTED_CALL,
  ROUTED_SEND,
} from './envelope.ts';
import { type HandshakeMessage, type MembersHeader, PAYLOAD_SEPARATOR } from './protocol.ts';

/**
 * The envelope module's writers (core/envelope.ts has its readers): one per envelope the core
 * sends, so a wire field name appears nowhere else in core/ (link-level frames aside, in
 * core/link.ts). docs/protocol.md describes each envelope.
 */

/** The text of a direct header. */
export function directHeader(kind: number, x: number, y: number): string {
  if (kind === DIRECT_SEND) return 'S' + x;
  return (kind === DIRECT_CALL ? 'C' : 'R') + x + ',' + y;
}

/** A link to no node whose peer reads only JSON routed headers. */
const NO_LINK = { peer: '', shortRouted: false };

/**
 * Writes the JSON headers of traffic envelopes (`s`, `c`, `r`) from node `origin`, the form
 * routed traffic takes (see {@link directHeader} for the direct one), caching quoted node ids.
 */
export class TrafficHeaders {
  readonly #quoted = new Map<string, string>();
  /** `0,<node>,<origin>,` by node: the middle of a short routed header. */
  readonly #mids = new Map<string, string>();
  readonly #origin: string;
  readonly #maxCached: number;
  readonly #reader = new EnvelopeReader();

  constructor(origin: string, maxCached: number) {
    this.#origin = origin;
    this.#maxCached = maxCached;
  }

  /** The JSON header of a traffic envelope of `kind` (a `DIRECT_*` code) for `node`. */
  json(kind: number, node: string, x: number, y: number): string {
    const n = this.#q(node);
    const o = this.#q(this.#origin);
    if (kind === DIRECT_SEND) return `{"t":"s","n":${n},"o":${o},"h":0,"a":${x}}`;
    if (kind === DIRECT_CALL) return `{"t":"c","n":${n},"o":${o},"h":0,"a":${x},"c":${y}}`;
    return `{"t":"r","n":${n},"o":${o},"h":0,"c":${x},"k":${y}}`;
  }

  /**
   * The short routed header of a traffic envelope of `kind` (a `DIRECT_*` code) for `node`, for
   * a link whose peer reads it (see `ROUTED_SEND` in core/envelope.ts).
   */
  short(kind: number, node: string, x: number, y: number): string {
    let mid = this.#mids.get(node);
    if (mid === undefined) {
      mid = `0,${node},${this.#origin},`;
      if (this.#mids.size < this.#maxCached) this.#mids.set(node, mid);
    }
    if (kind === DIRECT_SEND) return 's' + mid + x;
    return (kind === DIRECT_CALL ? 'c' : 'r') + mid + x + ',' + y;
  }

  /** `text` in the JSON form if it is a direct envelope for `node` (see {@link rehome}). */
  undirect(text: string, node: string): string {
    return this.rehome(text, node, NO_LINK);
  }

  /**
   * `text`, held for `node` during a route switch, in the form it takes on `link`: a direct
   * envelope leaving on another node's link in a routed form, a short routed one leaving on a
   * link whose peer does not read that form in JSON.
   */
  rehome(text: string, node: string, link: { peer: string; shortRouted: boolean }): string {
    const kind = text.charCodeAt(0);
    if (isDirect(kind)) {
      if (link.peer === node) return text;
      const tab = text.indexOf(PAYLOAD_SEPARATOR);
      if (!this.#reader.parseDirect(text, tab < 0 ? text.length : tab)) return text;
      const { x, y } = this.#reader.direct;
      const header = link.shortRouted ? this.short(kind, node, x, y) : this.json(kind, node, x, y);
      return header + (tab < 0 ? '' : text.slice(tab));
    }
    if (isShortRouted(kind) && !link.shortRouted) return longRouted(this.#reader, text) ?? text;
    return text;
  }

  #q(s: string): string {
    let q = this.#quoted.get(s);
    if (q === undefined) {
      q = JSON.stringify(s);
      if (this.#quoted.size < this.#maxCached) this.#quoted.set(s, q);
    }
    return q;
  }
}

/**
 * A short routed envelope (`text`, see `ROUTED_SEND` in core/envelope.ts) with the same fields
 * in the JSON form, for a link whose peer does not read the short one; undefined when `text`
 * is not a well-formed short routed envelope.
 */
export function longRouted(reader: EnvelopeReader, text: string): string | undefined {
  const tab = text.indexOf(PAYLOAD_SEPARATOR);
  if (!reader.parseRouted(text, tab < 0 ? text.length : tab)) return undefined;
  const { h, n, o } = reader.routed;
  const { x, y } = reader.direct;
  const ids = `"n":${JSON.stringify(n)},"o":${JSON.stringify(o)},"h":${h}`;
  const kind = text.charCodeAt(0);
  const header =
    kind === ROUTED_SEND
      ? `{"t":"s",${ids},"a":${x}}`
      : kind === ROUTED_CALL
        ? `{"t":"c",${ids},"a":${x},"c":${y}}`
        : `{"t":"r",${ids},"c":${x},"k":${y}}`;
  return header + (tab < 0 ? '' : text.slice(tab));
}

// -----------------------------------------------------------------------------------------
// Writers: one per envelope the core sends (docs/protocol.md). Routed envelopes go from `from`
// (the origin node) to `to` (the target node), hop 0.

/** `ss`: the number of the sender's session with the receiver, first on every link. */
export const writeSession = (session: number): string => `{"t":"ss","l":${session}}`;

/** A handshake `reject` (refused before the handshake: connection limits). */
export const writeReject = (code: string, message: string): string =>
  JSON.stringify({ t: 'reject', code, message } satisfies HandshakeMessage);

/** `mb`: membership gossip, the nodes the sender knows and their listen addresses. */
export const writeMembers = (members: z.infer<typeof MembersHeader>['m']): string =>
  JSON.stringify({ t: 'mb', m: members });

/** `nd`: `node` is no longer reachable through the sender. */
export const writeNodeDown = (node: string): string => JSON.stringify({ t: 'nd', x: node });

/** `sl`: envelopes for `node` through the sender may have been lost. */
export const writeSessionLost = (node: string): string => JSON.stringify({ t: 'sl', x: node });

/** `ga` / `gd`: registry add or delete of `name` for actor `id` of `node`. */
export const writeRegistry = (op: 'ga' | 'gd', name: string, node: string, id: number): string =>
  JSON.stringify({ t: op, g: name, x: node, a: id });

/** The node a name claim (`ga`, as {@link writeRegistry} writes it) is about; undefined for other text. */
export const claimedNode = (text: string): string | undefined =>
  text.startsWith('{"t":"ga"') ? (JSON.parse(text) as { x: string }).x : undefined;

/** `rf` (flush marker) / `ra` (its answer) `marker` for the route from `from` to `to`. */
export const writeRouteFlush = (op: 'rf' | 'ra', to: string, from: string, marker: number) =>
  JSON.stringify({ t: op, n: to, o: from, h: 0, k: marker });

/** Whether `text` is a route flush marker (`rf`) as {@link writeRouteFlush} writes it. */
export const isRouteFlush = (text: string): boolean => text.startsWith('{"t":"rf"');

/** `dr`: relay `from` dropped `count` of `to`'s envelopes for `target` because of `reason`. */
export const writeDropReport = (
  to: string,
  from: string,
  target: string,
  count: number,
  reason: string,
): string => JSON.stringify({ t: 'dr', n: to, o: from, h: 0, x: target, k: count, r: reason });

/** `sr`: the number `session` of `from`'s session with `to`. */
export const writeSessionRoute = (to: string, from: string, session: number): string =>
  JSON.stringify({ t: 'sr', n: to, o: from, h: 0, e: session });

/** `fg`: `from` grants `bytes` of credit back to `to`. */
export const writeFlowGrant = (to: string, from: string, bytes: number): string =>
  JSON.stringify({ t: 'fg', n: to, o: from, h: 0, b: bytes });

/** `s` with `f:1`: an awaited send from `from` to actor `id` of `to`. */
export const writeAwaitedSend = (to: string, from: string, id: number): string =>
  JSON.stringify({ t: 's', n: to, o: from, h: 0, a: id, f: 1 });

/** `ca`: `from` cancels its call `callId` to actor `id` of `to`. */
export const writeCancel = (to: string, from: string, id: number, callId: number): string =>
  JSON.stringify({ t: 'ca', n: to, o: from, h: 0, a: id, c: callId });

/** `sp`: spawn `behaviour` on `to`, reply to call `callId` of `from`. */
export function writeSpawn(
  to: string,
  from: string,
  callId: number,
  behaviour: string,
  spawn: { watcher: number; link: boolean; monitor: string; session: number | undefined },
): string {
  return JSON.stringify({
    t: 'sp',
    n: to,
    o: from,
    h: 0,
    c: callId,
    b: behaviour,
    w: spawn.watcher,
    lk: spawn.link ? 1 : 0,
    m: spawn.monitor,
    e: spawn.session,
  });
}

/** `l` / `u`: link (unlink) actor `fromId` of `from` with actor `id` of `to`. */
export function writeLink(
  op: 'l' | 'u',
  to: string,
  from: string,
  id: number,
  fromId: number,
  session?: number,
): string {
  return op === 'l'
    ? JSON.stringify({ t: op, n: to, o: from, h: 0, a: id, f: fromId, e: session })
    : JSON.stringify({ t: op, n: to, o: from, h: 0, a: id, f: fromId });
}

/** `m`: actor `watcher` of `from` monitors actor `id` of `to` (monitor `monitor`). */
export const writeMonitor = (
  to: string,
  from: string,
  id: number,
  watcher: number,
  monitor: string,
  session: number | undefined,
): string =>
  JSON.stringify({ t: 'm', n: to, o: from, h: 0, a: id, w: watcher, m: monitor, e: session });

/** `dm`: remove monitor `monitor` from actor `id` of `to`. */
export const writeDemonitor = (to: string, from: string, id: number, monitor: string): string =>
  JSON.stringify({ t: 'dm', n: to, o: from, h: 0, a: id, m: monitor });

/** `x`: an exit signal from actor `fromId` (0: none) of `from` to actor `id` of `to`. */
export const writeExit = (
  to: string,
  from: string,
  id: number,
  fromId: number,
  viaLink: boolean,
): string => JSON.stringify({ t: 'x', n: to, o: from, h: 0, a: id, f: fromId, l: viaLink ? 1 : 0 });

/** `d`: DOWN of actor `deadId` of `deadNode` for monitor `monitor` of actor `watcher` on `to`. */
export const writeDown = (
  to: string,
  deadNode: string,
  watcher: number,
  monitor: string,
  deadId: number,
): string =>
  JSON.stringify({ t: 'd', n: to, o: deadNode, h: 0, w: watcher, m: monitor, a: deadId });
