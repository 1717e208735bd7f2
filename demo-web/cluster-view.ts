// Draws a ClusterSnapshot (cluster-probe.ts) as an SVG picture plus a table, into any element.
// Reusable: a status page can call renderClusterView(element, snapshot) with snapshots from a
// ClusterWatcher of its own. Layout: the relay in the middle, Node TCP nodes on the left, browser
// tabs on the right, each tab's workers fanned out behind it.
import type {
  ClusterLink,
  ClusterNode,
  ClusterSnapshot,
  NodeKind,
  SupervisionNode,
  TransportKind,
} from './cluster-probe.ts';

export type { ClusterSnapshot } from './cluster-probe.ts';

/** Options of {@link renderClusterView}. */
export interface ClusterViewOptions {
  /** Also render the node and link tables under the picture. @default true */
  table?: boolean;
  /** Picture size in SVG units (it scales to the element's width). @default 960 × 540 */
  width?: number;
  height?: number;
}

const NS = 'http://www.w3.org/2000/svg';

const KIND_NAMES: Record<NodeKind, string> = {
  tab: 'browser tab',
  worker: 'Web Worker',
  relay: 'relay',
  tcp: 'Node (TCP)',
  node: 'node',
};
const TRANSPORT_NAMES: Record<TransportKind, string> = {
  webrtc: 'WebRTC',
  websocket: 'WebSocket',
  tcp: 'TCP',
  worker: 'postMessage',
  memory: 'memory',
  other: 'other',
};
const RADIUS: Record<NodeKind, number> = { relay: 34, tab: 28, tcp: 26, worker: 15, node: 20 };

interface Point {
  x: number;
  y: number;
}

/**
 * Draw `snapshot` into `container` (replacing what an earlier call drew there). Elements carry
 * `data-testid="cluster-node"` (`data-node-id`, `data-kind`) and `data-testid="cluster-link"`
 * (`data-a`, `data-b`, `data-transport`).
 */
export function renderClusterView(
  container: HTMLElement,
  snapshot: ClusterSnapshot,
  options: ClusterViewOptions = {},
): void {
  const W = options.width ?? 960;
  const H = options.height ?? 540;
  const pos = layout(snapshot, W, H);
  const svg = svgEl('svg', {
    viewBox: `0 0 ${W} ${H}`,
    class: 'cv-svg',
    role: 'img',
    'data-testid': 'cluster-svg',
  });
  svg.append(svgEl('title', {}, describe(snapshot)));

  const linkLayer = svgEl('g', { class: 'cv-links' });
  const labelLayer = svgEl('g', { class: 'cv-link-labels' });
  for (const link of snapshot.links) {
    const a = pos.get(link.a);
    const b = pos.get(link.b);
    if (!a || !b) continue;
    const g = svgEl('g', {
      class: `cv-link t-${link.transport}${(link.rate ?? 0) >= 25 ? ' busy' : ''}`,
      'data-testid': 'cluster-link',
      'data-a': link.a,
      'data-b': link.b,
      'data-transport': link.transport,
    });
    const d = pathOf(a, b, link, pos, W, H);
    const width = 1.5 + Math.min(6, Math.log2(1 + (link.rate ?? 0)) * 0.8);
    g.append(svgEl('path', { d, class: 'cv-link-line', 'stroke-width': width.toFixed(2) }));
    g.append(
      svgEl(
        'title',
        {},
        `${link.a} ⇄ ${link.b} · ${TRANSPORT_NAMES[link.transport]}${link.rate !== undefined ? ` · ${fmtRate(link.rate)} msg/s` : ''}`,
      ),
    );
    linkLayer.append(g);
    if (link.rate !== undefined) {
      const m = midOf(d);
      const text = `${fmtRate(link.rate)}/s`;
      const w = text.length * 6.4 + 10;
      const tag = svgEl('g', {
        class: `cv-rate t-${link.transport}`,
        transform: `translate(${m.x.toFixed(1)},${m.y.toFixed(1)})`,
      });
      tag.append(
        svgEl('rect', {
          x: (-w / 2).toFixed(1),
          y: '-9',
          width: w.toFixed(1),
          height: '18',
          rx: '9',
        }),
      );
      tag.append(svgEl('text', { 'text-anchor': 'middle', y: '4' }, text));
      labelLayer.append(tag);
    }
  }
  svg.append(linkLayer);

  const nodeLayer = svgEl('g', { class: 'cv-nodes' });
  for (const n of snapshot.nodes) {
    const p = pos.get(n.id);
    if (!p) continue;
    const r = RADIUS[n.kind];
    const g = svgEl('g', {
      class: `cv-node k-${n.kind}${n.self ? ' self' : ''}${n.reported ? '' : ' unreported'}`,
      transform: `translate(${p.x.toFixed(1)},${p.y.toFixed(1)})`,
      'data-testid': 'cluster-node',
      'data-node-id': n.id,
      'data-kind': n.kind,
    });
    if (n.self) g.append(svgEl('circle', { r: String(r + 6), class: 'cv-halo' }));
    g.append(svgEl('circle', { r: String(r), class: 'cv-dot' }));
    g.append(
      svgEl(
        'text',
        { class: 'cv-icon', 'text-anchor': 'middle', y: n.kind === 'worker' ? '4' : '5' },
        iconOf(n.kind),
      ),
    );
    if (n.actors !== undefined) {
      const bx = r * 0.72;
      const by = -r * 0.72;
      g.append(
        svgEl('circle', {
          cx: bx.toFixed(1),
          cy: by.toFixed(1),
          r: n.kind === 'worker' ? '8' : '10',
          class: 'cv-count',
        }),
      );
      g.append(
        svgEl(
          'text',
          {
            x: bx.toFixed(1),
            y: (by + 3.5).toFixed(1),
            'text-anchor': 'middle',
            class: 'cv-count-text',
          },
          String(n.actors),
        ),
      );
    }
    const name = shortName(n);
    g.append(svgEl('text', { class: 'cv-name', 'text-anchor': 'middle', y: String(r + 15) }, name));
    const sub = n.self ? `${n.id} · this tab` : n.id === n.label ? '' : n.id;
    if (n.kind !== 'worker' && sub)
      g.append(svgEl('text', { class: 'cv-sub', 'text-anchor': 'middle', y: String(r + 28) }, sub));
    g.append(svgEl('title', {}, tooltip(n)));
    nodeLayer.append(g);
  }
  svg.append(nodeLayer, labelLayer, legend(W, H));

  const parts: Element[] = [svg];
  if (options.table ?? true) parts.push(tables(snapshot));
  if (snapshot.supervisors?.length) parts.push(supervision(snapshot.supervisors));
  container.replaceChildren(...parts);
  container.dataset.nodes = String(snapshot.nodes.length);
  container.dataset.links = String(snapshot.links.length);
}

function svgEl(tag: string, attrs: Record<string, string>, text?: string): SVGElement {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmtRate(r: number): string {
  return r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(0) : r.toFixed(1);
}

function iconOf(kind: NodeKind): string {
  return { relay: '⇄', tab: '▣', tcp: '⬢', worker: '⚙', node: '●' }[kind];
}

function shortName(n: ClusterNode): string {
  if (n.kind === 'worker')
    return n.label.startsWith('worker') ? n.label : n.id.slice(n.id.lastIndexOf('-') + 1);
  return n.label.length > 28 ? `${n.label.slice(0, 27)}…` : n.label;
}

function tooltip(n: ClusterNode): string {
  const lines = [`${n.label} (${KIND_NAMES[n.kind]})`, `id ${n.id}`];
  if (n.actors !== undefined) lines.push(`${n.actors} actor${n.actors === 1 ? '' : 's'}`);
  if (n.names?.length) lines.push(`names: ${n.names.join(', ')}`);
  if (n.rateOut !== undefined) lines.push(`sends ${fmtRate(n.rateOut)} msg/s`);
  if (!n.reported)
    lines.push('(its probe is not reachable from here: seen through its neighbours)');
  return lines.join('\n');
}

function describe(s: ClusterSnapshot): string {
  const count = (k: NodeKind) => s.nodes.filter((n) => n.kind === k).length;
  return `Cluster: ${s.nodes.length} nodes (${count('relay')} relay, ${count('tcp')} Node TCP, ${count('tab')} browser tabs, ${count('worker')} workers) and ${s.links.length} links.`;
}

/** Positions: relay in the middle, TCP nodes on the left arc, tabs on the right arc, workers behind their tab. */
function layout(s: ClusterSnapshot, W: number, H: number): Map<string, Point> {
  const pos = new Map<string, Point>();
  const cx = W / 2;
  const cy = H / 2 - 10;
  const byKind = (k: NodeKind) =>
    s.nodes
      .filter((n) => n.kind === k)
      .sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
  const relays = byKind('relay');
  relays.forEach((n, i) => pos.set(n.id, { x: cx, y: cy + (i - (relays.length - 1) / 2) * 90 }));
  const rx = W * 0.3;
  const ry = H * 0.3;
  const arc = (
    nodes: ClusterNode[],
    centre: number,
    spread: number,
    rX: number,
    rY: number,
  ): void => {
    const step = nodes.length > 1 ? Math.min(spread / (nodes.length - 1), 1.2) : 0;
    nodes.forEach((n, i) => {
      const a = centre + (i - (nodes.length - 1) / 2) * step;
      pos.set(n.id, { x: cx + rX * Math.cos(a), y: cy + rY * Math.sin(a) });
    });
  };
  arc(byKind('tcp'), Math.PI, 1.6, rx, ry * 1.2);
  // Tabs: this tab first (top), then the others.
  const tabs = byKind('tab').sort((a, b) => Number(b.self) - Number(a.self));
  arc(tabs, 0, 2.2, rx * 0.9, ry * 1.3);
  arc(byKind('node'), Math.PI / 2, 1.2, rx * 0.6, ry * 1.2);
  // Workers: fanned outwards behind the node they are linked to.
  const parentOf = new Map<string, string>();
  for (const l of s.links) {
    if (l.transport !== 'worker') continue;
    const a = s.nodes.find((n) => n.id === l.a);
    const b = s.nodes.find((n) => n.id === l.b);
    if (a?.kind === 'worker' && b && b.kind !== 'worker') parentOf.set(a.id, b.id);
    if (b?.kind === 'worker' && a && a.kind !== 'worker') parentOf.set(b.id, a.id);
  }
  const groups = new Map<string, ClusterNode[]>();
  for (const w of byKind('worker')) {
    const p = parentOf.get(w.id) ?? '';
    groups.set(p, [...(groups.get(p) ?? []), w]);
  }
  for (const [parent, workers] of groups) {
    const pp = pos.get(parent);
    // Fan the workers out behind their tab, bent towards the horizontal so they stay clear of the
    // tab's own label below it.
    let base = Math.PI / 2;
    if (pp) {
      const a = Math.atan2(pp.y - cy, pp.x - cx);
      base = pp.x >= cx ? 0.35 * a : Math.PI + 0.35 * (a > 0 ? a - Math.PI : a + Math.PI);
    }
    const origin = pp ?? { x: cx, y: H - 60 };
    const dist = 140;
    const step = workers.length > 1 ? Math.min(0.62, 1.9 / (workers.length - 1)) : 0;
    workers.forEach((w, i) => {
      const a = base + (i - (workers.length - 1) / 2) * step;
      pos.set(w.id, {
        x: clamp(origin.x + dist * Math.cos(a), 28, W - 28),
        y: clamp(origin.y + dist * Math.sin(a), 28, H - 64),
      });
    });
  }
  return pos;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

/** Straight lines, except links between two nodes on one arc (tab ⇄ tab, TCP ⇄ TCP): those bow outwards. */
function pathOf(
  a: Point,
  b: Point,
  link: ClusterLink,
  pos: Map<string, Point>,
  W: number,
  H: number,
): string {
  const sameArc = link.transport === 'webrtc' || link.transport === 'tcp';
  const mx = (a.x + b.x) / 2;
  const my = (a.y + b.y) / 2;
  const cx = W / 2;
  const cy = H / 2 - 10;
  const far = Math.hypot(mx - cx, my - cy);
  if (!sameArc || far < 1 || pos.size < 3)
    return `M${a.x.toFixed(1)},${a.y.toFixed(1)} L${b.x.toFixed(1)},${b.y.toFixed(1)}`;
  const bow = Math.min(70, Math.hypot(b.x - a.x, b.y - a.y) * 0.3);
  const qx = mx + ((mx - cx) / far) * bow;
  const qy = my + ((my - cy) / far) * bow;
  return `M${a.x.toFixed(1)},${a.y.toFixed(1)} Q${qx.toFixed(1)},${qy.toFixed(1)} ${b.x.toFixed(1)},${b.y.toFixed(1)}`;
}

/** The middle of a path made by {@link pathOf}. */
function midOf(d: string): Point {
  const n = d.match(/-?\d+(\.\d+)?/g)!.map(Number);
  if (n.length === 4) return { x: (n[0] + n[2]) / 2, y: (n[1] + n[3]) / 2 };
  // Quadratic Bézier at t = 0.5.
  return { x: 0.25 * n[0] + 0.5 * n[2] + 0.25 * n[4], y: 0.25 * n[1] + 0.5 * n[3] + 0.25 * n[5] };
}

function legend(W: number, H: number): SVGElement {
  const g = svgEl('g', { class: 'cv-legend', transform: `translate(16,${H - 22})` });
  let x = 0;
  for (const t of ['websocket', 'webrtc', 'tcp', 'worker'] as TransportKind[]) {
    const item = svgEl('g', { class: `t-${t}`, transform: `translate(${x},0)` });
    item.append(
      svgEl('line', {
        x1: '0',
        x2: '22',
        y1: '0',
        y2: '0',
        class: 'cv-link-line',
        'stroke-width': '3',
      }),
    );
    item.append(svgEl('text', { x: '28', y: '4' }, TRANSPORT_NAMES[t]));
    g.append(item);
    x += 40 + TRANSPORT_NAMES[t].length * 7;
  }
  const note = svgEl(
    'text',
    { x: String(W - 32), y: '4', 'text-anchor': 'end', class: 'cv-legend-note' },
    'badge: actors on the node · pills: messages per second',
  );
  g.append(note);
  return g;
}

function tables(s: ClusterSnapshot): HTMLElement {
  const wrap = document.createElement('div');
  wrap.className = 'cv-tables';
  const nodeRows = [...s.nodes]
    .sort(
      (a, b) => order(a.kind) - order(b.kind) || a.id.localeCompare(b.id, 'en', { numeric: true }),
    )
    .map((n) =>
      row(
        [
          n.self ? `${n.label} (this tab)` : n.label,
          KIND_NAMES[n.kind],
          n.id,
          n.actors === undefined ? '—' : String(n.actors),
          n.names?.length ? n.names.join(', ') : '—',
          n.rateOut === undefined ? '—' : fmtRate(n.rateOut),
        ],
        { 'data-testid': 'cluster-node-row', 'data-node-id': n.id },
      ),
    );
  const linkRows = [...s.links]
    .sort((a, b) => a.transport.localeCompare(b.transport) || a.a.localeCompare(b.a))
    .map((l) =>
      row(
        [
          `${l.a} ⇄ ${l.b}`,
          TRANSPORT_NAMES[l.transport],
          l.ab === undefined ? '—' : fmtRate(l.ab),
          l.ba === undefined ? '—' : fmtRate(l.ba),
        ],
        { 'data-testid': 'cluster-link-row', 'data-transport': l.transport },
      ),
    );
  wrap.append(
    table(
      'Nodes',
      ['Node', 'Kind', 'Id', 'Actors', 'Names', 'Msgs/s out'],
      nodeRows,
      'cv-nodes-table',
    ),
    table('Links', ['Link', 'Transport', 'Msgs/s →', 'Msgs/s ←'], linkRows, 'cv-links-table'),
  );
  return wrap;
}

function order(k: NodeKind): number {
  return ['relay', 'tcp', 'tab', 'worker', 'node'].indexOf(k);
}

function row(cells: string[], attrs: Record<string, string>): HTMLTableRowElement {
  const tr = document.createElement('tr');
  for (const [k, v] of Object.entries(attrs)) tr.setAttribute(k, v);
  for (const c of cells) {
    const td = document.createElement('td');
    td.textContent = c;
    tr.append(td);
  }
  return tr;
}

function table(
  caption: string,
  heads: string[],
  rows: HTMLTableRowElement[],
  cls: string,
): HTMLTableElement {
  const t = document.createElement('table');
  t.className = `data ${cls}`;
  const cap = document.createElement('caption');
  cap.textContent = caption;
  const thead = document.createElement('thead');
  const tr = document.createElement('tr');
  for (const h of heads) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = h;
    tr.append(th);
  }
  thead.append(tr);
  const tbody = document.createElement('tbody');
  tbody.append(...rows);
  t.append(cap, thead, tbody);
  return t;
}

/**
 * The supervision trees, live: each supervisor's children with their node, status, restart count
 * and last exit reason (`data-testid="supervision-child"`, `data-id`, `data-restarts`, `data-status`).
 */
function supervision(roots: SupervisionNode[]): HTMLElement {
  const wrap = document.createElement('section');
  wrap.className = 'cv-supervision';
  wrap.dataset.testid = 'supervision';
  const h = document.createElement('h3');
  h.textContent = 'Supervision';
  const item = (n: SupervisionNode): HTMLLIElement => {
    const li = document.createElement('li');
    li.className = `cv-sup k-${n.kind} s-${n.status}`;
    li.dataset.testid =
      n.children === undefined && n.kind === 'worker'
        ? 'supervision-child'
        : 'supervision-supervisor';
    li.dataset.id = n.id;
    li.dataset.restarts = String(n.restarts);
    li.dataset.status = n.status;
    const line = document.createElement('span');
    const bits = [
      n.kind === 'supervisor' ? `▸ ${n.id}` : n.id,
      n.node ? `on ${n.node}` : '',
      n.status,
      `${n.restarts} restart${n.restarts === 1 ? '' : 's'}`,
    ];
    if (n.lastExit !== undefined) bits.push(`last exit: ${n.lastExit}`);
    line.textContent = bits.filter(Boolean).join(' · ');
    li.append(line);
    if (n.children?.length) {
      const ul = document.createElement('ul');
      ul.append(...n.children.map(item));
      li.append(ul);
    }
    return li;
  };
  const ul = document.createElement('ul');
  ul.append(...roots.map(item));
  wrap.append(h, ul);
  return wrap;
}
