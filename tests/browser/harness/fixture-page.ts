// One built fixture app (tests/browser/<name>-fixtures) served on 127.0.0.1 and open in one
// Chromium page, for a whole describe block: built and opened in beforeAll, closed in afterAll.
// The page is ready once the fixture has set its test handle `globalThis[handle]`.
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { BrowserContext, Page } from 'playwright-core';
import { ROOT, buildFixtures } from './build.ts';
import { serveStatic } from './static-server.ts';
import { launchChromium, recordPageErrors } from './browser.ts';

/** What {@link useFixturePage} gives the tests (valid inside tests, after beforeAll). */
export interface FixturePage {
  readonly page: Page;
  readonly context: BrowserContext;
  /** The page's console errors and uncaught exceptions so far. */
  readonly errors: string[];
}

/**
 * Build `tests/browser/<name>-fixtures`, serve it, open it in Chromium and wait for the global
 * `handle` the fixture page defines.
 */
export function useFixturePage(name: string, handle: string): FixturePage {
  const cleanup: (() => unknown)[] = [];
  const errors: string[] = [];
  let page: Page | undefined;
  let context: BrowserContext | undefined;
  beforeAll(async () => {
    const out = path.join(ROOT, 'test-results', `${name}-fixtures`);
    await buildFixtures(out, { root: path.join(ROOT, 'tests', 'browser', `${name}-fixtures`) });
    const server = await serveStatic(out);
    cleanup.push(() => server.close());
    const chromium = await launchChromium();
    cleanup.push(() => chromium.close());
    context = await chromium.newContext();
    page = await context.newPage();
    recordPageErrors(page, errors, name);
    await page.goto(server.url);
    await page.waitForFunction(
      (h) => typeof (globalThis as Record<string, unknown>)[h] === 'object',
      handle,
      { timeout: 15_000 },
    );
  }, 120_000);
  afterAll(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });
  const ready = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error(`the ${name} fixture page is not open (beforeAll failed)`);
    return v;
  };
  return {
    get page() {
      return ready(page);
    },
    get context() {
      return ready(context);
    },
    errors,
  };
}
