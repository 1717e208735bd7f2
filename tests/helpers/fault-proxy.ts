// A TCP proxy on 127.0.0.1 that sits between two nodes and can break the network between them
// without touching either process: a partition and a heal, a stall (bytes stop, sockets stay
// open), a one-way cut, added latency and a bandwidth limit.
import net from 'node:net';

/** How {@link FaultProxy.cut} breaks the path. */
export type CutMode =
  /** Reset every open connection (both ends see it close at once) and refuse new ones. */
  | 'reset'
  /**
   * Stop moving bytes but keep every connection open, like a silent network: only heartbeats can
   * tell. Bytes and closes held back meanwhile move on {@link FaultProxy.restore}. New
   * connections are refused.
   */
  | 'blackhole';

/**
 * A direction through the proxy: `forward` is from the dialer (the side that connected to the
 * proxy) to the target, `backward` from the target to the dialer.
 */
export type Direction = 'forward' | 'backward';

/** See {@link createFaultProxy}. */
export interface FaultProxy {
  /** `tcp://127.0.0.1:PORT`: dial this instead of the target. */
  readonly address: string;
  /** `127.0.0.1:PORT`. */
  readonly hostPort: string;
  /** Connections accepted and forwarded so far (not counting refused ones). */
  readonly accepted: number;
  /** Connections currently open through the proxy. */
  readonly open: number;
  /** Whether the path is cut (both ways, by {@link cut}). */
  readonly isCut: boolean;
  /** Bytes forwarded so far, per direction. */
  readonly forwarded: Readonly<Record<Direction, number>>;
  /** Partition: break the path (see {@link CutMode}). */
  cut(mode?: CutMode): void;
  /**
   * Stop moving bytes in one direction only (held, as in a blackhole), while the other keeps
   * flowing: an asymmetric partition. New connections are accepted, with that direction held.
   */
  cutOneWay(direction: Direction): void;
  /** Heal: undo {@link cut} and {@link cutOneWay}; held bytes move on (and accept new connections). */
  restore(): void;
  /** Add `ms` of latency to every chunk, both directions (0: none). Order is kept. */
  delay(ms: number): void;
  /** Limit each direction of each connection to `bytesPerSecond` (0 or Infinity: unlimited). */
  throttle(bytesPerSecond: number): void;
  /** Stop listening and destroy every connection. */
  close(): Promise<void>;
}

/** Above this many bytes queued in one direction, the proxy stops reading from its source. */
const MAX_QUEUED = 256 * 1024;

interface Pair {
  a: net.Socket;
  b: net.Socket;
  /** A side that closed while its bytes were held: the pair is closed once they move on. */
  closedWhileCut: boolean;
  pumps: Pump[];
}

/** One direction of one connection: a queue of chunks, released by time, rate and cuts. */
interface Pump {
  dir: Direction;
  from: net.Socket;
  to: net.Socket;
  queue: { chunk: Buffer; due: number }[];
  bytes: number;
  ended: boolean;
  closed: boolean;
  timer: NodeJS.Timeout | undefined;
  waitingDrain: boolean;
  tokens: number;
  refilled: number;
}

/** Start a proxy on a free 127.0.0.1 port forwarding every connection to `target` (`host:port`). */
export async function createFaultProxy(target: string): Promise<FaultProxy> {
  const at = target.lastIndexOf(':');
  const host = target.slice(0, at);
  const port = Number(target.slice(at + 1));
  const pairs = new Set<Pair>();
  let mode: CutMode | undefined;
  const oneWay = new Set<Direction>();
  let delayMs = 0;
  let rate = Infinity;
  let accepted = 0;
  const forwarded: Record<Direction, number> = { forward: 0, backward: 0 };

  const held = (dir: Direction): boolean => mode === 'blackhole' || oneWay.has(dir);

  const drop = (p: Pair): void => {
    pairs.delete(p);
    for (const pump of p.pumps) clearTimeout(pump.timer);
    p.a.destroy();
    p.b.destroy();
  };

  /** Move what may move now; re-arm a timer for what must wait (latency, rate). */
  const pump = (p: Pair, u: Pump): void => {
    if (u.timer || u.waitingDrain || !pairs.has(p)) return;
    if (held(u.dir)) {
      u.from.pause();
      return;
    }
    while (u.queue.length) {
      const head = u.queue[0];
      const now = Date.now();
      if (head.due > now) {
        u.timer = setTimeout(() => ((u.timer = undefined), pump(p, u)), head.due - now);
        return;
      }
      let chunk = head.chunk;
      if (Number.isFinite(rate)) {
        // Token bucket: at most 100 ms worth of bytes in one burst.
        const burst = Math.max(1024, rate / 10);
        u.tokens = Math.min(burst, u.tokens + ((now - u.refilled) * rate) / 1000);
        u.refilled = now;
        if (u.tokens < 1) {
          u.timer = setTimeout(
            () => ((u.timer = undefined), pump(p, u)),
            Math.max(1, Math.ceil(((1 - u.tokens) * 1000) / rate)),
          );
          return;
        }
        if (chunk.length > u.tokens) {
          const n = Math.floor(u.tokens);
          head.chunk = chunk.subarray(n);
          chunk = chunk.subarray(0, n);
        } else {
          u.queue.shift();
        }
        u.tokens -= chunk.length;
      } else {
        u.queue.shift();
      }
      u.bytes -= chunk.length;
      forwarded[u.dir] += chunk.length;
      if (!u.to.write(chunk)) {
        u.waitingDrain = true;
        u.to.once('drain', () => {
          u.waitingDrain = false;
          pump(p, u);
        });
        break;
      }
    }
    if (u.queue.length === 0) {
      // A side closed: close the pair once nothing is left to deliver either way.
      if ((u.closed || p.closedWhileCut) && p.pumps.every((x) => x.queue.length === 0))
        return drop(p);
      if (u.ended) u.to.end();
    }
    if (u.bytes < MAX_QUEUED && !u.waitingDrain) u.from.resume();
    else u.from.pause();
  };

  // Forward one direction by hand (not `pipe`) so cuts, latency and rate can hold bytes back.
  const forward = (p: Pair, dir: Direction, from: net.Socket, to: net.Socket): Pump => {
    const u: Pump = {
      dir,
      from,
      to,
      queue: [],
      bytes: 0,
      ended: false,
      closed: false,
      timer: undefined,
      waitingDrain: false,
      tokens: 0,
      refilled: Date.now(),
    };
    from.on('data', (chunk: Buffer) => {
      u.queue.push({ chunk, due: Date.now() + delayMs });
      u.bytes += chunk.length;
      if (u.bytes >= MAX_QUEUED) from.pause();
      pump(p, u);
    });
    from.on('end', () => {
      u.ended = true;
      pump(p, u);
    });
    from.on('error', () => {});
    from.on('close', () => {
      if (held(dir) || held(dir === 'forward' ? 'backward' : 'forward')) {
        p.closedWhileCut = true;
        return;
      }
      // Bytes still queued (latency, rate) are delivered before the other side is closed.
      u.closed = true;
      if (u.queue.length === 0) drop(p);
    });
    return u;
  };

  const server = net.createServer((client) => {
    if (mode) {
      client.destroy();
      return;
    }
    accepted++;
    client.pause();
    const upstream = net.connect({ host, port });
    const p: Pair = { a: client, b: upstream, closedWhileCut: false, pumps: [] };
    pairs.add(p);
    upstream.pause();
    p.pumps.push(forward(p, 'forward', client, upstream), forward(p, 'backward', upstream, client));
    upstream.once('connect', () => {
      if (!pairs.has(p)) return;
      for (const u of p.pumps) pump(p, u);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const hostPort = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;

  const pumpAll = (): void => {
    for (const p of [...pairs]) for (const u of p.pumps) pump(p, u);
  };

  return {
    address: `tcp://${hostPort}`,
    hostPort,
    get accepted() {
      return accepted;
    },
    get open() {
      return pairs.size;
    },
    get isCut() {
      return mode !== undefined;
    },
    forwarded,
    cut(m: CutMode = 'reset') {
      mode = m;
      for (const p of [...pairs]) {
        if (m === 'reset') {
          for (const u of p.pumps) clearTimeout(u.timer);
          p.a.resetAndDestroy();
          p.b.resetAndDestroy();
          pairs.delete(p);
        } else {
          p.a.pause();
          p.b.pause();
        }
      }
    },
    cutOneWay(direction: Direction) {
      oneWay.add(direction);
      pumpAll(); // pauses the sources of that direction
    },
    restore() {
      mode = undefined;
      oneWay.clear();
      pumpAll();
    },
    delay(ms: number) {
      delayMs = Math.max(0, ms);
    },
    throttle(bytesPerSecond: number) {
      rate = bytesPerSecond > 0 ? bytesPerSecond : Infinity;
      pumpAll();
    },
    async close() {
      for (const p of [...pairs]) drop(p);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
