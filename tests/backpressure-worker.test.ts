// Issue 6 — flow control on a worker link. A MessagePort has no write buffer to watch
// (`postMessage` never pushes back), so the link's window does the work: the worker's node acks
// what it has taken in, and the sender holds envelopes once `highWaterMark` characters are
// unacknowledged. A producer of 1M messages against a worker whose consumer keeps its thread
// busy (~1k messages/s) holds bounded memory on the sending side, and every message is
// delivered in order or dead-lettered (`overflow` at the sender, `mailbox-full` in the worker).
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { createNode, type Node, type TroupeError } from '../core/index.ts';
import { spawnWorkerNode } from '../adapters/worker.ts';
import { MemoryProbe, mb } from './helpers/memory-probe.ts';

const N = 1_000_000;
const PAD = 'p'.repeat(180);
const bootstrap = new URL('./fixtures/tsx-worker.mjs', import.meta.url);
const entry = new URL('./fixtures/busy-consumer-worker.ts', import.meta.url).href;

const nodes: Node[] = [];
const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.shutdown()));
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
});

interface Stats {
  delivered: number;
  notIncreasing: number;
  mailboxFull: number;
  heapUsed: number;
}

describe('flow control over a worker link', () => {
  it('a busy worker consumer: the sender is held back by the ack window, memory stays bounded, every message is accounted for, in order', async () => {
    const flow = { highWaterMark: 1024 * 1024, maxLinkQueue: 4 * 1024 * 1024 };
    const main = createNode({ name: 'bw-main', ...flow });
    nodes.push(main);
    const worker = new Worker(bootstrap, {
      workerData: { entry, name: 'bw-worker', maxMailbox: 1000, spinMs: 1 },
    });
    workers.push(worker);
    await spawnWorkerNode(main, worker);
    const deadMain: Record<string, number> = {};
    main.events.on('deadLetter', (e) => {
      deadMain[e.reason] = (deadMain[e.reason] ?? 0) + 1;
    });
    const downs: string[] = [];
    main.events.on('linkDown', (e) => downs.push(e.reason));
    const until = async (cond: () => boolean, what: string) => {
      const end = Date.now() + 20_000;
      while (!cond()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await until(
      () => main.whereis('consumer') !== undefined && main.whereis('stats') !== undefined,
      'the worker to register its actors',
    );
    const consumer = main.whereis('consumer')!;
    // While the link is congested a call is refused at once (MAILBOX_FULL): ask again shortly.
    const stats = async (): Promise<Stats> => {
      for (;;) {
        try {
          return await main.call<Stats>('stats', null, { timeout: 20_000 });
        } catch (err) {
          if ((err as TroupeError).code !== 'MAILBOX_FULL') throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };

    const probe = new MemoryProbe(1000);
    let peakBacklog = 0;
    let peakQueued = 0;
    for (let seq = 0; seq < N; ) {
      const end = Math.min(N, seq + 1000);
      for (; seq < end; seq++) consumer.send({ seq, pad: PAD });
      const s = main.linkStats()[0];
      if (!s)
        throw new Error(
          `no link at seq ${seq}: ${JSON.stringify({ downs, peers: main.peers(), deadMain })}`,
        );
      peakBacklog = Math.max(peakBacklog, s.backlog);
      peakQueued = Math.max(peakQueued, s.queued);
      await new Promise((r) => setImmediate(r));
    }
    probe.sample();

    let last: Stats = await stats();
    const deadline = Date.now() + 40_000;
    while (last.delivered + last.mailboxFull + (deadMain.overflow ?? 0) < N) {
      if (Date.now() > deadline)
        throw new Error(
          `not everything accounted for: ${JSON.stringify({ last, deadMain, link: main.linkStats()[0] })}`,
        );
      await new Promise((r) => setTimeout(r, 200));
      last = await stats();
    }
    probe.stop();

    expect(last.delivered + last.mailboxFull + (deadMain.overflow ?? 0)).toBe(N);
    expect(last.notIncreasing).toBe(0);
    expect(Object.keys(deadMain)).toEqual(['overflow']);
    expect(downs).toEqual([]);
    // The window held the sender back: what was in flight never went far past highWaterMark
    // (one batch of up to 64 Ki chars may be written just under it), and the queue stayed bounded.
    // Sends are bulk: written while the backlog is at most an eighth of highWaterMark.
    expect(peakBacklog).toBeGreaterThan(flow.highWaterMark / 8);
    expect(peakBacklog).toBeLessThanOrEqual(flow.highWaterMark + 64 * 1024 + 4096);
    // (heartbeats and other control envelopes are never refused: a few chars of slack)
    expect(peakQueued).toBeLessThanOrEqual(flow.maxLinkQueue + 1024);
    // Sending side: queue (4 Mi chars) + what was posted and not yet read; 1M messages held would be ≥ 200 MB.
    const bound = 64e6;
    expect(
      probe.peakGrowth,
      `peak retained growth ${mb(probe.peakGrowth)} (bound ${mb(bound)})`,
    ).toBeLessThan(bound);
    console.log(
      `[flow/worker] sent ${N}: delivered ${last.delivered}, overflow at sender ${deadMain.overflow ?? 0}, mailbox-full in the worker ${last.mailboxFull}; ` +
        `peak backlog ${peakBacklog} chars, peak queued ${peakQueued} chars; peak retained growth ${mb(probe.peakGrowth)} (bound ${mb(bound)}); worker heap ${mb(last.heapUsed)}`,
    );
  }, 90_000);
});
