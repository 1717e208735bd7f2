// Smoke check of the browser demo in a real Chromium (not the test suite: tests/browser/ is).
// Starts the demo (relay + TCP nodes + Vite) unless DEMO_URL points at a running one, opens two
// pages, checks that the board syncs over WebRTC, runs the computation, waits for the cluster
// view, closes one page and checks the other sees it leave. Screenshots: test-results/demo-*.png.
//
// WebRTC on loopback needs a loopback-only network namespace (see docs of TESTING.md):
//   unshare -n sh -c 'ip link set lo up && npx tsx scripts/demo-smoke.ts'
// Options (env): DEMO_URL (use a running demo), DEMO_BUILT=1 (serve the built app), HEADED=1.
import { mkdirSync } from 'node:fs';
import { chromium, type Page } from 'playwright-core';

const out = new URL('../test-results/', import.meta.url).pathname;
mkdirSync(out, { recursive: true });
const t0 = Date.now();
const log = (line: string) =>
  console.log(`[smoke +${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}`);
let failures = 0;
const check = (ok: boolean, what: string) => {
  log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures++;
};

// find-chromium.mjs is plain JS without types: import it by a computed specifier.
const finder = './find-chromium.mjs';
const { findChromium } = (await import(finder)) as {
  findChromium(options?: { install?: boolean }): string;
};

let stopDemo = async () => {};
let url = process.env.DEMO_URL;
if (!url) {
  const { startDemo } = await import('../demo-node/demo.ts');
  const demo = await startDemo({
    relayPort: 0,
    pagePort: 0,
    built: process.env.DEMO_BUILT === '1',
    log,
  });
  url = demo.pageUrl;
  stopDemo = demo.close;
  log(`demo at ${url} (relay ${demo.relayUrl}, nodes ${demo.nodes.join(', ')})`);
}

const browser = await chromium.launch({
  executablePath: findChromium({ install: false }),
  headless: process.env.HEADED !== '1',
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--allow-loopback-in-peer-connection',
  ],
});

async function open(name: string): Promise<Page> {
  const ctx = await browser.newContext({
    permissions: ['microphone'],
    viewport: { width: 1400, height: 900 },
    deviceScaleFactor: 1,
  });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => log(`${name} page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning')
      log(`${name} console.${m.type()}: ${m.text()}`);
  });
  let loads = 0;
  page.on('load', () => {
    if (++loads > 1) {
      log(`FAIL ${name} reloaded by itself`);
      failures++;
    }
  });
  await page.goto(`${url}#board`);
  await page.waitForFunction(() => window.troupeDemo !== undefined);
  await page.evaluate(() => window.troupeDemo.whenReady());
  log(`${name} ready as ${await page.evaluate(() => window.troupeDemo.id)}`);
  return page;
}

try {
  const a = await open('A');
  const b = await open('B');
  const idA = await a.evaluate(() => window.troupeDemo.id);
  const idB = await b.evaluate(() => window.troupeDemo.id);

  // --- Board ---------------------------------------------------------------------------------
  await a.waitForFunction(
    (other) =>
      window.troupeDemo.participants().some((p) => p.node === other && p.route === 'webrtc'),
    idB,
    { timeout: 20_000 },
  );
  await b.waitForFunction(
    (other) =>
      window.troupeDemo.participants().some((p) => p.node === other && p.route === 'webrtc'),
    idA,
    { timeout: 20_000 },
  );
  check(true, 'A and B see each other as participants over a direct WebRTC link');
  check(
    (await a.evaluate(() => window.troupeDemo.webrtcPeers())).includes(idB),
    'A has a WebRTC link to B',
  );

  const noteId = await a.evaluate(() => window.troupeDemo.addNote('Hello from A', 0.08, 0.1));
  await b.waitForFunction(
    (id) => window.troupeDemo.notes().some((n) => n.id === id && n.text.startsWith('Hello from A')),
    noteId,
    { timeout: 5000 },
  );
  check(true, 'a note added in A shows up in B');
  // Typing in B's textarea, as a user would.
  await b
    .locator(`[data-testid="board-note"][data-note-id="${noteId}"] textarea`)
    .fill('Hello from A — and B was here');
  await a.waitForFunction(
    (id) => window.troupeDemo.notes().some((n) => n.id === id && n.text.endsWith('B was here')),
    noteId,
    { timeout: 5000 },
  );
  check(true, 'B typing into the note reaches A');
  await b.getByTestId('board-add-note').click();
  await b.keyboard.type('Plan: ship the demo');
  await a.evaluate(() =>
    window.troupeDemo.addNote('WebRTC between tabs, WebSocket to the relay', 0.42, 0.45),
  );
  await a.waitForFunction(() => window.troupeDemo.notes().length >= 3, undefined, {
    timeout: 5000,
  });
  await b.waitForFunction(() => window.troupeDemo.notes().length >= 3, undefined, {
    timeout: 5000,
  });
  // Drag the first note in A; B sees the new position.
  const grip = a.locator(`[data-testid="board-note"][data-note-id="${noteId}"] .note-grip`);
  const box = (await grip.boundingBox())!;
  await a.mouse.move(box.x + 40, box.y + 10);
  await a.mouse.down();
  await a.mouse.move(box.x + 140, box.y + 90, { steps: 8 });
  await a.mouse.up();
  const xA = await a.evaluate(
    (id) => window.troupeDemo.notes().find((n) => n.id === id)!.x,
    noteId,
  );
  await b.waitForFunction(
    ([id, x]) =>
      Math.abs(window.troupeDemo.notes().find((n) => n.id === id)!.x - (x as number)) < 1e-9,
    [noteId, xA] as const,
    { timeout: 5000 },
  );
  check(true, 'dragging a note in A moves it in B');
  // A cursor over A's board appears in B.
  const boardBox = (await a.getByTestId('board').boundingBox())!;
  await a.mouse.move(boardBox.x + boardBox.width * 0.6, boardBox.y + boardBox.height * 0.3, {
    steps: 5,
  });
  await b.waitForSelector('[data-testid="board-cursor"]:not(.gone)', { timeout: 5000 });
  check(true, "A's cursor shows in B");
  await a.mouse.move(boardBox.x + boardBox.width * 0.7, boardBox.y + boardBox.height * 0.62, {
    steps: 5,
  });
  await b.mouse.move(10, 10);
  await new Promise((r) => setTimeout(r, 400));
  await a.screenshot({ path: `${out}demo-board.png` });
  await b.screenshot({ path: `${out}demo-board-b.png` });

  // --- Compute -------------------------------------------------------------------------------
  await a.evaluate(() => window.troupeDemo.show('compute'));
  const result = await a.evaluate(() => window.troupeDemo.runCompute({ withNodes: true }));
  check(
    result.ok,
    `computation verified: ${result.runs.map((r) => `${r.workers}w${r.nodes ? `+${r.nodes}n` : ''} ${r.ms.toFixed(0)} ms ${r.checksum}`).join(', ')}; reference ${result.reference.checksum} (${result.reference.ms.toFixed(0)} ms)`,
  );
  check(
    (await a.getByTestId('compute-verified').getAttribute('data-state')) === 'ok',
    'the page shows the verdict "match"',
  );
  check(
    (await a.getByTestId('speedup-row').count()) === result.runs.length,
    'the speedup table has one row per run',
  );
  await a.screenshot({ path: `${out}demo-compute.png` });

  // --- Cluster -------------------------------------------------------------------------------
  await a.evaluate(() => window.troupeDemo.show('cluster'));
  await a.waitForFunction(
    () => {
      const s = window.troupeDemo.lastCluster();
      if (!s) return false;
      const kinds = s.nodes.map((n) => n.kind);
      return (
        kinds.includes('relay') &&
        kinds.filter((k) => k === 'tab').length >= 2 &&
        kinds.includes('tcp') &&
        kinds.includes('worker') &&
        s.links.some((l) => l.transport === 'webrtc')
      );
    },
    undefined,
    { timeout: 10_000 },
  );
  await new Promise((r) => setTimeout(r, 2200)); // two polls, so rates show
  const counts = await a.evaluate(() => ({
    nodes: document.querySelectorAll('[data-testid="cluster-node"]').length,
    links: [...document.querySelectorAll('[data-testid="cluster-link"]')].map((e) =>
      e.getAttribute('data-transport'),
    ),
  }));
  check(
    counts.nodes >= 6,
    `cluster view draws ${counts.nodes} nodes and links ${JSON.stringify(counts.links)}`,
  );
  await a.screenshot({ path: `${out}demo-cluster.png`, fullPage: true });

  // --- Leaving -------------------------------------------------------------------------------
  await a.evaluate(() => window.troupeDemo.show('board'));
  const peerNameB = await a.evaluate(
    (id) => window.troupeDemo.participants().find((p) => p.node === id)?.name,
    idB,
  );
  check(!!peerNameB, `A still lists B as ${peerNameB}`);
  const closedAt = Date.now();
  await b.context().close();
  await a.waitForFunction(
    (other) => !window.troupeDemo.participants().some((p) => p.node === other),
    idB,
    { timeout: 10_000 },
  );
  const logText = await a.getByTestId('board-log').innerText();
  const leftLine = logText.split('\n').find((l) => l.includes(`${peerNameB} left (`));
  check(
    !!leftLine,
    `A saw B (${peerNameB}) leave after ${Date.now() - closedAt} ms: "${leftLine}"`,
  );
  await a.screenshot({ path: `${out}demo-board-left.png` });
} catch (err) {
  failures++;
  log(`FAIL ${(err as Error).stack ?? err}`);
} finally {
  await browser.close();
  await stopDemo();
}
log(failures ? `${failures} check(s) failed` : 'all checks passed');
process.exit(failures ? 1 : 0);
