// The soak workload one node runs (soak/node.ts in each process; the page node in soak/run.ts).
// Everything is driven by the soak driver through calls to this node's control actor
// `ctl:<node id>`:
//   { op: 'workers' }   → refs of this node's worker actors
//   { op: 'setup', … }  → where to stream, call and spawn; seeds to join
//   { op: 'start' } / { op: 'stop' }   → the traffic: streams, calls, remote spawns and kills
//   { op: 'cleanup' }   → kill every victim living on this node (so every monitor can fire)
//   { op: 'report' }    → the counters below
//   { op: 'memory' }    → retained heap after a full GC (when the process has --expose-gc)
//
// What it checks, as it goes:
// - streams: for every ordered pair (sender node, worker) the messages carry (epoch, seq) where
//   the epoch counts the sender's link-ups to the receiver and seq restarts at 0 per epoch. A
//   worker requires seq to go up by exactly one within an epoch and to start at 0 in a new one:
//   any gap followed by more traffic on the same link is a message lost on a healthy link; any
//   step back is a reorder or a duplicate. Both count as violations.
// - completeness: per (sender, receiver node, epoch) both ends count; the driver compares the
//   counts of each pair's last epoch (a link that stayed up to the end).
// - monitors: the agent spawns victims on other nodes with a monitor and kills some; each
//   monitor must fire exactly once (a killed or finished victim, or `noconnection`).
// - calls: every call started must settle (answer or error), none left pending.
import {
  behaviour,
  isDown,
  type ActorRef,
  type Down,
  type Node,
  type TroupeError,
} from '../core/index.ts';

/** How much traffic one node makes. */
export interface WorkloadOptions {
  /** Worker actors on this node (they receive streams and answer calls). */
  workers: number;
  /** Traffic tick, ms. */
  tickMs: number;
  /** Stream messages per tick to each target node. */
  sendsPerTick: number;
  /** Calls per tick (to random workers anywhere). */
  callsPerTick: number;
  /** Call timeout, ms. */
  callTimeout: number;
  /** Remote spawns (with a monitor) per tick, and how many victims the agent keeps at most. */
  spawnsPerTick: number;
  maxVictims: number;
}

export const DEFAULT_WORKLOAD: WorkloadOptions = {
  workers: 400,
  tickMs: 20,
  sendsPerTick: 12,
  callsPerTick: 2,
  callTimeout: 3000,
  spawnsPerTick: 1,
  maxVictims: 150,
};

/** The workload with the environment's knobs applied: SOAK_WORKERS, SOAK_TICK_MS (a longer tick is a lighter load). */
export function workloadFromEnv(env: Record<string, string | undefined>): WorkloadOptions {
  return {
    ...DEFAULT_WORKLOAD,
    workers: Number(env.SOAK_WORKERS ?? DEFAULT_WORKLOAD.workers),
    tickMs: Number(env.SOAK_TICK_MS ?? DEFAULT_WORKLOAD.tickMs),
  };
}

/** What the driver sends with `setup`. */
export interface SetupMessage {
  op: 'setup';
  /** Every node's workers (this node's too: it calls them, but streams only to other nodes). */
  workers: Record<string, ActorRef[]>;
  /** Nodes to stream to, and whether each is a direct peer (epoch = link-ups) or reached through a relay (epoch = node-ups). */
  streamTo: { node: string; direct: boolean }[];
  /** Nodes the agent spawns victims on. */
  spawnOn: string[];
  /** Addresses to join (redialed forever). */
  join: string[];
}

/** A node's report. */
export interface Report {
  node: string;
  peers: string[];
  /** Stream messages sent per target node and epoch. */
  sent: Record<string, Record<number, number>>;
  /** The current epoch per target node. */
  epoch: Record<string, number>;
  /** Stream messages received per sender node and epoch. */
  received: Record<string, Record<number, number>>;
  violations: number;
  violationSamples: string[];
  calls: { started: number; settled: number; ok: number; failed: Record<string, number> };
  agent: {
    spawned: number;
    spawnFailed: Record<string, number>;
    killed: number;
    /** Monitors whose DOWN came more than once (must be 0). */
    firedTwice: number;
    /** Monitors still waiting for their DOWN (must be 0 after cleanup). */
    notFired: number;
    /** Some of them (victim ref keys), for diagnosis. */
    notFiredSamples: string[];
    /** DOWNs for victims whose spawn had failed (a timed-out spawn that happened anyway). */
    unknownDowns: number;
    reasons: Record<string, number>;
  };
  deadLetters: Record<string, number>;
  /** A few dead letters other than stream drops (`reason to`), for diagnosis. */
  deadLetterSamples: string[];
  actors: number;
  localVictims: number;
}

type Stream = { i: string; e: number; s: number };
const isStream = (m: unknown): m is Stream =>
  typeof m === 'object' && m !== null && 'i' in m && 'e' in m && 's' in m;

/** Install the workload on `node`: behaviours, workers, the agent and the control actor `ctl:<id>`. */
export function installWorkload(node: Node, opts: WorkloadOptions = DEFAULT_WORKLOAD): void {
  const report: Report = {
    node: node.id,
    peers: [],
    sent: {},
    epoch: {},
    received: {},
    violations: 0,
    violationSamples: [],
    calls: { started: 0, settled: 0, ok: 0, failed: {} },
    agent: {
      spawned: 0,
      spawnFailed: {},
      killed: 0,
      firedTwice: 0,
      notFired: 0,
      notFiredSamples: [],
      unknownDowns: 0,
      reasons: {},
    },
    deadLetters: {},
    deadLetterSamples: [],
    actors: 0,
    localVictims: 0,
  };
  const violation = (what: string): void => {
    report.violations++;
    if (report.violationSamples.length < 20) report.violationSamples.push(what);
  };
  node.events.on('deadLetter', (e) => {
    report.deadLetters[e.reason] = (report.deadLetters[e.reason] ?? 0) + 1;
    if (report.deadLetterSamples.length < 10)
      report.deadLetterSamples.push(
        `${e.reason} ${e.to} ${JSON.stringify(e.message)?.slice(0, 80)}`,
      );
  });

  // --- Workers: check streams, answer calls.
  const workers: ActorRef[] = [];
  for (let k = 0; k < opts.workers; k++) {
    workers.push(
      node.spawn(async (self) => {
        const last = new Map<string, { e: number; s: number }>();
        for (;;) {
          const m = await self.receive();
          if (!isStream(m)) {
            self.reply(m);
            continue;
          }
          const st = last.get(m.i);
          const rec = (report.received[m.i] ??= {});
          rec[m.e] = (rec[m.e] ?? 0) + 1;
          if (st === undefined) {
            if (m.s !== 0)
              violation(`${m.i}→${self.ref.key}: first message e${m.e} s${m.s} (expected s0)`);
          } else if (m.e === st.e) {
            if (m.s !== st.s + 1)
              violation(`${m.i}→${self.ref.key}: e${m.e} s${m.s} after s${st.s}`);
          } else if (m.e > st.e) {
            if (m.s !== 0) violation(`${m.i}→${self.ref.key}: new epoch e${m.e} starts at s${m.s}`);
          } else {
            violation(`${m.i}→${self.ref.key}: epoch e${m.e} after e${st.e}`);
          }
          last.set(m.i, { e: m.e, s: m.s });
        }
      }),
    );
  }

  // --- Victims: spawned here by other nodes' agents; each ends on its own after lifeMs, or is killed.
  const localVictims = new Set<ActorRef>();
  node.define('soak-victim', undefined, async (self, args: { lifeMs: number }) => {
    localVictims.add(self.ref);
    try {
      await self.receive(() => false, { timeout: args.lifeMs });
    } catch {
      /* its life is over */
    } finally {
      localVictims.delete(self.ref);
    }
    return 'lived';
  });

  // --- Epochs per target: link-ups (direct peers) or node-ups (reached through a relay).
  const direct = new Set<string>();
  const epoch = new Map<string, number>();
  let streamTo: SetupMessage['streamTo'] = [];
  let allWorkers: Record<string, ActorRef[]> = {};
  let spawnTargets: string[] = [];
  const bump = (n: string) => epoch.set(n, (epoch.get(n) ?? 0) + 1);
  node.events.on('linkUp', (e) => {
    direct.add(e.node);
    if (streamTo.some((t) => t.node === e.node && t.direct)) bump(e.node);
  });
  node.events.on('linkDown', (e) => direct.delete(e.node));
  node.events.on('nodeUp', (e) => {
    if (streamTo.some((t) => t.node === e.node && !t.direct)) bump(e.node);
  });

  // --- Traffic.
  const seqs = new Map<string, { e: number; s: number }>();
  const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)];
  let running = false;
  let timer: ReturnType<typeof setInterval> | undefined;

  const tick = (): void => {
    for (const t of streamTo) {
      const up = t.direct ? direct.has(t.node) : node.isReachable(t.node);
      const targets = allWorkers[t.node];
      if (!up || !targets?.length) continue;
      const e = epoch.get(t.node) ?? 0;
      const sent = (report.sent[t.node] ??= {});
      for (let k = 0; k < opts.sendsPerTick; k++) {
        const w = pick(targets);
        let st = seqs.get(w.key);
        if (st === undefined || st.e !== e) seqs.set(w.key, (st = { e, s: 0 }));
        node.send(w, { i: node.id, e, s: st.s++ } satisfies Stream);
        sent[e] = (sent[e] ?? 0) + 1;
      }
    }
    const everyone = Object.values(allWorkers).flat();
    for (let k = 0; k < opts.callsPerTick && everyone.length; k++) {
      report.calls.started++;
      node.call(pick(everyone), { ping: k }, { timeout: opts.callTimeout }).then(
        () => {
          report.calls.ok++;
          report.calls.settled++;
        },
        (err: TroupeError) => {
          report.calls.failed[err.code] = (report.calls.failed[err.code] ?? 0) + 1;
          report.calls.settled++;
        },
      );
    }
    node.send(agent, 'tick');
  };

  // --- The agent: remote spawns with a monitor, kills, DOWN bookkeeping.
  const fired = new Map<string, number>();
  const spawned = new Set<string>();
  const live = new Map<string, ActorRef>();
  const agent = node.spawn(
    behaviour({
      schema: undefined,
      handle: (m: unknown, _s: undefined, ctx) => {
        if (m !== 'tick' || !running || !spawnTargets.length) return;
        for (let k = 0; k < opts.spawnsPerTick && live.size < opts.maxVictims; k++) {
          const lifeMs =
            Math.random() < 0.5 ? 200 + Math.random() * 2000 : 20_000 + Math.random() * 40_000;
          ctx
            .spawnOn(
              pick(spawnTargets),
              'soak-victim',
              { lifeMs },
              { monitor: true, timeout: opts.callTimeout },
            )
            .then(
              (ref) => {
                report.agent.spawned++;
                spawned.add(ref.key);
                if (!fired.has(ref.key)) live.set(ref.key, ref);
              },
              (err: TroupeError) => {
                report.agent.spawnFailed[err.code] = (report.agent.spawnFailed[err.code] ?? 0) + 1;
              },
            );
        }
        if (live.size > opts.maxVictims / 2 && Math.random() < 0.5) {
          const [key, ref] = pick([...live]);
          live.delete(key);
          ctx.exit(ref, 'kill');
          report.agent.killed++;
        }
      },
      info: (msg) => {
        if (!isDown(msg)) return;
        const d = msg as Down;
        const key = d.ref.key;
        fired.set(key, (fired.get(key) ?? 0) + 1);
        live.delete(key);
        const r = typeof d.reason === 'string' ? d.reason : 'error';
        report.agent.reasons[r] = (report.agent.reasons[r] ?? 0) + 1;
      },
    }),
  );

  // --- Control.
  node.spawn(
    async (self) => {
      for (;;) {
        const m = (await self.receive()) as Partial<Omit<SetupMessage, 'op'>> & { op: string };
        switch (m.op) {
          case 'workers':
            self.reply(workers);
            break;
          case 'setup':
            allWorkers = m.workers!;
            streamTo = m.streamTo!;
            spawnTargets = m.spawnOn!;
            for (const t of streamTo)
              if (!epoch.has(t.node))
                epoch.set(
                  t.node,
                  t.direct ? (direct.has(t.node) ? 1 : 0) : node.isReachable(t.node) ? 1 : 0,
                );
            for (const address of m.join ?? []) void node.join(address).catch(() => {});
            self.reply('ok');
            break;
          case 'start':
            running = true;
            timer ??= setInterval(tick, opts.tickMs);
            self.reply('started');
            break;
          case 'stop':
            running = false;
            if (timer) clearInterval(timer);
            timer = undefined;
            self.reply('stopped');
            break;
          case 'cleanup': {
            const n = localVictims.size;
            for (const v of [...localVictims]) node.kill(v);
            self.reply(n);
            break;
          }
          case 'memory': {
            const gc = (globalThis as { gc?: () => void }).gc;
            gc?.();
            gc?.();
            self.reply(process.memoryUsage().heapUsed);
            break;
          }
          case 'report': {
            report.peers = node.peers().sort();
            report.epoch = Object.fromEntries(epoch);
            report.actors = node.actorCount;
            report.localVictims = localVictims.size;
            let twice = 0;
            let notFired = 0;
            report.agent.notFiredSamples = [];
            for (const key of spawned) {
              const f = fired.get(key) ?? 0;
              if (f > 1) twice++;
              if (f === 0) {
                notFired++;
                if (report.agent.notFiredSamples.length < 10)
                  report.agent.notFiredSamples.push(key);
              }
            }
            report.agent.firedTwice = twice;
            report.agent.notFired = notFired;
            report.agent.unknownDowns = [...fired.keys()].filter((k) => !spawned.has(k)).length;
            self.reply(report);
            break;
          }
          default:
            self.reply(`unknown op ${m.op}`);
        }
      }
    },
    { name: `ctl:${node.id}` },
  );
}
