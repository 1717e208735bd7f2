// Command-line options shared by the dist-* demos: the cluster secret and the multicast group
// they find each other on (all on 127.0.0.1 unless told otherwise).
import { parseArgs } from 'node:util';
import type { MulticastOptions } from '../adapters/multicast.ts';
import type { ClusterNodeOptions } from '../patterns/node.ts';

export const COMMON_HELP = `  --name NAME          node id (default: random)
  --secret S           cluster secret (or TROUPE_SECRET)
  --cluster NAME       cluster name in the announcements (default: troupe)
  --group ADDR         multicast group (default: 239.255.70.77)
  --mport PORT         multicast UDP port (default: 47077)
  --interface ADDR     interface for multicast (default: 127.0.0.1)
  --interval MS        announce every MS (default: 1000)
  --listen HOST:PORT   TCP listen address (default: 127.0.0.1:0)
  --seed HOST:PORT     join through this node too (repeatable; with --no-multicast: seeds only)
  --no-multicast       no multicast discovery`;

const common = {
  name: { type: 'string' },
  secret: { type: 'string' },
  cluster: { type: 'string' },
  group: { type: 'string' },
  mport: { type: 'string' },
  interface: { type: 'string' },
  interval: { type: 'string' },
  listen: { type: 'string' },
  seed: { type: 'string', multiple: true },
  'no-multicast': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Extra = Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>;

/** Parse the common options plus `extra`; returns the cluster options and every value. */
export function parseDistArgs<E extends Extra>(
  extra: E,
  help: string,
): {
  cluster: ClusterNodeOptions;
  values: Record<string, string | boolean | string[] | undefined>;
} {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { ...common, ...extra },
    strict: true,
    allowPositionals: false,
  });
  const v = values as Record<string, string | boolean | string[] | undefined>;
  if (v.help) {
    console.log(`${help}\n\nCommon options:\n${COMMON_HELP}`);
    process.exit(0);
  }
  const num = (k: string): number | undefined =>
    typeof v[k] === 'string' ? Number(v[k]) : undefined;
  const discovery: MulticastOptions = {
    cluster: v.cluster as string | undefined,
    group: v.group as string | undefined,
    port: num('mport'),
    interface: v.interface as string | undefined,
    interval: num('interval'),
  };
  return {
    cluster: {
      name: v.name as string | undefined,
      secret: v.secret as string | undefined,
      listen: v.listen as string | undefined,
      seeds: v.seed as string[] | undefined,
      discovery: v['no-multicast'] ? false : discovery,
    },
    values: v,
  };
}

export const stamp = (): string => new Date().toISOString().slice(11, 23);
