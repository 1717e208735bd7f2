// Issue 11, item 4 — a page (a node holding only the relay's browser credential) cannot take the
// id of a cluster member, of the relay, or of another live page. The attempt is refused with
// UNAUTHORIZED and an event on the relay; the real node stays reachable throughout, from every
// side. A real relay, a TCP member, and page-like Node nodes linking over WebSocket.
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createNode, TroupeError, type Node } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import { createWebSocketTransport, type WebSocketConstructor } from '../adapters/websocket.ts';
import { startRelay, type RelayCredential } from '../server/relay.ts';
import { until } from './helpers/nodes.ts';

const SECRET = 'security-relay-identity';
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function pageNode(name: string, cred: RelayCredential): Node {
  const node = createNode({
    name,
    secret: cred.secret,
    transports: [
      createWebSocketTransport({ WebSocket: WebSocket as unknown as WebSocketConstructor }),
    ],
    heartbeatTimeout: 1500,
  });
  cleanups.push(() => node.shutdown());
  return node;
}

async function credential(url: string): Promise<RelayCredential> {
  return (await (
    await fetch(`${url}/troupe/credential`, { headers: { Origin: 'http://127.0.0.1:5173' } })
  ).json()) as RelayCredential;
}

async function refusal(p: Promise<unknown>): Promise<TroupeError> {
  try {
    await p;
  } catch (err) {
    return err as TroupeError;
  }
  throw new Error('expected a refusal');
}

describe('identities at the relay', () => {
  it('a page cannot take the id of a cluster member, of the relay or of another live page; the member stays reachable from every side', async () => {
    const relay = await startRelay({ secret: SECRET, listen: '127.0.0.1:0', name: 'relay-id' });
    cleanups.push(() => relay.close());
    const member = createNode({
      name: 'n1',
      secret: SECRET,
      transports: [createTcpTransport({ listen: '127.0.0.1:0' })],
      heartbeatTimeout: 1500,
    });
    cleanups.push(() => member.shutdown());
    await member.listen();
    await member.join(relay.node.addresses.find((a) => a.startsWith('tcp://'))!);
    const echo = member.spawn(
      async (self) => {
        for (;;) self.reply(await self.receive());
      },
      { name: 'n1-echo' },
    );
    const refusals: TroupeError[] = [];
    relay.node.events.on('protocolError', (e) => refusals.push(e.error));
    const relayDowns: string[] = [];
    relay.node.events.on('linkDown', (e) => relayDowns.push(`${e.node}: ${e.reason}`));

    // An honest page, which keeps calling the member through the relay all along.
    const honest = pageNode('page-ok', await credential(relay.url));
    await honest.connect((await credential(relay.url)).ws);
    await until(() => honest.whereis('n1-echo') !== undefined, 'the member name at the page', 5000);
    const fromPage = honest.ref(echo.node, echo.id);
    expect(await fromPage.call('before')).toBe('before');
    let stop = false;
    const callFailures: string[] = [];
    let calls = 0;
    const caller = (async () => {
      while (!stop) {
        try {
          await fromPage.call(`c${calls}`, { timeout: 5000 });
          calls++;
        } catch (err) {
          callFailures.push((err as Error).message);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    })();

    // 1. The id of the cluster member.
    const squatter = pageNode('n1', await credential(relay.url));
    const e1 = await refusal(squatter.connect((await credential(relay.url)).ws));
    expect(e1.code).toBe('UNAUTHORIZED');
    expect(e1.message).toMatch(/belongs to a cluster member/);
    // 2. The id of the relay itself.
    const relayTwin = pageNode('relay-id', await credential(relay.url));
    expect((await refusal(relayTwin.connect((await credential(relay.url)).ws))).code).toMatch(
      /UNAUTHORIZED|PROTOCOL_ERROR/,
    );
    // 3. The id of another live page.
    const twin = pageNode('page-ok', await credential(relay.url));
    const e3 = await refusal(twin.connect((await credential(relay.url)).ws));
    expect(e3.code).toBe('UNAUTHORIZED');
    expect(e3.message).toMatch(/in use by another live peer/);

    // The member was never displaced: the relay kept its link, and it answers from every side.
    expect(relayDowns).toEqual([]);
    expect(relay.node.peers().sort()).toEqual(['n1', 'page-ok']);
    expect(await relay.node.ref(echo.node, echo.id).call('from the relay')).toBe('from the relay');
    expect(await fromPage.call('after')).toBe('after');
    expect(member.isReachable('page-ok')).toBe(true);
    stop = true;
    await caller;
    expect(callFailures).toEqual([]);
    expect(calls).toBeGreaterThan(0);
    // Each attempt was an event on the relay.
    expect(refusals.filter((e) => e.code === 'UNAUTHORIZED').map((e) => e.message)).toEqual([
      expect.stringMatching(/node id "n1" belongs to a cluster member/),
      expect.stringMatching(/node id "page-ok" is in use by another live peer/),
    ]);
    expect(refusals.some((e) => /relay-id/.test(e.message) || /own id/.test(e.message))).toBe(true);

    // A page that left frees its id for the next one; a member's id never is.
    await honest.shutdown();
    await until(() => !relay.node.peers().includes('page-ok'), 'the honest page to be gone', 5000);
    const next = pageNode('page-ok', await credential(relay.url));
    expect(await next.connect((await credential(relay.url)).ws)).toBe('relay-id');
  }, 30_000);
});
