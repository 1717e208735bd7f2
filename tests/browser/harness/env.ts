// What a browser scenario script runs on: a relay (WebSocket + PeerServer + TCP), a Node TCP node
// joined to it, a static server with the built fixture page, and Chromium. Runs inside the
// loopback-only network namespace (harness/netns.ts), so everything is on 127.0.0.1.
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createNode, type Node } from '../../../core/index.ts';
import { createTcpTransport } from '../../../adapters/tcp.ts';
import { startRelay } from '../../../scratch/relay-stub.ts'; // TODO(dev): ../../../demo-node/relay.ts
import { defineFixtureBehaviours } from '../fixtures/behaviours.ts';
import type { StartOptions } from '../fixtures/page.ts';
import { FIXTURE_TIMING } from '../fixtures/timing.ts';
import { launchChromium, recordPageErrors } from './browser.ts';
import type { ScenarioResult } from './netns.ts';

export const CLUSTER_SECRET = 'browser-tests-cluster-secret';

/** The page credential as the relay hands it out (`GET /troupe/credential`). */
export interface Credential {
  secret: string;
  /** The relay's WebSocket endpoint for pages. */
  ws: string;
  expiresAt?: number;
  peer: { host: string; port: number; path?: string; key?: string; secure?: boolean };
}

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
    heartbeatInterval: FIXTURE_TIMING.heartbeatInterval,
    heartbeatTimeout: FIXTURE_TIMING.heartbeatTimeout,
  } as Parameters<typeof startRelay>[0]);
}

/** Fetch the page credential from the relay (as a page's script would). */
export async function fetchCredential(relay: Relay): Promise<Credential> {
  const res = await timeout('GET /troupe/credential', fetch(new URL('/troupe/credential', relay.url)), 10_000);
  if (!res.ok) throw new Error(`GET /troupe/credential: HTTP ${res.status}`);
  return (await res.json()) as Credential;
}

/** The relay's WebSocket endpoint for pages. */
export function wsUrlOf(cred: Credential): string {
  if (typeof cred.ws !== 'string' || !/^wss?:\/\//.test(cred.ws)) throw new Error(`the credential names no WebSocket endpoint: ${JSON.stringify(cred)}`);
  return cred.ws;
}

/** The relay's TCP address (for Node nodes joining the cluster). */
export function tcpAddressOf(relay: Relay): string {
  const addr = relay.node.addresses.find((a) => a.startsWith('tcp://'));
  if (!addr) throw new Error(`the relay announces no tcp:// address (it has ${relay.node.addresses.join(', ') || 'none'})`);
  return addr;
}

/** A Node node on TCP, joined to the relay, knowing the fixture behaviours. */
export async function startTcpNode(relay: Relay): Promise<Node> {
  const node = createNode({
    name: `tcp-${rnd()}`,
    secret: CLUSTER_SECRET,
    transports: [createTcpTransport({ listen: '127.0.0.1:0' })],
    heartbeatInterval: FIXTURE_TIMING.heartbeatInterval,
    heartbeatTimeout: FIXTURE_TIMING.heartbeatTimeout,
    callTimeout: FIXTURE_TIMING.callTimeout,
  });
  defineFixtureBehaviours(node);
  await node.listen();
  await timeout('the TCP node to join the relay', node.join(tcpAddressOf(relay)), 15_000);
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
    return timeout(
      `${this.tag}: fx.${method}`,
      this.page.evaluate(([m, a]) => (window as any).fx[m as string](...(a as unknown[])), [method, args] as const) as Promise<T>,
      ms,
    );
  }

  async close(): Promise<void> {
    await timeout(`${this.tag}: close`, this.context.close(), 20_000).catch(() => {});
  }
}

/** Everything a scenario gets. */
export interface Env {
  relay: Relay;
  credential: Credential;
  wsUrl: string;
  tcp: Node;
  browser: Browser;
  /** The fixture page's URL. */
  pageUrl: string;
  /** Diagnostics gathered while the scenario runs (page errors, events). */
  diagnostics: string[];
  /** Open a fixture page in a fresh context (closed after the scenario). */
  openPage(tag: string): Promise<FxPage>;
  /** The options that start a page's node with the relay's credential (and WebRTC when `webrtc`). */
  startOptions(name: string, webrtc: boolean): StartOptions;
  /** Run `fn` when the scenario ends. */
  defer(fn: () => unknown): void;
}

/** Set up, run each named scenario with its own pages, print `RESULT` lines, tear down. */
export async function runScenarios(
  scenarios: Record<string, (env: Env) => Promise<unknown>>,
  names: string[],
  setup: { serveDir: () => Promise<{ url: string; close(): Promise<void> }>; pagePath?: string; scenarioTimeout?: number },
): Promise<void> {
  const print = (r: ScenarioResult) => console.log(`RESULT ${JSON.stringify(r)}`);
  const unknown = names.filter((n) => !scenarios[n]);
  for (const n of unknown) print({ scenario: n, ok: false, error: `no scenario "${n}" (known: ${Object.keys(scenarios).join(', ')})` });
  const cleanups: (() => unknown)[] = [];
  let base: Omit<Env, 'diagnostics' | 'openPage' | 'defer'>;
  try {
    const stat = await setup.serveDir();
    cleanups.push(() => stat.close());
    const relay = await timeout('the relay to start', startTestRelay(), 30_000);
    cleanups.push(() => relay.close());
    const credential = await fetchCredential(relay);
    const tcp = await startTcpNode(relay);
    cleanups.push(() => tcp.shutdown());
    const chrome = await launchChromium();
    cleanups.push(() => chrome.close());
    const wsUrl = wsUrlOf(credential);
    base = {
      relay,
      credential,
      wsUrl,
      tcp,
      browser: chrome.browser,
      pageUrl: new URL(setup.pagePath ?? 'index.html', stat.url).toString(),
      startOptions: (name, webrtc) => ({
        name,
        wsUrl,
        secret: credential.secret,
        ...(webrtc && { signal: signalOf(credential) }),
      }),
    };
    console.log(`setup: relay ${relay.node.id} at ${relay.url}, tcp node ${tcp.id}, pages at ${stat.url}`);
  } catch (err) {
    for (const n of names) if (scenarios[n]) print({ scenario: n, ok: false, error: `setup failed: ${(err as Error).stack ?? err}` });
    for (const fn of cleanups.reverse()) await Promise.resolve().then(fn).catch(() => {});
    return;
  }
  for (const name of names) {
    const fn = scenarios[name];
    if (!fn) continue;
    const diagnostics: string[] = [];
    const deferred: (() => unknown)[] = [];
    const pages: FxPage[] = [];
    const env: Env = {
      ...base,
      diagnostics,
      defer: (f) => deferred.push(f),
      async openPage(tag) {
        const context = await base.browser.newContext({ permissions: ['microphone'], viewport: { width: 1280, height: 860 } });
        const page = await context.newPage();
        recordPageErrors(page, diagnostics, tag);
        const fx = new FxPage(context, page, tag);
        pages.push(fx);
        await page.goto(base.pageUrl, { timeout: 30_000 });
        await page.waitForFunction(() => !!(window as any).fx, undefined, { timeout: 30_000 });
        return fx;
      },
    };
    const t0 = Date.now();
    let result: ScenarioResult;
    try {
      const value = await timeout(`scenario ${name}`, fn(env), setup.scenarioTimeout ?? 90_000);
      result = { scenario: name, ok: true, value };
    } catch (err) {
      // Say what each page's node saw: the usual way to tell a routing bug from a slow machine.
      for (const p of pages) {
        const events = await p.call<string[]>('events', [], 5000).catch(() => []);
        for (const e of events.slice(-40)) diagnostics.push(`[${p.tag}] ${e}`);
      }
      result = { scenario: name, ok: false, error: (err as Error).stack ?? String(err), diagnostics };
    }
    for (const f of deferred.reverse()) await Promise.resolve().then(f).catch(() => {});
    await Promise.all(pages.map((p) => p.close()));
    console.log(`scenario ${name}: ${result.ok ? 'ok' : 'FAILED'} in ${Date.now() - t0} ms`);
    print(result);
  }
  for (const fn of cleanups.reverse()) await timeout('cleanup', Promise.resolve().then(fn), 20_000).catch((e) => console.log(`cleanup: ${e}`));
}

/** The PeerServer location in a credential. */
export function signalOf(cred: Credential): NonNullable<StartOptions['signal']> {
  const p = cred.peer;
  if (!p || typeof p.host !== 'string' || typeof p.port !== 'number') throw new Error(`the credential names no PeerServer: ${JSON.stringify(cred)}`);
  return { host: p.host, port: p.port, path: p.path ?? '/peerjs', key: p.key ?? 'peerjs', secure: p.secure ?? false };
}
