/**
 * Browser figures, measured in Chromium driven by Playwright: each channel raw and through troupe
 * in the same page, interleaved (bench/browser/page.ts). Runs bench/browser/run.ts inside a
 * loopback-only network namespace (WebRTC must not reach real interfaces); needs root and unshare,
 * and Chromium ($CHROMIUM_PATH or /usr/bin/chromium).
 */
import { median, type BenchCase, type Result } from './harness.ts';
import { runInNetns } from '../tests/browser/harness/netns.ts';
import type { Figures } from './browser/page.ts';

const browser: BenchCase = {
  name: 'browser',
  async run(): Promise<Result[]> {
    const run = runInNetns('bench/browser/run.ts', ['bench'], 600_000);
    let r;
    try {
      r = await run.result<{
        isolated: boolean;
        sizes: { rttN: number; reps: number; onewayN: number; chunk: number };
        figures: Record<string, { raw: Figures; troupe: Figures }>;
      }>('bench');
    } finally {
      await run.stop();
    }
    if (!r.ok || !r.value) throw new Error(`${r.error}\n${(r.diagnostics ?? []).join('\n')}`);
    const { figures, sizes, isolated } = r.value;
    const raw = {
      worker: 'raw postMessage (structured clone)',
      websocket: 'raw WebSocket, JSON text',
      webrtc: 'raw peerjs DataConnection, JSON text',
    } as const;
    const rawName = {
      worker: 'raw postMessage',
      websocket: 'raw WebSocket',
      webrtc: 'raw peerjs',
    } as const;
    const note =
      `browser.*: Chromium, one page; ${sizes.reps} interleaved rounds of ${sizes.rttN} sequential round trips (p50 per round, median of rounds) and ` +
      `${sizes.onewayN} one-way messages, ${sizes.chunk} per task, until the far end counted them. troupe: call/send to a behaviour with a zod schema in a worker node, ` +
      `on the relay (WebSocket) or in a second page (direct WebRTC link). One-way baseline: the task's ${sizes.chunk} msgs as one JSON message (oneway_per_msg: one post per message). Raw sides do not validate.${isolated ? '' : ' The page was NOT cross-origin isolated: timers are 100 µs coarse.'}`;
    const out: Result[] = [];
    for (const what of ['worker', 'websocket', 'webrtc'] as const) {
      const f = figures[what];
      out.push({
        key: `browser.${what}.rtt_us`,
        unit: 'µs',
        value: median(f.troupe.p50),
        baseline: median(f.raw.p50),
        baselineLabel: raw[what],
        target: { kind: 'max-ratio', ratio: 1.5 },
        ...(what === 'worker' && { note }),
      });
      out.push({
        key: `browser.${what}.rtt_p99_us`,
        unit: 'µs',
        value: median(f.troupe.p99),
        baseline: median(f.raw.p99),
        baselineLabel: raw[what],
      });
      out.push({
        key: `browser.${what}.oneway`,
        unit: 'msgs/s',
        value: median(f.troupe.oneway),
        baseline: median(f.raw.onewayBatched),
        baselineLabel: `${rawName[what]}, ${sizes.chunk} msgs/post as JSON`,
        ...(what === 'worker' && { target: { kind: 'min-ratio' as const, ratio: 0.5 } }),
      });
      out.push({
        key: `browser.${what}.oneway_per_msg`,
        unit: 'msgs/s',
        value: median(f.troupe.oneway),
        baseline: median(f.raw.oneway),
        baselineLabel: `${rawName[what]}, 1 msg/post`,
      });
    }
    return out;
  },
};

export const cases: BenchCase[] = [browser];
