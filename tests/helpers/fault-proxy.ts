// A TCP proxy on 127.0.0.1 that sits between two nodes and can cut the network between them
// without touching either process: a partition, then a heal.
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
  /** Whether the path is cut. */
  readonly isCut: boolean;
  /** Partition: break the path (see {@link CutMode}). */
  cut(mode?: CutMode): void;
  /** Heal: forward again (and accept new connections). */
  restore(): void;
  /** Stop listening and destroy every connection. */
  close(): Promise<void>;
}

interface Pair {
  a: net.Socket;
  b: net.Socket;
  /** A side that closed while blackholed: its partner is closed on restore. */
  closedWhileCut: boolean;
}

/** Start a proxy on a free 127.0.0.1 port forwarding every connection to `target` (`host:port`). */
export async function createFaultProxy(target: string): Promise<FaultProxy> {
  const at = target.lastIndexOf(':');
  const host = target.slice(0, at);
  const port = Number(target.slice(at + 1));
  const pairs = new Set<Pair>();
  let mode: CutMode | undefined;
  let accepted = 0;

  const drop = (p: Pair): void => {
    pairs.delete(p);
    p.a.destroy();
    p.b.destroy();
  };

  // Forward one direction by hand (not `pipe`) so a blackhole can hold bytes back.
  const forward = (p: Pair, from: net.Socket, to: net.Socket): void => {
    from.on('data', (chunk: Buffer) => {
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => mode !== 'blackhole' && from.resume());
      }
    });
    from.on('end', () => to.end());
    from.on('error', () => {});
    from.on('close', () => {
      if (mode === 'blackhole') {
        p.closedWhileCut = true;
        return;
      }
      drop(p);
    });
  };

  const server = net.createServer((client) => {
    if (mode) {
      client.destroy();
      return;
    }
    accepted++;
    client.pause();
    const upstream = net.connect({ host, port });
    const p: Pair = { a: client, b: upstream, closedWhileCut: false };
    pairs.add(p);
    upstream.pause();
    upstream.once('connect', () => {
      if (mode === 'blackhole' || !pairs.has(p)) return;
      client.resume();
      upstream.resume();
    });
    forward(p, client, upstream);
    forward(p, upstream, client);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const hostPort = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;

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
    cut(m: CutMode = 'reset') {
      mode = m;
      for (const p of [...pairs]) {
        if (m === 'reset') {
          p.a.resetAndDestroy();
          p.b.resetAndDestroy();
          pairs.delete(p);
        } else {
          p.a.pause();
          p.b.pause();
        }
      }
    },
    restore() {
      const was = mode;
      mode = undefined;
      if (was !== 'blackhole') return;
      for (const p of [...pairs]) {
        if (p.closedWhileCut) {
          drop(p);
          continue;
        }
        p.a.resume();
        p.b.resume();
      }
    },
    async close() {
      for (const p of [...pairs]) drop(p);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
