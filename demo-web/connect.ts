// How a page joins the cluster: fetch a credential from the relay, create the tab's node with the
// WebSocket transport (to the relay) and the WebRTC transport (to other pages), listen on WebRTC
// so the relay's membership gossip tells the other pages how to dial this one, then join the relay
// (redialing whenever the link is lost, with a fresh credential each time: the page rides out a
// relay restart).
import { createNode, type Node } from '../core/index.ts';
import { createWebSocketTransport, relayCredentialAddress } from '../adapters/websocket.ts';
import { createWebRtcTransport, peerIdFor } from '../adapters/webrtc.ts';

/** What `GET /troupe/credential` answers (see server/relay.ts). */
export interface Credential {
  secret: string;
  expiresAt: number;
  /** The relay's WebSocket address (`ws://host:port/troupe`). */
  ws: string;
  /** Where the relay's PeerServer is. */
  peer: { host: string; port: number; path: string; key: string; secure?: boolean };
}

/**
 * The relay's HTTP base URL: `?relay=http://host:port` on the page's URL, else the one the demo
 * launcher built in (`VITE_TROUPE_RELAY`), else the page's own origin (the dev server proxies
 * `/troupe/*` to the relay).
 */
export function relayBase(): string {
  const fromQuery = new URLSearchParams(location.search).get('relay');
  const fromBuild = (import.meta as { env?: Record<string, string | undefined> }).env
    ?.VITE_TROUPE_RELAY;
  return (fromQuery || fromBuild || location.origin).replace(/\/+$/, '');
}

/** Fetch a page credential from the relay. */
export async function fetchCredential(base: string, timeoutMs = 5000): Promise<Credential> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  try {
    const res = await fetch(`${base}/troupe/credential`, {
      signal: ctrl.signal,
      cache: 'no-store',
    });
    if (!res.ok) throw new Error(`the relay answered ${res.status} ${res.statusText}`);
    const cred = (await res.json()) as Credential;
    if (typeof cred?.secret !== 'string' || typeof cred.ws !== 'string' || !cred.peer?.host)
      throw new Error('the relay sent a malformed credential');
    return cred;
  } catch (err) {
    const why =
      (err as Error).name === 'AbortError'
        ? `no answer within ${timeoutMs} ms`
        : (err as Error).message;
    throw new Error(`cannot get a credential from the relay at ${base}: ${why}`);
  } finally {
    clearTimeout(timer);
  }
}

/** A page's node, joined to the relay. */
export interface TabNode {
  node: Node;
  credential: Credential;
  /** The relay's node id. */
  relay: string;
  /** This page's WebRTC peer id. */
  peerId: string;
}

/**
 * Create this page's node and join the relay. WebRTC is best effort: when the PeerServer cannot
 * be reached the page still works, with every link going through the relay. The page stays joined:
 * whenever its link to the relay is lost (a relay restart, say) it redials, fetching a fresh
 * credential before each dial (a restarted relay refuses the old token, and tokens expire); the
 * WebRTC transport registers with the restarted PeerServer again by itself. A relay restarted
 * with another browser secret refuses the page (`UNAUTHORIZED`): it must reload.
 */
export async function connectTab(name: string, base = relayBase()): Promise<TabNode> {
  const credential = await fetchCredential(base);
  const rtc = createWebRtcTransport({
    signal: credential.peer,
    secret: credential.secret,
    peerId: peerIdFor(name),
    connectTimeout: 8000,
  });
  const ws = createWebSocketTransport({
    secret: credential.secret,
    resolve: relayCredentialAddress(`${base}/troupe/credential`),
  });
  const node = createNode({ name, secret: credential.secret, transports: [ws, rtc] });
  try {
    await node.listen();
  } catch (err) {
    console.warn(
      `troupe demo: WebRTC is off (${(err as Error).message}); every link goes through the relay`,
    );
  }
  const relay = await node.join(credential.ws);
  return { node, credential, relay, peerId: rtc.peerId };
}
