/**
 * The far side of the NATS bench, run as a child process by bench/nats.ts (NATS_URL in the env):
 *   nats-peer.ts raw     — a raw `nats` client: answers requests on `bench.echo`, counts
 *     `bench.sink` (one message per publish) and `bench.sink.batch` (a JSON array per publish)
 *   nats-peer.ts troupe  — a troupe node on the NATS transport with an echo and a sink actor
 * Reports over IPC once ready, then takes `{ arm: n }` → `{ armed }`, later `{ done }` after n
 * messages reached the sink.
 */
import { connect } from 'nats';
import { behaviour, createNode } from '../core/index.ts';
import { Msg, Sink } from './messages.ts';

const send = (m: unknown) => process.send!(m);
const sink = new Sink();
process.on('message', (cmd: { arm?: number; exit?: boolean }) => {
  if (cmd.exit) process.exit(0);
  if (cmd.arm !== undefined) {
    sink.arm(cmd.arm).then(() => send({ done: true }));
    send({ armed: true });
  }
});
process.on('disconnect', () => process.exit(0));
const url = process.env.NATS_URL!;
const dec = new TextDecoder();

if (process.argv[2] === 'raw') {
  const nc = await connect({ servers: url });
  nc.subscribe('bench.echo', {
    callback: (_e, m) =>
      m.respond(new TextEncoder().encode(JSON.stringify(JSON.parse(dec.decode(m.data)) as Msg))),
  });
  nc.subscribe('bench.sink', {
    callback: (_e, m) => sink.handle(JSON.parse(dec.decode(m.data)) as Msg),
  });
  // The batched baseline: a tick's messages as one JSON array in one publish.
  nc.subscribe('bench.sink.batch', {
    callback: (_e, m) => {
      const batch = JSON.parse(dec.decode(m.data)) as Msg[];
      for (let i = 0; i < batch.length; i++) sink.handle(batch[i]!);
    },
  });
  await nc.flush();
  send({ ready: true });
} else {
  const { createNatsTransport } = await import('../adapters/nats.ts');
  const t = createNatsTransport({ servers: url });
  const node = createNode({
    name: 'bench-peer',
    secret: process.env.BENCH_SECRET,
    transports: [t],
  });
  const [address] = await node.listen();
  const echo = node.spawn(behaviour({ schema: Msg, handle: (m, _s, ctx) => ctx.reply(m) }));
  const counter = node.spawn(behaviour({ schema: Msg, handle: (m) => sink.handle(m) }));
  send({ address, node: node.id, echo: echo.id, sink: counter.id });
}
