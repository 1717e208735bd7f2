// The demo page: one troupe node per tab, joined to the relay over WebSocket and to other tabs over
// WebRTC, with Web Workers of its own. Three views: the collaborative board, the multi-worker
// computation and the live cluster view. `window.troupeDemo` is the hook tests drive it with.
import './styles.css';
import type { Node } from '../core/index.ts';
import { BoardView, randomIdentity, type PeerView } from './board.ts';
import { BoardEditor } from './board-editor.ts';
import type { Note } from './board-room.ts';
import {
  ClusterWatcher,
  installProbe,
  transportOf,
  type ClusterSnapshot,
  type TransportKind,
} from './cluster-probe.ts';
import { renderClusterView } from './cluster-view.ts';
import { startDemoSupervisor } from './supervision.ts';
import { ComputeView, type ComputeResult } from './compute.ts';
import { connectTab, relayBase } from './connect.ts';
import { el, hex } from './dom.ts';

type View = 'board' | 'compute' | 'cluster';
const VIEWS: View[] = ['board', 'compute', 'cluster'];

/** The test hook: what a Playwright test (or a curious console user) can drive and read. */
export interface TroupeDemo {
  /** This tab's node id (known before connecting). */
  readonly id: string;
  /** Resolves when the relay link is up, the room joined and the workers started; rejects on failure. */
  readonly ready: Promise<void>;
  /** `ready`, resolving with the node id. */
  whenReady(): Promise<string>;
  /** Why the page could not start, if it could not. */
  error: string | undefined;
  /** The tab's node (after `ready`). */
  node: Node | undefined;
  /** Node ids this tab has a direct link to. */
  peers(): string[];
  /** Node ids this tab can reach. */
  nodes(): string[];
  /** This tab's direct links with their transports. */
  links(): { node: string; label: string; transport: TransportKind }[];
  /** Other tabs this tab has a direct WebRTC link to. */
  webrtcPeers(): string[];
  /** Board participants, this tab first, with the route to each (`self`/`webrtc`/`relay`). */
  participants(): PeerView[];
  /** Live board notes. */
  notes(): Note[];
  addNote(text?: string, x?: number, y?: number): string;
  editNote(id: string, text: string): void;
  /** Move a note to board position (x, y) (fractions), as dragging would. */
  moveNote(id: string, x: number, y: number): void;
  deleteNote(id: string): void;
  /** The node the board room lives on. */
  roomHost(): string;
  /** The shared text (troupe/yjs) as this tab has it, and who is present in it. */
  editorText(): string;
  editorPresence(): string[];
  /** Run the computation (as the button does); resolves with every run and the verdict. */
  runCompute(options?: { workers?: number; withNodes?: boolean }): Promise<ComputeResult>;
  /** The last finished computation. */
  lastCompute(): ComputeResult | undefined;
  /** Node ids of this tab's compute workers. */
  workers(): string[];
  /** Poll the cluster now. */
  cluster(): Promise<ClusterSnapshot>;
  /** The last picture the cluster view drew. */
  lastCluster(): ClusterSnapshot | undefined;
  /** Switch the visible view. */
  show(view: View): void;
}

declare global {
  interface Window {
    troupeDemo: TroupeDemo;
  }
}

const id = `tab-${hex(2)}`;
const identity = randomIdentity();
const $ = (sel: string) => document.querySelector(sel) as HTMLElement;

// ---------------------------------------------------------------------------------------------
// View switching (an accessible tab list; the URL hash keeps the view across reloads)

function show(view: View, focus = false): void {
  for (const v of VIEWS) {
    const tab = $(`#tab-${v}`);
    const panel = $(`#view-${v}`);
    const on = v === view;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    panel.hidden = !on;
    if (on && focus) tab.focus();
  }
  if (location.hash !== `#${view}`)
    history.replaceState(null, '', `${location.pathname}${location.search}#${view}`);
  if (view === 'cluster') void refreshCluster();
}

for (const v of VIEWS) {
  const tab = $(`#tab-${v}`);
  tab.addEventListener('click', () => show(v));
  tab.addEventListener('keydown', (e) => {
    const i = VIEWS.indexOf(v);
    const next =
      e.key === 'ArrowRight'
        ? VIEWS[(i + 1) % 3]
        : e.key === 'ArrowLeft'
          ? VIEWS[(i + 2) % 3]
          : e.key === 'Home'
            ? VIEWS[0]
            : e.key === 'End'
              ? VIEWS[2]
              : undefined;
    if (next) {
      e.preventDefault();
      show(next, true);
    }
  });
}
// ---------------------------------------------------------------------------------------------
// Status line

const status = $('#status');
function setStatus(text: string, state: 'connecting' | 'up' | 'down'): void {
  status.dataset.state = state;
  status.querySelector('.status-text')!.textContent = text;
}

// ---------------------------------------------------------------------------------------------
// Start

let node: Node | undefined;
let board: BoardView | undefined;
let editor: BoardEditor | undefined;
let compute: ComputeView | undefined;
let watcher: ClusterWatcher | undefined;
let snapshot: ClusterSnapshot | undefined;

async function refreshCluster(): Promise<ClusterSnapshot | undefined> {
  if (!watcher) return undefined;
  snapshot = await watcher.poll();
  const panel = $('#view-cluster');
  if (!panel.hidden) renderClusterView($('#cluster-view'), snapshot);
  return snapshot;
}

async function start(): Promise<void> {
  setStatus(`connecting to the relay at ${relayBase()}…`, 'connecting');
  const tab = await connectTab(id);
  node = tab.node;
  installProbe(node, { kind: 'tab', label: `${identity.name}` });
  startDemoSupervisor(node);
  // A relay restarted with another browser secret refuses this page for good (it stops redialing).
  let refused = false;
  const updateStatus = () => {
    const n = node!.peers().length;
    const up = node!.peers().includes(tab.relay);
    const down = refused
      ? 'the relay refused this page (restarted with another secret?) — reload it'
      : 'relay link lost — reconnecting…';
    setStatus(
      up ? `${identity.name} · ${node!.id} · ${n} link${n === 1 ? '' : 's'}` : down,
      up ? 'up' : 'down',
    );
  };
  node.events.on('linkUp', updateStatus);
  node.events.on('linkDown', updateStatus);
  node.events.on('protocolError', (e) => {
    if (e.error.code !== 'UNAUTHORIZED' || !/^wss?:/.test(e.label ?? '')) return;
    refused = true;
    updateStatus();
  });
  updateStatus();

  board = new BoardView($('#view-board'), node, identity);
  compute = new ComputeView($('#view-compute'), node);
  watcher = new ClusterWatcher(node, { self: { kind: 'tab', label: identity.name } });
  const loop = async () => {
    try {
      await refreshCluster();
    } finally {
      setTimeout(loop, 1000);
    }
  };
  void loop();
  // The shared text beside the board (troupe/yjs); its document holds the board's notes too.
  editor = new BoardEditor($('#view-board'), node, identity);
  board.useNotes(editor.doc.getMap('notes'));
  await Promise.all([board.start(), compute.start()]);
  // Not awaited: the page is ready without the shared text.
  editor.start().catch((err: Error) => console.error(`shared text: ${err.message}`));
}

show(VIEWS.includes(location.hash.slice(1) as View) ? (location.hash.slice(1) as View) : 'board');
const ready = start();
ready.catch((err: Error) => {
  hook.error = err.message;
  setStatus('not connected', 'down');
  const box = $('#fatal');
  box.hidden = false;
  box.replaceChildren(
    el('h2', {}, 'The demo could not start'),
    el('p', {}, err.message),
    el(
      'p',
      {},
      'Start everything with ',
      el('code', {}, 'npm run demo'),
      ' and open the URL it prints. To use another relay, add ',
      el('code', {}, '?relay=http://127.0.0.1:PORT'),
      ' to the address.',
    ),
  );
});

const hook: TroupeDemo = {
  id,
  ready,
  whenReady: () => ready.then(() => id),
  error: undefined,
  get node() {
    return node;
  },
  peers: () => node?.peers() ?? [],
  nodes: () => node?.nodes() ?? [],
  links: () =>
    (node?.linkStats() ?? []).map((l) => ({
      node: l.node,
      label: l.label,
      transport: transportOf(l.label),
    })),
  webrtcPeers: () =>
    (node?.linkStats() ?? []).filter((l) => transportOf(l.label) === 'webrtc').map((l) => l.node),
  participants: () => board?.participants() ?? [],
  notes: () => board?.notes() ?? [],
  addNote: (text, x, y) => board!.addNote(text, x, y),
  editNote: (noteId, text) => board!.editNote(noteId, text),
  moveNote: (noteId, x, y) => board!.moveNote(noteId, x, y),
  deleteNote: (noteId) => board!.deleteNote(noteId),
  roomHost: () => board?.roomHost ?? '',
  editorText: () => editor?.text() ?? '',
  editorPresence: () => editor?.presence() ?? [],
  runCompute: (options) => compute!.run(options),
  lastCompute: () => compute?.last,
  workers: () => compute?.workerIds ?? [],
  cluster: async () => (await refreshCluster())!,
  lastCluster: () => snapshot,
  show: (view) => show(view),
};
window.troupeDemo = hook;
