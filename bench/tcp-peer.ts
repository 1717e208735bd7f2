/**
 * The far side of the TCP bench, run as a child process by bench/tcp.ts:
 *   tcp-peer.ts raw     — a raw `net` server: echoes frames, or counts them (sink)
 *   tcp-peer.ts troupe  — a troupe node on the TCP adapter with an echo and a sink actor
 * It listens on 127.0.0.1 (port 0), reports its address over IPC, then takes IPC commands:
 *   { arm: n }  → replies { armed: true }, and { done: true } once n messages reached the sink
 *   { mode }    → raw only: 'echo' or 'sink' for the accepted connection
 */
import net from 'node:net';
import { behaviour, createNode } from '../core/index.ts';
import { Msg, Sink } from './messages.ts';
import { encodeFrames, frameReader } from './raw-frames.ts';

const send = (m: unknown) => process.send!(m);
const sink = new Sink();
let onCommand: (cmd: { arm?: number; mode?: string }) => void;
process.on('message', (cmd: { arm?: number; mode?: string; exit?: boolean }) => {
  if (cmd.exit) process.exit(0);
  if (cmd.arm !== undefined) {
    sink.arm(cmd.arm).then(() => send({ done: true }));
    send({ armed: true });
    return;
  }
  onCommand(cmd);
});
// The parent's death ends this process too.
process.on('disconnect', () => process.exit(0));

if (process.argv[2] === 'raw') {
  let mode = 'echo';
  onCommand = (cmd) => {
    if (cmd.mode) mode = cmd.mode;
    send({ mode });
  };
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on(
      'data',
      frameReader((text) => {
        const m = JSON.parse(text) as Msg;
        if (mode === 'echo') socket.write(encodeFrames([JSON.stringify(m)]));
        else sink.handle(m);
      }),
    );
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1', () => {
    send({ port: (server.address() as net.AddressInfo).port });
  });
} else {
  const { createTcpTransport } = await import('../adapters/tcp.ts');
  const node = createNode({ name: 'bench-peer', secret: process.env.BENCH_SECRET, transports: [createTcpTransport({ listen: '127.0.0.1:0' })] });
  const [address] = await node.listen();
  const echo = node.spawn(
    behaviour({
      schema: Msg,
      handle(m, _s, ctx) {
        ctx.reply(m);
      },
    }),
  );
  const counter = node.spawn(behaviour({ schema: Msg, handle: (m) => sink.handle(m) }));
  onCommand = () => {};
  send({ address, node: node.id, echo: echo.id, sink: counter.id });
}
