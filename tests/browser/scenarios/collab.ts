// troupe/yjs in Chromium, run inside a loopback-only network namespace by
// tests/browser/collab.browser.test.ts: `node --import tsx collab.ts <scenario>…`. The relay holding
// the documents (collab-fixtures/doc-relay.ts: relay + document actor + file store) is its own
// process, so it can be SIGKILLed and restarted on the same ports and folder. Pages link to it over
// WebSocket and to each other over WebRTC (its PeerServer). A Node TCP node joined to the relay asks
// the document actor for its text (`collab-probe`). Each scenario prints one `RESULT {json}` line.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Node } from '../../../core/index.ts';
import { buildFixtures, ROOT } from '../harness/build.ts';
import {
  joinTcpNode,
  runScenarios,
  rnd,
  signalOf,
  timeout,
  type BrowserEnv,
  type Credential,
  type FxPage,
} from '../harness/env.ts';
import { serveStatic } from '../harness/static-server.ts';
import { FIXTURE_TIMING } from '../fixtures/timing.ts';
import type { CollabStart } from '../collab-fixtures/page.ts';

const PRELOAD = new URL('../../helpers/exit-with-parent.mjs', import.meta.url).href;
const DOC_RELAY = path.join(ROOT, 'tests/browser/collab-fixtures/doc-relay.ts');
/** Typing time of the concurrent scenario (the machine is loaded: 20 s, not 30). */
const TYPE_MS = Number(process.env.COLLAB_TYPE_MS ?? 20_000);

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) =>
    server.once('error', reject).listen(0, '127.0.0.1', () => resolve()),
  );
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The document relay as a child process on fixed ports and folder. */
class DocRelay {
  readonly lines: string[] = [];
  #proc: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  constructor(
    readonly args: {
      httpPort: number;
      tcpPort: number;
      dir: string;
      browserSecret: string;
      peerKey: string;
      name: string;
    },
  ) {}
  get url(): string {
    return `http://127.0.0.1:${this.args.httpPort}`;
  }
  async start(): Promise<void> {
    const a = this.args;
    const proc = spawn(
      process.execPath,
      [
        '--import',
        PRELOAD,
        '--import',
        'tsx',
        DOC_RELAY,
        String(a.httpPort),
        String(a.tcpPort),
        a.dir,
        a.browserSecret,
        a.peerKey,
        a.name,
      ],
      {
        cwd: ROOT,
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, NODE_OPTIONS: '' },
      },
    );
    this.#proc = proc;
    this.#exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    let ready!: () => void;
    const listening = new Promise<void>((r) => (ready = r));
    for (const stream of [proc.stdout!, proc.stderr!]) {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const parts = (rest + chunk).split('\n');
        rest = parts.pop()!;
        for (const line of parts) {
          this.lines.push(line);
          if (line.startsWith('doc-relay ready')) ready();
        }
      });
    }
    await timeout(
      'the doc relay to listen',
      Promise.race([
        listening,
        this.#exited.then(() =>
          Promise.reject(new Error(`doc relay exited:\n${this.lines.slice(-20).join('\n')}`)),
        ),
      ]),
      60_000,
    );
  }
  async kill(): Promise<void> {
    this.#proc?.kill('SIGKILL');
    await timeout('the doc relay to die', this.#exited, 10_000);
    this.#proc = undefined;
  }
}

interface CollabCtx {
  pageUrl: string;
  relay: DocRelay;
  credential: Credential;
  tcp: Node;
}
type Env = BrowserEnv & CollabCtx;

async function openCollab(env: Env, user: string, doc: string, idb = true): Promise<FxPage> {
  const p = await env.openPage(user, env.pageUrl);
  await p.page.waitForFunction(() => !!(window as any).collab, undefined, { timeout: 30_000 });
  const o: CollabStart = {
    name: `${user}-${rnd()}`,
    wsUrl: env.credential.ws,
    secret: env.credential.secret,
    credentialUrl: `${env.relay.url}/troupe/credential`,
    signal: signalOf(env.credential),
    user,
    doc,
    idb,
  };
  await p.hook('collab', 'start', [o], 60_000);
  return p;
}

const text = (p: FxPage) => p.hook<string>('collab', 'text', []);
const probe = (env: Env, doc: string) =>
  timeout(
    'collab-probe',
    env.tcp.call<{ text: string; users: string[] }>('collab-probe', { doc }, { timeout: 10_000 }),
    15_000,
  );

async function converged(env: Env, pages: FxPage[], doc: string, ms: number): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const texts = await Promise.all(pages.map(text));
    const actor = (await probe(env, doc).catch(() => ({ text: '\u0000' }))).text;
    if (texts.every((t) => t === actor)) return actor;
    if (Date.now() > end)
      throw new Error(
        `not converged after ${ms} ms: ${JSON.stringify([...texts.map((t) => t.length), actor.length])}`,
      );
    await new Promise((r) => setTimeout(r, 250));
  }
}

const scenarios: Record<string, (env: Env) => Promise<unknown>> = {
  /** Three pages type into one paragraph at once; all and the document actor end identical. */
  async concurrent(env) {
    const doc = `para-${rnd()}`;
    const pages = [];
    for (const u of ['ann', 'ben', 'cat']) pages.push(await openCollab(env, u, doc));
    await pages[0].hook('collab', 'append', ['The one paragraph everybody types into. ']);
    const links = await Promise.all(
      pages.map((p) => p.hook<{ node: string; label: string }[]>('collab', 'links', [])),
    );
    const edits = await Promise.all(
      pages.map((p, i) => p.hook<number>('collab', 'type', [TYPE_MS, 1000 + i], TYPE_MS + 60_000)),
    );
    const t0 = Date.now();
    const final = await converged(env, pages, doc, 60_000);
    return {
      edits,
      length: final.length,
      convergedMs: Date.now() - t0,
      webrtcLinks: links.map((l) => l.filter((x) => x.label.startsWith('webrtc')).length),
    };
  },

  /** A closed page's presence leaves the others within the failure-detection time. */
  async 'presence-close'(env) {
    const doc = `presence-${rnd()}`;
    const a = await openCollab(env, 'amy', doc);
    const b = await openCollab(env, 'bob', doc);
    await b.hook('collab', 'cursor', [0, 0]);
    const before = await a.until<string[]>(
      'collab',
      'presence',
      [],
      (v) => v.includes('bob'),
      'amy sees bob',
      20_000,
    );
    const t0 = Date.now();
    await b.context.close();
    const after = await a.until<string[]>(
      'collab',
      'presence',
      [],
      (v) => !v.includes('bob'),
      'bob gone at amy',
      FIXTURE_TIMING.heartbeatTimeout * 2 + 15_000,
    );
    const goneMs = Date.now() - t0;
    const users = (await probe(env, doc)).users;
    return { before, after, goneMs, users, heartbeatTimeout: FIXTURE_TIMING.heartbeatTimeout };
  },

  /** A read-only participant's update is refused with an event (page and actor side). */
  async 'read-only'(env) {
    const doc = `ro-${rnd()}`;
    const w = await openCollab(env, 'writer', doc);
    const r = await openCollab(env, 'reader-1', doc);
    const role = await r.hook<string>('collab', 'role', []);
    await w.hook('collab', 'append', ['written by the writer']);
    await r.until<string>(
      'collab',
      'text',
      [],
      (t) => t === 'written by the writer',
      'reader sees the text',
      20_000,
    );
    const linesBefore = env.relay.lines.length;
    await r.hook('collab', 'append', [' vandalism']);
    const refused = await r.until<string[]>(
      'collab',
      'refused',
      [],
      (v) => v.length > 0,
      'the reader is told',
      20_000,
    );
    await new Promise((res) => setTimeout(res, 1000));
    const relayLines = env.relay.lines.slice(linesBefore).filter((l) => l.startsWith('refused'));
    return {
      role,
      refused,
      relayLines,
      actor: (await probe(env, doc)).text,
      writer: await text(w),
    };
  },

  /** A page set offline edits, comes back, and both sides' edits merge. */
  async offline(env) {
    const doc = `off-${rnd()}`;
    const a = await openCollab(env, 'ana', doc);
    const b = await openCollab(env, 'bea', doc);
    await a.hook('collab', 'append', ['start.']);
    await b.until<string>('collab', 'text', [], (t) => t === 'start.', 'bea sees start', 20_000);
    await a.context.setOffline(true);
    const statusAfter = await a
      .until<string>(
        'collab',
        'status',
        [],
        (s) => s !== 'connected',
        'ana sees itself offline',
        FIXTURE_TIMING.heartbeatTimeout * 2 + 15_000,
      )
      .catch((e) => `still: ${e.message}`);
    await a.hook('collab', 'append', [' offline-ana']);
    await b.hook('collab', 'insert', [0, 'online-bea ']);
    await new Promise((r) => setTimeout(r, 1000));
    const bWhileOff = await text(b);
    await a.context.setOffline(false);
    await a.hook('collab', 'waitSynced', [60_000], 65_000);
    const final = await converged(env, [a, b], doc, 60_000);
    return { statusAfter, bWhileOff, final };
  },

  /** The relay holding the document is SIGKILLed and restarted: the document comes back from disk, pages rejoin, nothing is lost. */
  async 'relay-kill'(env) {
    const doc = `kill-${rnd()}`;
    const a = await openCollab(env, 'kim', doc);
    const b = await openCollab(env, 'lee', doc);
    await Promise.all([
      a.hook('collab', 'type', [3000, 7], 30_000),
      b.hook('collab', 'type', [3000, 8], 30_000),
    ]);
    const beforeKill = await converged(env, [a, b], doc, 30_000);
    await env.relay.kill();
    const killedAt = Date.now();
    const during = await a.until<string>(
      'collab',
      'status',
      [],
      (s) => s !== 'connected',
      'kim offline',
      FIXTURE_TIMING.heartbeatTimeout * 2 + 15_000,
    );
    await a.hook('collab', 'append', [' typed-while-down']);
    const linesBefore = env.relay.lines.length;
    await env.relay.start();
    const restartedAt = Date.now();
    const loadedLine = env.relay.lines
      .slice(linesBefore)
      .find((l) => l.startsWith(`loaded ${doc} `));
    const loaded =
      loadedLine === undefined
        ? undefined
        : (JSON.parse(loadedLine.slice(`loaded ${doc} `.length)) as string);
    await a.hook('collab', 'waitSynced', [60_000], 65_000);
    await b.hook('collab', 'waitSynced', [60_000], 65_000);
    // The TCP node redials the relay on its own; wait for the probe to answer again.
    const end = Date.now() + 60_000;
    let fromDisk = '';
    for (;;) {
      try {
        fromDisk = (await probe(env, doc)).text;
        break;
      } catch (err) {
        if (Date.now() > end) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    void fromDisk; // the actor answers again (a page's catch-up update may still be on its way)
    const final = await converged(env, [a, b], doc, 60_000);
    const actorAfter = (await probe(env, doc)).text;
    return {
      beforeKill,
      loaded,
      during,
      final,
      rejoinMs: Date.now() - restartedAt,
      outageMs: restartedAt - killedAt,
      actorAfter,
    };
  },
};

/**
 * Bench (bench/collab.ts): an edit on page A applied on page B through the document actor on the
 * relay (half of an edit/echo round trip), interleaved with the raw peerjs DataConnection half round trip between
 * the same two pages.
 */
const bench = (idb: boolean) => async (env: Env) => {
  const doc = `bench-${rnd()}`;
  const a = await openCollab(env, 'bench-a', doc, idb);
  const b = await openCollab(env, 'bench-b', doc, idb);
  const links = await a.hook<{ node: string; label: string }[]>('collab', 'links', []);
  await b.hook('collab', 'benchEcho', []);
  const signal = signalOf(env.credential);
  const rawB = `rawb${rnd()}${rnd()}`;
  await b.hook('collab', 'rawListen', [rawB, signal]);
  const n = Number(process.env.COLLAB_BENCH_N ?? 200);
  const rounds: { troupe: number[]; raw: number[] }[] = [];
  await a.hook('collab', 'benchPing', [20]); // warm-up
  for (let r = 0; r < 5; r++) {
    const troupe = await a.hook<number[]>('collab', 'benchPing', [n], 120_000);
    const raw = await a.hook<number[]>(
      'collab',
      'rawPing',
      [`rawa${rnd()}${rnd()}`, rawB, signal, n],
      120_000,
    );
    rounds.push({ troupe, raw });
  }
  const p50 = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  return {
    webrtcLink: links.some((l) => l.label.startsWith('webrtc')),
    troupeP50: rounds.map((r) => p50(r.troupe)),
    rawP50: rounds.map((r) => p50(r.raw)),
    n,
  };
};
/** With y-indexeddb in both pages (as the demo has it). */
scenarios.bench = bench(true);
/** Without it: what troupe/yjs itself costs. */
scenarios['bench-noidb'] = bench(false);

await runScenarios<CollabCtx>(scenarios, process.argv.slice(2), {
  scenarioTimeout: 240_000,
  async start() {
    const cleanups: (() => unknown)[] = [];
    const close = async () => {
      for (const fn of cleanups.reverse())
        await timeout('cleanup', Promise.resolve().then(fn), 20_000).catch(() => {});
    };
    try {
      const out = await buildFixtures(path.join(ROOT, 'test-results', 'collab-fixtures'), {
        root: path.join(ROOT, 'tests/browser/collab-fixtures'),
      });
      const stat = await serveStatic(out);
      cleanups.push(() => stat.close());
      const dir = mkdtempSync(path.join(tmpdir(), 'troupe-collab-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const relay = new DocRelay({
        httpPort: await freePort(),
        tcpPort: await freePort(),
        dir,
        browserSecret: `bs-${rnd()}${rnd()}`,
        peerKey: `key${rnd()}`,
        name: `docs-${rnd()}`,
      });
      await relay.start();
      cleanups.push(() => relay.kill().catch(() => {}));
      const res = await fetch(`${relay.url}/troupe/credential`);
      const credential = (await res.json()) as Credential;
      const tcp = await joinTcpNode(`tcp://127.0.0.1:${relay.args.tcpPort}`);
      cleanups.push(() => tcp.shutdown());
      await timeout(
        'the probe name',
        (async () => {
          while (!tcp.whereis('collab-probe')) await new Promise((r) => setTimeout(r, 100));
        })(),
        20_000,
      );
      return {
        ctx: { pageUrl: new URL('index.html', stat.url).toString(), relay, credential, tcp },
        close,
        describe: `doc relay at ${relay.url}, pages at ${stat.url}`,
      };
    } catch (err) {
      await close();
      throw err;
    }
  },
});
