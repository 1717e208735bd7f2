// Issue 11, item 4 — a page (a node holding only the relay's browser credential) cannot take the
// id of a cluster member, of the relay, or of another live page. The attempt is refused with
// UNAUTHORIZED and an event on the relay; the real node stays reachable throughout, from every
// side. A real relay, a TCP member, and page-like Node nodes linking over WebSocket.
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createNode, TroupeError, type Node } from '../core/index.ts';
import { createTcpTransport } from '../adapters/tcp.ts';
import {
  createWebSocketTransport,
  relayCredentialAddress,
  type WebSocketConstructor,
} from '../adapters/websocket.ts';
import { startRelay, type RelayCredential } from '../server/relay.ts';
import { until } from './helpers/nodes.ts';

const SECRET = 'security-relay-identity';
const HOLD = 1500;
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

async function credential(url: string, renew?: string): Promise<RelayCredential> {
  const query = renew ? `?renew=${encodeURIComponent(renew)}` : '';
  return (await (
    await fetch(`${url}/troupe/credential${query}`, {
      headers: { Origin: 'http://127.0.0.1:5173' },
    })
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
    const relay = await startRelay({
      secret: SECRET,
      listen: '127.0.0.1:0',
      name: 'relay-id',
      pageIdHold: HOLD,
    });
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

    // A page that left frees its id for the next one once the hold is over; a member's id never is.
    await honest.shutdown();
    await until(() => !relay.node.peers().includes('page-ok'), 'the honest page to be gone', 5000);
    await new Promise((r) => setTimeout(r, HOLD + 100));
    const next = pageNode('page-ok', await credential(relay.url));
    expect(await next.connect((await credential(relay.url)).ws)).toBe('relay-id');
  }, 30_000);

  it("page ids are bound to the credential that admitted them: another credential cannot take a page's id while it redials; the page, renewing its credential, takes it back", async () => {
    const relay = await startRelay({
      secret: SECRET,
      listen: '127.0.0.1:0',
      name: 'relay-ns',
      pageIdHold: 3000,
    });
    cleanups.push(() => relay.close());
    const member = createNode({
      name: 'm1',
      secret: SECRET,
      transports: [createTcpTransport({ listen: '127.0.0.1:0' })],
      heartbeatTimeout: 1500,
    });
    cleanups.push(() => member.shutdown());
    await member.listen();
    await member.join(relay.node.addresses.find((a) => a.startsWith('tcp://'))!);
    const refusals: TroupeError[] = [];
    relay.node.events.on('protocolError', (e) => refusals.push(e.error));

    // The page's credential, and a renewal of it: same namespace, new token.
    const credA = await credential(relay.url);
    const renewed = await credential(relay.url, credA.token);
    expect(renewed.ns).toBe(credA.ns);
    expect(renewed.token).not.toBe(credA.token);
    const credB = await credential(relay.url);
    expect(credB.ns).not.toBe(credA.ns);
    // A namespace cannot be forged: a token with another ns fails its MAC (HTTP 403 at upgrade).
    const [time, , mac] = credA.token.split('.');
    const forged = credA.ws.replace(credA.token, `${time}.${credB.ns}.${mac}`);
    const forger = pageNode('page-forger', credA);
    expect((await refusal(forger.connect(forged))).code).toBe('TRANSPORT_CLOSED');

    // The page, with an actor the member calls through the relay.
    const startPage = async (cred: RelayCredential) => {
      const page = pageNode('page-a', cred);
      expect(await page.connect(cred.ws)).toBe('relay-ns');
      const echo = page.spawn(
        async (self) => {
          for (;;) self.reply(await self.receive());
        },
        { name: `page-a-echo-${cred.token.slice(-6)}` },
      );
      return { page, echo };
    };
    const first = await startPage(credA);
    const fromMember = member.ref(first.echo.node, first.echo.id);
    await until(() => member.isReachable('page-a'), 'page-a at the member', 5000);
    expect(await fromMember.call('hello')).toBe('hello');

    // While page-a is linked, another credential is refused (the live-peer rule, and the binding).
    const squatter = pageNode('page-a', credB);
    const live = await refusal(squatter.connect(credB.ws));
    expect(live.code).toBe('UNAUTHORIZED');

    // page-a's link goes down (the page is redialing): another credential still cannot take its id.
    await first.page.shutdown();
    await until(() => !relay.node.peers().includes('page-a'), 'page-a to be gone', 5000);
    const squatter2 = pageNode('page-a', credB);
    const gap = await refusal(squatter2.connect(credB.ws));
    expect(gap.code).toBe('UNAUTHORIZED');
    expect(gap.message).toMatch(/bound to another page's credential/);
    // The page itself, with its renewed credential, takes its id back at once; the member reaches it.
    const second = await startPage(renewed);
    const again = member.ref(second.echo.node, second.echo.id);
    await until(() => member.isReachable('page-a'), 'page-a back at the member', 5000);
    expect(await again.call('back')).toBe('back');
    expect(await relay.node.ref(second.echo.node, second.echo.id).call('relay')).toBe('relay');

    // Each attempt was an event on the relay.
    const mine = refusals.filter((e) => e.code === 'UNAUTHORIZED').map((e) => e.message);
    expect(mine).toEqual([
      expect.stringMatching(/node id "page-a" is in use by another live peer/),
      expect.stringMatching(/node id "page-a" is bound to another page's credential/),
    ]);

    // Once the page has left and the hold is over, the id is free for any credential.
    await second.page.shutdown();
    await until(() => !relay.node.peers().includes('page-a'), 'page-a gone again', 5000);
    await new Promise((r) => setTimeout(r, 3100));
    const later = pageNode('page-a', credB);
    expect(await later.connect(credB.ws)).toBe('relay-ns');
  }, 30_000);

  it('relayCredentialAddress renews its token on every redial: the namespace stays, the token changes', async () => {
    const relay = await startRelay({ secret: SECRET, listen: '127.0.0.1:0', name: 'relay-rn' });
    cleanups.push(() => relay.close());
    const resolve = relayCredentialAddress(`${relay.url}/troupe/credential`);
    const ns = (ws: string) => new URL(ws).searchParams.get('token')!.split('.')[1];
    const a = await resolve();
    await new Promise((r) => setTimeout(r, 5));
    const b = await resolve();
    expect(ns(b)).toBe(ns(a));
    const other = await relayCredentialAddress(`${relay.url}/troupe/credential`)();
    expect(ns(other)).not.toBe(ns(a));
  });
});
