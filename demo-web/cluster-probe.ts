// What the live cluster view shows, and how it is gathered. Every demo node (tab, worker, relay,
// TCP node) runs a small "probe" actor registered as `probe:<node id>` that reports the node's
// links with their counters, its actor count and its names. A watcher on any node calls every
// probe it can reach, merges the reports into one picture of the cluster, and turns counter
// deltas into message rates. Host-neutral: no DOM, no Node API (the relay and the TCP nodes run
// it too).
import { z } from 'zod';
import {
  behaviour,
  isErrorReason,
  whichChildren,
  type ActorRef,
  type Node,
  type SupervisorRef,
} from '../core/index.ts';

/** What kind of node a report or a picture shows. */
export type NodeKind = 'tab' | 'worker' | 'relay' | 'tcp' | 'node';
/** The transport under one link. */
export type TransportKind = 'webrtc' | 'websocket' | 'tcp' | 'worker' | 'memory' | 'other';

/** Probes register under this prefix plus their node id. */
export const PROBE_PREFIX = 'probe:';

/** One direct link as one end sees it. */
export interface LinkReport {
  peer: string;
  transport: TransportKind;
  label: string;
  /** Envelopes (messages, heartbeats, registry updates) this end has sent on the link. */
  envelopesOut: number;
  framesOut: number;
  framesIn: number;
}

/** What one probe answers. */
export interface ProbeReport {
  id: string;
  kind: NodeKind;
  /** A human name ("Amber Otter's tab", "relay"). */
  label: string;
  actors: number;
  /** Registered names owned by this node (without the probes). */
  names: string[];
  links: LinkReport[];
  /** The reporting node's clock (ms): deltas are taken between two reports of one node. */
  at: number;
}

/** How a probe describes its node. */
export interface ProbeInfo {
  kind: NodeKind;
  label?: string;
}

/** The transport a connection label names (labels come from the adapters). */
export function transportOf(label: string): TransportKind {
  if (label.startsWith('webrtc://')) return 'webrtc';
  if (/^wss?:\/\//.test(label) || label.startsWith('websocket')) return 'websocket';
  if (label.startsWith('tcp://') || label.startsWith('tls://')) return 'tcp';
  if (label === 'worker' || label === 'parent' || label === 'port' || label.startsWith('worker'))
    return 'worker';
  if (label.startsWith('memory')) return 'memory';
  return 'other';
}

/** The report of `node`, taken now. */
export function reportOf(node: Node, info: ProbeInfo): ProbeReport {
  const names: string[] = [];
  for (const [name, ref] of node.registered())
    if (ref.node === node.id && !name.startsWith(PROBE_PREFIX)) names.push(name);
  return {
    id: node.id,
    kind: info.kind,
    label: info.label ?? node.id,
    actors: node.actorCount,
    names: names.sort(),
    links: node.linkStats().map((l) => ({ ...l, peer: l.node, transport: transportOf(l.label) })),
    at: Date.now(),
  };
}

const ProbeRequest = z.object({ op: z.literal('report') });

/**
 * Start `node`'s probe: an actor registered as `probe:<node id>` that answers `{ op: 'report' }`
 * with the node's {@link ProbeReport}. Returns its ref.
 */
export function installProbe(
  node: Node,
  info: ProbeInfo,
): ActorRef<z.input<typeof ProbeRequest>, ProbeReport> {
  return node.spawn(
    behaviour({
      schema: ProbeRequest,
      handle: (_m, _s: undefined, ctx) => {
        ctx.reply(reportOf(ctx.node, info));
      },
    }),
    { name: PROBE_PREFIX + node.id },
  );
}

/** A node in the picture. */
export interface ClusterNode {
  id: string;
  kind: NodeKind;
  label: string;
  /** Actors running there (unknown when its probe could not be reached). */
  actors?: number;
  names?: string[];
  /** Whether its own probe answered (otherwise it is known from its neighbours' links). */
  reported: boolean;
  /** The node that drew the picture. */
  self: boolean;
  /** Messages per second this node sends on all its links (from its own report). */
  rateOut?: number;
}

/** A link in the picture (one per pair of nodes; `a` < `b`). */
export interface ClusterLink {
  a: string;
  b: string;
  transport: TransportKind;
  /** Messages per second a → b and b → a, where known. */
  ab?: number;
  ba?: number;
  /** Both directions together (what is known of them). */
  rate?: number;
}

/** The whole picture: what {@link renderClusterView} draws. */
export interface ClusterSnapshot {
  self: string;
  at: number;
  nodes: ClusterNode[];
  links: ClusterLink[];
  /** Supervision trees of the supervisors registered under {@link SUPERVISOR_PREFIX}. */
  supervisors?: SupervisionNode[];
}

/** Supervisors registered under this prefix (cluster-wide names) show in the cluster view. */
export const SUPERVISOR_PREFIX = 'sup:';

/** One supervisor or child in a supervision tree. */
export interface SupervisionNode {
  /** The child id (the registered name for a root). */
  id: string;
  kind: 'supervisor' | 'worker';
  /** Where it runs (or last ran). */
  node?: string;
  status: 'running' | 'restarting' | 'stopped';
  restarts: number;
  /** Its last exit reason, as text. */
  lastExit?: string;
  name?: string;
  /** A supervisor's children (absent when it could not be asked). */
  children?: SupervisionNode[];
}

/** An exit reason as a short text. */
export function reasonText(r: unknown): string {
  if (isErrorReason(r)) return `${r.name}: ${r.message}`;
  if (typeof r === 'string') return r;
  try {
    return JSON.stringify(r) ?? String(r);
  } catch {
    return String(r);
  }
}

/**
 * The supervision trees of every supervisor registered as `sup:…` that `node` sees, each walked
 * with `whichChildren` (a subtree that does not answer within `timeout` ms is left without children).
 */
export async function supervisionTrees(
  node: Node,
  timeout = 1000,
  maxDepth = 6,
): Promise<SupervisionNode[]> {
  const walk = async (
    ref: SupervisorRef,
    depth: number,
  ): Promise<SupervisionNode[] | undefined> => {
    if (depth > maxDepth) return undefined;
    const children = await whichChildren(ref, timeout).catch(() => undefined);
    if (!children) return undefined;
    return Promise.all(
      children.map(async (c) => {
        const n: SupervisionNode = {
          id: c.id,
          kind: c.type,
          node: c.node,
          status: c.status,
          restarts: c.restarts,
        };
        if (c.lastExit !== undefined) n.lastExit = reasonText(c.lastExit);
        if (c.name !== undefined) n.name = c.name;
        if (c.type === 'supervisor' && c.ref)
          n.children = await walk(c.ref as SupervisorRef, depth + 1);
        return n;
      }),
    );
  };
  const roots = [...node.registered()]
    .filter(([name]) => name.startsWith(SUPERVISOR_PREFIX))
    .sort(([a], [b]) => a.localeCompare(b));
  return Promise.all(
    roots.map(async ([name, ref]) => ({
      id: name,
      kind: 'supervisor' as const,
      node: ref.node,
      status: 'running' as const,
      restarts: 0,
      children: await walk(ref as SupervisorRef, 1),
    })),
  );
}

/** Options of {@link ClusterWatcher}. */
export interface ClusterWatcherOptions {
  /** How this node describes itself. */
  self: ProbeInfo;
  /** Per-probe call timeout in ms. @default 1000 */
  timeout?: number;
}

/**
 * Polls every reachable probe and merges the reports into a {@link ClusterSnapshot}; message
 * rates are the counter deltas since the previous poll.
 */
export class ClusterWatcher {
  #node: Node;
  #options: ClusterWatcherOptions;
  #prev = new Map<string, { env: number; at: number }>();
  #known = new Map<string, ProbeReport>();

  constructor(node: Node, options: ClusterWatcherOptions) {
    this.#node = node;
    this.#options = options;
  }

  /** Gather the reports now and build the picture. */
  async poll(): Promise<ClusterSnapshot> {
    const node = this.#node;
    const leaf = node.peers().length === 1;
    const calls: Promise<ProbeReport | undefined>[] = [];
    for (const [name, ref] of node.registered()) {
      if (!name.startsWith(PROBE_PREFIX) || ref.node === node.id) continue;
      if (!leaf && !node.isReachable(ref.node)) continue;
      calls.push(
        (ref as ActorRef<{ op: 'report' }, ProbeReport>)
          .call({ op: 'report' }, { timeout: this.#options.timeout ?? 1000 })
          .catch(() => undefined),
      );
    }
    const [got, supervisors] = await Promise.all([
      Promise.all(calls),
      supervisionTrees(node, this.#options.timeout ?? 1000),
    ]);
    const reports = [
      reportOf(node, this.#options.self),
      ...got.filter((r): r is ProbeReport => !!r),
    ];
    const snapshot = this.build(reports);
    if (supervisors.length) snapshot.supervisors = supervisors;
    return snapshot;
  }

  /** Merge reports (one per node) into a picture. Exposed for tests and other pages. */
  build(reports: ProbeReport[]): ClusterSnapshot {
    const self = this.#node.id;
    const nodes = new Map<string, ClusterNode>();
    const links = new Map<string, ClusterLink>();
    const byId = new Map(reports.map((r) => [r.id, r]));
    for (const r of reports) {
      let rateOut = 0;
      for (const l of r.links) {
        const rate = this.#rate(`${r.id}>${l.peer}`, l.envelopesOut, r.at);
        if (rate !== undefined) rateOut += rate;
        const [a, b] = r.id < l.peer ? [r.id, l.peer] : [l.peer, r.id];
        const key = `${a}|${b}`;
        const link = links.get(key) ?? { a, b, transport: l.transport };
        if (link.transport === 'other') link.transport = l.transport;
        if (rate !== undefined) {
          if (r.id === a) link.ab = rate;
          else link.ba = rate;
          link.rate = (link.ab ?? 0) + (link.ba ?? 0);
        }
        links.set(key, link);
      }
      nodes.set(r.id, {
        id: r.id,
        kind: r.kind,
        label: r.label,
        actors: r.actors,
        names: r.names,
        reported: true,
        self: r.id === self,
        rateOut: r.at > 0 ? rateOut : undefined,
      });
      this.#known.set(r.id, r);
    }
    // Nodes seen only at the far end of someone's link: guess their kind from the link.
    for (const link of links.values()) {
      for (const [id, other] of [
        [link.a, link.b],
        [link.b, link.a],
      ]) {
        if (nodes.has(id)) continue;
        const otherKind = byId.get(other)?.kind;
        const kind: NodeKind =
          link.transport === 'worker' && otherKind !== 'worker'
            ? 'worker'
            : link.transport === 'webrtc'
              ? 'tab'
              : link.transport === 'tcp'
                ? 'tcp'
                : otherKind === 'relay' && link.transport === 'websocket'
                  ? 'tab'
                  : 'node';
        const last = this.#known.get(id);
        nodes.set(id, {
          id,
          kind: last?.kind ?? kind,
          label: last?.label ?? id,
          reported: false,
          self: false,
        });
      }
    }
    // Forget the counters of links that are gone, so a new link with the same peer starts clean.
    const live = new Set<string>();
    for (const r of reports) for (const l of r.links) live.add(`${r.id}>${l.peer}`);
    for (const k of this.#prev.keys())
      if (!live.has(k) && byId.has(k.slice(0, k.indexOf('>')))) this.#prev.delete(k);
    return { self, at: Date.now(), nodes: [...nodes.values()], links: [...links.values()] };
  }

  #rate(key: string, env: number, at: number): number | undefined {
    const prev = this.#prev.get(key);
    this.#prev.set(key, { env, at });
    if (!prev || at <= prev.at || env < prev.env) return undefined;
    return ((env - prev.env) * 1000) / (at - prev.at);
  }
}
