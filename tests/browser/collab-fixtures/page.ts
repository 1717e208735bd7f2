// The troupe/yjs fixture page: one node per page (WebSocket to the relay, WebRTC through its
// PeerServer), one participant of a shared document kept in IndexedDB by y-indexeddb, driven from
// Playwright through `window.collab` (plain JSON in and out).
import { IndexeddbPersistence } from 'y-indexeddb';
import { Peer, type DataConnection } from 'peerjs';
import { createNode, type Node } from '../../../core/index.ts';
import { createWebSocketTransport, relayCredentialAddress } from '../../../adapters/websocket.ts';
import {
  createWebRtcTransport,
  peerIdFor,
  type PeerServerLocation,
} from '../../../adapters/webrtc.ts';
import { joinDocument, type YjsProvider } from '../../../collab/index.ts';
import { FIXTURE_TIMING } from '../fixtures/timing.ts';

export interface CollabStart {
  name: string;
  wsUrl: string;
  secret: string;
  credentialUrl: string;
  signal?: PeerServerLocation;
  user: string;
  doc: string;
  /** Keep the page's copy in IndexedDB (y-indexeddb). @default true */
  idb?: boolean;
}

let node: Node | undefined;
let rawPeer: Peer | undefined;
let provider: YjsProvider | undefined;
const refused: string[] = [];
const log: string[] = [];

function need(): YjsProvider {
  if (!provider) throw new Error('collab.start() first');
  return provider;
}

const collab = {
  async start(o: CollabStart) {
    const transports = [
      createWebSocketTransport({
        secret: o.secret,
        connectTimeout: FIXTURE_TIMING.connectTimeout,
        resolve: relayCredentialAddress(o.credentialUrl),
      }),
    ];
    if (o.signal)
      transports.push(
        createWebRtcTransport({
          signal: o.signal,
          secret: o.secret,
          peerId: peerIdFor(o.name),
          connectTimeout: FIXTURE_TIMING.connectTimeout,
        }) as never,
      );
    const n = createNode({
      name: o.name,
      secret: o.secret,
      transports,
      heartbeatInterval: FIXTURE_TIMING.heartbeatInterval,
      heartbeatTimeout: FIXTURE_TIMING.heartbeatTimeout,
      callTimeout: FIXTURE_TIMING.callTimeout,
    });
    node = n;
    for (const type of [
      'linkUp',
      'linkDown',
      'nodeDown',
      'protocolError',
      'invalidMessage',
    ] as const)
      n.events.on(
        type,
        (e: unknown) => log.length < 300 && log.push(`${type} ${JSON.stringify(e)}`),
      );
    await n.listen();
    await n.join(o.wsUrl);
    const p = joinDocument(n, { name: o.doc, user: o.user, retryInterval: 500 });
    provider = p;
    // y-indexeddb keeps the page's copy: edits made offline survive a reload too.
    if (o.idb !== false)
      await new IndexeddbPersistence(`troupe-${o.doc}-${o.user}`, p.doc).whenSynced;
    p.events.on('refused', (e) => refused.push(e.reason));
    p.events.on('status', (e) => log.push(`status ${e.status}`));
    p.awareness.setLocalStateField('user', {
      name: o.user,
      color:
        '#' +
        Math.floor(Math.random() * 0xffffff)
          .toString(16)
          .padStart(6, '0'),
    });
    await p.whenSynced();
    return { id: n.id, client: p.doc.clientID, role: p.role };
  },
  text: () => need().doc.getText('body').toString(),
  status: () => need().status,
  role: () => need().role,
  refused: () => [...refused],
  events: () => [...log],
  links: () => node?.linkStats().map((s) => ({ node: s.node, label: s.label })) ?? [],
  /** The users whose presence this page shows (its own included). */
  presence: () =>
    [...need().awareness.getStates().values()]
      .map((s) => (s as { user?: { name?: string } }).user?.name)
      .filter((n): n is string => typeof n === 'string')
      .sort(),
  insert: (pos: number, s: string) => {
    const t = need().doc.getText('body');
    t.insert(Math.min(pos, t.length), s);
    return t.length;
  },
  append: (s: string) => {
    const t = need().doc.getText('body');
    t.insert(t.length, s);
    return t.length;
  },
  cursor: (anchor: number, head: number) =>
    need().awareness.setLocalStateField('cursor', { anchor, head }),
  /** Type random letters (and now and then delete one) into the one paragraph for `ms`; resolves with the count of edits. */
  async type(ms: number, seed: number) {
    const t = need().doc.getText('body');
    let x = seed >>> 0 || 1;
    const rnd = () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 2 ** 32;
    };
    const end = Date.now() + ms;
    let edits = 0;
    while (Date.now() < end) {
      if (t.length > 20 && rnd() < 0.2) t.delete(Math.floor(rnd() * t.length), 1);
      else
        t.insert(
          Math.floor(rnd() * (t.length + 1)),
          String.fromCharCode(97 + Math.floor(rnd() * 26)),
        );
      need().awareness.setLocalStateField('cursor', {
        anchor: Math.floor(rnd() * t.length),
        head: Math.floor(rnd() * t.length),
      });
      edits++;
      await new Promise((r) => setTimeout(r, 15 + rnd() * 40));
    }
    return edits;
  },
  /** Bench: answer every remote edit of the text `ping` with an edit of `pong` (through troupe/yjs). */
  benchEcho() {
    const p = need();
    const ping = p.doc.getText('ping');
    const pong = p.doc.getText('pong');
    ping.observe((e) => {
      if (e.transaction.origin !== p) return;
      pong.insert(pong.length, 'x');
    });
  },
  /** Bench: `n` sequential edits of `ping`, each awaiting the echo on `pong`; half of each round trip in ms. */
  async benchPing(n: number) {
    const p = need();
    const ping = p.doc.getText('ping');
    const pong = p.doc.getText('pong');
    const halves: number[] = [];
    for (let i = 0; i < n; i++) {
      const before = pong.length;
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        const check = () => {
          if (pong.length > before) {
            pong.unobserve(check);
            resolve();
          }
        };
        pong.observe(check);
        ping.insert(ping.length, 'x');
      });
      halves.push((performance.now() - t0) / 2);
    }
    return halves;
  },
  /** Bench baseline: a raw peerjs peer that echoes every message (reliable, raw serialization, as troupe's). */
  async rawListen(id: string, signal: PeerServerLocation) {
    const peer = new Peer(id, { ...signal, config: { iceServers: [] } });
    await new Promise<void>((resolve, reject) => {
      peer.once('open', () => resolve());
      peer.once('error', reject);
    });
    peer.on('connection', (dc: DataConnection) => dc.on('data', (d) => dc.send(d)));
    rawPeer = peer;
  },
  /** Bench baseline: `n` sequential raw round trips to the echoing peer `target`; half of each in ms. */
  async rawPing(id: string, target: string, signal: PeerServerLocation, n: number) {
    const peer = new Peer(id, { ...signal, config: { iceServers: [] } });
    await new Promise<void>((resolve, reject) => {
      peer.once('open', () => resolve());
      peer.once('error', reject);
    });
    const dc = peer.connect(target, { reliable: true, serialization: 'raw' });
    await new Promise<void>((resolve) => dc.once('open', () => resolve()));
    const halves: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        dc.once('data', () => resolve());
        dc.send(`{"ping":${i}}`);
      });
      halves.push((performance.now() - t0) / 2);
    }
    peer.destroy();
    return halves;
  },
  disconnect: () => need().disconnect(),
  connect: () => need().connect(),
  waitSynced: async (ms: number) => {
    const p = need();
    await Promise.race([
      p.whenSynced(),
      new Promise((_, rej) =>
        setTimeout(() => rej(new Error(`not synced after ${ms} ms (status ${p.status})`)), ms),
      ),
    ]);
    return p.status;
  },
};

(window as unknown as { collab: typeof collab }).collab = collab;
