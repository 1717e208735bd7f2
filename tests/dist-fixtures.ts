// Fixtures of the discovery / master-worker / distribution / parallel-map tests: real child
// processes running the demo-node/dist-*.ts scripts (with tsx), each test on its own multicast
// group, port and cluster name on 127.0.0.1, so test files running at once never hear each
// other. The children and in-process nodes are helpers/cluster.ts's: everything started through
// `useDist()` is killed (SIGKILL) or shut down after each test; a failed test prints every child's output.
import { randomBytes } from 'node:crypto';
import type { Node } from '../core/index.ts';
import {
  multicast,
  type MulticastOptions,
  type MulticastDiscovery,
} from '../adapters/multicast.ts';
import { eventually, useCluster, within, type ChildNode } from './helpers/cluster.ts';

/** A fresh multicast group/port/cluster for one test (loopback only). */
export function freshGroup(): Required<
  Pick<MulticastOptions, 'group' | 'port' | 'cluster' | 'interface' | 'interval'>
> {
  const b = randomBytes(3);
  return {
    group: `239.255.${b[0]}.${1 + (b[1] % 250)}`,
    port: 20_000 + (((b[1] << 8) | b[2]) % 40_000),
    cluster: `t-${randomBytes(4).toString('hex')}`,
    interface: '127.0.0.1',
    interval: 250,
  };
}

export type Group = ReturnType<typeof freshGroup>;

/** The command-line flags that put a dist-* script on `group`. */
export function groupArgs(g: Group, secret: string): string[] {
  return [
    '--secret',
    secret,
    '--cluster',
    g.cluster,
    '--group',
    g.group,
    '--mport',
    String(g.port),
    '--interface',
    g.interface,
    '--interval',
    String(g.interval),
  ];
}

/** Factories whose products are cleaned up after each test (through {@link useCluster}). */
export function useDist(): {
  /** Start `demo-node/<script>` with `args`; resolves once it printed `listening ID ADDR`. */
  start(name: string, script: string, args: string[]): Promise<ChildNode>;
  /** An in-process node with TCP on 127.0.0.1 and multicast discovery on `group`. */
  node(
    name: string,
    group: Group,
    secret: string,
  ): Promise<{ node: Node; discovery: MulticastDiscovery }>;
} {
  const cluster = useCluster();
  return {
    start: (name, script, args) => cluster.script(name, `demo-node/${script}`, args, 30_000),
    async node(name, group, secret) {
      const discovery = multicast(group);
      return { node: await cluster.node({ name, secret, discovery }), discovery };
    },
  };
}

export { within, eventually };
