// The distributor's status page (server/status-page.ts), read over HTTP on 127.0.0.1: the
// JSON snapshot, the HTML page, the server-sent-event stream, and a worker dying (SIGKILL).
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createDistributor, type Distributor, type DistributorStatus } from '../patterns/index.ts';
import { serveStatusPage, type StatusPage } from '../server/status-page.ts';
import { freshGroup, groupArgs, useDist, eventually, within } from './dist-fixtures.ts';

const SECRET = 'status-page-secret';

async function json(url: string): Promise<DistributorStatus> {
  const res = await fetch(new URL('status.json', url));
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/json');
  return (await res.json()) as DistributorStatus;
}

/** The page's event stream, read until an event satisfies `until`; resolves with every event read. */
function events(
  url: string,
  until: (s: DistributorStatus) => boolean,
): Promise<DistributorStatus[]> {
  return new Promise((resolve, reject) => {
    const got: DistributorStatus[] = [];
    const req = http.get(new URL('events', url), (res) => {
      if (res.headers['content-type'] !== 'text/event-stream')
        reject(new Error(`content-type ${res.headers['content-type']}`));
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (!data) continue;
          const status = JSON.parse(data.slice(6)) as DistributorStatus;
          got.push(status);
          if (until(status)) {
            req.destroy();
            resolve(got);
            return;
          }
        }
      });
    });
    req.on('error', reject);
  });
}

describe('status page', () => {
  const dist = useDist();
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it('shows the workers, their running jobs, the queue, throughput and failures, live', async () => {
    const g = freshGroup();
    const [w1] = await Promise.all(
      ['sp-1', 'sp-2'].map((n) =>
        dist.start(n, 'dist-worker.ts', [
          '--name',
          n,
          '--concurrency',
          '1',
          ...groupArgs(g, SECRET),
        ]),
      ),
    );
    const { node } = await dist.node('sp-dist', g, SECRET);
    const d: Distributor = createDistributor(node, { scanInterval: 200 });
    cleanup.push(() => d.stop());
    const page: StatusPage = await serveStatusPage(d);
    cleanup.push(() => page.close());
    expect(page.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    await d.waitForWorkers(2, 15_000);

    let s = await json(page.url);
    expect(s.workers.map((w) => [w.node, w.health, w.capacity]).sort()).toEqual([
      ['sp-1', 'up', 1],
      ['sp-2', 'up', 1],
    ]);
    expect(s.workers[0].functions).toContain('fib');

    // Three slow jobs on two single-slot workers: one each running, one queued.
    const jobs = [1, 2, 3].map((n) => d.run('slowSquare', { n, ms: 3000 }));
    s = await eventually(async () => {
      const x = await json(page.url);
      return x.workers.every((w) => w.running.length === 1) && x.queue.length === 1 && x;
    }, 'one job running on each worker and one queued');
    for (const w of s.workers) expect(w.running[0]).toMatchObject({ fn: 'slowSquare', attempt: 1 });
    expect(s.queue.byFunction).toEqual({ slowSquare: 1 });

    // SIGKILL sp-1 (while its job runs): the page shows it lost, and its job running again on sp-2 (or queued there).
    await w1.kill('SIGKILL');
    let seen: DistributorStatus | undefined;
    s = await eventually(async () => {
      const x = (seen = await json(page.url));
      return (
        x.workers.find((w) => w.node === 'sp-1')?.health === 'lost' &&
        x.throughput.retried === 1 &&
        x
      );
    }, 'sp-1 shown lost and its job retried').catch((err: Error) => {
      throw new Error(`${err.message}; last status: ${JSON.stringify(seen)}`);
    });
    expect(s.workers.find((w) => w.node === 'sp-1')!.running).toEqual([]);
    expect(s.recentFailures.map((f) => [f.fn, f.worker, f.code, f.retried])).toEqual([
      ['slowSquare', 'sp-1', 'NODE_DOWN', true],
    ]);

    // The page itself, and its event stream (snapshot on connect, then pushes).
    const html = await (await fetch(page.url)).text();
    expect(html).toContain('<title>troupe distributor</title>');
    expect(html).toContain("new EventSource('events')");
    const stream = events(page.url, (x) => x.throughput.completed === 3);

    // Everything completes on sp-2; the stream pushes the changes.
    expect(
      (await within(Promise.all(jobs), 'the three jobs', 20_000)).map(
        (r) => (r as { value: number }).value,
      ),
    ).toEqual([1, 4, 9]);
    const pushed = await within(stream, 'an event showing the three jobs done', 5000);
    expect(pushed[0].throughput.completed).toBeLessThan(3); // the snapshot sent on connect
    expect(pushed[0].workers).toHaveLength(2);
    const last = pushed[pushed.length - 1];
    expect(last.workers.find((w) => w.node === 'sp-2')!.completed).toBeGreaterThanOrEqual(2);
    expect(last.queue.length).toBe(0);
    // A job that throws shows among the recent failures too.
    await expect(d.run('broken', null)).rejects.toMatchObject({ code: 'JOB_FAILED' });
    expect(
      (await json(page.url)).recentFailures.map((f) => [f.fn, f.worker, f.code, f.retried]),
    ).toEqual([
      ['slowSquare', 'sp-1', 'NODE_DOWN', true],
      ['broken', 'sp-2', 'JOB_FAILED', false],
    ]);
  }, 60_000);
});
