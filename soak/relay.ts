// The soak's relay process: server/relay.ts's relay (WebSocket for pages, TCP into the
// cluster), joined to the soak nodes given on the command line. Prints `relay ID URL TCP-ADDRESS`.
import { startRelay } from '../server/relay.ts';

const secret = process.env.SOAK_SECRET;
if (!secret) {
  console.error('usage: SOAK_SECRET=… node --import tsx soak/relay.ts SEED…');
  process.exit(2);
}
const relay = await startRelay({
  secret,
  name: 'soak-relay',
  listen: '127.0.0.1:0',
  tcp: '127.0.0.1:0',
  seeds: process.argv.slice(2),
  node: { heartbeatInterval: 250, heartbeatTimeout: 1500 },
});
console.log(`relay ${relay.node.id} ${relay.url} ${relay.node.addresses[0]}`);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
process.once('SIGTERM', () => void relay.close().then(() => process.exit(0)));
