// Routing across browsers, workers, the relay and a Node TCP node, in a real Chromium driven by
// Playwright. The scenarios (tests/browser/scenarios/routing.ts) run in one child process inside
// a loopback-only network namespace — relay, PeerServer, TCP node, static server and Chromium —
// so WebRTC can only use 127.0.0.1; each test asserts on the JSON its scenario printed.
// Without root/unshare these tests fail with the reason (they never skip).
import { describe, expect, it } from 'vitest';
import { netnsScenarios } from './harness/netns.ts';
import type { LinkStat } from './fixtures/page.ts';
import type { BulkReport, PingerResult } from './fixtures/behaviours.ts';

const SCENARIOS = [
  'webrtc-worker-chain',
  'route-shortens',
  'relay-worker-chain',
  'browser-tcp',
  'page-close',
  'worker-terminate',
  'wrong-credential',
  'webrtc-bulk',
];
const RUN_TIMEOUT = 170_000;

const scenario = netnsScenarios('tests/browser/scenarios/routing.ts', SCENARIOS, RUN_TIMEOUT);

const oneToN = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
const stat = (stats: LinkStat[], node: string) => stats.find((s) => s.node === node);

interface ChainResult {
  a: string;
  b: string;
  relay: string;
  wa: string;
  wb: string;
  count: number;
  before: LinkStat[];
  after: LinkStat[];
  bStats?: LinkStat[];
  run: { reason: unknown; result: PingerResult };
}

// The scenarios run one after another in one browser: each test waits for its own result.
describe('browser routing (Chromium, loopback-only namespace)', {
  timeout: RUN_TIMEOUT + 10_000,
}, () => {
  it('a worker in tab A reaches a worker in tab B through a passed ref, over a direct WebRTC link, in order', async () => {
    const r = await scenario<ChainResult>('webrtc-worker-chain');
    // Every ping was answered through the ref it carried, by B's worker, in the order sent.
    expect(r.run.reason).toBe('normal');
    expect(r.run.result.seqs).toEqual(oneToN(r.count));
    expect(r.run.result.by).toEqual([r.wb]);
    expect(r.run.result.targetNode).toBe(r.wb);
    // Tab A and tab B hold a direct link labelled webrtc://…, on both sides.
    const rtcBefore = stat(r.before, r.b);
    const rtcAfter = stat(r.after, r.b);
    expect(rtcAfter?.label).toMatch(/^webrtc:\/\//);
    expect(stat(r.bStats ?? [], r.a)?.label).toMatch(/^webrtc:\/\//);
    // The pings left tab A on that link, not through the relay.
    const rtcOut = rtcAfter!.envelopesOut - rtcBefore!.envelopesOut;
    const rtcIn = rtcAfter!.framesIn - rtcBefore!.framesIn;
    const relayOut = stat(r.after, r.relay)!.envelopesOut - stat(r.before, r.relay)!.envelopesOut;
    expect(rtcOut).toBeGreaterThanOrEqual(r.count);
    expect(rtcIn).toBeGreaterThan(0);
    expect(relayOut).toBeLessThan(r.count);
  });

  it('when a direct WebRTC link comes up mid-stream, later messages take it and none is reordered', async () => {
    const r = await scenario<{
      b: string;
      relay: string;
      peersBefore: string[];
      mid: LinkStat[];
      after: LinkStat[];
      batch: number;
      afterStop: number;
      end: { reason: unknown; result: { sent: number; stoppedAt: number } };
      received: number;
      disorder: number;
      around: number[];
    }>('route-shortens');
    expect(r.peersBefore).not.toContain(r.b); // the stream started through the relay
    expect(r.end.reason).toBe('normal');
    const tail = r.afterStop * r.batch;
    const rtcOut = stat(r.after, r.b)!.envelopesOut - stat(r.mid, r.b)!.envelopesOut;
    const relayOut = stat(r.after, r.relay)!.envelopesOut - stat(r.mid, r.relay)!.envelopesOut;
    expect(rtcOut).toBeGreaterThanOrEqual(tail);
    expect(relayOut).toBeLessThan(tail);
    // Every message arrived, in the order sent, across the switch.
    expect(r.received).toBe(r.end.result.sent);
    expect(
      r.disorder,
      `first out-of-order message at index ${r.disorder}: …${r.around.join(', ')}…`,
    ).toBe(-1);
  });

  it('without WebRTC the same worker-to-worker chain goes through the relay, in order', async () => {
    const r = await scenario<ChainResult & { aPeers: string[]; deadLetters: string[] }>(
      'relay-worker-chain',
    );
    expect(r.aPeers).not.toContain(r.b);
    expect(r.run.reason, `tab A's first dead letters: ${r.deadLetters.join('; ')}`).toBe('normal');
    expect(r.run.result.seqs).toEqual(oneToN(r.count));
    expect(r.run.result.by).toEqual([r.wb]);
    const relayOut = stat(r.after, r.relay)!.envelopesOut - stat(r.before, r.relay)!.envelopesOut;
    expect(relayOut).toBeGreaterThanOrEqual(r.count);
  });

  it('a page and its worker call a TCP node actor through the relay, and the TCP node calls theirs', async () => {
    const r = await scenario<{
      page: string;
      worker: string;
      tcp: string;
      pageCall: { echo: unknown; by: string };
      workerRun: { reason: unknown; result: PingerResult };
      nodeCallsPage: { echo: unknown; by: string };
      nodeCallsWorker: { echo: unknown; by: string };
      nodeRun: { reason: unknown; result: PingerResult };
    }>('browser-tcp');
    expect(r.pageCall).toEqual({ echo: { hello: 'from the page' }, by: r.tcp });
    expect(r.workerRun.reason).toBe('normal');
    expect(r.workerRun.result.seqs).toEqual(oneToN(100));
    expect(r.workerRun.result.by).toEqual([r.tcp]);
    expect(r.nodeCallsPage).toEqual({ echo: { hello: 'from node' }, by: r.page });
    expect(r.nodeCallsWorker).toEqual({ echo: { hello: 'from node' }, by: r.worker });
    expect(r.nodeRun.reason).toBe('normal');
    expect(r.nodeRun.result.seqs).toEqual(oneToN(100));
    expect(r.nodeRun.result.by).toEqual([r.worker]);
  });

  it('closing a page gives noconnection to monitors in the other page and on the TCP node', async () => {
    const r = await scenario<{
      downEarly: unknown;
      bReason: unknown;
      nodeReason: unknown;
      bPeersAfter: string[];
      a: string;
    }>('page-close');
    expect(r.downEarly).toBeNull();
    expect(r.bReason).toBe('noconnection');
    expect(r.nodeReason).toBe('noconnection');
    expect(r.bPeersAfter).not.toContain(r.a);
  });

  it('terminating a worker gives noconnection to monitors in its page, another page and the TCP node', async () => {
    const r = await scenario<{
      ownReason: unknown;
      otherReason: unknown;
      nodeReason: unknown;
      callAfter: { ok: boolean; error?: string };
    }>('worker-terminate');
    expect(r.ownReason).toBe('noconnection');
    expect(r.otherReason).toBe('noconnection');
    expect(r.nodeReason).toBe('noconnection');
    // A later call to it fails at once with NODE_DOWN (it does not wait for its timeout).
    expect(r.callAfter.ok).toBe(false);
    expect(r.callAfter.error).toMatch(/NODE_DOWN/);
  });

  it('a page with a wrong credential is refused and nothing it sends is delivered', async () => {
    const r = await scenario<{
      countAfterGood: number;
      badStart: { ok: boolean; error?: string };
      badSend: string;
      rawFirst: { opened: boolean; closed: boolean; received: string[] };
      rawAfterHello: { opened: boolean; closed: boolean; received: string[] };
      noToken: { opened: boolean; closed: boolean };
      forgedToken: { opened: boolean; closed: boolean };
      countAfterAll: number;
      relayRefusals: string[];
      relayPeers: string[];
      badId: string;
    }>('wrong-credential');
    expect(r.countAfterGood).toBe(1);
    expect(r.badStart.ok).toBe(false);
    expect(r.badStart.error).toMatch(/UNAUTHORIZED/);
    expect(r.relayRefusals.some((e) => e.startsWith('UNAUTHORIZED'))).toBe(true);
    expect(r.relayPeers).not.toContain(r.badId);
    // The bare sockets were answered with a refusal and closed by the relay.
    for (const raw of [r.rawFirst, r.rawAfterHello]) {
      expect(raw.opened).toBe(true);
      expect(raw.closed).toBe(true);
    }
    // Without the credential's token (or with a forged one) the WebSocket never opens.
    for (const raw of [r.noToken, r.forgedToken]) {
      expect(raw.opened).toBe(false);
      expect(raw.closed).toBe(true);
    }
    // Only the good page's two messages reached the sink.
    expect(r.countAfterAll).toBe(2);
  });

  it('200 awaited sends of 1 MB from tab A to tab B over WebRTC all arrive, in order and intact, with bounded holdings on both sides', async () => {
    const r = await scenario<{
      count: number;
      size: number;
      run: {
        reason: unknown;
        result: { sent: number; ms: number; peakHeapMb: number; peakHeld: number };
      };
      report: BulkReport;
      label?: string;
      rtcFramesOut: number;
      relayEnvelopesOut: number;
    }>('webrtc-bulk');
    expect(r.run.reason).toBe('normal');
    expect(r.run.result.sent).toBe(r.count);
    expect(r.report).toMatchObject({
      count: r.count,
      bytes: r.count * r.size,
      inOrder: true,
      intact: true,
    });
    // Over the direct WebRTC link, not the relay.
    expect(r.label).toMatch(/^webrtc:\/\//);
    expect(r.rtcFramesOut).toBeGreaterThanOrEqual(r.count);
    expect(r.relayEnvelopesOut).toBeLessThan(r.count);
    // 200 MB went through; troupe held a bounded share of it at once on either side: the
    // sender's links at most the credit window and a frame or two (characters), the receiver's
    // mailbox a few messages.
    expect(r.run.result.peakHeld).toBeLessThan(24 * 2 ** 20);
    expect(r.report.peakMailbox).toBeLessThanOrEqual(16);
    console.log(
      `[flow/sendAwait webrtc chromium] ${r.count} × 1 MB in ${(r.run.result.ms / 1000).toFixed(1)} s; sender's links held at most ${(r.run.result.peakHeld / 2 ** 20).toFixed(1)} Mi chars, receiver's mailbox at most ${r.report.peakMailbox}; peak JS heap (garbage included) sender ${r.run.result.peakHeapMb.toFixed(0)} MB, receiver ${r.report.peakHeapMb.toFixed(0)} MB`,
    );
  });
});
