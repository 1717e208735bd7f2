// The demo app (demo-web/) in Chromium, run inside a loopback-only network namespace by
// tests/browser/demo.browser.test.ts. Two pages join the test's relay (`?relay=`): the board
// syncs between them, the cluster view draws their WebRTC link, the computation finishes with
// the right image and shows its speedup, and a page that leaves is seen leaving. Each view is
// saved as a screenshot under test-results/screenshots/. Prints one `RESULT {json}` line.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_JOB, checksum, computeTile, placeTile, tilesOf } from '../../../demo-web/mandelbrot.ts';
import { buildDemo, ROOT } from '../harness/build.ts';
import { routingSetup, runScenarios, timeout, type BrowserEnv, type FxPage, type RoutingCtx } from '../harness/env.ts';

type Env = BrowserEnv & RoutingCtx;
import { serveStatic } from '../harness/static-server.ts';
import { FIXTURE_TIMING } from '../fixtures/timing.ts';

const SHOTS = path.join(ROOT, 'test-results', 'screenshots');
const HOOK = 'troupeDemo';

interface PeerView {
  key: string;
  name: string;
  node: string;
  route: string;
  self: boolean;
}
interface Note {
  id: string;
  text: string;
}

/** The Mandelbrot image of the demo's job computed here in Node, independently of the page. */
function expectedChecksum(): string {
  const image = new Uint16Array(DEFAULT_JOB.width * DEFAULT_JOB.height);
  for (const tile of tilesOf(DEFAULT_JOB)) placeTile(DEFAULT_JOB, tile, computeTile(DEFAULT_JOB, tile), image);
  return checksum(image);
}

async function shot(p: FxPage, name: string): Promise<string> {
  mkdirSync(SHOTS, { recursive: true });
  const file = path.join(SHOTS, `${name}.png`);
  await timeout(`screenshot ${name}`, p.page.screenshot({ path: file, fullPage: true }), 30_000);
  return path.relative(ROOT, file);
}

async function openDemo(env: Env, tag: string): Promise<{ p: FxPage; id: string }> {
  const url = `${env.pageUrl}?relay=${encodeURIComponent(env.relay.url)}#board`;
  const p = await env.openPage(tag, url);
  await p.page.waitForFunction((h) => !!(window as any)[h], HOOK, { timeout: 30_000 });
  const id = await p.hook<string>(HOOK, 'whenReady', [], 60_000);
  return { p, id };
}

const scenarios: Record<string, (env: Env) => Promise<unknown>> = {
  async demo(env) {
    const screenshots: string[] = [];
    const [one, two] = await Promise.all([openDemo(env, 'demo-1'), openDemo(env, 'demo-2')]);

    // Board: each page lists the other as a participant, reached over WebRTC.
    const sees = (other: string) => (ps: PeerView[]) => ps.some((x) => x.node === other && !x.self && x.route === 'webrtc');
    const [parts1, parts2] = await Promise.all([
      one.p.until<PeerView[]>(HOOK, 'participants', [], sees(two.id), `${two.id} as a WebRTC participant`, 40_000),
      two.p.until<PeerView[]>(HOOK, 'participants', [], sees(one.id), `${one.id} as a WebRTC participant`, 40_000),
    ]);
    const webrtcPeers1 = await one.p.hook<string[]>(HOOK, 'webrtcPeers');

    // A note added on page 1 appears on page 2 (in the hook and on screen); an edit on page 2 comes back.
    const noteId = await one.p.hook<string>(HOOK, 'addNote', ['hello from page 1', 0.12, 0.2]);
    await two.p.until<Note[]>(HOOK, 'notes', [], (ns) => ns.some((n) => n.id === noteId && n.text === 'hello from page 1'), 'the note from page 1', 20_000);
    const onScreen2 = await two.p.page
      .locator(`[data-testid="board-note"][data-note-id="${noteId}"] [data-testid="board-note-text"]`)
      .inputValue({ timeout: 20_000 });
    await two.p.hook(HOOK, 'editNote', [noteId, 'edited on page 2']);
    await one.p.until<Note[]>(HOOK, 'notes', [], (ns) => ns.some((n) => n.id === noteId && n.text === 'edited on page 2'), 'the edit from page 2', 20_000);
    const secondId = await two.p.hook<string>(HOOK, 'addNote', ['a second note, from page 2', 0.55, 0.45]);
    const notes1 = await one.p.until<Note[]>(HOOK, 'notes', [], (ns) => ns.some((n) => n.id === secondId), 'the second note', 20_000);
    const notes2 = await two.p.hook<Note[]>(HOOK, 'notes');
    await two.p.page.mouse.move(640, 420); // a cursor for page 1 to draw
    screenshots.push(await shot(one.p, 'demo-board-page1'), await shot(two.p, 'demo-board-page2'));

    // Cluster view: the tab, its workers, the relay and the WebRTC link to the other tab.
    await one.p.hook(HOOK, 'show', ['cluster']);
    await one.p.page.locator('[data-testid="cluster-link"][data-transport="webrtc"]').first().waitFor({ timeout: 30_000 });
    const clusterNodes = await one.p.page.locator('[data-testid="cluster-node"]').evaluateAll((els) => els.map((e) => ({ id: e.getAttribute('data-node-id'), kind: e.getAttribute('data-kind') })));
    const clusterLinks = await one.p.page.locator('[data-testid="cluster-link"]').evaluateAll((els) => els.map((e) => ({ a: e.getAttribute('data-a'), b: e.getAttribute('data-b'), transport: e.getAttribute('data-transport') })));
    screenshots.push(await shot(one.p, 'demo-cluster'));

    // Computation: every run equals the single-threaded reference, which equals the image computed here.
    await one.p.hook(HOOK, 'show', ['compute']);
    const compute = await one.p.hook<{ ok: boolean; runs: { workers: number; nodes: number; ms: number; checksum: string }[]; reference: { checksum: string } }>(
      HOOK,
      'runCompute',
      [],
      150_000,
    );
    const verdict = await one.p.page.locator('[data-testid="compute-verified"]').getAttribute('data-state', { timeout: 10_000 });
    const speedups = await one.p.page.locator('[data-testid="speedup-row"] [data-testid="speedup"]').allTextContents();
    const progress = await one.p.page.locator('[data-testid="compute-progress"]').getAttribute('aria-valuenow', { timeout: 10_000 });
    screenshots.push(await shot(one.p, 'demo-compute'));

    // Page 2 leaves: page 1 sees it leave (its monitor fires) within the failure-detection time.
    await one.p.hook(HOOK, 'show', ['board']);
    await two.p.close();
    const partsAfter = await one.p.until<PeerView[]>(
      HOOK,
      'participants',
      [],
      (ps) => !ps.some((x) => x.node === two.id),
      `${two.id} to leave the board`,
      FIXTURE_TIMING.heartbeatTimeout * 2 + 20_000,
    );
    screenshots.push(await shot(one.p, 'demo-board-after-leave'));

    return {
      one: one.id,
      two: two.id,
      parts1,
      parts2,
      webrtcPeers1,
      noteId,
      onScreen2,
      notes1,
      notes2,
      clusterNodes,
      clusterLinks,
      compute,
      expected: expectedChecksum(),
      verdict,
      speedups,
      progress,
      partsAfter,
      screenshots,
    };
  },
};

await runScenarios(scenarios, process.argv.slice(2), {
  ...routingSetup(async () => serveStatic(await buildDemo())),
  scenarioTimeout: 240_000,
});
process.exit(0);
