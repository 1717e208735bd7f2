/**
 * Supervision: `supervisor.restart_us`, from a child's crash to its replacement (started by a
 * one_for_one supervisor) answering a call, median of many; beside a bare `spawn` + the same
 * call in the same run (the baseline).
 */
import { behaviour, createNode, supervisor, type ActorRef } from '../core/index.ts';
import { median, now, type BenchCase, type Result } from './harness.ts';

const ROUNDS = 2000;
const WARMUP = 200;

/** A child that answers 'ping', throws on 'crash', and reports each start to `onStart`. */
const child = behaviour({
  init: (args: { onStart: (ref: ActorRef) => void }, ctx) => {
    args.onStart(ctx.ref);
    return 0;
  },
  handle(msg: 'ping' | 'crash', s: number, ctx) {
    if (msg === 'crash') throw new Error('crash');
    ctx.reply('pong');
    return s;
  },
});

const restart: BenchCase = {
  name: 'supervisor.restart',
  async run(): Promise<Result[]> {
    const node = createNode({ name: 'bench-sup' });
    let started: (ref: ActorRef) => void = () => {};
    const onStart = (ref: ActorRef) => started(ref);
    const next = () => new Promise<ActorRef>((r) => (started = r));
    let first = next();
    node.spawn(
      supervisor({
        intensity: 1e9,
        period: 1,
        children: [{ id: 'c', start: child, args: { onStart } }],
      }),
    );
    let current = (await first) as ActorRef<'ping' | 'crash'>;

    const restartOnce = async (): Promise<number> => {
      first = next();
      const t0 = now();
      current.send('crash');
      current = (await first) as ActorRef<'ping' | 'crash'>;
      await current.call('ping');
      return (now() - t0) * 1000;
    };
    const spawnOnce = async (): Promise<number> => {
      const t0 = now();
      const ref = node.spawn(child, { args: { onStart: () => {} } }) as ActorRef<'ping' | 'crash'>;
      await ref.call('ping');
      const us = (now() - t0) * 1000;
      node.kill(ref);
      return us;
    };
    const rs: number[] = [];
    const ss: number[] = [];
    for (let i = 0; i < WARMUP; i++) {
      await restartOnce();
      await spawnOnce();
    }
    for (let i = 0; i < ROUNDS; i++) {
      rs.push(await restartOnce());
      ss.push(await spawnOnce());
    }
    await node.shutdown();
    return [
      {
        key: 'supervisor.restart_us',
        unit: 'µs',
        value: median(rs),
        baseline: median(ss),
        baselineLabel: 'bare spawn + call',
        note: `supervisor.restart_us: crash → one_for_one restart → the new child answers a call; median of ${ROUNDS}`,
      },
    ];
  },
};

export const cases: BenchCase[] = [restart];
