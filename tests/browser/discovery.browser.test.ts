// BroadcastChannel transport + discovery in a real Chromium (playwright-core): two pages of one
// origin, each with a Web Worker, all on troupe/broadcast-channel (no relay, no WebRTC, so no
// network namespace is needed: the only socket is the static server on 127.0.0.1). They find and
// link each other; a call from the worker of page A reaches the worker of page B; closing page B
// gives DOWN `noconnection` in page A, for page B's actor and for its worker's. Then master/worker
// (patterns/master-worker.ts) in a page over Web Worker nodes spawned with `spawnWorkerNode`.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { ROOT, buildFixtures } from './harness/build.ts';
import { serveStatic } from './harness/static-server.ts';
import { launchChromium, recordPageErrors } from './harness/browser.ts';

const FIXTURES = path.join(ROOT, 'tests', 'browser', 'bc-fixtures');
const OUT = path.join(ROOT, 'test-results', 'bc-fixtures');

type Bcx = {
  start(name: string): Promise<{ page: string; worker: string }>;
  waitPeers(ids: string[], ms: number): Promise<string[]>;
  waitName(name: string, ms: number): Promise<void>;
  workerCall(target: string, n: number): Promise<unknown>;
  watch(name: string): void;
  downs(): Record<string, string>;
};
declare const bcx: Bcx;

describe('BroadcastChannel and browser workers in Chromium', () => {
  const cleanup: (() => unknown)[] = [];
  let url = '';
  let chromium: Awaited<ReturnType<typeof launchChromium>>;
  const errors: string[] = [];

  beforeAll(async () => {
    await buildFixtures(OUT, { root: FIXTURES, pages: ['index.html', 'master.html'] });
    const server = await serveStatic(OUT);
    cleanup.push(() => server.close());
    url = server.url;
    chromium = await launchChromium();
    cleanup.push(() => chromium.close());
  }, 120_000);

  afterAll(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it('two pages and their workers find and link each other; worker → worker calls cross; closing a page gives DOWN noconnection', async () => {
    // One context: BroadcastChannel reaches the pages and workers of one origin in one profile.
    const context = await chromium.newContext();
    const open = async (tag: string): Promise<Page> => {
      const page = await context.newPage();
      recordPageErrors(page, errors, tag);
      await page.goto(url);
      await page.waitForFunction(
        () => typeof (globalThis as { bcx?: unknown }).bcx === 'object',
        undefined,
        { timeout: 15_000 },
      );
      return page;
    };
    const [pageA, pageB] = await Promise.all([open('A'), open('B')]);
    const rnd = Math.random().toString(36).slice(2, 8);
    const a = await pageA.evaluate((n) => bcx.start(n), `pa-${rnd}`);
    const b = await pageB.evaluate((n) => bcx.start(n), `pb-${rnd}`);

    // Every node links to the three others, through discovery alone.
    const all = [a.page, a.worker, b.page, b.worker];
    const others = (me: string) => all.filter((x) => x !== me).sort();
    expect(
      await pageA.evaluate(([ids]) => bcx.waitPeers(ids, 20_000), [others(a.page)] as const),
    ).toEqual(others(a.page));
    expect(
      await pageB.evaluate(([ids]) => bcx.waitPeers(ids, 20_000), [others(b.page)] as const),
    ).toEqual(others(b.page));

    // The worker of page A calls the worker of page B (over their own BroadcastChannel link).
    await pageA.evaluate((n) => bcx.waitName(n, 10_000), `echo-${b.worker}`);
    const answer = await pageA.evaluate(([t]) => bcx.workerCall(t, 7), [
      `echo-${b.worker}`,
    ] as const);
    expect(answer).toEqual({ ok: true, value: { n: 7, by: b.worker } });

    // Close page B (its worker dies with it): page A sees both of B's actors go down, `noconnection`.
    await pageA.evaluate(
      ([p, w]) => {
        bcx.watch(p);
        bcx.watch(w);
      },
      [`echo-${b.page}`, `echo-${b.worker}`] as const,
    );
    await pageB.close();
    await pageA.waitForFunction(
      ([p, w]) => bcx.downs()[p] !== undefined && bcx.downs()[w] !== undefined,
      [`echo-${b.page}`, `echo-${b.worker}`] as const,
      { timeout: 20_000 },
    );
    expect(await pageA.evaluate(() => bcx.downs())).toEqual({
      [`echo-${b.page}`]: 'noconnection',
      [`echo-${b.worker}`]: 'noconnection',
    });
    expect(await pageA.evaluate(() => bcx.waitPeers([], 1000))).toEqual([a.worker]);
    expect(errors).toEqual([]);
    await context.close();
  }, 90_000);

  it('a master in a page finds two Web Worker workers, runs a job on each, gets their logs, terminates them', async () => {
    const context = await chromium.newContext();
    const page = await context.newPage();
    recordPageErrors(page, errors, 'master');
    await page.goto(new URL('master.html', url).href);
    await page.waitForFunction(
      () => typeof (globalThis as { mwx?: unknown }).mwx === 'object',
      undefined,
      { timeout: 15_000 },
    );
    const r = await page.evaluate(() =>
      (globalThis as unknown as { mwx: { run(count: number, n: number): Promise<any> } }).mwx.run(
        2,
        20,
      ),
    );
    expect(r.ids).toHaveLength(2);
    expect(r.found.map((w: { id: string }) => w.id).sort()).toEqual(r.ids);
    for (const w of r.found)
      expect(w).toMatchObject({ host: 'web-worker', functions: ['fib', 'say'] });
    expect(r.fibs.map((f: { by: string }) => f.by).sort()).toEqual(r.ids);
    expect(r.fibs.map((f: { value: number }) => f.value)).toEqual([6765, 6765]);
    expect(r.logs).toEqual(r.ids.map((id: string) => `${id}|out|${id} says: hello from ${id}`));
    expect(r.left).toBe(0);
    expect(r.peersAfter).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  }, 90_000);
});
