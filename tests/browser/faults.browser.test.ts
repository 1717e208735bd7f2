// Issue 6 — process faults with browsers attached: the relay (a real `troupe relay` process) is
// SIGKILLed under two Chromium pages, one with a Web Worker, and a Node TCP node, then started
// again on the same ports. The scenarios (tests/browser/scenarios/faults.ts) run in one child
// process inside a loopback-only network namespace; each test asserts on the JSON its scenario
// printed. Without root/unshare these tests fail with the reason (they never skip).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explain, runInNetns, type ScenarioResult, type ScenarioRun } from './harness/netns.ts';

const SCENARIOS = ['relay-restart', 'relay-new-browser-secret'];
const RUN_TIMEOUT = 360_000;

let run: ScenarioRun | undefined;
let startError: Error | undefined;

beforeAll(() => {
  try {
    run = runInNetns('tests/browser/scenarios/faults.ts', SCENARIOS, RUN_TIMEOUT);
  } catch (err) {
    startError = err as Error;
  }
});

afterAll(async () => {
  await run?.stop();
});

async function scenario<T>(name: string): Promise<T> {
  if (startError) throw startError;
  const r: ScenarioResult<T> = await run!.result<T>(name);
  if (!r.ok) throw new Error(explain(r));
  return r.value as T;
}

type Calls = Record<string, string>;

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
  outage: { aPeers: string[]; tcpPeers: string[]; bCallsW: string; bOnWCount: number; aNodes: string[] };
  relinkedMs: number;
  oldToken: { opened: boolean; closed: boolean };
  after: { aCalls: Calls; bCalls: Calls; tcpCalls: Calls };
  late: string;
  lateSeen: { b: string; tcp: string };
  aOnB2Reason: unknown;
  tOnA2Reason: unknown;
  counts: Record<string, number>;
}

describe('browser process faults (Chromium, loopback-only namespace)', { timeout: RUN_TIMEOUT + 10_000 }, () => {
  it('a relay SIGKILLed under two pages, a worker and a TCP node: monitors fire once; restarted, everyone is back and the fired monitors stay fired', async () => {
    const r = await scenario<RestartResult>('relay-restart');
    // The route: every page's only link is to the relay; page to page and page to cluster go through it.
    expect(r.aLinks).toEqual([{ node: r.relay, label: expect.stringMatching(/^ws:\/\//) }]);
    expect([...r.bPeers].sort()).toEqual([r.relay, r.wb].sort());
    expect(r.tcpPeers).toEqual([r.relay]);
    expect(r.before).toEqual({ aCalls: { t: r.tcp, b: r.b, w: r.wb }, bCalls: { a: r.a, w: r.wb }, tcpCalls: { a: r.a, w: r.wb } });

    // SIGKILL: every monitor across the relay fires noconnection (page → TCP node, page → other
    // page, page → other page's worker, TCP node → page and worker).
    expect(r.reasons).toEqual({ aOnT: 'noconnection', aOnB: 'noconnection', aOnW: 'noconnection', bOnA: 'noconnection', tOnA: 'noconnection', tOnW: 'noconnection' });
    console.log(`DOWN after SIGKILL (ms): ${JSON.stringify(r.downAfterMs)}; relinked ${r.relinkedMs} ms after the restart`);
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
    expect(r.after).toEqual({ aCalls: { t: r.tcp, b: r.b, w: r.wb }, bCalls: { a: r.a, t: r.tcp }, tcpCalls: { a: r.a, b: r.b, w: r.wb } });
    expect(r.lateSeen).toEqual({ b: r.a, tcp: r.a });
    // New monitors work (they fire with the real reason) …
    expect(r.aOnB2Reason).toBe('killed');
    expect(r.tOnA2Reason).toBe('killed');
    // … and the ones that fired stay fired: exactly one DOWN each; none for the in-page monitor.
    expect(r.counts).toEqual({ aOnT: 1, aOnB: 1, aOnW: 1, bOnA: 1, bOnW: 0, aOnB2: 1, tOnA: 1, tOnW: 1, tOnA2: 1 });
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
