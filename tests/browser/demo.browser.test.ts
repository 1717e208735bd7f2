// The demo app (demo-web/) in a real Chromium: two pages on the test's relay, inside a
// loopback-only network namespace (tests/browser/scenarios/demo.ts). The board syncs between the
// pages over WebRTC, the cluster view draws the link, the computation finishes with the right image
// and shows its speedup, a page that leaves is seen leaving; each view is saved as a screenshot
// under test-results/screenshots/. Without root/unshare this fails with the reason (never skips).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './harness/build.ts';
import { explain, runInNetns, type ScenarioRun } from './harness/netns.ts';

const RUN_TIMEOUT = 170_000;
let run: ScenarioRun | undefined;
let startError: Error | undefined;

beforeAll(() => {
  try {
    run = runInNetns('tests/browser/scenarios/demo.ts', ['demo'], RUN_TIMEOUT);
  } catch (err) {
    startError = err as Error;
  }
});

afterAll(async () => {
  await run?.stop();
});

interface PeerView {
  node: string;
  route: string;
  self: boolean;
}
interface Note {
  id: string;
  text: string;
}
interface DemoResult {
  one: string;
  two: string;
  parts1: PeerView[];
  parts2: PeerView[];
  webrtcPeers1: string[];
  noteId: string;
  onScreen2: string;
  notes1: Note[];
  notes2: Note[];
  clusterNodes: { id: string; kind: string }[];
  clusterLinks: { a: string; b: string; transport: string }[];
  compute: { ok: boolean; runs: { workers: number; nodes: number; checksum: string }[]; reference: { checksum: string } };
  expected: string;
  verdict: string;
  speedups: string[];
  progress: string;
  partsAfter: PeerView[];
  screenshots: string[];
}

let result: DemoResult | undefined;
async function demo(): Promise<DemoResult> {
  if (startError) throw startError;
  if (result) return result;
  const r = await run!.result<DemoResult>('demo');
  if (!r.ok) throw new Error(explain(r));
  return (result = r.value!);
}

const byId = (ns: Note[]) => ns.map((n) => ({ id: n.id, text: n.text })).sort((x, y) => x.id.localeCompare(y.id));

describe('the demo page (Chromium, loopback-only namespace)', { timeout: RUN_TIMEOUT + 10_000 }, () => {
  it('the board syncs between two pages, which reach each other over WebRTC', async () => {
    const r = await demo();
    expect(r.parts1.find((p) => p.node === r.two)?.route).toBe('webrtc');
    expect(r.parts2.find((p) => p.node === r.one)?.route).toBe('webrtc');
    expect(r.webrtcPeers1).toContain(r.two);
    // The note added on page 1 was on page 2's screen; both pages end with the same notes.
    expect(r.onScreen2).toBe('hello from page 1');
    expect(byId(r.notes1)).toEqual(byId(r.notes2));
    expect(r.notes1.find((n) => n.id === r.noteId)?.text).toBe('edited on page 2');
    expect(r.notes1).toHaveLength(2);
  });

  it('the cluster view draws both tabs, their workers, the relay and the WebRTC link', async () => {
    const r = await demo();
    const kinds = new Map(r.clusterNodes.map((n) => [n.id, n.kind]));
    expect(kinds.get(r.one)).toBe('tab');
    expect(kinds.get(r.two)).toBe('tab');
    expect(r.clusterNodes.some((n) => n.kind === 'worker')).toBe(true);
    expect(r.clusterLinks.some((l) => l.transport === 'webrtc' && [l.a, l.b].sort().join() === [r.one, r.two].sort().join())).toBe(true);
    expect(r.clusterLinks.some((l) => l.transport === 'websocket')).toBe(true);
  });

  it('the computation finishes with the correct image on every worker count and shows the speedup', async () => {
    const r = await demo();
    expect(r.compute.ok).toBe(true);
    expect(r.compute.runs.length).toBeGreaterThanOrEqual(1);
    expect(r.compute.runs.map((x) => x.workers)).toEqual(r.compute.runs.map((_, i) => i + 1));
    // Every run and the page's own reference equal the image computed independently in Node.
    for (const x of r.compute.runs) expect(x.checksum).toBe(r.expected);
    expect(r.compute.reference.checksum).toBe(r.expected);
    expect(r.verdict).toBe('ok');
    expect(r.progress).toBe('100');
    expect(r.speedups).toHaveLength(r.compute.runs.length);
    for (const s of r.speedups) expect(s).toMatch(/^\d+\.\d{2}×$/);
  });

  it('a page that leaves is seen leaving the board', async () => {
    const r = await demo();
    expect(r.partsAfter.some((p) => p.node === r.two)).toBe(false);
    expect(r.partsAfter.some((p) => p.node === r.one && p.self)).toBe(true);
  });

  it('saves a screenshot of each view', async () => {
    const r = await demo();
    expect(r.screenshots.map((f) => path.basename(f)).sort()).toEqual(
      ['demo-board-after-leave.png', 'demo-board-page1.png', 'demo-board-page2.png', 'demo-cluster.png', 'demo-compute.png'].sort(),
    );
    for (const f of r.screenshots) {
      const png = readFileSync(path.join(ROOT, f));
      expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
      expect(png.length).toBeGreaterThan(10_000);
    }
  });
});
