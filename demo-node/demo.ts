// `npm run demo`: everything the browser demo needs, on 127.0.0.1, with no setup.
//   - a relay node (WebSocket for pages, PeerServer for WebRTC signalling, TCP for the cluster),
//     hosting the board's room actor;
//   - two Node TCP nodes joined to the relay's cluster (function servers with the Mandelbrot tile function, standard behaviours);
//   - the Vite dev server for demo-web/ (its `/troupe/*` requests are proxied to the relay).
// Ctrl-C stops it all; `r` + Enter restarts the relay (the pages and nodes relink on their own).
// Ports: relay 8787 and page 5173 by default, the next free ones if busy; override with
// TROUPE_DEMO_RELAY_PORT / TROUPE_DEMO_PORT, and the node count with TROUPE_DEMO_NODES.
import { fork, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Node } from '../core/index.ts';
import { startRelay, type Relay, type RelayOptions } from '../server/relay.ts';
import { installProbe } from '../demo-web/cluster-probe.ts';
import { ROOM_NAME, startRoom } from '../demo-web/board-room.ts';
import { serveDocuments } from '../collab/index.ts';
import { createFileStore } from '../collab/file-store.ts';

/**
 * The demo's cluster secret. A DEMO value, public in this file: anyone who can reach the ports can
 * join. Everything listens on 127.0.0.1 only. Never use it for anything real.
 */
export const DEMO_SECRET = 'troupe-demo-secret--public--not-for-production';

/** Options of {@link startDemo}. */
export interface DemoOptions {
  /** Preferred relay port (the next free one is used when taken). @default 8787 */
  relayPort?: number;
  /** Preferred page port (Vite picks the next free one when taken). @default 5173 */
  pagePort?: number;
  /** How many Node TCP nodes to start. @default 2 */
  nodes?: number;
  /** The cluster secret. @default {@link DEMO_SECRET} */
  secret?: string;
  /**
   * The browser secret pages prove (the relay hands it out in credentials; never the cluster
   * secret). Fixed for the demo's lifetime, so pages ride out {@link Demo.restartRelay}.
   * @default random per demo
   */
  browserSecret?: string;
  /** Serve this built app directory (`npm run demo:build`) with `vite preview` instead of the dev server. @default undefined */
  built?: boolean;
  /** Print progress lines. @default console.log */
  log?: (line: string) => void;
  /** Where the shared text's document actor keeps its documents. @default `<tmp>/troupe-demo-docs` */
  docsDir?: string;
}

/** A running demo. */
export interface Demo {
  /** The page to open. */
  pageUrl: string;
  /** The relay's HTTP base URL (`/troupe/credential`, `/troupe/peers`, WebSocket `/troupe`, PeerServer `/peerjs`). */
  relayUrl: string;
  /** The relay's node (a new one, with the same id, after {@link Demo.restartRelay}). */
  readonly relay: Node;
  /** Node ids of the TCP nodes. */
  nodes: string[];
  /**
   * Stop the relay and start it again in place: the same ports, node id, browser secret and
   * PeerServer key, with a new board room and probe. Its links drop (monitors across it fire
   * `noconnection`); the pages (which join it with a fresh credential per dial) and the TCP nodes
   * relink on their own.
   */
  restartRelay(): Promise<void>;
  close(): Promise<void>;
}

const root = fileURLToPath(new URL('..', import.meta.url));

/** The first port from `preferred` on that is free on 127.0.0.1 (any free one after 20 tries). */
export async function freePort(preferred: number): Promise<number> {
  const tryPort = (port: number) =>
    new Promise<number | undefined>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(undefined));
      srv.listen(port, '127.0.0.1', () => {
        const got = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(got));
      });
    });
  for (let p = preferred; p < preferred + 20; p++) {
    const got = await tryPort(p);
    if (got !== undefined) return got;
  }
  return (await tryPort(0))!;
}

/** Start the relay, the TCP nodes and the page server. */
export async function startDemo(options: DemoOptions = {}): Promise<Demo> {
  const log = options.log ?? ((line: string) => console.log(line));
  const secret = options.secret ?? DEMO_SECRET;
  const cleanups: (() => Promise<void> | void)[] = [];
  const close = async (): Promise<void> => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        log(`while stopping: ${(err as Error).message}`);
      }
    }
  };
  try {
    // 1. The relay, with the board's room and a probe for the cluster view. What pages and nodes
    //    need to find it again after a restart stays fixed for the demo's lifetime: its ports,
    //    name, browser secret and PeerServer key.
    const relayPort = await freePort(options.relayPort ?? 8787);
    const relayOptions: RelayOptions = {
      listen: `127.0.0.1:${relayPort}`,
      tcp: '127.0.0.1:0',
      secret,
      name: 'relay',
      browserSecret: options.browserSecret ?? crypto.randomBytes(24).toString('base64url'),
      peerKey: crypto.randomBytes(9).toString('hex'),
    };
    const docsDir = options.docsDir ?? path.join(os.tmpdir(), 'troupe-demo-docs');
    const relayUp = async (): Promise<Relay> => {
      const r = await startRelay(relayOptions);
      installProbe(r.node, { kind: 'relay', label: 'relay' });
      if (!startRoom(r.node)) log(`a "${ROOM_NAME}" room already exists in the cluster`);
      // The board's shared text (troupe/yjs): its document actor, kept on disk across restarts.
      await serveDocuments(r.node, { store: createFileStore(docsDir) });
      return r;
    };
    let relay = await relayUp();
    let restarting: Promise<void> | undefined;
    cleanups.push(async () => {
      await restarting?.catch(() => {});
      await relay.close();
    });
    relayOptions.tcp =
      relay.node.addresses.find((a) => a.startsWith('tcp://'))?.slice('tcp://'.length) ??
      relayOptions.tcp;
    const restartRelay = (): Promise<void> =>
      (restarting ??= (async () => {
        try {
          await relay.close();
          relay = await relayUp();
        } finally {
          restarting = undefined;
        }
      })());

    // 2. Node TCP nodes joined to the relay's cluster.
    const tcp = relay.node.addresses.find((a) => a.startsWith('tcp://'));
    const ids: string[] = [];
    if (!tcp) log('the relay has no TCP address: no Node nodes started');
    else {
      const count = options.nodes ?? 2;
      const children = await Promise.all(
        Array.from({ length: count }, (_, i) =>
          startTcpNode(`node-${i + 1}`, tcp, secret, log, i === 0),
        ),
      );
      for (const c of children) {
        ids.push(c.id);
        cleanups.push(() => stopChild(c.child));
      }
    }

    // 3. The page: Vite's dev server (or preview of the build), proxying /troupe/* to the relay.
    const { createServer, preview } = await import('vite');
    const proxy = { '/troupe': { target: relay.url, changeOrigin: true } };
    const pagePort = options.pagePort ?? 5173;
    let pageUrl: string;
    if (options.built) {
      const server = await preview({
        configFile: `${root}vite.config.ts`,
        preview: { host: '127.0.0.1', port: pagePort, strictPort: false, proxy },
      });
      cleanups.push(() => server.close());
      pageUrl = server.resolvedUrls?.local[0] ?? `http://127.0.0.1:${pagePort}/`;
    } else {
      const server = await createServer({
        configFile: `${root}vite.config.ts`,
        server: { host: '127.0.0.1', port: pagePort, strictPort: false, proxy },
        clearScreen: false,
        logLevel: process.env.TROUPE_DEMO_VITE_LOG === 'info' ? 'info' : 'warn',
      });
      await server.listen();
      cleanups.push(() => server.close());
      pageUrl = server.resolvedUrls?.local[0] ?? `http://127.0.0.1:${pagePort}/`;
    }
    return {
      pageUrl,
      relayUrl: relay.url,
      get relay() {
        return relay.node;
      },
      nodes: ids,
      restartRelay,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Fork one TCP node and wait until it listens. */
function startTcpNode(
  name: string,
  seed: string,
  secret: string,
  log: (line: string) => void,
  bot = false,
): Promise<{ id: string; child: ChildProcess }> {
  const child = fork(
    fileURLToPath(new URL('./demo-tcp-node.ts', import.meta.url)),
    ['--name', name, '--seed', seed, ...(bot ? ['--bot'] : [])],
    {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, TROUPE_SECRET: secret },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    },
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within 20 s`));
    }, 20_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited during start (${signal ?? code})`));
    });
    child.on('message', (m: { type?: string; id?: string; addresses?: string[] }) => {
      if (m?.type !== 'listening' || !m.id) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.once('exit', (code, signal) => code !== 0 && log(`${m.id} exited (${signal ?? code})`));
      resolve({ id: m.id, child });
    });
  });
}

/** SIGTERM, then SIGKILL after 3 s. */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new Error(`${name} must be an integer 0..65535`);
  return n;
}

async function main(): Promise<void> {
  const stamp = () => new Date().toISOString().slice(11, 19);
  const log = (line: string) => console.log(`[${stamp()}] ${line}`);
  const built = process.argv.includes('--built');
  log('starting the troupe demo…');
  const demo = await startDemo({
    relayPort: envInt('TROUPE_DEMO_RELAY_PORT'),
    pagePort: envInt('TROUPE_DEMO_PORT'),
    nodes: envInt('TROUPE_DEMO_NODES'),
    built,
    log,
  });
  const line = '─'.repeat(64);
  console.log(`\n${line}
  troupe demo is running${built ? ' (built app)' : ''}

  Open:    ${demo.pageUrl}
           (open it in two tabs or two browsers: the board syncs peer to peer)
  Relay:   ${demo.relayUrl}   (WebSocket /troupe, PeerServer /peerjs, node "${demo.relay.id}")
  Nodes:   ${demo.nodes.join(', ') || 'none'} (Node processes on TCP, joined through the relay)
  Secret:  the built-in DEMO secret — public, loopback only, not for real use

  r + Enter restarts the relay (the pages and nodes relink on their own).
  Ctrl-C stops everything.
${line}\n`);
  let stopping = 0;
  const stop = (signal: string) => {
    if (stopping) {
      // npm and tsx forward the terminal's Ctrl-C, so one press arrives more than once: only a
      // second press, a moment later, means "now".
      if (Date.now() - stopping < 1500) return;
      log('stopping anyway');
      process.exit(1);
    }
    stopping = Date.now();
    log(`${signal}: stopping…`);
    demo.close().then(
      () => {
        log('stopped');
        process.exit(0);
      },
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  if (process.stdin.isTTY) {
    // Line mode (not raw): Ctrl-C still arrives as SIGINT.
    readline.createInterface({ input: process.stdin, terminal: false }).on('line', (line) => {
      if (line.trim().toLowerCase() !== 'r' || stopping) return;
      log('restarting the relay…');
      demo.restartRelay().then(
        () => log('relay restarted: the pages and nodes relink on their own'),
        (err: Error) => log(`the relay did not restart: ${err.message}`),
      );
    });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err) => {
    console.error(`demo: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
