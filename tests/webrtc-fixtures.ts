// Helpers for the Node-side WebRTC tests: WebRTC in Node through node-datachannel's W3C polyfill
// (only loopback candidates: it binds to 127.0.0.1), and a PeerServer (npm `peer`) on 127.0.0.1.
// The globals are installed in the test file's own process (vitest runs each file in a fork).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import * as polyfill from 'node-datachannel/polyfill';
import { attachPeerServer } from '../server/relay-signal.ts';

/** Install RTCPeerConnection & co. (bound to 127.0.0.1, no ICE servers) and a WebSocket, as peerjs expects in a browser. */
export function installNodeWebRtc(): void {
  const g = globalThis as Record<string, unknown>;
  if (g.RTCPeerConnection) return;
  class LoopbackPeerConnection extends polyfill.RTCPeerConnection {
    #described: Promise<void>[];
    #mark: (() => void)[] = [];
    constructor(config: RTCConfiguration = {}) {
      super({
        ...config,
        iceServers: config.iceServers ?? [],
        bindAddress: '127.0.0.1',
      } as RTCConfiguration);
      this.#described = [0, 1].map(() => new Promise<void>((resolve) => this.#mark.push(resolve)));
    }
    override setLocalDescription(description?: RTCLocalSessionDescriptionInit): Promise<void> {
      const done = super.setLocalDescription(description as RTCSessionDescriptionInit);
      done.then(this.#mark[0], () => {});
      return done;
    }
    override setRemoteDescription(description: RTCSessionDescriptionInit): Promise<void> {
      const done = super.setRemoteDescription(description);
      done.then(this.#mark[1], () => {});
      return done;
    }
    // A browser queues a candidate that arrives before it can use it (peerjs relies on that:
    // the offer, the answer and each candidate travel as separate signalling messages). The
    // polyfill drops a candidate that comes before both descriptions, and the connection then
    // sometimes never opens.
    override async addIceCandidate(candidate?: RTCIceCandidateInit): Promise<void> {
      await Promise.all(this.#described);
      return super.addIceCandidate(candidate);
    }
  }
  g.RTCPeerConnection = LoopbackPeerConnection;
  g.RTCSessionDescription = polyfill.RTCSessionDescription;
  g.RTCIceCandidate = polyfill.RTCIceCandidate;
  // peerjs sets no error listener on its signalling socket; ws (an EventEmitter) would turn a
  // refused connection into an uncaught exception where a browser only fires an event.
  class QuietWebSocket extends WebSocket {
    constructor(...args: ConstructorParameters<typeof WebSocket>) {
      super(...args);
      this.on('error', () => {});
    }
  }
  g.WebSocket ??= QuietWebSocket;
}

/** A PeerServer alone on 127.0.0.1 at an ephemeral port, signalling under `/peerjs`. */
export async function startPeerServer(key = 'troupe-test'): Promise<{
  signal: { host: string; port: number; path: string; key: string };
  peers(): string[];
  close(): Promise<void>;
}> {
  const server = http.createServer();
  const ps = await attachPeerServer(server, { path: '/peerjs', key });
  server.on('request', (req, res) =>
    ps.owns(req.url ?? '') ? ps.handle(req, res) : res.writeHead(404).end(),
  );
  server.on('upgrade', (req, socket, head) =>
    ps.owns(req.url ?? '') ? ps.handleUpgrade(req, socket, head) : socket.destroy(),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    signal: { host: '127.0.0.1', port, path: '/peerjs', key },
    peers: () => ps.peers(),
    async close() {
      ps.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
