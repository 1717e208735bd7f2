// A relay that holds the shared documents (troupe/yjs document actor, file store), run as its own
// process by tests/browser/scenarios/collab.ts so it can be SIGKILLed and started again on the
// same ports and folder. Arguments: httpPort tcpPort dir browserSecret peerKey name.
// A `collab-probe` actor answers `{ doc }` with the actor's text and participants; refused
// updates are printed as `refused <doc> <user> <reason>` lines.
import { startRelay } from '../../../server/relay.ts';
import { serveDocuments } from '../../../collab/index.ts';
import { createFileStore } from '../../../collab/file-store.ts';
import { FIXTURE_TIMING } from '../fixtures/timing.ts';

const [httpPort, tcpPort, dir, browserSecret, peerKey, name] = process.argv.slice(2);
const relay = await startRelay({
  listen: `127.0.0.1:${httpPort}`,
  tcp: `127.0.0.1:${tcpPort}`,
  secret: process.env.TROUPE_SECRET ?? 'browser-tests-cluster-secret',
  name,
  browserSecret,
  peerKey,
  node: {
    heartbeatInterval: FIXTURE_TIMING.heartbeatInterval,
    heartbeatTimeout: FIXTURE_TIMING.heartbeatTimeout,
  },
});
const store = createFileStore(dir);
const server = await serveDocuments(relay.node, {
  store,
  compactEvery: 50,
  authorize: ({ user }) => (user.startsWith('reader') ? 'read' : 'write'),
});
server.events.on('refused', (e) => console.log(`refused ${e.doc} ${e.user} ${e.reason}`));
server.events.on('left', (e) => console.log(`left ${e.doc} ${e.user} ${e.reason}`));
relay.node.register(
  'collab-probe',
  relay.node.spawn(async (self) => {
    for (;;) {
      const m = (await self.receive()) as { doc?: string };
      if (typeof m?.doc !== 'string') continue;
      const d = await server.doc(m.doc);
      self.reply({
        text: d.getText('body').toString(),
        users: server
          .participants(m.doc)
          .map((p) => p.user)
          .sort(),
      });
    }
  }),
);
// What came back from disk, before any participant rejoined.
for (const name of await store.list())
  console.log(
    `loaded ${name} ${JSON.stringify((await server.doc(name)).getText('body').toString())}`,
  );
console.log(`doc-relay ready ${relay.url}`);
