// `npm run soak` — a bounded soak of a troupe cluster (issue 6). SOAK_SECONDS (default 300) of:
// five node processes (soak/node.ts) linked in a full mesh where every link runs through its own
// TCP fault proxy, plus the browser relay (server/relay.ts) in a sixth process with a page
// node (WebSocket) in this process; a few thousand actors; streams, calls, remote spawns with
// monitors and kills (soak/workload.ts); and random link cuts (reset, stall, one-way) for most of
// the run. Then the cuts stop, the mesh heals, traffic stops, every victim is killed, and it
// checks:
// - no message accepted on a healthy link was lost, reordered or duplicated (per pair; see
//   workload.ts), and each pair's last epoch arrived complete;
// - every monitor of a dead actor fired exactly once;
// - no call is left pending (every call started has settled);
// - each process's retained heap returned to its starting level (after warm-up) within
//   MEMORY_MARGIN.
// It prints its figures and exits 0 (PASS) or 1 (FAIL). Every server binds 127.0.0.1.
// Knobs (environment): SOAK_SECONDS (300), SOAK_WORKERS (400 per node), SOAK_TICK_MS (20; the
// traffic per tick is fixed, so a longer tick is a lighter load), SOAK_RELAY=0 (no relay/page),
// SOAK_SECRET (random).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { createNode, type ActorRef, type Node } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { createWebSocketTransport, type WebSocketConstructor } from '../adapters/websocket.ts';
import { createFaultProxy, type FaultProxy, type CutMode } from '../tests/helpers/fault-proxy.ts';
import {
  installWorkload,
  workloadFromEnv,
  DEFAULT_WORKLOAD,
  type Report,
  type SetupMessage,
} from './workload.ts';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 300);
const NODES = 5;
const SECRET = process.env.SOAK_SECRET ?? randomBytes(12).toString('hex');
const WORKERS = Number(process.env.SOAK_WORKERS ?? DEFAULT_WORKLOAD.workers);
/** Retained heap at the end may exceed the start (after warm-up) by this fraction plus MEMORY_SLACK bytes. */
const MEMORY_MARGIN = 0.25;
const MEMORY_SLACK = 16e6;
const ROOT = fileURLToPath(new URL('../', import.meta.url));
const WITH_RELAY =
  existsSync(new URL('../server/relay.ts', import.meta.url)) && process.env.SOAK_RELAY !== '0';

const t0 = Date.now();
const log = (line: string) =>
  console.log(`[soak ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A child process and the lines it printed. */
interface Child {
  name: string;
  proc: ChildProcess;
  lines: string[];
  exited: boolean;
}

function startChild(
  name: string,
  script: string,
  args: string[],
): Promise<{ child: Child; words: string[] }> {
  const proc = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', script, ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, SOAK_SECRET: SECRET, SOAK_WORKERS: String(WORKERS), NODE_OPTIONS: '' },
  });
  const child: Child = { name, proc, lines: [], exited: false };
  children.push(child);
  proc.once('exit', () => (child.exited = true));
  return new Promise((resolve, reject) => {
    let rest = '';
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start within 30 s:\n${child.lines.join('\n')}`)),
      30_000,
    );
    const onData = (prefix: string) => (chunk: Buffer) => {
      const parts = (rest + chunk.toString()).split('\n');
      rest = parts.pop()!;
      for (const line of parts) {
        child.lines.push(prefix + line);
        if (child.lines.length > 200) child.lines.shift();
        if (/^(listening|relay) /.test(line)) {
          clearTimeout(timer);
          resolve({ child, words: line.split(' ') });
        }
      }
    };
    proc.stdout!.on('data', onData(''));
    proc.stderr!.on('data', onData('! '));
    proc.once('exit', (code) =>
      reject(new Error(`${name} exited (${code}) before starting:\n${child.lines.join('\n')}`)),
    );
  });
}

const children: Child[] = [];
const proxies: FaultProxy[] = [];
let driver: Node | undefined;
let page: Node | undefined;

async function cleanup(): Promise<void> {
  await Promise.all([driver?.shutdown(), page?.shutdown()].map((p) => p?.catch(() => {})));
  await Promise.all(proxies.map((p) => p.close().catch(() => {})));
  for (const c of children) if (!c.exited) c.proc.kill('SIGKILL');
}
process.once('exit', () => {
  for (const c of children) if (!c.exited) c.proc.kill('SIGKILL');
});

async function main(): Promise<boolean> {
  const load = workloadFromEnv(process.env);
  log(
    `${SECONDS} s, ${NODES} node processes${WITH_RELAY ? ' + a relay process and a page node (WebSocket)' : ' (no relay: server/relay.ts not found)'}, ${WORKERS} workers per node, a tick every ${load.tickMs} ms (${load.sendsPerTick} stream messages to each target, ${load.callsPerTick} calls, ${load.spawnsPerTick} remote spawn per tick)`,
  );
  // 1. The node processes.
  const started = await Promise.all(
    Array.from({ length: NODES }, (_, i) => startChild(`soak-${i}`, 'soak/node.ts', [`soak-${i}`])),
  );
  const ids = started.map((s) => s.words[1]);
  const addrs = started.map((s) => s.words[2]);
  // 2. One fault proxy per pair; node i dials node j (i < j) through proxy[i][j].
  const pairProxy = new Map<string, FaultProxy>();
  for (let i = 0; i < NODES; i++) {
    for (let j = i + 1; j < NODES; j++) {
      const p = await createFaultProxy(addrs[j].replace('tcp://', ''));
      proxies.push(p);
      pairProxy.set(`${i}-${j}`, p);
    }
  }
  // 3. The driver's node: direct links (never cut) to every node, for control only.
  driver = createNode({
    name: 'soak-driver',
    secret: SECRET,
    transports: [createTcpTransport()],
    autoConnect: false,
    heartbeatInterval: 250,
    heartbeatTimeout: 3000,
    callTimeout: 20_000,
  });
  for (const a of addrs) await driver.join(a);
  const ctl = (id: string) => `ctl:${id}`;
  for (const id of ids) {
    while (!driver.whereis(ctl(id))) await sleep(20);
  }
  // 4. The relay and a page node behind it.
  let relayId: string | undefined;
  if (WITH_RELAY) {
    const r = await startChild('soak-relay', 'soak/relay.ts', addrs);
    relayId = r.words[1];
    const url = r.words[2];
    const cred = (await (await fetch(`${url}/troupe/credential`)).json()) as {
      secret: string;
      ws: string;
    };
    page = createNode({
      name: 'soak-page',
      secret: cred.secret,
      transports: [
        createWebSocketTransport({ WebSocket: WebSocket as unknown as WebSocketConstructor }),
      ],
      heartbeatInterval: 250,
      heartbeatTimeout: 3000,
    });
    installWorkload(page, workloadFromEnv(process.env));
    await page.connect(cred.ws);
    const deadline = Date.now() + 20_000;
    while (!ids.every((id) => page!.isReachable(id))) {
      if (Date.now() > deadline)
        throw new Error('the page cannot reach every soak node through the relay');
      await sleep(50);
    }
  }
  const allIds = page ? [...ids, page.id] : ids;
  const call = <T>(id: string, msg: unknown): Promise<T> =>
    page && id === page.id
      ? page.call<T>(ctl(id), msg, { timeout: 20_000 })
      : driver!.call<T>(ctl(id), msg);

  // 5. Setup: workers everywhere, streams, spawns, joins.
  const workers: Record<string, ActorRef[]> = {};
  for (const id of allIds) workers[id] = await call<ActorRef[]>(id, { op: 'workers' });
  for (let i = 0; i < NODES; i++) {
    const setup: SetupMessage = {
      op: 'setup',
      workers,
      streamTo: [
        ...ids.filter((_, j) => j !== i).map((node) => ({ node, direct: true })),
        ...(page ? [{ node: page.id, direct: false }] : []),
      ],
      spawnOn: allIds.filter((id) => id !== ids[i]),
      join: ids.map((_, j) => (j > i ? pairProxy.get(`${i}-${j}`)!.address : '')).filter(Boolean),
    };
    await call(ids[i], setup);
  }
  if (page)
    await call(page.id, {
      op: 'setup',
      workers,
      streamTo: ids.map((node) => ({ node, direct: false })),
      spawnOn: ids,
      join: [],
    } satisfies SetupMessage);
  const meshUp = async (what: string, ms: number) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const peers = await Promise.all(
        ids.map((id) => call<Report>(id, { op: 'report' }).then((r) => r.peers)),
      );
      if (peers.every((p, i) => ids.every((other, j) => j === i || p.includes(other)))) return;
      if (Date.now() > deadline)
        throw new Error(`${what}: the mesh is not whole after ${ms} ms: ${JSON.stringify(peers)}`);
      await sleep(200);
    }
  };
  await meshUp('setup', 30_000);
  const actors = (await Promise.all(allIds.map((id) => call<Report>(id, { op: 'report' })))).reduce(
    (a, r) => a + r.actors,
    0,
  );
  log(
    `mesh up: ${ids.join(', ')}${relayId ? ` + ${relayId} + ${page!.id}` : ''}; ${actors} actors`,
  );

  // 6. Warm up (no cuts), then the memory baseline.
  for (const id of allIds) await call(id, { op: 'start' });
  const warmup = Math.min(10, Math.max(3, SECONDS * 0.1));
  await sleep(warmup * 1000);
  const heapStart: Record<string, number> = {};
  for (const id of ids) heapStart[id] = await call<number>(id, { op: 'memory' });
  log(
    `warm-up done; heap baselines (MB): ${ids.map((id) => (heapStart[id] / 1e6).toFixed(1)).join(', ')}`,
  );

  // 7. Chaos: random cuts on random pairs until the last 20% of the run.
  const chaosUntil = t0 + SECONDS * 1000 * 0.8;
  const cuts: Record<string, number> = { reset: 0, blackhole: 0, 'one-way': 0 };
  const active = new Set<FaultProxy>();
  let progress = Date.now();
  while (Date.now() < chaosUntil) {
    if (active.size < 2) {
      const p = proxies[Math.floor(Math.random() * proxies.length)];
      if (!active.has(p)) {
        active.add(p);
        const r = Math.random();
        const mode: CutMode | 'one-way' = r < 0.4 ? 'reset' : r < 0.75 ? 'blackhole' : 'one-way';
        cuts[mode]++;
        if (mode === 'one-way') p.cutOneWay(Math.random() < 0.5 ? 'forward' : 'backward');
        else p.cut(mode);
        // Short stalls (under the 1.5 s heartbeat timeout) must lose nothing; longer ones drop the link.
        const ms =
          mode === 'reset'
            ? 300 + Math.random() * 3000
            : Math.random() < 0.4
              ? 200 + Math.random() * 800
              : 2000 + Math.random() * 3000;
        setTimeout(() => {
          p.restore();
          active.delete(p);
        }, ms);
      }
    }
    await sleep(400 + Math.random() * 1200);
    if (Date.now() - progress > 30_000) {
      progress = Date.now();
      const rs = await Promise.all(ids.map((id) => call<Report>(id, { op: 'report' })));
      log(
        `chaos: cuts ${JSON.stringify(cuts)}; violations ${rs.reduce((a, r) => a + r.violations, 0)}; calls ${rs.reduce((a, r) => a + r.calls.started, 0)}`,
      );
    }
  }
  for (const p of proxies) p.restore();
  await sleep(200);
  active.clear();
  log(`chaos over: cuts ${JSON.stringify(cuts)}; healing`);
  await meshUp('heal', 30_000);
  // 8. Traffic on the healed mesh (every pair's last epoch), then stop and drain.
  const rest = Math.max(3000, t0 + SECONDS * 1000 - Date.now());
  await sleep(rest);
  for (const id of allIds) await call(id, { op: 'stop' });
  await sleep(DEFAULT_WORKLOAD.callTimeout + 1500); // every call settles by its timeout
  let killed = 0;
  for (const id of allIds) killed += await call<number>(id, { op: 'cleanup' });
  await sleep(1500);
  // Wait (bounded) until the numbers stop moving: everything sent has arrived or never will.
  let reports: Report[] = [];
  for (let k = 0, prev = ''; k < 20; k++) {
    reports = await Promise.all(allIds.map((id) => call<Report>(id, { op: 'report' })));
    const sig = JSON.stringify(reports.map((r) => [r.received, r.calls.settled, r.agent.notFired]));
    if (sig === prev) break;
    prev = sig;
    await sleep(500);
  }
  const heapEnd: Record<string, number> = {};
  for (const id of ids) heapEnd[id] = await call<number>(id, { op: 'memory' });

  // 9. Checks.
  const failures: string[] = [];
  const byId = new Map(reports.map((r) => [r.node, r]));
  let sentTotal = 0;
  let receivedTotal = 0;
  let lastEpochChecked = 0;
  for (const r of reports) {
    for (const [to, perEpoch] of Object.entries(r.sent)) {
      sentTotal += Object.values(perEpoch).reduce((a, b) => a + b, 0);
      const e = r.epoch[to];
      const sentLast = perEpoch[e] ?? 0;
      const got = byId.get(to)?.received[r.node]?.[e] ?? 0;
      lastEpochChecked++;
      if (got !== sentLast)
        failures.push(`${r.node} → ${to}: last epoch ${e}: sent ${sentLast}, received ${got}`);
      for (const [pe, n] of Object.entries(perEpoch)) {
        const g = byId.get(to)?.received[r.node]?.[Number(pe)] ?? 0;
        if (g > n)
          failures.push(`${r.node} → ${to}: epoch ${pe}: received ${g} > sent ${n} (duplicates)`);
      }
    }
    for (const perEpoch of Object.values(r.received))
      receivedTotal += Object.values(perEpoch).reduce((a, b) => a + b, 0);
    if (r.violations)
      failures.push(
        `${r.node}: ${r.violations} order/loss violations, e.g. ${r.violationSamples.slice(0, 3).join('; ')}`,
      );
    if (r.calls.started !== r.calls.settled)
      failures.push(`${r.node}: ${r.calls.started - r.calls.settled} calls left pending`);
    if (r.agent.firedTwice) failures.push(`${r.node}: ${r.agent.firedTwice} monitors fired twice`);
    if (r.agent.notFired)
      failures.push(
        `${r.node}: ${r.agent.notFired} monitors of dead victims never fired (victims ${r.agent.notFiredSamples.join(', ')})`,
      );
    if (r.deadLetters.overflow)
      failures.push(
        `${r.node}: ${r.deadLetters.overflow} overflow drops (the soak's rate should never congest a link)`,
      );
    if (r.localVictims)
      failures.push(`${r.node}: ${r.localVictims} victims still alive after cleanup`);
  }
  for (const id of ids) {
    const bound = heapStart[id] * (1 + MEMORY_MARGIN) + MEMORY_SLACK;
    if (heapEnd[id] > bound)
      failures.push(
        `${id}: retained heap ${(heapEnd[id] / 1e6).toFixed(1)} MB > ${(bound / 1e6).toFixed(1)} MB (start ${(heapStart[id] / 1e6).toFixed(1)} MB + ${MEMORY_MARGIN * 100}% + ${MEMORY_SLACK / 1e6} MB)`,
      );
  }

  // 10. Figures.
  const sum = (f: (r: Report) => number) => reports.reduce((a, r) => a + f(r), 0);
  const codes: Record<string, number> = {};
  for (const r of reports)
    for (const [c, n] of Object.entries(r.calls.failed)) codes[c] = (codes[c] ?? 0) + n;
  const reasons: Record<string, number> = {};
  for (const r of reports)
    for (const [c, n] of Object.entries(r.agent.reasons)) reasons[c] = (reasons[c] ?? 0) + n;
  const spawnFailed: Record<string, number> = {};
  for (const r of reports)
    for (const [c, n] of Object.entries(r.agent.spawnFailed))
      spawnFailed[c] = (spawnFailed[c] ?? 0) + n;
  const linkUps = sum((r) =>
    Object.entries(r.epoch)
      .filter(([n]) => ids.includes(n))
      .reduce((a, [, e]) => a + e, 0),
  );
  console.log('');
  console.log('soak figures');
  console.log(
    `  duration            ${((Date.now() - t0) / 1000).toFixed(0)} s (SOAK_SECONDS=${SECONDS})`,
  );
  console.log(
    `  processes           ${NODES} nodes${WITH_RELAY ? ' + 1 relay (+ a page node over WebSocket in the driver)' : ''}; ${actors} actors at start`,
  );
  console.log(
    `  link cuts           ${JSON.stringify(cuts)}; link-ups seen by senders ${linkUps} (${NODES * (NODES - 1)} at start)`,
  );
  console.log(
    `  stream messages     sent ${sentTotal}, received ${receivedTotal}, lost with a cut link ${sentTotal - receivedTotal}; violations ${sum((r) => r.violations)}; pairs' last epochs complete ${lastEpochChecked - failures.filter((f) => f.includes('last epoch')).length}/${lastEpochChecked}`,
  );
  console.log(
    `  calls               started ${sum((r) => r.calls.started)}, ok ${sum((r) => r.calls.ok)}, failed ${JSON.stringify(codes)}, pending ${sum((r) => r.calls.started - r.calls.settled)}`,
  );
  console.log(
    `  remote spawns       ${sum((r) => r.agent.spawned)} (failed ${JSON.stringify(spawnFailed)}); killed ${sum((r) => r.agent.killed)} + ${killed} at cleanup; DOWN reasons ${JSON.stringify(reasons)}`,
  );
  console.log(
    `  monitors            fired twice ${sum((r) => r.agent.firedTwice)}, never fired ${sum((r) => r.agent.notFired)}, DOWNs of timed-out spawns ${sum((r) => r.agent.unknownDowns)}`,
  );
  console.log(
    `  dead letters        ${JSON.stringify(
      reports.reduce(
        (acc, r) => {
          for (const [k, v] of Object.entries(r.deadLetters)) acc[k] = (acc[k] ?? 0) + v;
          return acc;
        },
        {} as Record<string, number>,
      ),
    )}`,
  );
  console.log(
    `  retained heap (MB)  ${ids.map((id) => `${id} ${(heapStart[id] / 1e6).toFixed(1)} → ${(heapEnd[id] / 1e6).toFixed(1)}`).join('; ')} (allowed +${MEMORY_MARGIN * 100}% + ${MEMORY_SLACK / 1e6} MB)`,
  );
  if (failures.length) {
    console.log('');
    for (const r of reports)
      if (r.deadLetterSamples.length)
        console.log(`  dead letters on ${r.node}: ${r.deadLetterSamples.join(' | ')}`);
    for (const f of failures.slice(0, 40)) console.log(`  FAIL ${f}`);
  }
  console.log(`soak: ${failures.length ? 'FAIL' : 'PASS'}`);
  return failures.length === 0;
}

main()
  .then(async (ok) => {
    await cleanup();
    process.exit(ok ? 0 : 1);
  })
  .catch(async (err: unknown) => {
    console.error(`soak: ERROR ${(err as Error).stack ?? String(err)}`);
    for (const c of children)
      console.error(`--- last output of ${c.name}\n${c.lines.slice(-30).join('\n')}`);
    console.log('soak: FAIL');
    await cleanup();
    process.exit(1);
  });
