// The demo as `npm run demo` runs it (startDemo: relay with the board room, two Node TCP nodes,
// Vite's dev server), in a real Chromium inside a loopback-only network namespace
// (tests/browser/scenarios/demo.ts). The board syncs between two pages over WebRTC, the cluster
// view draws every node and link, the computation finishes with the right image on workers and on
// workers plus the Node nodes and shows its speedup, a page that leaves is seen leaving; each view
// is saved under test-results/screenshots/. Then the relay restarts under two pages, which ride it
// out. Without root/unshare this fails with the reason.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './harness/build.ts';
import { netnsScenarios } from './harness/netns.ts';
import type { DemoResult, Note, RestartResult } from './scenarios/demo.ts';

const RUN_TIMEOUT = 240_000;
const scenario = netnsScenarios(
  'tests/browser/scenarios/demo.ts',
  ['demo', 'relay-restart'],
  RUN_TIMEOUT,
);

let result: DemoResult | undefined;
async function demo(): Promise<DemoResult> {
  return (result ??= await scenario<DemoResult>('demo'));
}

const byId = (ns: Note[]) =>
  ns.map((n) => ({ id: n.id, text: n.text })).sort((x, y) => x.id.localeCompare(y.id));

describe('the demo page (Chromium, loopback-only namespace)', {
  timeout: RUN_TIMEOUT + 10_000,
}, () => {
  it('the board syncs between two pages, which reach each other over WebRTC; the room lives on the relay', async () => {
    const r = await demo();
    expect(r.loads).toEqual([1, 1]); // the dev server never reloaded a page mid-test
    expect(r.parts1.find((p) => p.node === r.two)?.route).toBe('webrtc');
    expect(r.parts2.find((p) => p.node === r.one)?.route).toBe('webrtc');
    expect(r.webrtcPeers1).toContain(r.two);
    expect(r.roomHosts).toEqual([r.relay, r.relay]);
    // The note added on page 1 was on page 2's screen; what was typed on page 2 is on page 1's.
    expect(r.onScreen2).toBe('hello from page 1');
    expect(r.onScreen1).toBe('typed on page 2');
    expect(byId(r.notes1)).toEqual(byId(r.notes2));
    // The notes persist with the shared document (the relay's store may hold earlier runs' notes).
    expect(r.notes1.map((n) => n.id)).toEqual(expect.arrayContaining([r.noteId]));
    expect(r.notes1.length).toBeGreaterThanOrEqual(2);
    expect(r.cursorOn1).toBe(true);
  });

  it('the shared text (troupe/yjs) syncs between the pages, the Node bot answers in it, everyone is present', async () => {
    const r = await scenario<DemoResult>('demo');
    expect(r.editorText2).toContain('typed in the shared text');
    expect(r.editorText2).toMatch(/bot: hello from node-1/);
    expect(r.editorPresence1.filter((n) => n.startsWith('bot on ')).length).toBe(1);
    expect(r.editorPresence1.length).toBeGreaterThanOrEqual(3);
  });

  it('the notes are a Y.Map: two pages changing different fields of one note at once both keep their change', async () => {
    const r = await scenario<DemoResult>('demo');
    for (const n of r.concurrentNote)
      expect({ text: n.text, x: n.x, y: n.y }).toEqual({
        text: 'rewritten on page 1',
        x: 0.7,
        y: 0.6,
      });
    expect(r.concurrentNote).toHaveLength(2);
  });

  it('the cluster view draws the tabs, their workers, the relay, the TCP nodes and every kind of link', async () => {
    const r = await demo();
    const kinds = new Map(r.clusterNodes.map((n) => [n.id, n.kind]));
    expect(kinds.get(r.one)).toBe('tab');
    expect(kinds.get(r.two)).toBe('tab');
    expect(kinds.get(r.relay)).toBe('relay');
    for (const id of r.tcpNodes) expect(kinds.get(id)).toBe('tcp');
    expect(r.clusterNodes.filter((n) => n.kind === 'worker').length).toBeGreaterThanOrEqual(2);
    const pair = (a: string | null, b: string | null) => [a, b].sort().join(' ');
    expect(
      r.clusterLinks.some((l) => l.transport === 'webrtc' && pair(l.a, l.b) === pair(r.one, r.two)),
    ).toBe(true);
    expect(
      r.clusterLinks.some(
        (l) => l.transport === 'websocket' && pair(l.a, l.b) === pair(r.one, r.relay),
      ),
    ).toBe(true);
    expect(r.clusterLinks.some((l) => l.transport === 'tcp')).toBe(true);
    expect(r.clusterLinks.some((l) => l.transport === 'worker')).toBe(true);
    // Supervision trees, live: each tab's demo supervisor with its two children.
    const sups = r.supervision.filter((s) => s.kind === 'supervision-supervisor').map((s) => s.id);
    expect(sups).toEqual(expect.arrayContaining([`sup:${r.one}`, `sup:${r.two}`]));
    expect(
      r.supervision.filter((s) => s.id === 'greeter' && s.status === 'running').length,
    ).toBeGreaterThanOrEqual(2);
    expect(r.supervision.filter((s) => s.id === 'flaky').length).toBeGreaterThanOrEqual(2);
  });

  it('the computation finishes with the correct image on 1..N workers and with the Node nodes, and shows the speedup', async () => {
    const r = await demo();
    expect(r.compute.ok).toBe(true);
    const workerRuns = r.compute.runs.filter((x) => x.nodes === 0);
    expect(workerRuns.map((x) => x.workers)).toEqual(workerRuns.map((_, i) => i + 1));
    // The last run adds the Node TCP nodes' function servers (the tile function), reached through the relay.
    const withNodes = r.compute.runs.find((x) => x.nodes > 0);
    expect(withNodes?.nodes).toBe(r.tcpNodes.length);
    expect(r.tcpNodes.reduce((n, id) => n + (withNodes?.perNode[id] ?? 0), 0)).toBeGreaterThan(0);
    // Every run and the page's own reference equal the image computed independently in Node.
    for (const x of r.compute.runs) expect(x.checksum).toBe(r.expected);
    expect(r.compute.reference.checksum).toBe(r.expected);
    expect(r.verdict).toBe('ok');
    expect(r.progress).toBe('100');
    expect(r.speedups).toHaveLength(r.compute.runs.length);
    for (const s of r.speedups) expect(s).toMatch(/^\d+\.\d{2}×$/);
  });

  it('a page that leaves is seen leaving the board (its monitor fires)', async () => {
    const r = await demo();
    expect(r.partsAfter.some((p) => p.node === r.two)).toBe(false);
    expect(r.partsAfter.some((p) => p.node === r.one && p.self)).toBe(true);
    expect(r.boardLog).toContain(`${r.leftName} left (noconnection)`);
  });

  it('saves a screenshot of each view', async () => {
    const r = await demo();
    expect(r.screenshots.map((f) => path.basename(f)).sort()).toEqual(
      [
        'demo-board-after-leave.png',
        'demo-board-page1.png',
        'demo-board-page2.png',
        'demo-cluster.png',
        'demo-compute.png',
      ].sort(),
    );
    for (const f of r.screenshots) {
      const png = readFileSync(path.join(ROOT, f));
      expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
      expect(png.length).toBeGreaterThan(10_000);
    }
  });

  it('the relay restarts under two pages: they relink with fresh credentials and keep their WebRTC link; a page opened afterwards links to them over WebRTC', async () => {
    const r = await scenario<RestartResult>('relay-restart');
    expect(r.relayAfter).toBe(r.relay); // the same id
    // The new relay node links to both pages and both TCP nodes (every link of it is new).
    expect(r.relayPeers).toEqual(expect.arrayContaining([r.one, r.two, 'node-1', 'node-2']));
    console.log(
      `demo relay restart: pages and TCP nodes relinked ${r.relinkedMs} ms after it was back`,
    );
    expect(r.status).toEqual(['up', 'up']);
    expect(r.webrtcAfter).toContain(r.two);
    expect(r.notes2).toContain(r.noteId);
    // Page 1 is reachable over WebRTC from a page opened after the restart, and the reverse.
    expect(r.parts3.find((p) => p.node === r.one)?.route).toBe('webrtc');
    expect(r.parts1.find((p) => p.node === r.three)?.route).toBe('webrtc');
    expect(r.roomHosts[0]).toBeTruthy();
    expect(new Set(r.roomHosts).size).toBe(1);
    expect(r.loads).toEqual([1, 1]);
  });
});
