// The demo as `npm run demo` runs it (demo-node/demo.ts: relay hosting the board room, two Node
// TCP nodes serving the tile function, Vite's dev server proxying /troupe to the relay), in Chromium, inside
// a loopback-only network namespace; run by tests/browser/demo.browser.test.ts. Two pages: the
// board syncs between them over WebRTC, the cluster view draws every node and the WebRTC link, the
// computation (workers, then workers + the Node nodes) finishes with the right image and shows its
// speedup, and a page that leaves is seen leaving. Each view is saved under
// test-results/screenshots/. `relay-restart`: the demo's relay restarts under two pages, which
// ride it out. Prints one `RESULT {json}` line per scenario.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { startDemo, type Demo } from '../../../demo-node/demo.ts';
import {
  DEFAULT_JOB,
  checksum,
  computeTile,
  placeTile,
  tilesOf,
} from '../../../demo-web/mandelbrot.ts';
import { ROOT } from '../harness/build.ts';
import { runScenarios, timeout, type BrowserEnv, type FxPage } from '../harness/env.ts';
import { waitFor } from '../fixtures/behaviours.ts';
import { FIXTURE_TIMING } from '../fixtures/timing.ts';

type Env = BrowserEnv & { demo: Demo };

const SHOTS = path.join(ROOT, 'test-results', 'screenshots');
const HOOK = 'troupeDemo';

/** A board participant, as the demo page's hook reports it. */
export interface PeerView {
  key: string;
  name: string;
  node: string;
  route: string;
  self: boolean;
}
/** A board note, as the demo page's hook reports it. */
export interface Note {
  id: string;
  text: string;
  x: number;
  y: number;
}
/** One computation run, as the demo page's hook reports it. */
export interface RunResult {
  workers: number;
  nodes: number;
  ms: number;
  checksum: string;
  perNode: Record<string, number>;
}
/** A demo page's direct links, as its hook reports them. */
export type Links = { node: string; label: string; transport: string }[];

/** What the `demo` scenario prints (tests/browser/demo.browser.test.ts asserts on it). */
export interface DemoResult {
  one: string;
  two: string;
  relay: string;
  tcpNodes: string[];
  parts1: PeerView[];
  parts2: PeerView[];
  webrtcPeers1: string[];
  roomHosts: string[];
  noteId: string;
  onScreen1: string;
  onScreen2: string;
  cursorOn1: boolean;
  notes1: Note[];
  notes2: Note[];
  /** The cluster view's nodes and links, from their data-* attributes. */
  clusterNodes: { id: string | null; kind: string | null }[];
  clusterLinks: { a: string | null; b: string | null; transport: string | null }[];
  /** The cluster view's supervision trees: every supervisor and child, with its restarts. */
  supervision: {
    id: string | null;
    kind: string | null;
    status: string | null;
    restarts: string | null;
  }[];
  compute: { ok: boolean; runs: RunResult[]; reference: RunResult };
  /** The image's checksum computed here in Node. */
  expected: string;
  verdict: string | null;
  speedups: string[];
  progress: string | null;
  loads: number[];
  partsAfter: PeerView[];
  /** The display name page 2 had on page 1's board. */
  leftName: string | undefined;
  boardLog: string;
  screenshots: string[];
  /** The shared text on page 2, and who page 1 sees present in it. */
  editorText2: string;
  /** The note both pages changed at once (page 1 its text, page 2 its place), as each page has it. */
  concurrentNote: Note[];
  editorPresence1: string[];
}

/** What the `relay-restart` scenario prints. */
export interface RestartResult {
  one: string;
  two: string;
  three: string;
  relay: string;
  relayAfter: string;
  linksBefore: Links;
  relinkedMs: number;
  relayPeers: string[];
  status: (string | null)[];
  webrtcAfter: string[];
  noteId: string;
  /** Ids of the notes page 2 has. */
  notes2: string[];
  parts3: PeerView[];
  parts1: PeerView[];
  roomHosts: string[];
  loads: number[];
}

/** The Mandelbrot image of the demo's job computed here in Node, independently of the page. */
function expectedChecksum(): string {
  const image = new Uint16Array(DEFAULT_JOB.width * DEFAULT_JOB.height);
  for (const tile of tilesOf(DEFAULT_JOB))
    placeTile(DEFAULT_JOB, tile, computeTile(DEFAULT_JOB, tile), image);
  return checksum(image);
}

async function shot(p: FxPage, name: string): Promise<string> {
  mkdirSync(SHOTS, { recursive: true });
  const file = path.join(SHOTS, `${name}.png`);
  await timeout(`screenshot ${name}`, p.page.screenshot({ path: file, fullPage: true }), 30_000);
  return path.relative(ROOT, file);
}

/** Open the demo page; counts its loads (Vite's dev server must not reload it mid-test). */
async function openDemo(
  env: Env,
  tag: string,
): Promise<{ p: FxPage; id: string; loads: () => number }> {
  let loads = 0;
  const p = await env.openPage(tag, `${env.demo.pageUrl.replace(/\/?$/, '/')}#board`);
  loads = 1;
  p.page.on('load', () => loads++);
  await p.page.waitForFunction((h) => !!(window as any)[h], HOOK, { timeout: 30_000 });
  const id = await p.hook<string>(HOOK, 'whenReady', [], 60_000);
  return { p, id, loads: () => loads };
}

const scenarios: Record<string, (env: Env) => Promise<unknown>> = {
  async demo(env): Promise<DemoResult> {
    const screenshots: string[] = [];
    const [one, two] = await Promise.all([openDemo(env, 'demo-1'), openDemo(env, 'demo-2')]);

    // Board: each page lists the other as a participant reached over WebRTC; the room is on the relay.
    const sees = (other: string) => (ps: PeerView[]) =>
      ps.some((x) => x.node === other && !x.self && x.route === 'webrtc');
    const [parts1, parts2] = await Promise.all([
      one.p.until<PeerView[]>(
        HOOK,
        'participants',
        [],
        sees(two.id),
        `${two.id} as a WebRTC participant`,
        40_000,
      ),
      two.p.until<PeerView[]>(
        HOOK,
        'participants',
        [],
        sees(one.id),
        `${one.id} as a WebRTC participant`,
        40_000,
      ),
    ]);
    const webrtcPeers1 = await one.p.hook<string[]>(HOOK, 'webrtcPeers');
    const roomHosts = [
      await one.p.hook<string>(HOOK, 'roomHost'),
      await two.p.hook<string>(HOOK, 'roomHost'),
    ];

    // A note added on page 1 appears on page 2's screen; typing into it on page 2 reaches page 1.
    const noteId = await one.p.hook<string>(HOOK, 'addNote', ['hello from page 1', 0.12, 0.2]);
    const textarea2 = two.p.page.locator(
      `[data-testid="board-note"][data-note-id="${noteId}"] [data-testid="board-note-text"]`,
    );
    await textarea2.waitFor({ timeout: 20_000 });
    const onScreen2 = await textarea2.inputValue({ timeout: 20_000 });
    await textarea2.fill('typed on page 2', { timeout: 20_000 });
    await one.p.until<Note[]>(
      HOOK,
      'notes',
      [],
      (ns) => ns.some((n) => n.id === noteId && n.text === 'typed on page 2'),
      'the text typed on page 2',
      20_000,
    );
    const onScreen1 = await one.p.page
      .locator(
        `[data-testid="board-note"][data-note-id="${noteId}"] [data-testid="board-note-text"]`,
      )
      .inputValue({ timeout: 20_000 });
    const secondId = await two.p.hook<string>(HOOK, 'addNote', [
      'a second note, from page 2',
      0.55,
      0.45,
    ]);
    const notes1 = await one.p.until<Note[]>(
      HOOK,
      'notes',
      [],
      (ns) => ns.some((n) => n.id === secondId),
      'the second note',
      20_000,
    );
    const notes2 = await two.p.until<Note[]>(
      HOOK,
      'notes',
      [],
      (ns) => ns.length === notes1.length,
      'the same notes on page 2',
      20_000,
    );
    // Page 2's pointer over the board shows as a cursor on page 1.
    const board2 = await two.p.page.getByTestId('board').boundingBox({ timeout: 10_000 });
    if (board2)
      await two.p.page.mouse.move(board2.x + board2.width * 0.6, board2.y + board2.height * 0.3, {
        steps: 5,
      });
    const cursorOn1 = await one.p.page
      .locator('[data-testid="board-cursor"]')
      .first()
      .waitFor({ timeout: 15_000 })
      .then(
        () => true,
        () => false,
      );
    // The shared text (troupe/yjs): typed into page 1's CodeMirror, it reaches page 2; the bot in
    // the first Node node answers a `bot?` line; both pages and the bot are present.
    const cm1 = one.p.page.locator('[data-testid="editor"] .cm-content');
    await cm1.waitFor({ timeout: 30_000 });
    await cm1.click({ timeout: 10_000 });
    await one.p.page.keyboard.type('typed in the shared text\nbot?\n');
    const editorText2 = await two.p.until<string>(
      HOOK,
      'editorText',
      [],
      (t) => t.includes('typed in the shared text') && t.includes('bot: hello from'),
      "the shared text and the bot's answer on page 2",
      40_000,
    );
    const editorPresence1 = await one.p.until<string[]>(
      HOOK,
      'editorPresence',
      [],
      (ps) => ps.length >= 3,
      'both pages and the bot present in the shared text',
      30_000,
    );
    // The notes are a Y.Map in the shared document: page 2 goes offline (so the two edits are
    // truly concurrent) and moves the second note while page 1 rewrites its text; once page 2 is
    // back, both pages have both changes (last-writer-wins would keep only one of them).
    const offline2 = two.p.page.getByTestId('editor-offline');
    await offline2.check({ timeout: 10_000 });
    await two.p.page
      .locator('[data-testid="editor-status"][data-state="offline"]')
      .waitFor({ timeout: 10_000 });
    await two.p.hook(HOOK, 'moveNote', [secondId, 0.7, 0.6]);
    await one.p.hook(HOOK, 'editNote', [secondId, 'rewritten on page 1']);
    await offline2.uncheck({ timeout: 10_000 });
    const both = (ns: Note[]) =>
      ns.some(
        (n) =>
          n.id === secondId &&
          n.text === 'rewritten on page 1' &&
          Math.abs(n.x - 0.7) < 1e-9 &&
          Math.abs(n.y - 0.6) < 1e-9,
      );
    const concurrent1 = await one.p.until<Note[]>(
      HOOK,
      'notes',
      [],
      both,
      'both concurrent note edits on page 1',
      30_000,
    );
    const concurrent2 = await two.p.until<Note[]>(
      HOOK,
      'notes',
      [],
      both,
      'both concurrent note edits on page 2',
      30_000,
    );
    const concurrentNote = [concurrent1, concurrent2].map(
      (ns) => ns.find((n) => n.id === secondId)!,
    );
    screenshots.push(await shot(one.p, 'demo-board-page1'), await shot(two.p, 'demo-board-page2'));

    // Computation: 1..N workers, then the workers plus the Node nodes' function servers (through the relay).
    await one.p.hook(HOOK, 'show', ['compute']);
    const compute = await one.p.hook<DemoResult['compute']>(
      HOOK,
      'runCompute',
      [{ withNodes: true }],
      180_000,
    );
    const verdict = await one.p.page
      .getByTestId('compute-verified')
      .getAttribute('data-state', { timeout: 10_000 });
    const speedups = await one.p.page
      .locator('[data-testid="speedup-row"] [data-testid="speedup"]')
      .allTextContents();
    const progress = await one.p.page
      .getByTestId('compute-progress')
      .getAttribute('aria-valuenow', { timeout: 10_000 });
    screenshots.push(await shot(one.p, 'demo-compute'));

    // Cluster view: both tabs, their workers, the relay, the TCP nodes, the WebRTC link.
    await one.p.hook(HOOK, 'show', ['cluster']);
    await one.p.page
      .locator('[data-testid="cluster-link"][data-transport="webrtc"]')
      .first()
      .waitFor({ timeout: 30_000 });
    await one.p.page
      .locator('[data-testid="cluster-node"][data-kind="tcp"]')
      .first()
      .waitFor({ timeout: 30_000 });
    const clusterNodes = await one.p.page
      .locator('[data-testid="cluster-node"]')
      .evaluateAll((els) =>
        els.map((e) => ({ id: e.getAttribute('data-node-id'), kind: e.getAttribute('data-kind') })),
      );
    const clusterLinks = await one.p.page
      .locator('[data-testid="cluster-link"]')
      .evaluateAll((els) =>
        els.map((e) => ({
          a: e.getAttribute('data-a'),
          b: e.getAttribute('data-b'),
          transport: e.getAttribute('data-transport'),
        })),
      );
    await one.p.page
      .locator(`[data-testid="supervision-supervisor"][data-id="sup:${two.id}"]`)
      .first()
      .waitFor({ timeout: 30_000 });
    const supervision = await one.p.page
      .locator('[data-testid^="supervision-"]')
      .evaluateAll((els) =>
        els.map((e) => ({
          id: e.getAttribute('data-id'),
          kind: e.getAttribute('data-testid'),
          status: e.getAttribute('data-status'),
          restarts: e.getAttribute('data-restarts'),
        })),
      );
    screenshots.push(await shot(one.p, 'demo-cluster'));

    // Page 2 leaves: page 1 sees it leave (its monitor fires) within the failure-detection time.
    await one.p.hook(HOOK, 'show', ['board']);
    const loads = [one.loads(), two.loads()];
    await two.p.close();
    const partsAfter = await one.p.until<PeerView[]>(
      HOOK,
      'participants',
      [],
      (ps) => !ps.some((x) => x.node === two.id),
      `${two.id} to leave the board`,
      FIXTURE_TIMING.heartbeatTimeout * 2 + 20_000,
    );
    const boardLog = await one.p.page.getByTestId('board-log').innerText({ timeout: 10_000 });
    screenshots.push(await shot(one.p, 'demo-board-after-leave'));

    return {
      editorText2,
      editorPresence1,
      concurrentNote,
      one: one.id,
      two: two.id,
      relay: env.demo.relay.id,
      tcpNodes: env.demo.nodes,
      parts1,
      parts2,
      webrtcPeers1,
      roomHosts,
      noteId,
      onScreen1,
      onScreen2,
      cursorOn1,
      notes1,
      notes2,
      clusterNodes,
      clusterLinks,
      supervision,
      compute,
      expected: expectedChecksum(),
      verdict,
      speedups,
      progress,
      loads,
      partsAfter,
      leftName: parts1.find((x) => x.node === two.id)?.name,
      boardLog,
      screenshots,
    };
  },

  /**
   * The demo's relay restarts in place under two pages (`demo.restartRelay()`): they relink on
   * their own with fresh credentials, the TCP nodes too; the WebRTC link between the pages stays;
   * the board keeps working; a page opened afterwards links to an old one over WebRTC (so the old
   * one registered with the restarted PeerServer again) and all three end up in one room.
   */
  async 'relay-restart'(env): Promise<RestartResult> {
    const demo = env.demo;
    const relay = demo.relay.id;
    const [one, two] = await Promise.all([openDemo(env, 'restart-1'), openDemo(env, 'restart-2')]);
    const sees = (other: string) => (ps: PeerView[]) =>
      ps.some((x) => x.node === other && !x.self && x.route === 'webrtc');
    await Promise.all([
      one.p.until<PeerView[]>(
        HOOK,
        'participants',
        [],
        sees(two.id),
        `${two.id} as a WebRTC participant`,
        40_000,
      ),
      two.p.until<PeerView[]>(
        HOOK,
        'participants',
        [],
        sees(one.id),
        `${one.id} as a WebRTC participant`,
        40_000,
      ),
    ]);
    const relayLink = (links: Links) =>
      links.some((l) => l.node === relay && l.transport === 'websocket');
    const linksBefore = await one.p.hook<Links>(HOOK, 'links');

    // The relay stops and starts again in place (same port, id, browser secret and PeerServer key;
    // a new token key, so the pages' first credentials are refused now).
    await timeout('the relay to restart', demo.restartRelay(), 30_000);
    const restartedAt = Date.now();
    // Seen from the new relay node, whose every link was made after the restart.
    const linkedToRelay = [one.id, two.id, ...demo.nodes];
    await timeout(
      'the pages and TCP nodes to relink',
      waitFor(
        'links to the restarted relay',
        () => linkedToRelay.every((n) => demo.relay.peers().includes(n)),
        60_000,
      ),
      61_000,
    );
    const relinkedMs = Date.now() - restartedAt;
    await Promise.all([
      one.p.until<Links>(HOOK, 'links', [], relayLink, 'page 1 to list its relay link', 10_000),
      two.p.until<Links>(HOOK, 'links', [], relayLink, 'page 2 to list its relay link', 10_000),
    ]);
    const status = await Promise.all(
      [one, two].map((x) =>
        x.p.page.getByTestId('status').getAttribute('data-state', { timeout: 10_000 }),
      ),
    );
    // The WebRTC link between the two pages did not need the relay: it is still there.
    const webrtcAfter = await one.p.hook<string[]>(HOOK, 'webrtcPeers');

    // The board still works: a note added on page 1 after the restart reaches page 2.
    const noteId = await one.p.hook<string>(HOOK, 'addNote', ['after the restart', 0.3, 0.3]);
    const notes2 = await two.p.until<Note[]>(
      HOOK,
      'notes',
      [],
      (ns) => ns.some((n) => n.id === noteId),
      'the note added after the restart',
      20_000,
    );

    // A page opened after the restart joins the board and links to page 1 over WebRTC: page 1 has
    // registered with the restarted PeerServer again, or the offer could not reach it.
    const three = await openDemo(env, 'restart-3');
    const parts3 = await three.p.until<PeerView[]>(
      HOOK,
      'participants',
      [],
      sees(one.id),
      `${one.id} as a WebRTC participant of page 3`,
      40_000,
    );
    const parts1 = await one.p.until<PeerView[]>(
      HOOK,
      'participants',
      [],
      sees(three.id),
      `${three.id} as a WebRTC participant of page 1`,
      40_000,
    );
    // The three pages end up in one room (the relay's new one, or one a page started meanwhile).
    const hosts = async () =>
      Promise.all([one, two, three].map((x) => x.p.hook<string>(HOOK, 'roomHost')));
    let roomHosts = await hosts();
    for (
      const end = Date.now() + 30_000;
      !(roomHosts[0] && roomHosts.every((h) => h === roomHosts[0])) && Date.now() < end;
    ) {
      await new Promise((r) => setTimeout(r, 250));
      roomHosts = await hosts();
    }
    return {
      one: one.id,
      two: two.id,
      three: three.id,
      relay,
      relayAfter: demo.relay.id,
      linksBefore,
      relinkedMs,
      relayPeers: demo.relay.peers(),
      status,
      webrtcAfter,
      noteId,
      notes2: notes2.map((n) => n.id),
      parts3,
      parts1,
      roomHosts,
      loads: [one.loads(), two.loads()],
    };
  },
};

await runScenarios(scenarios, process.argv.slice(2), {
  async start() {
    // Fresh namespace: every port is free, but let the demo pick its own (0 = any free one).
    const demo = await startDemo({
      relayPort: 0,
      pagePort: 0,
      nodes: 2,
      log: (line) => console.log(`demo: ${line}`),
    });
    return {
      ctx: { demo },
      close: () => demo.close(),
      describe: `demo at ${demo.pageUrl}, relay ${demo.relayUrl} (${demo.relay.id}), TCP nodes ${demo.nodes.join(', ')}`,
    };
  },
  scenarioTimeout: 240_000,
});
process.exit(0);
