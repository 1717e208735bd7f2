// The `troupe` command: start a cluster node, and the Node demos (ping-pong across processes, a
// logger written to by name, a synchronous request with a timeout, a remote parallel map).
// See `troupe help`.
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { createNode, downOf, TroupeError, type Node, type ActorRef } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { defineStandardBehaviours, MAP_FUNCTIONS } from './behaviours.ts';

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
`;

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
  help: { type: 'boolean', short: 'h' },
} as const;

type Opts = ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>['values'];

function fail(message: string): never {
  console.error(`troupe: ${message}`);
  process.exit(2);
}

function secretOf(o: Opts): string {
  const fromEnv = o['secret-env'] ? process.env[o['secret-env']] : process.env.TROUPE_SECRET;
  const secret = o.secret ?? fromEnv;
  if (!secret) fail('a cluster secret is required: --secret S, or the TROUPE_SECRET environment variable');
  return secret;
}

function int(v: string | undefined, fallback: number, what: string): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) fail(`--${what} must be a non-negative integer`);
  return n;
}

const stamp = () => new Date().toISOString().slice(11, 23);

/** Start a node with the TCP transport, the standard behaviours, seeds and logging. */
export async function startNode(o: Opts, defaultName?: string): Promise<Node> {
  const quiet = !!o.quiet;
  const log = (line: string) => console.log(`[${stamp()}] ${line}`);
  const node = createNode({
    name: o.name ?? defaultName,
    secret: secretOf(o),
    transports: [createTcpTransport({ listen: o.listen ?? '127.0.0.1:0' })],
    heartbeatTimeout: o['heartbeat-timeout'] ? int(o['heartbeat-timeout'], 2500, 'heartbeat-timeout') : undefined,
    autoConnect: !o['no-auto-connect'],
  });
  defineStandardBehaviours(node, log);
  node.events.on('linkUp', (e) => !quiet && log(`link up: ${e.node} (${e.label})`));
  node.events.on('linkDown', (e) => !quiet && log(`link down: ${e.node} (${e.reason})`));
  node.events.on('nodeDown', (e) => !quiet && log(`node down: ${e.node} (${e.reason})`));
  node.events.on('protocolError', (e) => log(`refused: ${e.error.code} ${e.error.message}`));
  node.events.on('actorCrashed', (e) => !quiet && log(`actor ${e.ref.key} crashed: ${e.reason.name}: ${e.reason.message}`));
  const addrs = await node.listen();
  // Tests and scripts read this line.
  console.log(`listening ${node.id} ${addrs.join(' ')}`);
  for (const seed of o.seed ?? []) {
    const address = seed.includes('://') ? seed : `tcp://${seed}`;
    node.join(address).then(
      (peer) => !quiet && log(`joined through ${peer} (${address})`),
      (err: TroupeError) => log(`cannot join ${address}: ${err.code} ${err.message}`),
    );
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: shutting down`);
    node.shutdown().then(() => process.exit(0));
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
    if (Date.now() > until) fail(`no actor is registered as "${name}" in the cluster after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main(argv: string[]): Promise<void> {
  const { values: o, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
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
  const log = (line: string) => console.log(`[${stamp()}] ${line}`);
  switch (command) {
    case 'node':
      await startNode(o);
      return;

    case 'pong': {
      const node = await startNode(o, 'pong-node');
      node.spawn(
        async (self) => {
          for (;;) {
            const m = await self.receive(z.object({ ping: z.number(), from: z.custom<ActorRef>() }));
            log(`pong: got ping ${m.ping} from ${m.from.node}`);
            m.from.send({ pong: m.ping });
          }
        },
        { name: o.name === undefined ? 'pong' : `${o.name}-pong` },
      );
      return;
    }

    case 'ping': {
      const node = await startNode({ ...o, quiet: true }, `ping-${process.pid}`);
      const pong = await whereis(node, 'pong');
      const count = int(o.count, 5, 'count');
      const player = node.spawn(async (self) => {
        for (let i = 1; i <= count; i++) {
          const t0 = performance.now();
          pong.send({ ping: i, from: self.ref });
          const m = await self.receive(z.object({ pong: z.number() }), { timeout: 5000 });
          log(`ping: got pong ${m.pong} from ${pong.node} in ${(performance.now() - t0).toFixed(2)} ms`);
        }
      });
      const down = await node.waitDown(player);
      await node.shutdown();
      process.exit(down.reason === 'normal' ? 0 : 1);
    }

    case 'logger': {
      const node = await startNode(o, 'logger-node');
      await node.spawn(node.id, 'logger', { name: 'logger' });
      log('logger registered as "logger"');
      return;
    }

    case 'log': {
      const node = await startNode({ ...o, quiet: true }, `log-${process.pid}`);
      await whereis(node, 'logger');
      const count = await node.call('logger', rest.join(' ') || 'hello from another process', { timeout: 5000 });
      log(`logger has now received ${count} message(s)`);
      await node.shutdown();
      process.exit(0);
    }

    case 'request': {
      const node = await startNode({ ...o, quiet: true }, `request-${process.pid}`);
      const target = (await firstPeer(node)) ?? node.id;
      const sleeper = await node.spawn(target, 'sleeper');
      const ms = int(o.ms, 200, 'ms');
      const timeout = int(o.timeout, 1000, 'timeout');
      try {
        const answer = await sleeper.call({ ms }, { timeout });
        log(`request answered: ${String(answer)}`);
      } catch (err) {
        log(`request failed: ${(err as TroupeError).code} — ${(err as Error).message}`);
      }
      await node.shutdown();
      process.exit(0);
    }

    case 'pmap': {
      const node = await startNode({ ...o, quiet: true }, `pmap-${process.pid}`);
      const first = await firstPeer(node);
      await new Promise((r) => setTimeout(r, 300)); // let gossip connect the rest of the cluster
      const nodes = node.peers().length ? node.peers() : [node.id];
      const fn = (o.fn ?? 'fib') as keyof typeof MAP_FUNCTIONS;
      if (!(fn in MAP_FUNCTIONS)) fail(`--fn must be one of ${Object.keys(MAP_FUNCTIONS).join(', ')}`);
      const n = int(o.n, 30, 'n');
      const items = Array.from({ length: n }, (_, i) => i + 1);
      const t0 = performance.now();
      const boss = node.spawn(async (self) => {
        // Erlangen's pattern: spawn remotely with a monitor, receive the DOWN carrying the result.
        const ref = await self.spawnOn(first ?? node.id, 'pmap', { fn, items, nodes }, { monitor: true });
        const { reason, result } = await self.receive(downOf(ref), { timeout: 60_000 });
        return { reason, result };
      });
      const down = await node.waitDown(boss);
      const { reason, result } = (down.result ?? {}) as { reason?: unknown; result?: number[] };
      if (reason !== 'normal') log(`pmap failed: ${JSON.stringify(reason ?? down.reason)}`);
      else log(`pmap ${fn} over 1..${n} on ${nodes.join(', ')} in ${(performance.now() - t0).toFixed(1)} ms: ${JSON.stringify(result)}`);
      await node.shutdown();
      process.exit(reason === 'normal' ? 0 : 1);
    }

    case 'relay': {
      const { runRelay } = await import('./relay.ts').catch(() => fail('the relay is not part of this build'));
      await runRelay(o, argv);
      return;
    }

    default:
      fail(`unknown command "${command}" (see troupe help)`);
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

main(process.argv.slice(2)).catch((err) => {
  console.error(`troupe: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
