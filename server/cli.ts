#!/usr/bin/env node
// The `troupe` command: start a cluster node, and the Node demos (ping-pong across processes, a
// logger written to by name, a synchronous request with a timeout, a remote parallel map).
// See `troupe help`. Only node: built-ins and the small log module load before the arguments
// are parsed: `--help` and `--version` never load the runtime (zod, the core, TCP).
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import type { Node, ActorRef, TroupeError, ErrorCode } from '../core/index.ts';
import {
  createCliLog,
  LOG_FORMATS,
  logNodeEvents,
  type CliLog,
  type LogFormat,
} from './cli-log.ts';
import { SECRET_REQUIRED, seedAddress, secretFrom } from './cli-args.ts';

const HELP = `troupe — a universal actor framework

  troupe node  --name NAME --listen HOST:PORT --secret S [--seed HOST:PORT …]
               start a cluster node; --seed joins through any member (repeatable)
  troupe pong  --listen HOST:PORT --secret S [--name pong]
               a node with an actor registered as "pong"
  troupe ping  --seed HOST:PORT --secret S [--count 5]
               join, find "pong" by name, play ping-pong across the processes
  troupe logger --listen HOST:PORT --secret S
               a node with an actor registered as "logger" that prints what it gets
  troupe log   --seed HOST:PORT --secret S MESSAGE…
               write to "logger" by name from another process
  troupe request --seed HOST:PORT --secret S [--ms 200] [--timeout 1000]
               a synchronous request (call with a timeout) to a remote "sleeper"
  troupe pmap  --seed HOST:PORT --secret S [--fn fib] [--n 30]
               spawn a parallel map on the cluster, monitor it, receive its DOWN carrying the result
  troupe relay --listen HOST:PORT --secret S [--seed HOST:PORT …] [--tcp-listen HOST:PORT]
               a relay for browsers: WebSocket /troupe, PeerServer /peerjs, GET /troupe/credential
               for allowed origins; a member of the TCP cluster (troupe relay --help for all options)

Common options:
  --secret S          the cluster secret (or set TROUPE_SECRET; --secret-env NAME reads another variable)
  --heartbeat-timeout MS   declare a silent peer down after MS (default 2500)
  --no-auto-connect   only keep the links to seeds and to those who dial in (no mesh)
  --quiet             print less
  --log text|json     text lines (default), or one JSON object per line for machines
  --version           print the version
  --help, -h          this text

Exit codes: 0 done; 1 the command failed (a failed request or call, no such actor, a failed
parallel map); 2 usage (unknown command or option, missing secret); 3 timeout; 4 refused by the
cluster (wrong secret: UNAUTHORIZED, or VERSION_MISMATCH); 5 no seed reachable.
`;

/**
 * The exit codes of `troupe` (also in the README): scripts can tell a refused secret from a timeout
 * from an unreachable seed.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, timeout: 3, refused: 4, unreachable: 5 } as const;

/** The exit code for a failure with this TroupeError code. */
export function exitCodeFor(code: ErrorCode | undefined): number {
  switch (code) {
    case 'TIMEOUT':
      return EXIT.timeout;
    case 'UNAUTHORIZED':
    case 'VERSION_MISMATCH':
      return EXIT.refused;
    case 'TRANSPORT_CLOSED':
    case 'NODE_DOWN':
      return EXIT.unreachable;
    default:
      return EXIT.failed;
  }
}

const options = {
  name: { type: 'string' },
  listen: { type: 'string' },
  secret: { type: 'string' },
  'secret-env': { type: 'string' },
  seed: { type: 'string', multiple: true },
  count: { type: 'string' },
  ms: { type: 'string' },
  timeout: { type: 'string' },
  fn: { type: 'string' },
  n: { type: 'string' },
  'heartbeat-timeout': { type: 'string' },
  quiet: { type: 'boolean' },
  'no-auto-connect': { type: 'boolean' },
  'tcp-listen': { type: 'string' },
  'browser-secret': { type: 'string' },
  'allow-origin': { type: 'string', multiple: true },
  'credential-ttl': { type: 'string' },
  'peer-key': { type: 'string' },
  'public-host': { type: 'string' },
  log: { type: 'string' },
  version: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Opts = ReturnType<
  typeof parseArgs<{ options: typeof options; allowPositionals: true }>
>['values'];

/** Where the output goes; text until `--log` is parsed. */
let log: CliLog = createCliLog('text');

/** Print `message` and exit with `code` (default: usage). */
function fail(
  message: string,
  code: number = EXIT.usage,
  fields: Record<string, unknown> = {},
): never {
  log.error(message, { exit: code, ...fields });
  process.exit(code);
}

/** Exit with the code of a TroupeError (or 1), after printing what failed. */
function failWith(what: string, err: unknown): never {
  const code = (err as TroupeError | undefined)?.code;
  const message = err instanceof Error ? err.message : String(err);
  fail(
    `${what}: ${code ? `${code} ${message}` : message}`,
    exitCodeFor(code),
    code ? { code } : {},
  );
}

/** The package's version, from the package.json above this file (sources or dist/). */
function version(): string {
  for (const up of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'troupe' && pkg.version) return pkg.version;
    } catch {
      // not there: try one level up
    }
  }
  return 'unknown';
}

function secretOf(o: Opts): string {
  const secret = secretFrom(o);
  if (!secret) fail(SECRET_REQUIRED);
  return secret;
}

function int(v: string | undefined, fallback: number, what: string): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) fail(`--${what} must be a non-negative integer`);
  return n;
}

/** What a command needs beyond node: built-ins, loaded once the arguments are known. */
async function loadRuntime() {
  const [{ z }, core, { createTcpTransport }, behaviours] = await Promise.all([
    import('zod'),
    import('../core/index.ts'),
    import('../adapters/tcp.ts'),
    import('./behaviours.ts'),
  ]);
  return { z, core, createTcpTransport, behaviours };
}
type Runtime = Awaited<ReturnType<typeof loadRuntime>>;

/** How long a one-shot command (ping, log, request, pmap) waits for a seed to answer. */
const JOIN_WAIT_MS = 10_000;

/**
 * Start a node with the TCP transport, the standard behaviours, seeds and logging. A refused
 * handshake (wrong secret, other protocol version) ends the process at once with exit code 4;
 * with `client`, so does finding no seed reachable (exit 5), instead of waiting for names that
 * will never appear.
 */
async function startNode(
  rt: Runtime,
  o: Opts,
  defaultName: string | undefined,
  client = false,
): Promise<Node> {
  const quiet = !!o.quiet;
  const node = rt.core.createNode({
    name: o.name ?? defaultName,
    secret: secretOf(o),
    transports: [rt.createTcpTransport({ listen: o.listen ?? '127.0.0.1:0' })],
    heartbeatTimeout: o['heartbeat-timeout']
      ? int(o['heartbeat-timeout'], 2500, 'heartbeat-timeout')
      : undefined,
    autoConnect: !o['no-auto-connect'],
  });
  rt.behaviours.defineStandardBehaviours(node, (line) => log.info(line));
  logNodeEvents(node, log, quiet, true);
  const addrs = await node.listen();
  // Tests and scripts read this line.
  log.listening(node.id, addrs);
  const joins = (o.seed ?? []).map(async (seed) => {
    const address = seedAddress(seed);
    try {
      const peer = await node.join(address);
      if (!quiet)
        log.info(`joined through ${peer} (${address})`, { event: 'joined', node: peer, address });
    } catch (err) {
      const e = err as TroupeError;
      log.info(`cannot join ${address}: ${e.code} ${e.message}`, {
        event: 'joinFailed',
        address,
        code: e.code,
      });
      // A wrong secret or protocol never heals by waiting.
      if (e.code === 'UNAUTHORIZED' || e.code === 'VERSION_MISMATCH')
        failWith(`refused by ${address}`, e);
      throw err;
    }
  });
  if (client && joins.length > 0) {
    // join() redials an unreachable seed forever; a one-shot command gives up after a while.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const failure = await Promise.race([
      Promise.any(joins).then(
        () => undefined,
        (e: AggregateError) => e.errors[0] as unknown,
      ),
      new Promise<unknown>((resolve) => {
        timer = setTimeout(
          () =>
            resolve(
              new rt.core.TroupeError(
                'TRANSPORT_CLOSED',
                `no seed answered within ${JOIN_WAIT_MS} ms`,
              ),
            ),
          JOIN_WAIT_MS,
        );
      }),
    ]);
    clearTimeout(timer);
    if (failure !== undefined) failWith('no seed reachable', failure);
  } else {
    for (const j of joins) j.catch(() => {}); // logged above; a server keeps running
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: shutting down`, { event: 'shutdown', signal });
    node.shutdown().then(() => process.exit(EXIT.ok));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  return node;
}

/** Wait until `name` is visible in the registry (replication is asynchronous). */
async function whereis(node: Node, name: string, ms = 10_000): Promise<ActorRef> {
  const until = Date.now() + ms;
  for (;;) {
    const ref = node.whereis(name);
    if (ref) return ref;
    if (Date.now() > until)
      fail(`no actor is registered as "${name}" in the cluster after ${ms} ms`, EXIT.failed, {
        code: 'NO_ACTOR',
      });
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    fail(`${(err as Error).message} (see troupe --help)`);
  }
  const { values: o, positionals } = parsed;
  if (o.log !== undefined) {
    if (!(LOG_FORMATS as readonly string[]).includes(o.log))
      fail(`--log must be one of ${LOG_FORMATS.join(', ')}`);
    log = createCliLog(o.log as LogFormat);
  }
  if (o.version) {
    log.out(version(), { version: version() });
    return;
  }
  const [command, ...rest] = positionals;
  if (command === 'relay' && o.help) {
    const { RELAY_HELP } = await import('./relay.ts');
    console.log(RELAY_HELP);
    return;
  }
  if (o.help || !command || command === 'help') {
    console.log(HELP);
    return;
  }
  const known = ['node', 'pong', 'ping', 'logger', 'log', 'request', 'pmap', 'relay'];
  if (!known.includes(command)) fail(`unknown command "${command}" (see troupe help)`);
  if (command === 'relay') {
    const { runRelay } = await import('./relay.ts');
    await runRelay(o, argv, log);
    return;
  }
  const rt = await loadRuntime();
  const { z } = rt;
  switch (command) {
    case 'node':
      await startNode(rt, o, undefined);
      return;

    case 'pong': {
      const node = await startNode(rt, o, 'pong-node');
      node.spawn(
        async (self) => {
          for (;;) {
            const m = await self.receive(
              z.object({ ping: z.number(), from: z.custom<ActorRef>() }),
            );
            log.info(`pong: got ping ${m.ping} from ${m.from.node}`, {
              event: 'ping',
              ping: m.ping,
              from: m.from.node,
            });
            m.from.send({ pong: m.ping });
          }
        },
        { name: o.name === undefined ? 'pong' : `${o.name}-pong` },
      );
      return;
    }

    case 'ping': {
      const node = await startNode(rt, { ...o, quiet: true }, `ping-${process.pid}`, true);
      const pong = await whereis(node, 'pong');
      const count = int(o.count, 5, 'count');
      const player = node.spawn(async (self) => {
        for (let i = 1; i <= count; i++) {
          const t0 = performance.now();
          pong.send({ ping: i, from: self.ref });
          const m = await self.receive(z.object({ pong: z.number() }), { timeout: 5000 });
          const ms = performance.now() - t0;
          log.info(`ping: got pong ${m.pong} from ${pong.node} in ${ms.toFixed(2)} ms`, {
            event: 'pong',
            pong: m.pong,
            from: pong.node,
            ms,
          });
        }
      });
      const down = await node.waitDown(player);
      await node.shutdown();
      if (down.reason !== 'normal')
        failWith('ping failed', (down.reason as { error?: unknown }).error ?? down.reason);
      process.exit(EXIT.ok);
    }

    case 'logger': {
      const node = await startNode(rt, o, 'logger-node');
      await node.spawn(node.id, 'logger', { name: 'logger' });
      log.info('logger registered as "logger"', { event: 'registered', name: 'logger' });
      return;
    }

    case 'log': {
      const node = await startNode(rt, { ...o, quiet: true }, `log-${process.pid}`, true);
      await whereis(node, 'logger');
      let count: unknown;
      try {
        count = await node.call('logger', rest.join(' ') || 'hello from another process', {
          timeout: 5000,
        });
      } catch (err) {
        failWith('log failed', err);
      }
      log.info(`logger has now received ${String(count)} message(s)`, { event: 'logged', count });
      await node.shutdown();
      process.exit(EXIT.ok);
    }

    case 'request': {
      const node = await startNode(rt, { ...o, quiet: true }, `request-${process.pid}`, true);
      const target = (await firstPeer(node)) ?? node.id;
      const ms = int(o.ms, 200, 'ms');
      const timeout = int(o.timeout, 1000, 'timeout');
      let exit: number = EXIT.ok;
      try {
        const sleeper = await node.spawn(target, 'sleeper');
        const answer = await sleeper.call({ ms }, { timeout });
        log.info(`request answered: ${String(answer)}`, { event: 'answered', answer });
      } catch (err) {
        const e = err as TroupeError;
        log.info(`request failed: ${e.code} — ${e.message}`, { event: 'failed', code: e.code });
        exit = exitCodeFor(e.code);
      }
      await node.shutdown();
      process.exit(exit);
    }

    case 'pmap': {
      const { MAP_FUNCTIONS } = rt.behaviours;
      const node = await startNode(rt, { ...o, quiet: true }, `pmap-${process.pid}`, true);
      const first = await firstPeer(node);
      await new Promise((r) => setTimeout(r, 300)); // let gossip connect the rest of the cluster
      const nodes = node.peers().length ? node.peers() : [node.id];
      const fn = (o.fn ?? 'fib') as keyof typeof MAP_FUNCTIONS;
      if (!(fn in MAP_FUNCTIONS))
        fail(`--fn must be one of ${Object.keys(MAP_FUNCTIONS).join(', ')}`);
      const n = int(o.n, 30, 'n');
      const items = Array.from({ length: n }, (_, i) => i + 1);
      const t0 = performance.now();
      const boss = node.spawn(async (self) => {
        // Erlangen's pattern: spawn remotely with a monitor, receive the DOWN carrying the result.
        const ref = await self.spawnOn(
          first ?? node.id,
          'pmap',
          { fn, items, nodes },
          { monitor: true },
        );
        const { reason, result } = await self.receive(rt.core.downOf(ref), { timeout: 60_000 });
        return { reason, result };
      });
      const down = await node.waitDown(boss);
      const { reason, result } = (down.result ?? {}) as { reason?: unknown; result?: number[] };
      if (reason !== 'normal')
        log.info(`pmap failed: ${JSON.stringify(reason ?? down.reason)}`, { event: 'failed' });
      else
        log.info(
          `pmap ${fn} over 1..${n} on ${nodes.join(', ')} in ${(performance.now() - t0).toFixed(1)} ms: ${JSON.stringify(result)}`,
          { event: 'done', result },
        );
      await node.shutdown();
      process.exit(reason === 'normal' ? EXIT.ok : EXIT.failed);
    }
  }
}

async function firstPeer(node: Node, ms = 10_000): Promise<string | undefined> {
  const until = Date.now() + ms;
  while (node.peers().length === 0) {
    if (Date.now() > until) return undefined;
    await new Promise((r) => setTimeout(r, 20));
  }
  return node.peers()[0];
}

main(process.argv.slice(2)).catch((err: unknown) => failWith('error', err));
