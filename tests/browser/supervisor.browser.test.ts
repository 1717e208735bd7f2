// A supervised Web Worker in a real Chromium (playwright-core): the page's supervisor starts its
// child in a Web Worker (workerChild, patterns/supervised-worker.ts). The app's own
// `worker.terminate()`, a throw in the child actor and an uncaught error in the worker are child
// exits: each time a new worker runs the child, under the same name, and the old one is closed.
// No WebRTC, so no network namespace: the only socket is the static server on 127.0.0.1.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { ROOT, buildFixtures } from './harness/build.ts';
import { serveStatic } from './harness/static-server.ts';
import { launchChromium, recordPageErrors } from './harness/browser.ts';
import type { Supx } from './sup-fixtures/page.ts';

const FIXTURES = path.join(ROOT, 'tests', 'browser', 'sup-fixtures');
const OUT = path.join(ROOT, 'test-results', 'sup-fixtures');

declare const supx: Supx;

describe('a supervised Web Worker in Chromium', () => {
  const cleanup: (() => unknown)[] = [];
  let page: Page;
  const errors: string[] = [];

  beforeAll(async () => {
    await buildFixtures(OUT, { root: FIXTURES });
    const server = await serveStatic(OUT);
    cleanup.push(() => server.close());
    const chromium = await launchChromium();
    cleanup.push(() => chromium.close());
    const context = await chromium.newContext();
    page = await context.newPage();
    recordPageErrors(page, errors, 'sup');
    await page.goto(server.url);
    await page.waitForFunction(
      () => typeof (globalThis as { supx?: unknown }).supx === 'object',
      undefined,
      { timeout: 15_000 },
    );
  }, 120_000);

  afterAll(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it('is restarted in a new worker after terminate(), after a throw in the actor and after an uncaught error in the worker', async () => {
    const r = await page.evaluate(() => supx.run());
    expect(r.first).toBe(`${r.firstNode}:ping`);
    expect(r.afterTerminate.lastExit).toBe('noconnection');
    expect(r.afterThrow.lastExit).toMatchObject({ type: 'error', message: 'thrown in the worker' });
    expect(r.afterCrash.lastExit).toBe('noconnection');
    const nodesSeen = [r.firstNode, r.afterTerminate.node, r.afterThrow.node, r.afterCrash.node];
    expect(new Set(nodesSeen).size).toBe(4);
    for (const s of [r.afterTerminate, r.afterThrow, r.afterCrash])
      expect(s.reply).toBe(`${s.node}:ping`);
    expect(r.workers).toBe(4);
    // Only the last worker is still linked: the others were closed.
    expect(r.peers).toEqual([r.afterCrash.node]);
    console.log(
      `supervised Web Worker restart (Chromium): terminate ${r.afterTerminate.ms.toFixed(0)} ms, throw ${r.afterThrow.ms.toFixed(0)} ms, uncaught ${r.afterCrash.ms.toFixed(0)} ms`,
    );
    expect(errors.filter((e) => !e.includes('uncaught in the worker'))).toEqual([]);
  }, 90_000);
});
