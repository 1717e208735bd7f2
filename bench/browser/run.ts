// The browser bench, run by bench/browser.ts inside a loopback-only network namespace:
// `node --import tsx bench/browser/run.ts bench`. Serves the bench page cross-origin isolated (for
// 5 µs timers), starts the relay with an echo actor and a raw WebSocket echo server beside it, opens
// two pages in Chromium and measures worker, WebSocket and WebRTC channels raw and through troupe.
// Prints one `RESULT {json}` line.
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { WebSocketServer } from 'ws';
import { ROOT } from '../../tests/browser/harness/build.ts';
import {
  fetchCredential,
  runScenarios,
  signalOf,
  startTestRelay,
  timeout,
  wsUrlOf,
  type BrowserEnv,
  type Credential,
  type FxPage,
  type Relay,
} from '../../tests/browser/harness/env.ts';
import { CROSS_ORIGIN_ISOLATION, serveStatic } from '../../tests/browser/harness/static-server.ts';
import { rawAnswer, startEcho, type RawMsg } from './echo.ts';
import type { MeasureOptions } from './page.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Round trips per round, rounds, one-way messages per round, one-way messages per task. */
export const SIZES: MeasureOptions = { rttN: 2000, reps: 5, onewayN: 20_000, chunk: 1000 };

interface Ctx {
  relay: Relay;
  credential: Credential;
  pageUrl: string;
  rawWsUrl: string;
}

async function buildPage(): Promise<string> {
  const outDir = path.join(ROOT, 'test-results', 'bench-browser');
  await build({
    configFile: false,
    root: here,
    base: './',
    logLevel: 'warn',
    clearScreen: false,
    build: {
      outDir,
      emptyOutDir: true,
      target: 'es2022',
      minify: true,
      reportCompressedSize: false,
      rollupOptions: { input: path.join(here, 'index.html'), checks: { pluginTimings: false } },
    },
    worker: { format: 'es' },
  });
  return outDir;
}

/** A raw WebSocket echo server on 127.0.0.1 speaking the bench's raw protocol. */
async function rawEchoServer(): Promise<{ url: string; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  wss.on('connection', (ws) => {
    const state = { count: 0 };
    ws.on('message', (data) => {
      const out = rawAnswer(state, JSON.parse(String(data)) as RawMsg);
      if (out !== undefined) ws.send(JSON.stringify(out));
    });
  });
  const { port } = wss.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

async function openBenchPage(env: BrowserEnv & Ctx, tag: string): Promise<FxPage> {
  const p = await env.openPage(tag, env.pageUrl);
  await p.page.waitForFunction(() => !!(window as any).bench, undefined, { timeout: 30_000 });
  return p;
}

await runScenarios<Ctx>(
  {
    async bench(env) {
      const [a, b] = await Promise.all([
        openBenchPage(env, 'bench-a'),
        openBenchPage(env, 'bench-b'),
      ]);
      const isolated = await a.hook<boolean>('bench', 'crossOriginIsolated');
      const common = {
        wsUrl: wsUrlOf(env.credential),
        secret: env.credential.secret,
        signal: signalOf(env.credential),
        rawWsUrl: env.rawWsUrl,
      };
      await Promise.all([
        a.hook('bench', 'setup', [{ ...common, name: 'bench-a', rawPeerId: 'raw-bench-a' }]),
        b.hook('bench', 'setup', [{ ...common, name: 'bench-b', rawPeerId: 'raw-bench-b' }]),
      ]);
      const figures: Record<string, unknown> = {};
      const opens: [string, Record<string, string>][] = [
        ['worker', {}],
        ['websocket', { rawWsUrl: env.rawWsUrl, relayEcho: 'echo-relay' }],
        ['webrtc', { otherName: 'bench-b', otherRawPeerId: 'raw-bench-b' }],
      ];
      for (const [what, o] of opens) {
        await a.hook('bench', 'open', [what, o], 60_000);
        figures[what] = await a.hook('bench', 'measure', [what, SIZES], 180_000);
      }
      return { isolated, sizes: SIZES, figures, links: await a.hook('bench', 'linkStats') };
    },
  },
  process.argv.slice(2),
  {
    async start() {
      const cleanups: (() => unknown)[] = [];
      const close = async () => {
        for (const fn of cleanups.reverse())
          await timeout('cleanup', Promise.resolve().then(fn), 20_000).catch(() => {});
      };
      try {
        const stat = await serveStatic(await buildPage(), CROSS_ORIGIN_ISOLATION);
        cleanups.push(() => stat.close());
        const relay = await startTestRelay();
        cleanups.push(() => relay.close());
        startEcho(relay.node, 'echo-relay');
        const raw = await rawEchoServer();
        cleanups.push(() => raw.close());
        const credential = await fetchCredential(relay);
        const ctx: Ctx = {
          relay,
          credential,
          pageUrl: new URL('index.html', stat.url).toString(),
          rawWsUrl: raw.url,
        };
        return {
          ctx,
          close,
          describe: `bench page at ${stat.url}, relay ${relay.url}, raw echo ${raw.url}`,
        };
      } catch (err) {
        await close();
        throw err;
      }
    },
    scenarioTimeout: 600_000,
  },
);
process.exit(0);
