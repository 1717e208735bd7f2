import type { Node } from './node-api.ts';

/**
 * A way for a node to find other nodes without seed addresses (UDP multicast on a LAN,
 * BroadcastChannel between tabs, a relay's listing). A discovery only reports what it finds;
 * the node decides whether to dial, dials through its own transports, and authenticates every
 * link in the handshake as usual — a discovery never bypasses the cluster secret.
 *
 * The node calls `start` once when it is created (`createNode({ discovery })`) and `stop` once
 * when it shuts down. `node.addresses` may still be empty at `start` (before `node.listen()`):
 * read it each time you announce.
 */
export interface Discovery {
  /** Short name for events: `multicast`, `broadcast-channel`, … */
  readonly name: string;
  /**
   * Membership without a mesh (NATS): `found` reports a member, not a node to dial. The node
   * counts it as reachable (`node.nodes()`, `nodeUp`), dials it only when something is first
   * sent to it (a send, call, monitor, link or spawn), and drops it when the discovery calls
   * `lost` (`nodeDown` with `noconnection`, unless a link to it is still up). @default false
   */
  readonly lazy?: boolean;
  /**
   * Start announcing `node` and looking for others. Call `found(nodeId, addresses)` for every
   * authenticated announcement of another node; repeats are cheap (the node ignores peers it
   * already has a link to or is dialing). A {@link lazy} discovery calls `lost(nodeId)` when a
   * member left or stopped answering. A rejection is reported as a `discoveryError` event.
   */
  start(
    node: Node,
    found: (nodeId: string, addresses: string[]) => void,
    lost?: (nodeId: string) => void,
  ): void | Promise<void>;
  /** Stop announcing and release what `start` took. */
  stop(): void | Promise<void>;
}
