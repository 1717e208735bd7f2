import {
  DIRECT_REPLY,
  type EnvelopeReader,
  envelope,
  isDirect,
  isShortRouted,
  ROUTED_REPLY,
} from './envelope.ts';
import { type EnvelopeHeader, PAYLOAD_SEPARATOR, type RoutedHeader } from './protocol.ts';

/**
 * The envelope module's typed reading (core/envelope.ts parses headers, core/envelope-write.ts
 * writes them): envelopes by meaning, so the router and the runtime never name a wire field.
 */

type Header<T extends EnvelopeHeader['t']> = Extract<EnvelopeHeader, { t: T }>;

/** A spawn request (`sp`) as its receiver reads it. */
export interface SpawnRequest {
  /** The node that asked, which the reply (call `callId`) goes to. */
  origin: string;
  callId: number;
  behaviour: string;
  /** The actor of `origin` to link to or monitor by (0: none). */
  watcher: number;
  link: boolean;
  /** The monitor id the watcher holds ('' for none). */
  monitor: string;
}

/**
 * What a node does with each envelope addressed to it, by meaning rather than by wire field
 * (see {@link dispatchEnvelope}); `from` is the link it came on. `session` is the sender's session
 * number, when the envelope carries one.
 */
export interface EnvelopeHandlers<F> {
  send(from: F, actor: number, origin: string, payload: string | undefined, awaited: boolean): void;
  grant(from: F, origin: string, bytes: number): void;
  call(from: F, actor: number, origin: string, callId: number, payload: string | undefined): void;
  reply(from: F, callId: number, ok: 0 | 1, payload: string | undefined): void;
  cancel(from: F, actor: number, origin: string, callId: number): void;
  exit(
    from: F,
    actor: number,
    origin: string,
    fromActor: number,
    viaLink: boolean,
    payload: string | undefined,
  ): void;
  link(
    from: F,
    op: 'l' | 'u',
    actor: number,
    origin: string,
    fromActor: number,
    session: number | undefined,
  ): void;
  monitor(
    from: F,
    actor: number,
    origin: string,
    watcher: number,
    monitor: string,
    session: number | undefined,
  ): void;
  demonitor(from: F, actor: number, monitor: string): void;
  down(
    from: F,
    watcher: number,
    monitor: string,
    origin: string,
    dead: number,
    payload: string | undefined,
  ): void;
  spawn(
    from: F,
    request: SpawnRequest,
    session: number | undefined,
    payload: string | undefined,
  ): void;
  dropReport(
    from: F,
    origin: string,
    target: string,
    count: number,
    reason: 'overflow' | 'unreachable',
  ): void;
  routeFlush(from: F, origin: string, marker: number): void;
  routeFlushed(from: F, origin: string, marker: number): void;
  session(from: F, session: number): void;
  sessionRoute(from: F, origin: string, session: number): void;
  nodeDown(from: F, node: string): void;
  sessionLost(from: F, node: string): void;
  registry(from: F, op: 'ga' | 'gd', name: string, node: string, id: number): void;
  members(from: F, members: Header<'mb'>['m']): void;
}

/** Hand envelope `h` (validated), which came on `from`, and its payload to the matching method of `to`. */
export function dispatchEnvelope<F>(
  h: EnvelopeHeader,
  payload: string | undefined,
  to: EnvelopeHandlers<F>,
  from: F,
): void {
  switch (h.t) {
    case 's':
      return to.send(from, h.a, h.o, payload, h.f === 1);
    case 'fg':
      return to.grant(from, h.o, h.b);
    case 'c':
      return to.call(from, h.a, h.o, h.c, payload);
    case 'r':
      return to.reply(from, h.c, h.k, payload);
    case 'ca':
      return to.cancel(from, h.a, h.o, h.c);
    case 'x':
      return to.exit(from, h.a, h.o, h.f, h.l === 1, payload);
    case 'l':
    case 'u':
      return to.link(from, h.t, h.a, h.o, h.f, h.e);
    case 'm':
      return to.monitor(from, h.a, h.o, h.w, h.m, h.e);
    case 'dm':
      return to.demonitor(from, h.a, h.m);
    case 'd':
      return to.down(from, h.w, h.m, h.o, h.a, payload);
    case 'sp': {
      const request: SpawnRequest = {
        origin: h.o,
        callId: h.c,
        behaviour: h.b,
        watcher: h.w,
        link: h.lk === 1,
        monitor: h.m,
      };
      return to.spawn(from, request, h.e, payload);
    }
    case 'dr':
      return to.dropReport(from, h.o, h.x, h.k, h.r);
    case 'rf':
      return to.routeFlush(from, h.o, h.k);
    case 'ra':
      return to.routeFlushed(from, h.o, h.k);
    case 'hb':
      return;
    case 'ss':
      return to.session(from, h.l);
    case 'sr':
      return to.sessionRoute(from, h.o, h.e);
    case 'nd':
      return to.nodeDown(from, h.x);
    case 'sl':
      return to.sessionLost(from, h.x);
    case 'ga':
    case 'gd':
      return to.registry(from, h.t, h.g, h.x, h.a);
    case 'mb':
      return to.members(from, h.m);
  }
}

// Routed envelopes: what a node forwarding one for another node reads of it.

/** `h` as a routed envelope (it carries a target node), else undefined. */
export const routed = (h: EnvelopeHeader): RoutedHeader | undefined => ('n' in h ? h : undefined);
/** The node a routed envelope is for. */
export const targetOf = (h: RoutedHeader): string => h.n;
/** The node a routed envelope comes from. */
export const originOf = (h: RoutedHeader): string => h.o;
/** How many hops a routed envelope has made. */
export const hopsOf = (h: RoutedHeader): number => h.h;
/** The call its origin awaits a reply to (a call or a spawn), or 0. */
export const awaitedCallOf = (h: RoutedHeader): number => (h.t === 'c' || h.t === 'sp' ? h.c : 0);
/** Whether a relay may drop it when the next link is congested (sends, calls, spawns). */
export const isDroppable = (h: RoutedHeader): boolean =>
  (h.t === 's' && h.f !== 1) || h.t === 'c' || h.t === 'sp';
/** Whether it is a relay's drop report (never itself reported when dropped). */
export const isDropReport = (h: RoutedHeader): boolean => h.t === 'dr';
/** Who a lost routed envelope was for, as a dead letter names it (`node/actor`). */
export const addresseeOf = (h: RoutedHeader): string => `${h.n}/${'a' in h ? h.a : '?'}`;
/** A monitor request's watcher, monitor id and target actor, if `h` is one. */
export const monitorRequestOf = (
  h: RoutedHeader,
): { watcher: number; monitor: string; actor: number } | undefined =>
  h.t === 'm' ? { watcher: h.w, monitor: h.m, actor: h.a } : undefined;
/** The text of `h` with its payload, one hop further. */
export const nextHopEnvelope = (h: RoutedHeader, payload: string | undefined): string =>
  envelope({ ...h, h: h.h + 1 }, payload);

/**
 * What a link lost before its peer confirmed it: for envelope `text`, who it was for (as a dead
 * letter names it), whether it carried a message, and its payload. Undefined for link-local
 * control (heartbeats, gossip, registry), which is not a message, and for unreadable text.
 */
export function lostEnvelope(
  reader: EnvelopeReader,
  text: string,
  peer: string,
): { to: string; carries: boolean; payload: string | undefined } | undefined {
  const kind = text.charCodeAt(0);
  const tab = text.indexOf(PAYLOAD_SEPARATOR);
  const payload = tab < 0 ? undefined : text.slice(tab + 1);
  if (isDirect(kind)) {
    if (!reader.parseDirect(text, tab < 0 ? text.length : tab)) return undefined;
    const x = reader.direct.x;
    if (kind === DIRECT_REPLY) return { to: `${peer}#call${x}`, carries: false, payload };
    return { to: `${peer}/${x}`, carries: true, payload };
  }
  if (isShortRouted(kind)) {
    if (!reader.parseRouted(text, tab < 0 ? text.length : tab)) return undefined;
    const { n } = reader.routed;
    const x = reader.direct.x;
    if (kind === ROUTED_REPLY) return { to: `${n}#call${x}`, carries: false, payload };
    return { to: `${n}/${x}`, carries: true, payload };
  }
  let h: Record<string, unknown>;
  try {
    h = reader.parseHeader(tab < 0 ? text : text.slice(0, tab)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof h.n !== 'string') return undefined;
  const to = h.t === 'r' ? `${h.n}#call${String(h.c)}` : `${h.n}/${String(h.a ?? h.t)}`;
  return { to, carries: h.t === 's' || h.t === 'c', payload };
}
