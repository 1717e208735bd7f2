// Issue 6 — process faults with browsers attached: the relay (a real `troupe relay` process) is
// SIGKILLed under two Chromium pages, one with a Web Worker, and a Node TCP node, then started
// again on the same ports; pages listening on WebRTC register with its PeerServer again and open
// new direct links. The scenarios (tests/browser/scenarios/faults.ts) run in one child
// process inside a loopback-only network namespace; each test asserts on the JSON its scenario
// printed. Without root/unshare these tests fail with the reason (they never skip).
import { describe, expect, it } from 'vitest';
import { netnsScenarios } from './harness/netns.ts';
import type { LinkStat } from './fixtures/page.ts';
import type { PingerResult } from './fixtures/behaviours.ts';

const SCENARIOS = ['relay-restart', 'relay-restart-webrtc', 'relay-new-browser-secret'];
const RUN_TIMEOUT = 450_000;

const scenario = netnsScenarios('tests/browser/scenarios/faults.ts', SCENARIOS, RUN_TIMEOUT);

type Calls = Record<string, string>;

const stat = (stats: LinkStat[], node: string) => stats.find((s) => s.node === node);

interface RestartResult {
  a: string;
  b: string;
  wb: string;
  tcp: string;
  relay: string;
  aLinks: { node: string; label: string }[];
  bPeers: string[];
  tcpPeers: string[];
  before: { aCalls: Calls; bCalls: Calls; tcpCalls: Calls };
  reasons: Record<string, unknown>;
  downAfterMs: Record<string, number>;
  outage: {
    aPeers: string[];
    tcpPeers: string[];
    bCallsW: string;
    bOnWCount: number;
    aNodes: string[];
  };
  relinkedMs: number;
  oldToken: { opened: boolean; closed: boolean };
  after: { aCalls: Calls; bCalls: Calls; tcpCalls: Calls };
  late: string;
  lateSeen: { b: string; tcp: string };
  aOnB2Reason: unknown;
  tOnA2Reason: unknown;
  counts: Record<string, number>;
}

describe('browser process faults (Chromium, loopback-only namespace)', {
  timeout: RUN_TIMEOUT + 10_000,
}, () => {
  it('a relay SIGKILLed under two pages, a worker and a TCP node: monitors fire once; restarted, everyone is back and the fired monitors stay fired', async () => {
    const r = await scenario<RestartResult>('relay-restart');
    // The route: every page's only link is to the relay; page to page and page to cluster go through it.
    expect(r.aLinks).toEqual([{ node: r.relay, label: expect.stringMatching(/^ws:\/\//) }]);
    expect([...r.bPeers].sort()).toEqual([r.relay, r.wb].sort());
    expect(r.tcpPeers).toEqual([r.relay]);
    expect(r.before).toEqual({
      aCalls: { t: r.tcp, b: r.b, w: r.wb },
      bCalls: { a: r.a, w: r.wb },
      tcpCalls: { a: r.a, w: r.wb },
    });

    // SIGKILL: every monitor across the relay fires noconnection (page → TCP node, page → other
    // page, page → other page's worker, TCP node → page and worker).
    expect(r.reasons).toEqual({
      aOnT: 'noconnection',
      aOnB: 'noconnection',
      aOnW: 'noconnection',
      bOnA: 'noconnection',
      tOnA: 'noconnection',
      tOnW: 'noconnection',
    });
    console.log(
      `DOWN after SIGKILL (ms): ${JSON.stringify(r.downAfterMs)}; relinked ${r.relinkedMs} ms after the restart`,
    );
    // While it is down, a page still reaches its own worker, and that monitor does not fire.
    expect(r.outage.aPeers).toEqual([]);
    expect(r.outage.aNodes).not.toContain(r.tcp);
    expect(r.outage.tcpPeers).toEqual([]);
    expect(r.outage.bCallsW).toBe(r.wb);
    expect(r.outage.bOnWCount).toBe(0);

    // Restarted: the token the pages started with is refused (a new key), yet they relinked on
    // their own with fresh credentials; every actor answers again, from every side.
    expect(r.oldToken.opened).toBe(false);
    // Each call went through at first try (a session report crossing them settles nothing).
    expect(r.after).toEqual({
      aCalls: { t: r.tcp, b: r.b, w: r.wb },
      bCalls: { a: r.a, t: r.tcp },
      tcpCalls: { a: r.a, b: r.b, w: r.wb },
    });
    expect(r.lateSeen).toEqual({ b: r.a, tcp: r.a });
    // New monitors work (they fire with the real reason) …
    expect(r.aOnB2Reason).toBe('killed');
    expect(r.tOnA2Reason).toBe('killed');
    // … and the ones that fired stay fired: exactly one DOWN each; none for the in-page monitor.
    expect(r.counts).toEqual({
      aOnT: 1,
      aOnB: 1,
      aOnW: 1,
      bOnA: 1,
      bOnW: 0,
      aOnB2: 1,
      tOnA: 1,
      tOnW: 1,
      tOnA2: 1,
    });
  });

  it('after a relay restart, pages register with its PeerServer again on their own, open a new direct WebRTC link and call across it', async () => {
    const r = await scenario<{
      a: string;
      b: string;
      relay: string;
      peerIds: string[];
      registeredBefore: string[];
      peersBefore: { a: string[]; b: string[] };
      outageDial: { ok: boolean; value: string };
      relinkedMs: number;
      registeredAfter: string[];
      reregisteredMs: number;
      aPeersBeforeDial: string[];
      dialed: string;
      statsBefore: LinkStat[];
      statsAfter: LinkStat[];
      bStats: LinkStat[];
      callBy: string;
      count: number;
      run: { reason: unknown; result: PingerResult };
    }>('relay-restart-webrtc');
    // Before: both peer ids registered, no direct link between the pages (only the relay).
    expect(r.registeredBefore).toEqual(expect.arrayContaining(r.peerIds));
    expect(r.peersBefore).toEqual({ a: [r.relay], b: [r.relay] });
    // While the PeerServer is gone, a dial waits for it, bounded, and fails TRANSPORT_CLOSED.
    expect(r.outageDial.ok).toBe(false);
    expect(r.outageDial.value).toMatch(/TRANSPORT_CLOSED: .*not registered with the PeerServer/);
    // Restarted: both pages are registered again (the PeerServer started empty).
    expect(r.registeredAfter).toEqual(expect.arrayContaining(r.peerIds));
    console.log(
      `relay restart: pages relinked after ${r.relinkedMs} ms, registered with the PeerServer again after ${r.reregisteredMs} ms`,
    );
    // A new direct link, made after the restart, labelled webrtc://… on both sides.
    expect(r.aPeersBeforeDial).toEqual([r.relay]);
    expect(r.dialed).toBe(r.b);
    expect(stat(r.statsAfter, r.b)?.label).toMatch(/^webrtc:\/\//);
    expect(stat(r.bStats, r.a)?.label).toMatch(/^webrtc:\/\//);
    // The call and every ping crossed it, answered by page B, in order; not through the relay.
    expect(r.callBy).toBe(r.b);
    expect(r.run.reason).toBe('normal');
    expect(r.run.result.seqs).toEqual(Array.from({ length: r.count }, (_, i) => i + 1));
    expect(r.run.result.by).toEqual([r.b]);
    const rtcOut =
      stat(r.statsAfter, r.b)!.envelopesOut - (stat(r.statsBefore, r.b)?.envelopesOut ?? 0);
    const relayOut =
      stat(r.statsAfter, r.relay)!.envelopesOut - stat(r.statsBefore, r.relay)!.envelopesOut;
    expect(rtcOut).toBeGreaterThanOrEqual(r.count + 1);
    expect(relayOut).toBeLessThan(r.count);
  });

  it('a relay restarted with another browser secret refuses a page holding the old one, which stops redialing; a page loaded anew gets through', async () => {
    const r = await scenario<{
      a: string;
      tcpDown: unknown;
      pageRefusals: string[];
      laterPageEvents: string[];
      relayRefusals: string[];
      aPeers: string[];
      relayLinks: string[];
      tcpReachesOld: boolean;
      fresh: string;
      freshCall: string;
    }>('relay-new-browser-secret');
    expect(r.tcpDown).toBe('noconnection');
    // One attempt with a fresh token: the handshake fails on both sides, and the page gives up.
    expect(r.pageRefusals).toHaveLength(1);
    expect(r.pageRefusals[0]).toMatch(/UNAUTHORIZED/);
    expect(r.relayRefusals).toHaveLength(1);
    expect(r.relayRefusals[0]).toContain(r.a);
    expect(r.laterPageEvents).toEqual([]);
    expect(r.aPeers).toEqual([]);
    expect(r.relayLinks).not.toContain(r.a);
    expect(r.tcpReachesOld).toBe(false);
    expect(r.freshCall).toBe(r.fresh);
  });
});
