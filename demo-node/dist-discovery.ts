// Zero-configuration discovery: start this in several terminals (same secret) and watch the
// nodes find each other by UDP multicast on 127.0.0.1 — no seed addresses.
//
//   npx tsx demo-node/dist-discovery.ts --secret s3cret --name a
//   npx tsx demo-node/dist-discovery.ts --secret s3cret --name b
//   npx tsx demo-node/dist-discovery.ts --secret other  --name c   # another secret: never joined
//
// Prints `peer up NODE` / `peer down NODE REASON` (the node's linkUp/linkDown events, which
// track node.peers()) and, every few seconds, the peer list. SIGINT/SIGTERM stop it cleanly.
import { startClusterNode } from '../patterns/node.ts';
import { parseDistArgs, stamp } from './dist-args.ts';

const { cluster } = parseDistArgs({}, 'dist-discovery: a node that finds its cluster by multicast');
const node = await startClusterNode(cluster);
const log = (line: string) => console.log(`[${stamp()}] ${line}`);
node.events.on('linkUp', (e) => log(`peer up ${e.node}`));
node.events.on('linkDown', (e) => log(`peer down ${e.node} ${e.reason}`));
node.events.on('discoveryError', (e) => log(`discovery error: ${e.error.message}`));
node.events.on('protocolError', (e) => log(`refused: ${e.error.code} ${e.error.message}`));
// Tests and scripts read this line.
console.log(`listening ${node.id} ${node.addresses.join(' ')}`);
const ticker = setInterval(() => log(`peers ${node.peers().sort().join(',') || '-'}`), 3000);
const stop = (signal: string) => {
  log(`${signal}: shutting down`);
  clearInterval(ticker);
  void node.shutdown().then(() => process.exit(0));
};
process.once('SIGINT', () => stop('SIGINT'));
process.once('SIGTERM', () => stop('SIGTERM'));
