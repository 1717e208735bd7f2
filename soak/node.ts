// One soak node process: a TCP node running the soak workload (soak/workload.ts). Started by
// soak/run.ts as `node --expose-gc --import tsx soak/node.ts NAME`; prints `listening ID ADDRESS`
// and then takes its orders from the driver through its control actor. Links to the other soak
// nodes are only the ones the driver asks for (through fault proxies): no auto-connect.
import { createNode } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { installWorkload, workloadFromEnv } from './workload.ts';

const name = process.argv[2];
const secret = process.env.SOAK_SECRET;
if (!name || !secret) {
  console.error('usage: SOAK_SECRET=… node --import tsx soak/node.ts NAME');
  process.exit(2);
}
const node = createNode({
  name,
  secret,
  transports: [createTcpTransport({ listen: '127.0.0.1:0' })],
  autoConnect: false,
  heartbeatInterval: Number(process.env.SOAK_HEARTBEAT_INTERVAL ?? 250),
  heartbeatTimeout: Number(process.env.SOAK_HEARTBEAT_TIMEOUT ?? 1500),
});
installWorkload(node, workloadFromEnv(process.env));
const [address] = await node.listen();
console.log(`listening ${node.id} ${address}`);
// The driver going away (stdin closes) ends this process too.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
process.once('SIGTERM', () => void node.shutdown().then(() => process.exit(0)));
