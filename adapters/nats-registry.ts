import type { KV, NatsConnection, QueuedIterator, KvEntry } from 'nats';
import type { RegistryBackend, RegistrySink } from '../core/index.ts';

/** Options of the JetStream KV registry backend (`transport.registry(options)`). */
export interface NatsRegistryOptions {
  /** Subject prefix (the bucket is `<prefix>_registry`, dots as underscores). @default the transport's prefix */
  prefix?: string;
  /** JetStream replicas of the bucket (3 on a three-server cluster). @default 1 */
  replicas?: number;
}

/** The registry backend on JetStream KV (see {@link natsRegistry}). */
export interface NatsRegistryBackend extends RegistryBackend {
  /** Resolves once the watch has delivered every name that existed at start. */
  readonly ready: Promise<void>;
}

const enc = new TextEncoder();
/** How long a stopping registry waits for its in-flight deletes. */
const STOP_WAIT_MS = 2000;
const dec = new TextDecoder();

/**
 * The cluster registry on a JetStream key-value bucket: `register` is an atomic create (the first
 * claim wins; a later one is refused and its actor gets `NAME_LOST`), `whereis` reads the node's
 * cache that a watch of the bucket keeps current, and a name is deleted when its actor exits or
 * when a node sees its owner's node lost (a delete that checks the revision, so only that entry
 * goes). Usually made by `createNatsTransport(...).registry()`, sharing the transport's connection.
 *
 * Under a NATS partition, a node cut off from JetStream keeps answering `whereis` from its cache
 * and its `register` calls fail (the name is dropped from its cache, its actor gets no name);
 * the bucket's content wins when the node is back.
 * @example
 * const t = createNatsTransport({ servers });
 * const node = createNode({ secret, transports: [t], discovery: t.discovery, registry: t.registry() });
 */
export function natsRegistry(
  connection: () => Promise<NatsConnection>,
  options: NatsRegistryOptions = {},
): NatsRegistryBackend {
  const bucket = `${(options.prefix ?? 'troupe').replace(/\./g, '_')}_registry`;
  let kvPromise: Promise<KV> | undefined;
  let watch: QueuedIterator<KvEntry> | undefined;
  let stopped = false;
  /** Releases in flight: a shutdown waits for them (bounded), so a stopped node leaves no names. */
  const releasing = new Set<Promise<void>>();
  let markReady!: () => void;
  const ready = new Promise<void>((r) => (markReady = r));

  // A failed open (JetStream not ready yet on a server that just started, a request timing out
  // under load) is not kept: the next use opens again.
  const kv = (): Promise<KV> =>
    (kvPromise ??= (async () => {
      const nc = await connection();
      return nc.jetstream().views.kv(bucket, { history: 1, replicas: options.replicas ?? 1 });
    })().catch((err: unknown) => {
      kvPromise = undefined;
      throw err;
    }));
  /** `kv()`, tried a few more times (with a growing pause) before its error is given up to. */
  const kvRetrying = async (): Promise<KV> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await kv();
      } catch (err) {
        if (stopped || attempt >= 4) throw err;
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
      }
    }
  };

  return {
    name: 'nats-kv',
    ready,
    async start(sink: RegistrySink) {
      const store = await kvRetrying();
      if (stopped) return;
      watch = await store.watch({ initializedFn: () => markReady() });
      void (async () => {
        for await (const e of watch) {
          if (stopped) break;
          const name = keyName(e.key);
          if (name === undefined) continue;
          if (e.operation !== 'PUT') {
            sink.delete(name);
            continue;
          }
          const v = parseValue(e.value);
          if (v) sink.set(name, v.node, v.id);
        }
      })().catch(() => {});
    },
    async claim(name, node, id) {
      const store = await kvRetrying();
      const key = nameKey(name);
      try {
        await store.create(key, enc.encode(JSON.stringify({ node, id })));
        return { node, id };
      } catch (err) {
        const cur = await store.get(key);
        const v = cur && cur.operation === 'PUT' ? parseValue(cur.value) : undefined;
        if (v) return v;
        throw err;
      }
    },
    release(name, node, id) {
      const p = (async () => {
        const store = await kv();
        const key = nameKey(name);
        const cur = await store.get(key);
        if (!cur || cur.operation !== 'PUT') return;
        const v = parseValue(cur.value);
        if (!v || v.node !== node || v.id !== id) return;
        await store.delete(key, { previousSeq: cur.revision });
      })();
      releasing.add(p);
      const forget = (): boolean => releasing.delete(p);
      p.then(forget, forget);
      return p;
    },
    async stop() {
      stopped = true;
      watch?.stop();
      // The names of the actors that exited in the shutdown are being deleted: let them go out
      // before the connection closes (else they stay in the bucket until others see the node down).
      if (releasing.size === 0) return;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled([...releasing]),
        new Promise((r) => (timer = setTimeout(r, STOP_WAIT_MS))),
      ]);
      clearTimeout(timer);
    },
  };
}

function nameKey(name: string): string {
  return `n.${btoa(String.fromCharCode(...enc.encode(name)))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '')}`;
}

function keyName(key: string): string | undefined {
  if (!key.startsWith('n.')) return undefined;
  try {
    const b64 = key.slice(2).replace(/-/g, '+').replace(/_/g, '/');
    const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    return dec.decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  } catch {
    return undefined;
  }
}

function parseValue(data: Uint8Array): { node: string; id: number } | undefined {
  try {
    const v = JSON.parse(dec.decode(data)) as { node?: unknown; id?: unknown };
    if (typeof v.node === 'string' && typeof v.id === 'number' && Number.isInteger(v.id))
      return { node: v.node, id: v.id };
  } catch {
    /* a foreign value: ignored */
  }
  return undefined;
}
