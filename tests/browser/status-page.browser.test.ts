// The distributor's status page in a real Chromium (playwright-core, Debian's chromium): it shows
// the workers and the jobs each is running, and updates live when a worker dies (SIGKILL).
// Everything is on 127.0.0.1: the page's HTTP server, the TCP links, the multicast discovery.
import { afterEach, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { createDistributor, type Distributor } from '../../patterns/index.ts';
import { serveStatusPage, type StatusPage } from '../../server/status-page.ts';
import { freshGroup, groupArgs, useDist, within } from '../dist-fixtures.ts';

const SECRET = 'status-page-browser-secret';
// The flags from /work/shared/TESTING.md (Playwright adds --headless and a fresh profile).
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe('status page in Chromium', () => {
  const dist = useDist();
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it('shows the workers and their running jobs, and updates when a worker dies', async () => {
    const g = freshGroup();
    const [w1] = await Promise.all(
      ['spb-1', 'spb-2'].map((n) =>
        dist.start(n, 'dist-worker.ts', [
          '--name',
          n,
          '--concurrency',
          '1',
          ...groupArgs(g, SECRET),
        ]),
      ),
    );
    const { node } = await dist.node('spb-dist', g, SECRET);
    const d: Distributor = createDistributor(node, { scanInterval: 200 });
    cleanup.push(() => d.stop());
    const status: StatusPage = await serveStatusPage(d);
    cleanup.push(() => status.close());
    await d.waitForWorkers(2, 15_000);

    const browser: Browser = await chromium.launch({
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: ARGS,
      timeout: 60_000,
    });
    cleanup.push(() => browser.close().catch(() => {}));
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(status.url);
    await page.locator('#conn', { hasText: 'live' }).waitFor({ timeout: 10_000 });

    const row = (id: string) => page.locator(`#workers tr[data-worker="${id}"]`);
    await row('spb-1').waitFor({ timeout: 10_000 });
    await row('spb-2').waitFor({ timeout: 10_000 });
    expect(await row('spb-1').locator('.health').textContent()).toBe('up');
    expect(await row('spb-1').locator('.running').textContent()).toBe('idle');

    // Three slow jobs on two single-slot workers: the page shows one running on each, one queued.
    const jobs = [2, 3, 4].map((n) => d.run('slowSquare', { n, ms: 3000 }));
    await row('spb-1')
      .locator('.running .job', { hasText: 'slowSquare' })
      .waitFor({ timeout: 10_000 });
    await row('spb-2')
      .locator('.running .job', { hasText: 'slowSquare' })
      .waitFor({ timeout: 10_000 });
    await page.locator('#queue', { hasText: '1' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#queue-by-fn').textContent()).toBe('slowSquare: 1');
    expect(await page.locator('#workers-up').textContent()).toBe('2');

    // SIGKILL spb-1 while it runs its job: the page shows it lost, idle, and the retry.
    await w1.kill('SIGKILL');
    await page
      .locator('#workers tr[data-worker="spb-1"][data-health="lost"]')
      .waitFor({ timeout: 10_000 });
    expect(await row('spb-1').locator('.health').textContent()).toMatch(/^lost/);
    expect(await row('spb-1').locator('.running').textContent()).toBe('idle');
    await page.locator('#workers-up', { hasText: '1' }).waitFor({ timeout: 10_000 });
    await page.locator('#failures li', { hasText: 'retried' }).waitFor({ timeout: 10_000 });
    expect(await page.locator('#retried').textContent()).toBe('1');

    // The jobs finish on spb-2; the page counts them live.
    expect(await within(Promise.all(jobs), 'the jobs', 20_000)).toEqual(
      [4, 9, 16].map((value) => ({ value, by: 'spb-2' })),
    );
    await page.locator('#completed', { hasText: '3' }).waitFor({ timeout: 10_000 });
    expect(await row('spb-2').locator('.running').textContent()).toBe('idle');
    expect(errors).toEqual([]);
  }, 90_000);
});
