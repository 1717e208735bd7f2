// troupe nodes on the NATS transport for tests, shut down (with their servers) after each test.
import { afterEach } from 'vitest';
import { createNode, type ActorRef, type Node } from '../../core/index.ts';
import { createNatsTransport, type NatsTransport } from '../../adapters/nats.ts';
import { SECRET } from './cluster.ts';
import type { NatsServer } from './nats-server.ts';

/** How {@link useNatsNodes} makes a node. */
export interface NatsNodeOptions {
  /** Use the transport's discovery (membership on the discovery subject). @default true */
  discovery?: boolean;
  /** Use the JetStream KV registry. @default true */
  registry?: boolean;
  /** The transport's presenceInterval (its default when absent). */
  presenceInterval?: number;
}

/**
 * Nodes on NATS with heartbeat timeout and presence timeout `hb`, made by `natsNode(url, name)`
 * with `defaults` overridden per call; every node and every server pushed to `servers` is shut
 * down after each test.
 */
export function useNatsNodes(hb: number, defaults: NatsNodeOptions = {}) {
  const servers: NatsServer[] = [];
  const nodes: Node[] = [];
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.shutdown().catch(() => {})));
    await Promise.all(servers.splice(0).map((s) => s.kill()));
  });
  const natsNode = (
    url: string,
    name: string,
    options: NatsNodeOptions = {},
  ): { node: Node; t: NatsTransport } => {
    const o = { ...defaults, ...options };
    const t = createNatsTransport({
      servers: url,
      presenceTimeout: hb,
      ...(o.presenceInterval === undefined ? {} : { presenceInterval: o.presenceInterval }),
    });
    const node = createNode({
      name,
      secret: SECRET,
      transports: [t],
      discovery: o.discovery === false ? undefined : t.discovery,
      registry: o.registry === false ? undefined : t.registry(),
      heartbeatInterval: hb / 5,
      heartbeatTimeout: hb,
    });
    nodes.push(node);
    return { node, t };
  };
  return { servers, nodes, natsNode };
}

/** An actor on `node` that answers every call with `{ from: node.id, m }`. */
export const echoFrom = (node: Node): ActorRef =>
  node.spawn(async (self) => {
    for (;;) self.reply({ from: node.id, m: await self.receive() });
  });
