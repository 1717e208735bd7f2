// What a browser scenario script runs on: a relay (WebSocket + PeerServer + TCP), a Node TCP node
// joined to it, a static server with the built fixture page, and Chromium. Runs inside the
// loopback-only network namespace (harness/netns.ts), so everything is on 127.0.0.1.
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createNode, type Node } from '../../../core/index.ts';
import { createTcpTransport } from '../../../adapters/tcp.ts';
import { startRelay, type RelayCredential } from '../../../server/relay.ts';
import { defineFixtureBehaviours } from '../fixtures/behaviours.ts';
import type { StartOptions } from '../fixtures/page.ts';
import { FIXTURE_TIMING } from '../fixtures/timing.ts';
import { launchChromium, recordPageErrors } from './browser.ts';
import type { ScenarioResult } from './netns.ts';

export const CLUSTER_SECRET = 'browser-tests-cluster-secret';

/** The page credential as the relay hands it out (`GET /troupe/credential`). */
export type Credential = RelayCredential;

export type Relay = Awaited<ReturnType<typeof startRelay>>;

/** Race `p` against a timer: no wait in a scenario is unbounded (peerjs can hang silently). */
export function timeout<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export const rnd = (): string => Math.random().toString(36).slice(2, 8);

/** Start a relay on 127.0.0.1 (ephemeral ports) for the browser tests. */
export async function startTestRelay(): Promise<Relay> {
  return startRelay({
    listen: '127.0.0.1:0',
    tcp: '127.0.0.1:0',
    secret: CLUSTER_SECRET,
    name: `relay-${rnd()}`,
    node: {
      heartbeatInterval: FIXTURE_TIMING.heartbeatInterval,
      heartbeatTimeout: FIXTURE_TIMING.heartbeatTimeout,
    },
  });
}

/** Fetch the page credential from the relay (as a page's script would). */
export async function fetchCredential(relay: Relay): Promise<Credential> {
  const res = await timeout(
    'GET /troupe/credential',
    fetch(new URL('/troupe/credential', relay.url)),
    10_000,
  );
  if (!res.ok) throw new Error(`GET /troupe/credential: HTTP ${res.status}`);
  return (await res.json()) as Credential;
}

/** The relay's WebSocket endpoint for pages. */
export function wsUrlOf(cred: Credential): string {
  if (typeof cred.ws !== 'string' || !/^wss?:\/\//.test(cred.ws))
    throw new Error(`the credential names no WebSocket endpoint: ${JSON.stringify(cred)}`);
  return cred.ws;
}

/** The relay's TCP address (for Node nodes joining the cluster). */
export function tcpAddressOf(relay: Relay): string {
  const addr = relay.node.addresses.find((a) => a.startsWith('tcp://'));
  if (!addr)
    throw new Error(
      `the relay announces no tcp:// address (it has ${relay.node.addresses.join(', ') || 'none'})`,
    );
  return addr;
}

/** A Node node on TCP, joined to the relay, knowing the fixture behaviours. */
export async function startTcpNode(relay: Relay): Promise<Node> {
  return joinTcpNode(tcpAddressOf(relay));
}

/** A Node node on TCP (fixture behaviours and timing) that joins `address` (redialed as seeds are). */
export async function joinTcpNode(address: string, joinTimeout = 20_000): Promise<Node> {
  const node = createNode({
    name: `tcp-${rnd()}`,
    secret: CLUSTER_SECRET,
    transports: [createTcpTransport({ listen: '127.0.0.1:0' })],
    heartbeatInterval: FIXTURE_TIMING.heartbeatInterval,
    heartbeatTimeout: FIXTURE_TIMING.heartbeatTimeout,
    callTimeout: FIXTURE_TIMING.callTimeout,
  });
  defineFixtureBehaviours(node);
  try {
    await node.listen();
    await timeout('the TCP node to join the relay', node.join(address), joinTimeout);
  } catch (err) {
    await node.shutdown();
    throw err;
  }
  return node;
}

/** A fixture page (`window.fx`, see fixtures/page.ts), in its own browser context. */
export class FxPage {
  constructor(
    readonly context: BrowserContext,
    readonly page: Page,
    readonly tag: string,
  ) {}

  /** Call `window.fx[method](...args)` in the page, bounded by `ms`. */
  call<T = any>(method: string, args: unknown[] = [], ms = 60_000): Promise<T> {
    return this.hook<T>('fx', method, args, ms);
  }

  /** Call `window[hook][method](...args)` in the page (a test hook such as the demo's `troupeDemo`), bounded by `ms`. */
  hook<T = any>(hook: string, method: string, args: unknown[] = [], ms = 60_000): Promise<T> {
    return timeout(
      `${this.tag}: ${hook}.${method}`,
      this.page.evaluate(
        ([h, m, a]) => (window as any)[h as string][m as string](...(a as unknown[])),
        [hook, method, args] as const,
      ) as Promise<T>,
      ms,
    );
  }

  /** Poll `hook.method(...args)` until `done(value)` holds; resolves with that value. */
  async until<T = any>(
    hook: string,
    method: string,
    args: unknown[],
    done: (v: T) => boolean,
    what: string,
    ms: number,
  ): Promise<T> {
    const end = Date.now() + ms;
    let last: T | undefined;
    for (;;) {
      last = await this.hook<T>(hook, method, args, Math.max(1000, end - Date.now()));
      if (done(last)) return last;
      if (Date.now() > end)
        throw new Error(
          `${this.tag}: timed out after ${ms} ms waiting for ${what}; last ${hook}.${method}() = ${JSON.stringify(last)?.slice(0, 800)}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async close(): Promise<void> {
    await timeout(`${this.tag}: close`, this.context.close(), 20_000).catch(() => {});
  }
}

/** What every scenario gets: the browser and pages that are closed after it. */
export interface BrowserEnv {
  browser: Browser;
  /** Diagnostics gathered while the scenario runs (page errors, events). */
  diagnostics: string[];
  /** Open `url` in a fresh browser context (with the microphone permission WebRTC needs); closed after the scenario. */
  openPage(tag: string, url: string): Promise<FxPage>;
  /** Run `fn` when the scenario ends. */
  defer(fn: () => unknown): void;
}

/** A scenario script's setup: the servers it runs, and how to stop them. */
export interface Setup<C> {
  start(): Promise<{ ctx: C; close(): Promise<void>; describe: string }>;
  /** Bound on each scenario. @default 90000 */
  scenarioTimeout?: number;
}

/**
 * Start the setup and Chromium, run each named scenario with its own pages, print one `RESULT`
 * line per scenario, tear down. A scenario that fails reports the page errors and, for fixture
 * pages, their nodes' recent events.
 */
export async function runScenarios<C>(
  scenarios: Record<string, (env: BrowserEnv & C) => Promise<unknown>>,
  names: string[],
  setup: Setup<C>,
): Promise<void> {
  const print = (r: ScenarioResult) => console.log(`RESULT ${JSON.stringify(r)}`);
  for (const n of names.filter((x) => !scenarios[x]))
    print({
      scenario: n,
      ok: false,
      error: `no scenario "${n}" (known: ${Object.keys(scenarios).join(', ')})`,
    });
  const cleanups: (() => unknown)[] = [];
  let ctx: C;
  let browser: Browser;
  try {
    const started = await timeout('the servers to start', setup.start(), 120_000);
    cleanups.push(() => started.close());
    ctx = started.ctx;
    const chrome = await launchChromium();
    cleanups.push(() => chrome.close());
    browser = chrome.browser;
    console.log(`setup: ${started.describe}`);
  } catch (err) {
    for (const n of names)
      if (scenarios[n])
        print({ scenario: n, ok: false, error: `setup failed: ${(err as Error).stack ?? err}` });
    for (const fn of cleanups.reverse())
      await timeout('cleanup', Promise.resolve().then(fn), 20_000).catch(() => {});
    return;
  }
  for (const name of names) {
    const fn = scenarios[name];
    if (!fn) continue;
    const diagnostics: string[] = [];
    const deferred: (() => unknown)[] = [];
    const pages: FxPage[] = [];
    const env: BrowserEnv & C = {
      ...ctx,
      browser,
      diagnostics,
      defer: (f) => deferred.push(f),
      async openPage(tag, url) {
        const context = await browser.newContext({
          permissions: ['microphone'],
          viewport: { width: 1280, height: 860 },
        });
        const page = await context.newPage();
        recordPageErrors(page, diagnostics, tag);
        const fx = new FxPage(context, page, tag);
        pages.push(fx);
        await page.goto(url, { timeout: 30_000 });
        return fx;
      },
    };
    const t0 = Date.now();
    let result: ScenarioResult;
    try {
      const value = await timeout(`scenario ${name}`, fn(env), setup.scenarioTimeout ?? 90_000);
      result = { scenario: name, ok: true, value };
    } catch (err) {
      // Say what each fixture page's node saw: the usual way to tell a routing bug from a slow machine.
      for (const p of pages) {
        const events = await p.call<string[]>('events', [], 5000).catch(() => []);
        for (const e of events.slice(-40)) diagnostics.push(`[${p.tag}] ${e}`);
      }
      result = {
        scenario: name,
        ok: false,
        error: (err as Error).stack ?? String(err),
        diagnostics,
      };
    }
    for (const f of deferred.reverse())
      await timeout('deferred cleanup', Promise.resolve().then(f), 20_000).catch(() => {});
    await Promise.all(pages.map((p) => p.close()));
    console.log(`scenario ${name}: ${result.ok ? 'ok' : 'FAILED'} in ${Date.now() - t0} ms`);
    print(result);
  }
  for (const fn of cleanups.reverse())
    await timeout('cleanup', Promise.resolve().then(fn), 30_000).catch((e) =>
      console.log(`cleanup: ${e}`),
    );
}

/** What the routing scenarios run on: the test's relay, a TCP node, the fixture page. */
export interface RoutingCtx {
  relay: Relay;
  credential: Credential;
  wsUrl: string;
  tcp: Node;
  /** The fixture page's URL. */
  pageUrl: string;
  /** Open the fixture page and wait for `window.fx`. */
  openFixture(env: BrowserEnv, tag: string): Promise<FxPage>;
  /** The options that start a page's node with the relay's credential (and WebRTC when `webrtc`). */
  startOptions(name: string, webrtc: boolean): StartOptions;
}

/** Serve the built fixture page, start the test's relay and a TCP node joined to it. */
export function routingSetup(
  serveDir: () => Promise<{ url: string; close(): Promise<void> }>,
): Setup<RoutingCtx> {
  return {
    async start() {
      const cleanups: (() => unknown)[] = [];
      const close = async () => {
        for (const fn of cleanups.reverse())
          await timeout('cleanup', Promise.resolve().then(fn), 20_000).catch(() => {});
      };
      try {
        const stat = await serveDir();
        cleanups.push(() => stat.close());
        const relay = await timeout('the relay to start', startTestRelay(), 30_000);
        cleanups.push(() => relay.close());
        const credential = await fetchCredential(relay);
        const tcp = await startTcpNode(relay);
        cleanups.push(() => tcp.shutdown());
        const wsUrl = wsUrlOf(credential);
        const pageUrl = new URL('index.html', stat.url).toString();
        const ctx: RoutingCtx = {
          relay,
          credential,
          wsUrl,
          tcp,
          pageUrl,
          async openFixture(env, tag) {
            const p = await env.openPage(tag, pageUrl);
            await p.page.waitForFunction(() => !!(window as any).fx, undefined, {
              timeout: 30_000,
            });
            return p;
          },
          startOptions: (name, webrtc) => ({
            name,
            wsUrl,
            secret: credential.secret,
            ...(webrtc && { signal: signalOf(credential) }),
          }),
        };
        return {
          ctx,
          close,
          describe: `relay ${relay.node.id} at ${relay.url}, tcp node ${tcp.id}, pages at ${stat.url}`,
        };
      } catch (err) {
        await close();
        throw err;
      }
    },
  };
}

/** The PeerServer location in a credential. */
export function signalOf(cred: Credential): NonNullable<StartOptions['signal']> {
  const p = cred.peer;
  if (!p || typeof p.host !== 'string' || typeof p.port !== 'number')
    throw new Error(`the credential names no PeerServer: ${JSON.stringify(cred)}`);
  return {
    host: p.host,
    port: p.port,
    path: p.path ?? '/peerjs',
    key: p.key ?? 'peerjs',
    secure: p.secure ?? false,
  };
}
