// Real nats-server processes for the NATS tests and benchmarks: random loopback ports, JetStream
// in a temporary folder, the client URL read from the ports file the server writes. The binary is
// $NATS_SERVER_PATH (set by scripts/test.mjs through scripts/find-nats.mjs), else
// /usr/sbin/nats-server, else `nats-server` on the PATH.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** One running nats-server. */
export interface NatsServer {
  /** `nats://127.0.0.1:<port>` for clients. */
  url: string;
  /** `nats://127.0.0.1:<port>` for other servers' `--routes` (when started with a cluster port). */
  routeUrl?: string;
  /** `http://127.0.0.1:<port>`: the server's HTTP monitoring endpoint. */
  monitorUrl?: string;
  proc: ChildProcess;
  /** SIGKILL the server and remove its folder (idempotent). */
  kill(): Promise<void>;
}

/** The nats-server binary to run. */
export function natsServerPath(): string {
  if (process.env.NATS_SERVER_PATH) return process.env.NATS_SERVER_PATH;
  if (existsSync('/usr/sbin/nats-server')) return '/usr/sbin/nats-server';
  return 'nats-server';
}

/**
 * Start one server; `routes`: cluster peers to join (starts a cluster listener too). A clustered
 * server runs without JetStream (a JetStream cluster needs every route known at start; the
 * README shows that configuration).
 */
export async function startNatsServer(
  options: { cluster?: boolean; routes?: string[]; name?: string; config?: string } = {},
): Promise<NatsServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'troupe-nats-'));
  const clustered = !!(options.cluster || options.routes?.length);
  const args = [
    '-a',
    '127.0.0.1',
    '-p',
    '-1',
    '-m',
    '-1',
    ...(clustered ? [] : ['-js', '-sd', dir]),
    '--ports_file_dir',
    dir,
  ];
  if (options.name) args.push('-n', options.name);
  if (options.config !== undefined) {
    writeFileSync(path.join(dir, 'server.conf'), options.config);
    args.push('-c', path.join(dir, 'server.conf'));
  }
  if (options.cluster || options.routes?.length) {
    args.push('--cluster_name', 'troupe-test', '--cluster', 'nats://127.0.0.1:-1');
    if (options.routes?.length) args.push('--routes', options.routes.join(','));
  }
  const proc = spawn(natsServerPath(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => {
    if (log.length < 20_000) log += d.toString();
  });
  let dead = false;
  proc.on('exit', () => (dead = true));
  const kill = async (): Promise<void> => {
    if (!dead) {
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (dead) throw new Error(`nats-server exited at start:\n${log}`);
    const file = readdirSync(dir).find((f) => f.endsWith('.ports'));
    if (file) {
      try {
        const ports = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as {
          nats?: string[];
          cluster?: string[];
          monitoring?: string[];
        };
        const url = ports.nats?.[0];
        const wantsCluster = options.cluster || options.routes?.length;
        if (url && (!wantsCluster || ports.cluster?.[0])) {
          const monitorUrl = ports.monitoring?.[0];
          return { url, routeUrl: ports.cluster?.[0], monitorUrl, proc, kill };
        }
      } catch {
        /* being written */
      }
    }
    if (Date.now() > deadline) {
      await kill();
      throw new Error(`nats-server wrote no ports file in 15 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
