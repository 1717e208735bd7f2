import { ErrorCode, type NatsConnection, type NatsError, type Subscription } from 'nats';
import type { Discovery, Node } from '../core/index.ts';

/** Why a member left (see `memberDown` of the NATS transport's events). */
export type MemberDownReason = 'left' | 'timeout' | 'no responders';

/** What the presence discovery is made of (by `createNatsTransport`). */
export interface PresenceParts {
  start: () => Promise<NatsConnection>;
  /** This node's own subject. */
  own: string;
  /** The discovery subject every node listens on. */
  shared: string;
  /** Base period of the re-announcement (stretched to 200 ms per member). */
  interval: number;
  /** A watched member that leaves a probe unanswered this long is down. */
  timeout: number;
  /** How often each node probes the members it watches. */
  probeInterval: number;
  /** Route the direct messages (`a` kind) that arrive on this node's subject here. */
  setHandler: (fn: (from: string, body: Uint8Array, direct: boolean) => void) => void;
  sendDirect: (to: string, body: Uint8Array) => void;
  memberUp: (node: string, subject: string) => void;
  memberDown: (node: string, reason: MemberDownReason) => void;
}

/** Members watched by each node (its successors in the ring of member ids). */
const WATCHERS = 2;
/** The re-announcement period grows by this much per member, so each node hears ≤ 5 a second. */
const MS_PER_MEMBER = 200;

const enc = new TextEncoder();
const dec = new TextDecoder();
const PROBE = enc.encode('q presence \n');
/** Run `fn` after the I/O that waits on this process's sockets has been read. */
const afterIo = (fn: () => void): void => {
  const later = globalThis.setImmediate ?? ((f: () => void) => setTimeout(f, 0));
  later(() => later(fn));
};

interface Member {
  subject: string;
  /**
   * When it is overdue (Date.now() scale); unset once it answers a probe or announces itself.
   * `probe`: its watcher's oldest unanswered probe (2/3 of the timeout); `suspect`: the rest of
   * the timeout, which every node gives it after a suspect notice, probing it meanwhile.
   */
  deadline?: number;
  phase?: 'probe' | 'suspect';
}

/**
 * Membership for lazy links, at a cost per node that does not grow with the cluster.
 *
 * - **Join and leave**: a node publishes its presence on the shared subject when it starts (every
 *   member answers it directly, so a newcomer knows the cluster within a round trip) and a
 *   goodbye when it stops. It re-announces every `max(interval, 200 ms × members)` only to repair
 *   a missed message, so each node hears about five announcements a second whatever N.
 * - **Liveness from the server**: every node probes its two successors in the ring of member ids
 *   (a NATS request to the member's subject) every `probeInterval`. A SIGKILLed or crashed
 *   node's connection is gone, so the NATS server answers "no responders" at once; a watcher that
 *   gets it drops the member and publishes a notice that every node follows at once (it trusts
 *   the NATS account as it trusts a goodbye; checking it with a probe of each node's own took
 *   2–3 s per node on a loaded machine, the notice alone 40–70 ms). A member that leaves its
 *   watcher's probes unanswered for 2/3 of `timeout` (frozen: SIGSTOP, cut off, or starved) is
 *   suspected: a notice makes every node probe it too and give it the rest of the timeout; any
 *   answer or announcement clears it, and a live node that hears it is suspected announces
 *   itself at once. Past the timeout, each node drops it on its own count.
 * - **Never on this process's own lateness**: a probe's deadline moves by however late this
 *   process's own timer ran (a stall, a GC pause, a starved machine), and a deadline is only
 *   judged after the messages waiting on the socket have been read.
 */
export function natsPresence(p: PresenceParts): {
  discovery: Discovery;
  members(): Iterable<[string, string]>;
  gone(subject: string): void;
} {
  const members = new Map<string, Member>();
  const bySubject = new Map<string, string>();
  let ring: string[] | undefined;
  let announceTimer: ReturnType<typeof setTimeout> | undefined;
  let probeTimer: ReturnType<typeof setTimeout> | undefined;
  let sub: Subscription | undefined;
  let stopped = false;
  let nc: NatsConnection | undefined;
  let lost: ((node: string) => void) | undefined;
  let self: Node | undefined;

  const drop = (node: string, reason: MemberDownReason): void => {
    const m = members.get(node);
    if (!m) return;
    members.delete(node);
    ring = undefined;
    if (bySubject.get(m.subject) === node) bySubject.delete(m.subject);
    p.memberDown(node, reason);
    lost?.(node);
  };

  const publish = (body: unknown): void => {
    try {
      if (nc && !nc.isClosed())
        nc.publish(p.shared, enc.encode(JSON.stringify(body)), { reply: p.own });
    } catch {
      /* closed */
    }
  };

  /** Tell every node that `node` (on `subject`) is gone (no responders) or suspected (unanswered probes). */
  const notice = (node: string, subject: string, why: 'nr' | 'suspect'): void => {
    if (self) publish({ n: self.id, down: node, s: subject, why });
  };

  const presence = (): Uint8Array | undefined => {
    const addr = self?.addresses.find((a) => a.startsWith('nats:'));
    if (!self || !addr) return undefined;
    return enc.encode(JSON.stringify({ n: self.id, a: [addr] }));
  };

  /** The members this node watches: its successors in the sorted ring of ids (itself included). */
  const watched = (): string[] => {
    if (!self || members.size === 0) return [];
    ring ??= [...members.keys(), self.id].sort();
    const at = ring.indexOf(self.id);
    const out: string[] = [];
    for (let i = 1; i <= Math.min(WATCHERS, ring.length - 1); i++)
      out.push(ring[(at + i) % ring.length]!);
    return out;
  };

  /**
   * Probe `node` (a new request every period, even while one is unanswered: a request that
   * reached a process just before it died is never answered, while the next one gets "no
   * responders" at once). Any answer clears its deadline.
   */
  const probe = (node: string, m: Member, now: number): void => {
    if (!nc || nc.isClosed()) return;
    if (m.deadline === undefined) {
      m.deadline = now + (p.timeout * 2) / 3;
      m.phase = 'probe';
    }
    // The client's own timeout is only a backstop: the deadline above decides (see tick).
    nc.request(m.subject, PROBE, { timeout: p.timeout * 3 }).then(
      () => {
        m.deadline = m.phase = undefined;
      },
      (err: NatsError) => {
        if (members.get(node) !== m || err.code !== ErrorCode.NoResponders) return;
        drop(node, 'no responders');
        notice(node, m.subject, 'nr');
      },
    );
  };

  /** `node` is suspected (its watcher's probes went unanswered): the rest of the timeout to answer. */
  const suspect = (m: Member, now: number): void => {
    if (m.phase === 'suspect') return;
    m.phase = 'suspect';
    m.deadline = now + p.timeout / 3;
  };

  let lastTick = Date.now();
  let expected = 0;
  const tick = (): void => {
    if (stopped) return;
    const now = Date.now();
    // This process's timer ran late (a stall, a starved machine): whatever it did not hear in
    // that gap says nothing of the others. Their probes get that much more time.
    const late = now - lastTick - expected;
    if (late > 50) for (const m of members.values()) if (m.deadline) m.deadline += late;
    const watch = new Set(watched());
    for (const [node, m] of members) {
      // Its watchers probe it every round; every node probes a suspect.
      if (watch.has(node) || m.phase === 'suspect') probe(node, m, now);
      if (m.deadline === undefined || now < m.deadline) continue;
      // Overdue: decide once the answers waiting on the socket have been read.
      afterIo(() => {
        if (stopped || members.get(node) !== m || m.deadline === undefined) return;
        const t = Date.now();
        if (t < m.deadline) return; // this process stalled again meanwhile
        if (m.phase === 'probe') {
          // Unanswered for 2/3 of the timeout: everyone gives it the rest, probing it too.
          suspect(m, t);
          notice(node, m.subject, 'suspect');
          return;
        }
        drop(node, 'timeout');
      });
    }
    lastTick = now;
    expected = p.probeInterval * (0.8 + Math.random() * 0.4);
    probeTimer = setTimeout(tick, expected);
    (probeTimer as { unref?: () => void }).unref?.();
  };

  const announce = (): void => {
    if (stopped || self?.isShutdown) return;
    const b = presence();
    // Not listening yet: look again soon (node.listen() usually follows createNode).
    if (!b) {
      announceTimer = setTimeout(announce, 25);
      return;
    }
    try {
      nc?.publish(p.shared, b, { reply: p.own });
    } catch {
      /* closed */
    }
    const period = Math.max(p.interval, MS_PER_MEMBER * members.size);
    announceTimer = setTimeout(announce, period * (0.8 + Math.random() * 0.4));
  };

  return {
    members: () => [...members].map(([n, m]): [string, string] => [n, m.subject]),
    gone(subject) {
      const node = bySubject.get(subject);
      if (!node) return;
      drop(node, 'no responders');
      notice(node, subject, 'nr');
    },
    discovery: {
      name: 'nats',
      lazy: true,
      async start(node, found, onLost) {
        self = node;
        lost = onLost;
        nc = await p.start();
        const hear = (from: string, data: Uint8Array, direct: boolean): void => {
          if (stopped || node.isShutdown) return;
          let m: {
            n?: unknown;
            a?: unknown;
            bye?: unknown;
            down?: unknown;
            s?: unknown;
            why?: unknown;
          };
          try {
            m = JSON.parse(dec.decode(data)) as typeof m;
          } catch {
            return;
          }
          if (typeof m.n !== 'string' || m.n.length > 200 || m.n === node.id) return;
          if (m.bye === 1) {
            if (members.get(m.n)?.subject === from) drop(m.n, 'left');
            return;
          }
          if (typeof m.down === 'string') {
            if (m.down === node.id) {
              // Suspected (or dropped) while alive: a stall of this process. Refute it at once.
              if (m.s === p.own) {
                if (announceTimer) clearTimeout(announceTimer);
                announce();
              }
              return;
            }
            const x = members.get(m.down);
            if (!x || x.subject !== m.s) return;
            if (m.why === 'suspect') {
              suspect(x, Date.now());
              probe(m.down, x, Date.now());
            } else drop(m.down, 'no responders'); // the server told its watcher: followed at once
            return;
          }
          if (!Array.isArray(m.a) || !validSubject(from)) return;
          const addr = m.a.find((a): a is string => typeof a === 'string' && a === `nats:${from}`);
          if (!addr) return;
          const known = members.get(m.n);
          if (known && known.subject === from) {
            known.deadline = known.phase = undefined; // it speaks: alive
            return;
          }
          // New member, or a new life of it on another subject.
          if (known) bySubject.delete(known.subject);
          members.set(m.n, { subject: from });
          ring = undefined;
          bySubject.set(from, m.n);
          p.memberUp(m.n, from);
          found(m.n, [addr]);
          // Tell the newcomer about this node now rather than at the next round.
          const mine = presence();
          if (!direct && mine) p.sendDirect(from, mine);
        };
        p.setHandler(hear);
        sub = nc.subscribe(p.shared, {
          callback: (err, msg) =>
            !err && msg.reply !== p.own && hear(msg.reply ?? '', msg.data, false),
        });
        announceTimer = setTimeout(announce, 20);
        lastTick = Date.now();
        expected = p.probeInterval;
        probeTimer = setTimeout(tick, expected);
        (probeTimer as { unref?: () => void }).unref?.();
      },
      stop() {
        if (stopped) return;
        stopped = true;
        if (announceTimer) clearTimeout(announceTimer);
        if (probeTimer) clearTimeout(probeTimer);
        if (self) publish({ n: self.id, bye: 1 });
        sub?.unsubscribe();
        members.clear();
        bySubject.clear();
      },
    },
  };
}

/** Whether `s` is a NATS subject troupe accepts from a peer (no wildcards, bounded). */
export function validSubject(s: string): boolean {
  return (
    s.length > 0 &&
    s.length < 200 &&
    /^[A-Za-z0-9_.-]+$/.test(s) &&
    !s.startsWith('.') &&
    !s.endsWith('.') &&
    !s.includes('..')
  );
}
