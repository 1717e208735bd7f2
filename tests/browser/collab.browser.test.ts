// troupe/yjs in Chromium (issue 17): three pages typing into one paragraph converge with the
// document actor; a closed page's presence goes within the failure-detection time; a read-only
// participant's update is refused with an event; a page set offline edits and merges on return;
// the relay holding the document is SIGKILLed and restarted: the document comes back from disk,
// pages rejoin, nothing is lost. Scenarios: tests/browser/scenarios/collab.ts, in a loopback-only
// network namespace (real relay, PeerServer, WebRTC between pages).
import { describe, expect, it } from 'vitest';
import { netnsScenarios } from './harness/netns.ts';

const SCENARIOS = ['concurrent', 'presence-close', 'read-only', 'offline', 'relay-kill'];
const RUN_TIMEOUT = 480_000;
const HEARTBEAT_TIMEOUT = 6000;

const scenario = netnsScenarios('tests/browser/scenarios/collab.ts', SCENARIOS, RUN_TIMEOUT);

describe('troupe/yjs in Chromium (loopback-only namespace)', {
  timeout: RUN_TIMEOUT + 10_000,
}, () => {
  it('three pages typing random edits into one paragraph at once end identical, with the document actor', async () => {
    const r = await scenario<{
      edits: number[];
      length: number;
      convergedMs: number;
      webrtcLinks: number[];
    }>('concurrent');
    console.log(`concurrent typing: ${JSON.stringify(r)}`);
    expect(r.edits.every((n) => n > 50)).toBe(true);
    expect(r.length).toBeGreaterThan(100);
    // Each page has a WebRTC link to the two others (edits go page to page directly).
    expect(r.webrtcLinks).toEqual([2, 2, 2]);
  });

  it("a closed page's presence disappears within the failure-detection time", async () => {
    const r = await scenario<{
      before: string[];
      after: string[];
      goneMs: number;
      users: string[];
    }>('presence-close');
    expect(r.before).toEqual(['amy', 'bob']);
    expect(r.after).toEqual(['amy']);
    expect(r.users).toEqual(['amy']);
    expect(r.goneMs).toBeLessThan(HEARTBEAT_TIMEOUT * 2 + 5000);
  });

  it('an update from a read-only participant is refused with an event', async () => {
    const r = await scenario<{
      role: string;
      refused: string[];
      relayLines: string[];
      actor: string;
      writer: string;
    }>('read-only');
    expect(r.role).toBe('read');
    expect(r.refused[0]).toBe('read-only participant');
    expect(r.relayLines.length).toBeGreaterThan(0);
    expect(r.relayLines[0]).toMatch(/^refused ro-\S+ reader-1 read-only participant$/);
    expect(r.actor).toBe('written by the writer');
    expect(r.writer).toBe('written by the writer');
  });

  it('a page set offline edits, comes back, and both sides merge', async () => {
    const r = await scenario<{ statusAfter: string; bWhileOff: string; final: string }>('offline');
    expect(r.statusAfter).toBe('offline');
    expect(r.bWhileOff).toBe('online-bea start.');
    expect(r.final).toBe('online-bea start. offline-ana');
  });

  it('the relay holding the document is SIGKILLed and restarted: back from disk, pages rejoin, nothing lost', async () => {
    const r = await scenario<{
      beforeKill: string;
      loaded: string;
      during: string;
      final: string;
      rejoinMs: number;
      actorAfter: string;
    }>('relay-kill');
    console.log(`relay kill: rejoined ${r.rejoinMs} ms after the restart`);
    expect(r.beforeKill.length).toBeGreaterThan(20);
    expect(r.loaded).toBe(r.beforeKill); // from disk, before any page rejoined
    expect(r.during).toBe('offline');
    expect(r.final).toBe(`${r.beforeKill} typed-while-down`);
    expect(r.actorAfter).toBe(r.final);
  });
});
