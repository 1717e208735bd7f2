// Process faults with browsers attached, run inside a loopback-only network namespace by
// tests/browser/faults.browser.test.ts: `node --import tsx faults.ts <scenario>…`. The relay is a
// real `troupe relay` child process (bin/troupe.mjs), so it can be SIGKILLed and started again on
// the same ports; a Node TCP node is joined to it and two fixture pages link to it over WebSocket
// (no WebRTC: page to page goes through the relay), except in `relay-restart-webrtc`, where the
// pages also listen on WebRTC through the relay's PeerServer. Each scenario prints one `RESULT {json}` line.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import type { Node } from '../../../core/index.ts';
import { buildFixtures, ROOT } from '../harness/build.ts';
import {
  CLUSTER_SECRET,
  joinTcpNode,
  runScenarios,
  rnd,
  timeout,
  type BrowserEnv,
  type FxPage,
  type Setup,
} from '../harness/env.ts';
import { serveStatic } from '../harness/static-server.ts';
import { waitFor, type PingerResult } from '../fixtures/behaviours.ts';
import type { LinkStat, StartOptions } from '../fixtures/page.ts';
import type { RelayCredential, RelayPeers } from '../../../server/relay.ts';
import { FIXTURE_TIMING } from '../fixtures/timing.ts';

const CLI = path.join(ROOT, 'bin', 'troupe.mjs');
const PRELOAD = new URL('../../helpers/exit-with-parent.mjs', import.meta.url).href;
/** How long a monitor may wait for DOWN: the failure-detection timeout, plus slack for a loaded machine. */
const DOWN_WAIT = FIXTURE_TIMING.heartbeatTimeout * 2 + 15_000;
/** How long pages and the TCP node may take to find the restarted relay (redial backoff tops out at 5 s). */
const BACK_WAIT = 60_000;

/** A free TCP port on 127.0.0.1 (the namespace is ours alone, so it stays free until used). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) =>
    server.once('error', reject).listen(0, '127.0.0.1', () => resolve()),
  );
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** What a relay process is started with; the same each start unless a scenario changes it. */
interface RelayArgs {
  name: string;
  httpPort: number;
  tcpPort: number;
  browserSecret: string;
  peerKey: string;
}

/** `troupe relay` as a child process, started (and restarted) on fixed ports. */
class RelayProcess {
  /** Every line it printed, across starts (`!` marks stderr). */
  readonly lines: string[] = [];
  #proc: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  starts = 0;

  constructor(public args: RelayArgs) {}

  get url(): string {
    return `http://127.0.0.1:${this.args.httpPort}`;
  }

  get credentialUrl(): string {
    return `${this.url}/troupe/credential`;
  }

  get tcpAddress(): string {
    return `tcp://127.0.0.1:${this.args.tcpPort}`;
  }

  /** Start it and wait until it listens. */
  async start(): Promise<void> {
    if (this.#proc) throw new Error('the relay is already running');
    const n = ++this.starts;
    const a = this.args;
    // Secrets through the environment, as an operator would (they stay out of `ps`).
    const proc = spawn(
      process.execPath,
      [
        '--import',
        PRELOAD,
        CLI,
        'relay',
        '--listen',
        `127.0.0.1:${a.httpPort}`,
        '--tcp-listen',
        `127.0.0.1:${a.tcpPort}`,
        '--name',
        a.name,
        '--peer-key',
        a.peerKey,
        '--heartbeat-timeout',
        String(FIXTURE_TIMING.heartbeatTimeout),
      ],
      {
        cwd: ROOT,
        stdio: ['pipe', 'pipe', 'pipe'],
        env: {
          ...process.env,
          TROUPE_SECRET: CLUSTER_SECRET,
          TROUPE_BROWSER_SECRET: a.browserSecret,
          NODE_OPTIONS: '',
        },
      },
    );
    this.#proc = proc;
    let exit: string | undefined;
    this.#exited = new Promise((resolve) =>
      proc.once('exit', (code, signal) => {
        exit = signal ?? `code ${code}`;
        this.lines.push(`#${n} exited (${exit})`);
        if (this.#proc === proc) this.#proc = undefined;
        resolve();
      }),
    );
    let ready: () => void;
    const listening = new Promise<void>((resolve) => (ready = resolve));
    for (const [stream, prefix] of [
      [proc.stdout!, ''],
      [proc.stderr!, '! '],
    ] as const) {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const parts = (rest + chunk).split('\n');
        rest = parts.pop()!;
        for (const line of parts) {
          this.lines.push(`#${n} ${prefix}${line}`);
          if (!prefix && line.startsWith('relay http')) ready();
        }
      });
    }
    await timeout(
      'the relay process to listen',
      Promise.race([
        listening,
        this.#exited.then(() =>
          Promise.reject(
            new Error(
              `the relay exited (${exit}) before listening:\n${this.lines.slice(-20).join('\n')}`,
            ),
          ),
        ),
      ]),
      30_000,
    );
  }

  /** SIGKILL it (no goodbye on any link) and wait until it is gone; resolves with when the signal was sent. */
  async kill(): Promise<number> {
    const proc = this.#proc;
    if (!proc) throw new Error('the relay is not running');
    const at = Date.now();
    proc.kill('SIGKILL');
    await timeout('the relay process to die', this.#exited, 10_000);
    return at;
  }

  async stop(): Promise<void> {
    this.#proc?.kill('SIGKILL');
    await timeout('the relay process to end', this.#exited, 10_000).catch(() => {});
  }
}

/** What the fault scenarios run on: the fixture page; each scenario starts its own relay and TCP node. */
interface FaultsCtx {
  pageUrl: string;
}
type Env = BrowserEnv & FaultsCtx;

/** A relay process on fresh ports (stopped after the scenario). */
async function relayUp(env: Env): Promise<RelayProcess> {
  const relay = new RelayProcess({
    name: `relay-${rnd()}`,
    httpPort: await freePort(),
    tcpPort: await freePort(),
    browserSecret: `browser-secret-${rnd()}${rnd()}`,
    peerKey: `key${rnd()}`,
  });
  env.defer(() => relay.stop());
  try {
    await relay.start();
  } catch (err) {
    env.diagnostics.push(...relay.lines);
    throw err;
  }
  env.defer(() => env.diagnostics.push(...relay.lines.slice(-60)));
  return relay;
}

/** A Node TCP node that joins the relay's TCP address (redialing it forever, as seeds are). */
async function tcpUp(env: Env, relay: RelayProcess): Promise<Node> {
  const node = await joinTcpNode(relay.tcpAddress);
  env.defer(() => node.shutdown());
  return node;
}

/** Fetch a credential from the relay (as the page's script would before creating its node). */
async function credentialOf(relay: RelayProcess): Promise<RelayCredential> {
  const res = await timeout('GET /troupe/credential', fetch(relay.credentialUrl), 10_000);
  if (!res.ok) throw new Error(`GET /troupe/credential: HTTP ${res.status}`);
  return (await res.json()) as RelayCredential;
}

/** What the relay says is behind it (`GET /troupe/peers`): the peer ids registered with its PeerServer, say. */
async function peersOf(relay: RelayProcess): Promise<RelayPeers> {
  const res = await timeout('GET /troupe/peers', fetch(`${relay.url}/troupe/peers`), 10_000);
  if (!res.ok) throw new Error(`GET /troupe/peers: HTTP ${res.status}`);
  return (await res.json()) as RelayPeers;
}

/**
 * Open a fixture page and start its node the way a page that should survive relay restarts does:
 * it joins the relay and fetches a fresh credential before every dial. Without `webrtc` it has no
 * WebRTC (page to page goes through the relay); with it, it also listens on WebRTC through the
 * relay's PeerServer (`autoConnect` false: no direct link unless the scenario dials one).
 */
async function startPage(
  env: Env,
  relay: RelayProcess,
  tag: string,
  o: { webrtc?: boolean; autoConnect?: boolean } = {},
): Promise<{ p: FxPage; id: string; wsUrl: string; addresses: string[] }> {
  const p = await env.openPage(tag, env.pageUrl);
  await p.page.waitForFunction(() => !!(window as any).fx, undefined, { timeout: 30_000 });
  const cred = await credentialOf(relay);
  const options: StartOptions = {
    name: `${tag}-${rnd()}`,
    wsUrl: cred.ws,
    secret: cred.secret,
    credentialUrl: relay.credentialUrl,
    ...(o.webrtc && { signal: cred.peer }),
    ...(o.autoConnect !== undefined && { autoConnect: o.autoConnect }),
  };
  const started = await p.call<{ id: string; addresses: string[] }>('start', [options]);
  return { p, id: started.id, wsUrl: cred.ws, addresses: started.addresses };
}

/** A monitor from the Node node on the actor registered as `name`, recording every DOWN it gets. */
async function watchFromNode(node: Node, name: string): Promise<{ reason: unknown; at: number }[]> {
  const ref = await waitFor(`"${name}" on ${node.id}`, () => node.whereis(name), 20_000);
  const downs: { reason: unknown; at: number }[] = [];
  node.watch(ref, (d) => downs.push({ reason: d.reason, at: Date.now() }));
  return downs;
}

/** Call `name` from the Node node once it knows the name; resolves with the echo's `by`. */
async function nodeCalls(node: Node, name: string): Promise<string> {
  await waitFor(`"${name}" on ${node.id}`, () => node.whereis(name), 30_000);
  return ((await node.call(name, 'ping', { timeout: 20_000 })) as { by: string }).by;
}

/** Call `name` from a page; resolves with the echo's `by`. */
async function pageCalls(p: FxPage, name: string): Promise<string> {
  return (await p.call<{ by: string }>('callName', [name, 'ping', 30_000], 40_000)).by;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The peer id a page registers with the PeerServer (from its `webrtc://<peerId>` address). */
function peerIdOf(page: { id: string; addresses: string[] }): string {
  const address = page.addresses.find((a) => a.startsWith('webrtc://'));
  if (!address)
    throw new Error(`${page.id} announces no webrtc:// address: ${page.addresses.join(', ')}`);
  return address.slice('webrtc://'.length);
}

/** Poll `GET /troupe/peers` until every one of `peerIds` is registered with the relay's PeerServer. */
async function peerServerHas(
  relay: RelayProcess,
  peerIds: string[],
  ms: number,
): Promise<string[]> {
  const end = Date.now() + ms;
  for (;;) {
    const registered = (await peersOf(relay)).webrtcPeers;
    if (peerIds.every((id) => registered.includes(id))) return registered;
    if (Date.now() > end)
      throw new Error(
        `timed out after ${ms} ms waiting for peer ids ${peerIds.join(', ')} on the PeerServer; it has ${registered.join(', ') || 'none'}`,
      );
    await sleep(200);
  }
}

/** Run a call; a failure names the call. Right after the restart, every call must go through at once. */
async function namedCall(what: string, call: () => Promise<string>): Promise<string> {
  try {
    return await call();
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message.split('\n')[0].slice(0, 300)}`);
  }
}

const scenarios: Record<string, (env: Env) => Promise<unknown>> = {
  /**
   * SIGKILL the relay while two pages (one with a Web Worker) and a TCP node talk through it:
   * every monitor across it fires `noconnection`, once; a monitor inside a page does not. Start it
   * again on the same ports: the pages and the TCP node find it on their own, every actor is
   * reachable again (calls both ways, names back, a name registered afterwards seen everywhere),
   * the monitors that fired stay fired, and new monitors work.
   */
  async 'relay-restart'(env) {
    const relay = await relayUp(env);
    const tcp = await tcpUp(env, relay);
    const [a, b] = await Promise.all([
      startPage(env, relay, 'page-a'),
      startPage(env, relay, 'page-b'),
    ]);
    const wb = await b.p.call<string>('spawnWorker');
    const n = {
      a: `echo-a-${rnd()}`,
      b: `echo-b-${rnd()}`,
      w: `echo-w-${rnd()}`,
      t: `echo-t-${rnd()}`,
    };
    const keyA = await a.p.call<string>('spawn', [a.id, 'echo', { name: n.a }]);
    const keyB = await b.p.call<string>('spawn', [b.id, 'echo', { name: n.b }]);
    await b.p.call('spawn', [wb, 'echo', { name: n.w }]);
    await tcp.spawn(tcp.id, 'echo', { name: n.t });

    // The monitors, each confirmed in place by a call over the same route after it.
    const watch = { aOnT: '', aOnB: '', aOnW: '', bOnA: '', bOnW: '' };
    watch.aOnT = await a.p.call<string>('watch', [n.t, 20_000]);
    watch.aOnB = await a.p.call<string>('watch', [n.b, 20_000]);
    watch.aOnW = await a.p.call<string>('watch', [n.w, 20_000]);
    watch.bOnA = await b.p.call<string>('watch', [n.a, 20_000]);
    watch.bOnW = await b.p.call<string>('watch', [n.w, 20_000]); // inside page B: page ⇄ its worker
    const tOnA = await watchFromNode(tcp, n.a);
    const tOnW = await watchFromNode(tcp, n.w);
    const before = {
      aCalls: {
        t: await pageCalls(a.p, n.t),
        b: await pageCalls(a.p, n.b),
        w: await pageCalls(a.p, n.w),
      },
      bCalls: { a: await pageCalls(b.p, n.a), w: await pageCalls(b.p, n.w) },
      tcpCalls: { a: await nodeCalls(tcp, n.a), w: await nodeCalls(tcp, n.w) },
    };
    // The route: each page's only link is to the relay; the other page is reached through it.
    const aLinks = (await a.p.call<{ node: string; label: string }[]>('linkStats')).map((s) => ({
      node: s.node,
      label: s.label.replace(/\?.*$/, ''),
    }));
    const bPeers = await b.p.call<string[]>('peers');
    const tcpPeers = tcp.peers();

    // SIGKILL: the relay's sockets close without a goodbye.
    const killedAt = await relay.kill();
    const fired = ['aOnT', 'aOnB', 'aOnW', 'bOnA'] as const;
    const pageDowns = Object.fromEntries(
      await Promise.all(
        fired.map(
          async (k) =>
            [
              k,
              await (k.startsWith('a') ? a : b).p.call<{ reason: unknown; at: number }>(
                'awaitResult',
                [watch[k], DOWN_WAIT],
                DOWN_WAIT + 5000,
              ),
            ] as const,
        ),
      ),
    ) as Record<(typeof fired)[number], { reason: unknown; at: number }>;
    await timeout(
      'DOWN on the TCP node',
      waitFor('two DOWNs on the TCP node', () => tOnA.length >= 1 && tOnW.length >= 1, DOWN_WAIT),
      DOWN_WAIT + 1000,
    );
    const downAfterMs = {
      ...Object.fromEntries(fired.map((k) => [k, pageDowns[k].at - killedAt])),
      tOnA: tOnA[0].at - killedAt,
      tOnW: tOnW[0].at - killedAt,
    };
    // While the relay is down: page B still reaches its own worker, and that monitor holds.
    const outage = {
      aPeers: await a.p.call<string[]>('peers'),
      tcpPeers: tcp.peers(),
      bCallsW: await pageCalls(b.p, n.w),
      bOnWCount: await b.p.call<number>('downCount', [watch.bOnW]),
      aNodes: await a.p.call<string[]>('nodes'),
    };

    // The same relay again: same ports, id, cluster secret and browser secret; a new token key.
    const restartedAt = Date.now();
    await relay.start();
    await Promise.all([
      a.p.call('waitLink', [relay.args.name, 'ws://', BACK_WAIT], BACK_WAIT + 5000),
      b.p.call('waitLink', [relay.args.name, 'ws://', BACK_WAIT], BACK_WAIT + 5000),
      timeout(
        'the TCP node to relink to the relay',
        waitFor('the relay link', () => tcp.peers().includes(relay.args.name), BACK_WAIT),
        BACK_WAIT + 1000,
      ),
    ]);
    const relinkedMs = Date.now() - restartedAt;
    // Why the pages fetch a credential before each dial: the restarted relay signs tokens with a
    // new key, so the WebSocket URL the pages started with is refused now (HTTP 403).
    const oldToken = await a.p.call<{ opened: boolean; closed: boolean }>(
      'rawWebSocket',
      [a.wsUrl, [], 5000],
      15_000,
    );
    await Promise.all([
      a.p.call('waitReachable', [b.id, 30_000]),
      a.p.call('waitReachable', [wb, 30_000]),
      a.p.call('waitReachable', [tcp.id, 30_000]),
      b.p.call('waitReachable', [a.id, 30_000]),
      b.p.call('waitReachable', [tcp.id, 30_000]),
    ]);
    // Every actor reachable again, by name, from the pages and from the TCP node.
    const fromPage = (p: FxPage, tag: string, name: string) =>
      namedCall(`${tag} → ${name}`, () => pageCalls(p, name));
    const fromNode = (name: string) => namedCall(`tcp → ${name}`, () => nodeCalls(tcp, name));
    const after = {
      aCalls: {
        t: await fromPage(a.p, 'a', n.t),
        b: await fromPage(a.p, 'a', n.b),
        w: await fromPage(a.p, 'a', n.w),
      },
      bCalls: { a: await fromPage(b.p, 'b', n.a), t: await fromPage(b.p, 'b', n.t) },
      tcpCalls: { a: await fromNode(n.a), b: await fromNode(n.b), w: await fromNode(n.w) },
    };
    // A name registered after the restart, in page A, is seen in page B, its worker's page and on the TCP node.
    const late = `late-a-${rnd()}`;
    await a.p.call('spawn', [a.id, 'echo', { name: late }]);
    const lateSeen = { b: await pageCalls(b.p, late), tcp: await nodeCalls(tcp, late) };

    // New monitors on live actors work: A on B's echo, the TCP node on A's echo; then both are killed.
    const aOnB2 = await a.p.call<string>('watch', [n.b, 20_000]);
    const tOnA2 = await watchFromNode(tcp, n.a);
    await pageCalls(a.p, n.b);
    await nodeCalls(tcp, n.a);
    await b.p.call('kill', [keyB]);
    await a.p.call('kill', [keyA]);
    const aOnB2Reason = await a.p.call('awaitDown', [aOnB2, 20_000], 25_000);
    await timeout(
      'the new DOWN on the TCP node',
      waitFor('DOWN of the new monitor', () => tOnA2.length >= 1, 20_000),
      21_000,
    );
    // The monitors that fired stay fired: give a late duplicate time to show, then count.
    await sleep(FIXTURE_TIMING.heartbeatInterval * 3);
    const counts = {
      ...Object.fromEntries(
        await Promise.all(
          Object.entries(watch).map(
            async ([k, h]) =>
              [k, await (k.startsWith('a') ? a : b).p.call<number>('downCount', [h])] as const,
          ),
        ),
      ),
      aOnB2: await a.p.call<number>('downCount', [aOnB2]),
      tOnA: tOnA.length,
      tOnW: tOnW.length,
      tOnA2: tOnA2.length,
    };
    return {
      a: a.id,
      b: b.id,
      wb,
      tcp: tcp.id,
      relay: relay.args.name,
      aLinks,
      bPeers,
      tcpPeers,
      before,
      reasons: {
        ...Object.fromEntries(fired.map((k) => [k, pageDowns[k].reason])),
        tOnA: tOnA[0].reason,
        tOnW: tOnW[0].reason,
      },
      downAfterMs,
      outage,
      relinkedMs,
      oldToken,
      after,
      late,
      lateSeen,
      aOnB2Reason,
      tOnA2Reason: tOnA2[0].reason,
      counts,
    };
  },

  /**
   * WebRTC signalling across a relay restart. Two pages listen on WebRTC through the relay's
   * PeerServer (their peerjs clients register their peer ids) but do not dial each other. SIGKILL
   * the relay: the peerjs clients lose the PeerServer. Started again on the same port with the same
   * peer key, the pages register their peer ids again on their own; then page A dials page B over
   * WebRTC — a NEW direct link, signalled by the restarted PeerServer — and calls cross it.
   */
  async 'relay-restart-webrtc'(env) {
    const relay = await relayUp(env);
    const [a, b] = await Promise.all([
      startPage(env, relay, 'rtc-a', { webrtc: true, autoConnect: false }),
      startPage(env, relay, 'rtc-b', { webrtc: true, autoConnect: false }),
    ]);
    const peerIds = [peerIdOf(a), peerIdOf(b)];
    const registeredBefore = await peerServerHas(relay, peerIds, 20_000);
    const peersBefore = {
      a: await a.p.call<string[]>('peers'),
      b: await b.p.call<string[]>('peers'),
    };

    await relay.kill();
    const lost = (p: FxPage, tag: string) =>
      p.until<string[]>(
        'fx',
        'peers',
        [],
        (ps) => !ps.includes(relay.args.name),
        `${tag} to lose the relay`,
        DOWN_WAIT,
      );
    await Promise.all([lost(a.p, 'page A'), lost(b.p, 'page B')]);
    // While the PeerServer is gone, a WebRTC dial waits for it (bounded by the connect timeout),
    // then fails TRANSPORT_CLOSED; meanwhile the pages' attempts to reach it fail more than once.
    const outageDial = await a.p
      .call<string>('dial', [`webrtc://${peerIdOf(b)}`], FIXTURE_TIMING.connectTimeout + 15_000)
      .then(
        (peer) => ({ ok: true, value: peer }),
        (err: Error) => ({ ok: false, value: err.message.split('\n')[0].slice(0, 300) }),
      );

    const restartedAt = Date.now();
    await relay.start();
    await Promise.all([
      a.p.call('waitLink', [relay.args.name, 'ws://', BACK_WAIT], BACK_WAIT + 5000),
      b.p.call('waitLink', [relay.args.name, 'ws://', BACK_WAIT], BACK_WAIT + 5000),
    ]);
    const relinkedMs = Date.now() - restartedAt;
    // The restarted PeerServer starts empty: the pages register again on their own.
    const registeredAfter = await peerServerHas(relay, peerIds, BACK_WAIT);
    const reregisteredMs = Date.now() - restartedAt;
    const aPeersBeforeDial = await a.p.call<string[]>('peers');

    // A new direct link: A dials B's WebRTC address.
    const echo = `echo-rtc-${rnd()}`;
    await b.p.call('spawn', [b.id, 'echo', { name: echo }]);
    await a.p.call('waitName', [echo, 20_000]);
    const dialed = await a.p.call<string>(
      'dial',
      [`webrtc://${peerIdOf(b)}`],
      FIXTURE_TIMING.connectTimeout + 10_000,
    );
    await Promise.all([
      a.p.call('waitLink', [b.id, 'webrtc://', 30_000]),
      b.p.call('waitLink', [a.id, 'webrtc://', 30_000]),
    ]);
    // A call and a stream of pings from A to B's echo: they take the new link, not the relay.
    const statsBefore = await a.p.call<LinkStat[]>('linkStats');
    const callBy = await namedCall(`a → ${echo}`, () => pageCalls(a.p, echo));
    const count = 50;
    const run = await a.p.call<{ reason: unknown; result: PingerResult }>(
      'run',
      [a.id, 'pinger', { target: echo, count, timeout: 20_000 }, 30_000],
      40_000,
    );
    const statsAfter = await a.p.call<LinkStat[]>('linkStats');
    const bStats = await b.p.call<LinkStat[]>('linkStats');
    return {
      a: a.id,
      b: b.id,
      relay: relay.args.name,
      peerIds,
      registeredBefore,
      peersBefore,
      outageDial,
      relinkedMs,
      registeredAfter,
      reregisteredMs,
      aPeersBeforeDial,
      dialed,
      statsBefore,
      statsAfter,
      bStats,
      callBy,
      count,
      run,
    };
  },

  /**
   * The relay restarts with another browser secret (what a relay without a fixed one does): a
   * page holding the old one is refused (`UNAUTHORIZED`) and stops redialing — a fresh token does
   * not let an old secret back in. A page loaded anew, with the new credential, gets through.
   */
  async 'relay-new-browser-secret'(env) {
    const relay = await relayUp(env);
    const tcp = await tcpUp(env, relay);
    const a = await startPage(env, relay, 'old-page');
    const name = `echo-old-${rnd()}`;
    await a.p.call('spawn', [a.id, 'echo', { name }]);
    const tOnA = await watchFromNode(tcp, name);
    await nodeCalls(tcp, name);

    await relay.kill();
    await timeout(
      'DOWN on the TCP node',
      waitFor('the DOWN', () => tOnA.length >= 1, DOWN_WAIT),
      DOWN_WAIT + 1000,
    );
    relay.args.browserSecret = `another-browser-secret-${rnd()}${rnd()}`;
    await relay.start();
    await timeout(
      'the TCP node to relink to the relay',
      waitFor('the relay link', () => tcp.peers().includes(relay.args.name), BACK_WAIT),
      BACK_WAIT + 1000,
    );
    // The page's next dial gets a fresh token, then fails the handshake: its secret is the old one.
    const refused = await a.p.until<string[]>(
      'fx',
      'events',
      [],
      (ev) => ev.some((e) => /^protocolError .*UNAUTHORIZED/.test(e)),
      'the page to be refused',
      BACK_WAIT,
    );
    const refusedAt = refused.length;
    // It does not try again: the relay sees no further attempt over more than the longest redial backoff.
    await sleep(8000);
    const relayRefusals = relay.lines.filter(
      (l) => l.startsWith('#2 ') && /refused: UNAUTHORIZED/.test(l),
    );
    const pageEvents = await a.p.call<string[]>('events');
    const peersView = (await (
      await timeout('GET /troupe/peers', fetch(`${relay.url}/troupe/peers`), 10_000)
    ).json()) as { links: { node: string }[] };

    // The page loaded anew (a fresh credential, the new secret) gets through.
    const fresh = await startPage(env, relay, 'new-page');
    const freshName = `echo-new-${rnd()}`;
    await fresh.p.call('spawn', [fresh.id, 'echo', { name: freshName }]);
    return {
      a: a.id,
      tcp: tcp.id,
      tcpDown: tOnA[0].reason,
      pageRefusals: refused.filter((e) => /^protocolError .*UNAUTHORIZED/.test(e)),
      laterPageEvents: pageEvents.slice(refusedAt).filter((e) => /^(protocolError|linkUp)/.test(e)),
      relayRefusals,
      aPeers: await a.p.call<string[]>('peers'),
      relayLinks: peersView.links.map((l) => l.node),
      tcpReachesOld: tcp.isReachable(a.id),
      fresh: fresh.id,
      freshCall: await nodeCalls(tcp, freshName),
    };
  },
};

await runScenarios(scenarios, process.argv.slice(2), {
  async start() {
    const stat = await serveStatic(
      await buildFixtures(path.join(ROOT, 'test-results', 'browser-fixtures-faults')),
    );
    return {
      ctx: { pageUrl: new URL('index.html', stat.url).toString() },
      close: () => stat.close(),
      describe: `pages at ${stat.url}`,
    };
  },
  scenarioTimeout: 150_000,
});
process.exit(0);
