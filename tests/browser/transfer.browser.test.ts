// Issue 14 — transfer lists in a real Chromium: a 64 MB ArrayBuffer sent to a Web Worker node with
// `call(msg, { transfer: [buf] })` arrives intact (checksum over every byte) and the page's buffer
// is detached (moved, not copied); the worker moves a 16 MB buffer back in its reply. Runs
// Chromium directly (no WebRTC, no namespace): the only socket is the static server on 127.0.0.1.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { ROOT, buildFixtures } from './harness/build.ts';
import { serveStatic } from './harness/static-server.ts';
import { launchChromium, recordPageErrors } from './harness/browser.ts';
import type { Xfx } from './transfer-fixtures/page.ts';

const FIXTURES = path.join(ROOT, 'tests', 'browser', 'transfer-fixtures');
const OUT = path.join(ROOT, 'test-results', 'transfer-fixtures');

declare const xfx: Xfx;

describe('transfer lists to a Web Worker in Chromium', () => {
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
    recordPageErrors(page, errors, 'transfer');
    await page.goto(server.url);
    await page.waitForFunction(
      () => typeof (globalThis as { xfx?: unknown }).xfx === 'object',
      undefined,
      { timeout: 15_000 },
    );
  }, 120_000);

  afterAll(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  it("a 64 MB buffer moved to the worker arrives intact; the page's buffer is detached", async () => {
    const r = await page.evaluate(() => xfx.big(64));
    expect(r.seen).toEqual({ bytes: r.bytes, sum: r.expected, isArrayBuffer: true });
    expect(r.detached).toBe(true);
    console.log(
      `[flow/transfer chromium] 64 MB call with transfer list: ${r.ms.toFixed(1)} ms round trip (checksum in the worker included)`,
    );
    expect(errors).toEqual([]);
  }, 60_000);

  it('the worker moves a 16 MB buffer back in its reply', async () => {
    expect(await page.evaluate(() => xfx.back(16))).toEqual({ bytes: 16 * 1024 * 1024, ok: true });
    expect(errors).toEqual([]);
  }, 60_000);
});
