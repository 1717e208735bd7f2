// One of the Node nodes `npm run demo` starts beside the relay: a TCP cluster member with the
// standard behaviours, a function server with the Mandelbrot `tile` function (registered as
// `troupe.fn:<node id>`: the compute view can add it to its workers) and a probe for the cluster view.
//
// Run by demo.ts as a child process (fork); standalone:
//   TROUPE_SECRET=s npx tsx demo-node/demo-tcp-node.ts --name node-1 --seed tcp://127.0.0.1:PORT
import { parseArgs } from 'node:util';
import { createNode } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { defineStandardBehaviours } from '../server/behaviours.ts';
import { installProbe } from '../demo-web/cluster-probe.ts';
import { serveFunctions } from '../patterns/functions.ts';
import { tileFunctions } from '../demo-web/tile-functions.ts';
import { startEditorBot } from './editor-bot.ts';

const { values } = parseArgs({
  options: {
    name: { type: 'string' },
    seed: { type: 'string', multiple: true },
    listen: { type: 'string' },
    bot: { type: 'boolean' },
  },
});
const secret = process.env.TROUPE_SECRET;
if (!secret) {
  console.error('demo-tcp-node: set TROUPE_SECRET');
  process.exit(2);
}

const node = createNode({
  name: values.name,
  secret,
  transports: [createTcpTransport({ listen: values.listen ?? '127.0.0.1:0' })],
});
defineStandardBehaviours(node);
serveFunctions(
  node,
  tileFunctions(() => node.id),
);
installProbe(node, { kind: 'tcp', label: node.id });
const addrs = await node.listen();
for (const seed of values.seed ?? []) {
  node
    .join(seed.includes('://') ? seed : `tcp://${seed}`)
    .catch((err: Error) => console.error(`${node.id}: cannot join ${seed}: ${err.message}`));
}
// The bot of the board's shared text (the first demo node runs it).
if (values.bot) startEditorBot(node);
// The launcher reads this line.
console.log(`listening ${node.id} ${addrs.join(' ')}`);
process.send?.({ type: 'listening', id: node.id, addresses: addrs });

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  const force = setTimeout(() => process.exit(0), 2000);
  force.unref();
  node.shutdown().finally(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
// The launcher went away (even by SIGKILL): do not outlive it.
process.on('disconnect', stop);
