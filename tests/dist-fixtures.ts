// Fixtures of the discovery / master-worker / distribution / parallel-map tests: real child
// processes running the demo-node/dist-*.ts scripts (with tsx), each test on its own multicast
// group, port and cluster name on 127.0.0.1, so test files running at once never hear each
// other. Everything started through `useDist()` is killed (SIGKILL) after each test; a failed
// test prints every child's output.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import { createNode, type Node } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { multicast, type MulticastOptions, type MulticastDiscovery } from '../adapters/multicast.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const PRELOAD = new URL('./helpers/exit-with-parent.mjs', import.meta.url).href;

/** A fresh multicast group/port/cluster for one test (loopback only). */
export function freshGroup(): Required<Pick<MulticastOptions, 'group' | 'port' | 'cluster' | 'interface' | 'interval'>> {
  const b = randomBytes(3);
  return {
    group: `239.255.${b[0]}.${1 + (b[1] % 250)}`,
    port: 20_000 + ((b[1] << 8) | b[2]) % 40_000,
    cluster: `t-${randomBytes(4).toString('hex')}`,
    interface: '127.0.0.1',
    interval: 250,
  };
}

export type Group = ReturnType<typeof freshGroup>;

/** The command-line flags that put a dist-* script on `group`. */
export function groupArgs(g: Group, secret: string): string[] {
  return ['--secret', secret, '--cluster', g.cluster, '--group', g.group, '--mport', String(g.port), '--interface', g.interface, '--interval', String(g.interval)];
}

/** One child process running a dist-* script. */
export class Proc {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly lines: string[] = [];
  id = '';
  address = '';
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters = new Set<() => void>();

  constructor(name: string, script: string, args: string[]) {
    this.name = name;
    this.proc = spawn(process.execPath, ['--import', 'tsx', '--import', PRELOAD, script, ...args], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, TROUPE_SECRET: '', NODE_OPTIONS: '' },
    });
    this.exited = new Promise((resolve) =>
      this.proc.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
        this.#wake();
      }),
    );
    for (const [stream, prefix] of [[this.proc.stdout!, ''], [this.proc.stderr!, '! ']] as const) {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const parts = (rest + chunk).split('\n');
        rest = parts.pop()!;
        for (const l of parts) this.lines.push(prefix + l);
        if (parts.length) this.#wake();
      });
    }
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  output(): string {
    return this.lines.map((l) => `  [${this.name}] ${l}`).join('\n');
  }

  /** The first line matching `re` (from line `from` on); fails after `ms` or when the process ends first. */
  waitForLine(re: RegExp, what: string, ms = 10_000, from = 0): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const line = this.lines.slice(from).find((l) => re.test(l));
        if (line !== undefined) return done(() => resolve(line));
        if (this.exit) done(() => reject(new Error(`${this.name} exited (${JSON.stringify(this.exit)}) before ${what}\n${this.output()}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`${this.name}: no ${what} within ${ms} ms\n${this.output()}`))), ms);
      const done = (fn: () => void): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        fn();
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Send `signal` and wait (bounded) for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL', ms = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.exit) return this.exit;
    this.proc.kill(signal);
    return within(this.exited, `${this.name} to exit after ${signal}`, ms);
  }
}

const running = new Set<Proc>();
process.once('exit', () => {
  for (const p of running) if (!p.exit) p.proc.kill('SIGKILL');
});

/** Factories whose products are cleaned up after each test. */
export function useDist(): {
  /** Start `demo-node/<script>` with `args`; resolves once it printed `listening ID ADDR`. */
  start(name: string, script: string, args: string[]): Promise<Proc>;
  /** An in-process node with TCP on 127.0.0.1 and multicast discovery on `group`. */
  node(name: string, group: Group, secret: string): Promise<{ node: Node; discovery: MulticastDiscovery }>;
  readonly procs: Proc[];
} {
  const procs: Proc[] = [];
  const nodes: Node[] = [];
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail') {
      for (const p of procs) console.error(`--- output of ${p.name} (${JSON.stringify(p.exit ?? 'running')})\n${p.output()}`);
    }
    await Promise.all(
      procs.splice(0).map(async (p) => {
        await p.kill('SIGKILL').catch(() => {});
        running.delete(p);
      }),
    );
    await Promise.all(nodes.splice(0).map((n) => within(n.shutdown(), `shutdown of ${n.id}`, 10_000).catch(() => {})));
  });
  return {
    procs,
    async start(name, script, args) {
      const p = new Proc(name, `demo-node/${script}`, args);
      procs.push(p);
      running.add(p);
      const line = await p.waitForLine(/^listening /, 'its listening line', 30_000);
      const [, id, address] = line.split(' ');
      p.id = id;
      p.address = address;
      return p;
    },
    async node(name, group, secret) {
      const discovery = multicast(group);
      const node = createNode({ name, secret, transports: [createTcpTransport({ listen: '127.0.0.1:0' })], discovery });
      nodes.push(node);
      await node.listen();
      return { node, discovery };
    },
  };
}

import { within, eventually } from './helpers/cluster.ts';
export { within, eventually };
