// Chromium through playwright-core, with the flags that work headless as root on these machines
// (see /work/shared/TESTING.md) and what WebRTC on loopback needs: the flag
// `--allow-loopback-in-peer-connection` plus a granted microphone permission in every context.
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

// Playwright itself adds `--headless` and a fresh temporary profile (`--user-data-dir`).
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--allow-loopback-in-peer-connection',
  // Several pages run at once; none may have its timers throttled (heartbeats would stall).
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

/** A headless Chromium (`$CHROMIUM_PATH`, else Debian's `/usr/bin/chromium`). */
export async function launchChromium(): Promise<{
  browser: Browser;
  newContext(): Promise<BrowserContext>;
  close(): Promise<void>;
}> {
  const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS, timeout: 60_000 });
  return {
    browser,
    newContext: () =>
      browser.newContext({ permissions: ['microphone'], viewport: { width: 1280, height: 860 } }),
    async close() {
      await browser.close().catch(() => {});
    },
  };
}

/** Collect a page's console errors and uncaught exceptions (for failure messages). */
export function recordPageErrors(page: Page, into: string[], tag: string): void {
  page.on(
    'pageerror',
    (err) => into.length < 200 && into.push(`[${tag}] pageerror: ${err.message}`),
  );
  page.on('console', (msg) => {
    if (msg.type() === 'error' && into.length < 200)
      into.push(`[${tag}] console.error: ${msg.text()}`);
  });
}
