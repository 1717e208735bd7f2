// Multi-process cluster tests: start real `troupe node` processes (bin/troupe.mjs), read what
// they print, kill them with real signals, and join them from the test process with an
// in-process node over real TCP on 127.0.0.1. Everything started through `useCluster()` is torn
// down after each test, failed or not; a failed test prints every child's output.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { bytesToHex, randomBytes } from '@noble/hashes/utils.js';
import { afterEach } from 'vitest';
import { createNode, PROTOCOL_VERSION, type Node, type NodeOptions } from '../../core/index.ts';
import { createTcpTransport } from '../../adapters/tcp.ts';
import { createFaultProxy, type FaultProxy } from './fault-proxy.ts';
import { handshakeProof } from './raw-peer.ts';

/** The cluster secret every test node uses unless a test wants a wrong one. */
export const SECRET = 'cluster-test-secret';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../bin/troupe.mjs', import.meta.url));
const PRELOAD = new URL('./exit-with-parent.mjs', import.meta.url).href;

/** Options of {@link Cluster.start}: the `troupe node` command line. */
export interface ChildOptions {
  /** `--name`: the node id. */
  name: string;
  /** `--listen host:port`. @default '127.0.0.1:0' (a free port) */
  listen?: string;
  /** `--seed host:port` for each (with or without `tcp://`). */
  seeds?: string[];
  /** `--secret`. @default {@link SECRET} */
  secret?: string;
  /** `--heartbeat-timeout MS`. @default the CLI's (2500) */
  heartbeatTimeout?: number;
  /** `false` adds `--no-auto-connect`. @default true */
  autoConnect?: boolean;
}

/** How a child process ended. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Callers waiting for something to arrive (a line, a frame): `wake()` re-checks each of them.
 * {@link ChildNode.waitForLine} and {@link RawTcpClient.nextFrame} wait through one.
 */
class Arrivals {
  #checks = new Set<() => void>();

  wake(): void {
    for (const check of [...this.#checks]) check();
  }

  /**
   * Resolve with the first value `find()` returns other than `undefined` (checked now and on
   * every `wake()`); reject with `ended()`'s message as soon as it returns one (nothing more can
   * arrive), or with `late()`'s after `ms`.
   */
  wait<T>(
    find: () => T | undefined,
    ended: () => string | undefined,
    late: () => string,
    ms: number,
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = find();
        if (found !== undefined) return done(() => resolve(found));
        const why = ended();
        if (why !== undefined) done(() => reject(new Error(why)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(late()))), ms);
      const done = (fn: () => void): void => {
        clearTimeout(timer);
        this.#checks.delete(check);
        fn();
      };
      this.#checks.add(check);
      check();
    });
  }
}

/** One `troupe node` process, or (see the constructor) a TypeScript script run the same way. */
export class ChildNode {
  readonly name: string;
  readonly proc: ChildProcess;
  /** Every line it printed (stdout and stderr, `!` marks stderr), in order. */
  readonly lines: string[] = [];
  /** The node id from its `listening` line. */
  id = '';
  /** Its listen address, `tcp://127.0.0.1:PORT`. */
  address = '';
  /** Resolves when the process ended. */
  readonly exited: Promise<ChildExit>;
  exit: ChildExit | undefined;
  #arrivals = new Arrivals();

  /**
   * Run bin/troupe.mjs with `args`, or, given `script` (a .ts path relative to the repository
   * root), that script through tsx.
   */
  constructor(name: string, args: string[], script?: string) {
    this.name = name;
    const entry = script === undefined ? [CLI] : ['--import', 'tsx', script];
    // stdin stays a pipe: the preload exits the child when it closes (the test process died).
    this.proc = spawn(process.execPath, ['--import', PRELOAD, ...entry, ...args], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, TROUPE_SECRET: '', NODE_OPTIONS: '' },
    });
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
        this.#arrivals.wake();
      });
    });
    this.#readLines(this.proc.stdout!, '');
    this.#readLines(this.proc.stderr!, '! ');
  }

  #readLines(stream: NodeJS.ReadableStream, prefix: string): void {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop()!;
      for (const line of parts) this.lines.push(prefix + line);
      if (parts.length) this.#arrivals.wake();
    });
    stream.on('end', () => {
      if (rest) this.lines.push(prefix + rest);
      rest = '';
      this.#arrivals.wake();
    });
  }

  /** `host:port` of its listen address (what `--seed` takes). */
  get hostPort(): string {
    return this.address.replace(/^tcp:\/\//, '');
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** Its whole output, for failure messages. */
  output(): string {
    return this.lines.map((l) => `  [${this.name}] ${l}`).join('\n');
  }

  /** The number of lines printed so far: pass it as `from` to wait only for later lines. */
  mark(): number {
    return this.lines.length;
  }

  /** Lines (from index `from` on) matching `re`. */
  matching(re: RegExp, from = 0): string[] {
    return this.lines.slice(from).filter((l) => re.test(l));
  }

  /**
   * Resolve with the first line (from index `from` on) matching `re`; fail after `ms` or when
   * the process ends without printing one.
   */
  waitForLine(re: RegExp, what: string, ms = 10_000, from = 0): Promise<string> {
    return this.#arrivals.wait(
      () => this.lines.slice(from).find((l) => re.test(l)),
      () =>
        this.exit
          ? `${this.name} exited (${JSON.stringify(this.exit)}) before printing ${what}\n${this.output()}`
          : undefined,
      () => `${this.name} did not print ${what} within ${ms} ms\n${this.output()}`,
      ms,
    );
  }

  /** Wait (up to `ms`) for its `listening ID ADDRESS` line and take `id` and `address` from it. */
  async listening(ms: number): Promise<this> {
    const line = await this.waitForLine(/^listening /, 'its listening line', ms);
    const [, id, address] = line.split(' ');
    this.id = id;
    this.address = address;
    return this;
  }

  /** Send `signal` and wait (bounded) for the process to end. */
  async kill(signal: NodeJS.Signals = 'SIGKILL', ms = 10_000): Promise<ChildExit> {
    if (this.exit) return this.exit;
    this.proc.kill(signal);
    return within(this.exited, `${this.name} to exit after ${signal}`, ms);
  }

  /** Freeze the process (SIGSTOP): its sockets stay open but it says nothing — a silent peer. */
  freeze(): void {
    this.proc.kill('SIGSTOP');
  }

  /** Let a frozen process run again (SIGCONT). */
  thaw(): void {
    this.proc.kill('SIGCONT');
  }
}

/** Every child still running in this test process: killed if the process exits without cleanup. */
const running = new Set<ChildNode>();
process.once('exit', () => {
  for (const c of running) if (!c.exit) c.proc.kill('SIGKILL');
});

/** What {@link useCluster} returns: factories whose products are cleaned up after each test. */
export interface Cluster {
  /** Start a `troupe node` process; resolves once it printed its `listening` line. */
  start(options: ChildOptions): Promise<ChildNode>;
  /**
   * Start the TypeScript script `script` (path from the repository root, run through tsx) with
   * `args`; resolves once it printed a `listening ID ADDRESS` line (within `ms`).
   */
  script(name: string, script: string, args: string[], ms?: number): Promise<ChildNode>;
  /**
   * An in-process node with a TCP transport (listening on a free 127.0.0.1 port unless
   * `listen: false`), the test's window into the cluster.
   */
  node(options?: NodeOptions & { listen?: boolean }): Promise<Node>;
  /** A fault-injecting TCP proxy to `target` (`host:port`). */
  proxy(target: string): Promise<FaultProxy>;
  /** A raw TCP client connected to `hostPort`. */
  raw(hostPort: string): Promise<RawTcpClient>;
  /** Every child started in this test. */
  readonly children: readonly ChildNode[];
}

/**
 * Register cleanup hooks in the calling test file and return the factories. After each test:
 * every child is killed (SIGKILL; a frozen one too), every in-process node shut down, every proxy and
 * raw client closed; when the test failed, every child's output is printed.
 */
export function useCluster(): Cluster {
  const children: ChildNode[] = [];
  const nodes: Node[] = [];
  const proxies: FaultProxy[] = [];
  const raws: RawTcpClient[] = [];

  const launch = (child: ChildNode): ChildNode => {
    children.push(child);
    running.add(child);
    return child;
  };

  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail') {
      for (const c of children)
        console.error(
          `--- output of ${c.name} (pid ${c.proc.pid}, ${JSON.stringify(c.exit ?? 'running')})\n${c.output()}`,
        );
    }
    // Kill the children first: the nodes' sockets to them then close at once, so shutting the
    // nodes down never waits for a FIN from a frozen process.
    await Promise.all(
      children.splice(0).map(async (c) => {
        await c.kill('SIGKILL').catch(() => {});
        running.delete(c);
      }),
    );
    await Promise.all(
      nodes
        .splice(0)
        .map((n) => within(n.shutdown(), `shutdown of ${n.id}`, 10_000).catch(() => {})),
    );
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    for (const r of raws.splice(0)) r.close();
  });

  return {
    children,
    async start(o) {
      const args = [
        'node',
        '--name',
        o.name,
        '--listen',
        o.listen ?? '127.0.0.1:0',
        '--secret',
        o.secret ?? SECRET,
      ];
      for (const s of o.seeds ?? []) args.push('--seed', s.replace(/^tcp:\/\//, ''));
      if (o.heartbeatTimeout !== undefined)
        args.push('--heartbeat-timeout', String(o.heartbeatTimeout));
      if (o.autoConnect === false) args.push('--no-auto-connect');
      return launch(new ChildNode(o.name, args)).listening(20_000);
    },
    async script(name, script, args, ms = 30_000) {
      return launch(new ChildNode(name, args, script)).listening(ms);
    },
    async node(options = {}) {
      const { listen = true, ...rest } = options;
      const n = createNode({
        secret: SECRET,
        transports: [createTcpTransport({ listen: '127.0.0.1:0' })],
        ...rest,
      });
      nodes.push(n);
      if (listen) await n.listen();
      return n;
    },
    async proxy(target) {
      const p = await createFaultProxy(target);
      proxies.push(p);
      return p;
    },
    async raw(hostPort) {
      const r = await RawTcpClient.connect(hostPort);
      raws.push(r);
      return r;
    },
  };
}

/** Resolve as `p` does, or fail after `ms` of real time (a guard against hangs). */
export function within<T>(p: Promise<T>, what: string, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not within ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, guard]).finally(() => clearTimeout(timer));
}

/**
 * Await every promise of `ps` (a record), noting when each settled (ms since `since()`); fail
 * after `ms` naming the ones still pending. Rejections fail it too, naming the promise.
 */
export async function settleAll<P extends Record<string, Promise<unknown>>>(
  ps: P,
  since: () => number,
  what: string,
  ms: number,
): Promise<{ [K in keyof P]: { value: Awaited<P[K]>; after: number } }> {
  const out: Record<string, { value: unknown; after: number }> = {};
  const pending = new Set(Object.keys(ps));
  const all = Promise.all(
    Object.entries(ps).map(([k, p]) =>
      p.then(
        (value) => {
          out[k] = { value, after: Date.now() - since() };
          pending.delete(k);
        },
        (err: unknown) => {
          throw new Error(
            `${what}: "${k}" rejected: ${err instanceof Error ? err.message : String(err)}`,
            { cause: err },
          );
        },
      ),
    ),
  );
  await within(all, `${what} (still pending: ${[...pending].join(', ')})`, ms).catch(
    (err: Error) => {
      if (err.message.startsWith('not within'))
        throw new Error(`${what}: still pending after ${ms} ms: ${[...pending].join(', ')}`);
      throw err;
    },
  );
  return out as { [K in keyof P]: { value: Awaited<P[K]>; after: number } };
}

/**
 * Poll `probe` (sync or async) every `every` ms until it returns something other than
 * `undefined`/`false`, and resolve with that; fail after `ms` with `what` and the last error or
 * value seen. For state that changes without an event to await.
 */
export async function eventually<T>(
  probe: () => T | Promise<T>,
  what: string,
  ms = 10_000,
  every = 25,
): Promise<Exclude<T, undefined | false>> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v as Exclude<T, undefined | false>;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) {
      const seen = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${seen})`);
    }
    await new Promise((r) => setTimeout(r, every));
  }
}

/**
 * A hand-driven TCP client for a node's listen port: it writes length-prefixed frames (or any
 * bytes) and reads frames back, so a test can speak the protocol — or break it on purpose.
 */
export class RawTcpClient {
  readonly socket: net.Socket;
  /** Every frame received, in order. */
  readonly frames: string[] = [];
  /** Resolves when the socket closed (from either side). */
  readonly closed: Promise<void>;
  isClosed = false;
  readonly nonce = bytesToHex(randomBytes(16));
  #buf: Buffer = Buffer.alloc(0);
  #arrivals = new Arrivals();

  private constructor(socket: net.Socket) {
    this.socket = socket;
    // Its own small decoder (4-byte big-endian length, UTF-8 text), independent of the adapter's.
    socket.on('data', (chunk: Buffer) => {
      this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
      while (this.#buf.length >= 4) {
        const len = this.#buf.readUInt32BE(0);
        if (this.#buf.length < 4 + len) break;
        this.frames.push(this.#buf.toString('utf8', 4, 4 + len));
        this.#buf = this.#buf.subarray(4 + len);
      }
      this.#arrivals.wake();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        resolve();
        this.#arrivals.wake();
      }),
    );
  }

  /** Connect to `hostPort` (`127.0.0.1:PORT`). */
  static connect(hostPort: string): Promise<RawTcpClient> {
    const at = hostPort.lastIndexOf(':');
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: hostPort.slice(0, at), port: Number(hostPort.slice(at + 1)) });
      s.once('error', reject);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new RawTcpClient(s));
      });
    });
  }

  /** Write `frames`, each length-prefixed, in one write. */
  sendFrames(...frames: string[]): void {
    const parts: Buffer[] = [];
    for (const f of frames) {
      const body = Buffer.from(f, 'utf8');
      const head = Buffer.allocUnsafe(4);
      head.writeUInt32BE(body.length, 0);
      parts.push(head, body);
    }
    this.socket.write(Buffer.concat(parts));
  }

  /** Write raw bytes, no framing. */
  sendBytes(bytes: Uint8Array | string): void {
    this.socket.write(bytes);
  }

  /** The first received frame satisfying `pred` (waiting up to `ms`; fails early if the socket closed without one). */
  nextFrame(pred: (frame: string) => boolean, what: string, ms = 5000): Promise<string> {
    const got = (): string => JSON.stringify(this.frames).slice(0, 500);
    return this.#arrivals.wait(
      () => this.frames.find(pred),
      () => (this.isClosed ? `connection closed before ${what}; got ${got()}` : undefined),
      () => `no ${what} within ${ms} ms; got ${got()}`,
      ms,
    );
  }

  /** The node's hello (it sends one as soon as a connection opens). */
  async nodeHello(): Promise<{ node: string; nonce: string; v: number; inc: string }> {
    return JSON.parse(
      await this.nextFrame((f) => f.startsWith('{"t":"hello"'), "the node's hello"),
    );
  }

  /** A hello from this client, claiming node id `id` (fields can be overridden to misbehave). */
  hello(id: string, overrides: Record<string, unknown> = {}): string {
    return JSON.stringify({
      t: 'hello',
      v: PROTOCOL_VERSION,
      r: 'd',
      node: id,
      inc: 'raw',
      nonce: this.nonce,
      addrs: [],
      ...overrides,
    });
  }

  /** Run the whole handshake as node `id` proving `secret`; resolves with the node's id once the link is up. */
  async handshake(id: string, secret: string): Promise<string> {
    const h = await this.nodeHello();
    // As docs/protocol.md defines it: this client dials, the node listens.
    const mac = handshakeProof(secret, 'dialer', { node: id, inc: 'raw', nonce: this.nonce }, h);
    this.sendFrames(
      this.hello(id),
      JSON.stringify({ t: 'auth', mac }),
      JSON.stringify({ t: 'ok' }),
    );
    await this.nextFrame((f) => f === '{"t":"ok"}', "the node's ok");
    return h.node;
  }

  close(): void {
    this.socket.destroy();
  }
}
