// Workers and processes as supervised children (Node): a worker_threads worker and a child
// process, each running a troupe node with the child actor. terminate(), SIGKILL, a throw in the
// actor and an exit of the worker are child exits; the supervisor starts a new worker each time,
// under the same name, and closes the old one.
import { describe, it, expect } from 'vitest';
import type { Worker } from 'node:worker_threads';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { supervisor, whichChildren, type Node, type SupervisorRef } from '../core/index.ts';
import { threadChild, processChild } from '../patterns/supervised-node.ts';
import { useNodes, until, within } from './helpers/nodes.ts';

const ENTRY = new URL('./fixtures/sup-worker.ts', import.meta.url).href;
const TSX_WORKER = new URL('./fixtures/tsx-worker.mjs', import.meta.url);
const SCRIPT = fileURLToPath(new URL('./fixtures/sup-worker.ts', import.meta.url));

async function restarted(
  sup: SupervisorRef,
  n: number,
): Promise<{ node: string; lastExit: unknown }> {
  let info: Awaited<ReturnType<typeof whichChildren>>[number] | undefined;
  const end = Date.now() + 60_000;
  for (;;) {
    info = (await whichChildren(sup))[0];
    if (info.restarts === n && info.status === 'running')
      return { node: info.node!, lastExit: info.lastExit };
    if (Date.now() > end) throw new Error(`not restarted ${n} times: ${JSON.stringify(info)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const exited = (w: Worker | ChildProcess): Promise<unknown> =>
  new Promise((resolve) => {
    if ('exitCode' in w && w.exitCode !== null) return resolve(w.exitCode);
    w.once('exit', resolve);
  });

describe('supervised workers and processes (Node)', () => {
  const nodes = useNodes();
  // A generous heartbeat timeout (both sides): here a lost worker is seen by its exit event.
  const mk = (): Node => nodes({ secret: 'worker-secret', heartbeatTimeout: 15_000 });

  it('a worker_threads child: restarted after terminate(), a throw, and an exit of the thread', async () => {
    const n = mk();
    const workers: Worker[] = [];
    const sup = n.spawn(
      supervisor({
        intensity: 10,
        children: [
          {
            id: 'thread',
            name: 'thread-echo',
            start: threadChild(TSX_WORKER, {
              workerData: { entry: ENTRY },
              behaviour: 'w.echo',
              onStart: (w) => workers.push(w),
            }),
          },
        ],
      }),
    );
    await until(
      () => workers.length === 1 && n.whereis('thread-echo') !== undefined,
      'first thread',
      60_000,
    );
    const first = (await whichChildren(sup))[0].node!;
    expect(await n.call('thread-echo', 'ping')).toBe(`${first}:ping`);

    const gone1 = exited(workers[0]);
    workers[0].terminate();
    await within(gone1, 'first thread exits');
    let r = await restarted(sup, 1);
    expect(r.lastExit).toBe('noconnection');
    expect(r.node).not.toBe(first);
    expect(await n.call('thread-echo', 'ping')).toBe(`${r.node}:ping`);

    const gone2 = exited(workers[1]);
    n.send('thread-echo', 'throw');
    r = await restarted(sup, 2);
    expect(r.lastExit).toMatchObject({ type: 'error', message: 'thrown in the worker' });
    await within(gone2, 'the thread of the actor that threw is closed', 10_000);
    expect(await n.call('thread-echo', 'ping')).toBe(`${r.node}:ping`);

    n.send('thread-echo', 'exit');
    r = await restarted(sup, 3);
    expect(r.lastExit).toBe('noconnection');
    expect(await n.call('thread-echo', 'ping')).toBe(`${r.node}:ping`);

    const last = exited(workers[3]);
    const down = n.waitDown(sup);
    n.exit(sup, 'shutdown');
    await within(down, 'supervisor ends');
    await within(last, 'last thread closed with its supervisor', 10_000);
    await until(() => n.nodes().length === 0, 'no worker node left');
    expect(workers).toHaveLength(4);
  }, 180_000);

  it('a child process child: restarted after SIGKILL and after a throw; closed with its supervisor', async () => {
    const n = mk();
    const procs: ChildProcess[] = [];
    const sup = n.spawn(
      supervisor({
        intensity: 10,
        children: [
          {
            id: 'proc',
            name: 'proc-echo',
            start: processChild(SCRIPT, {
              execArgv: ['--import', 'tsx'],
              behaviour: 'w.echo',
              onStart: (w) => procs.push(w.process),
            }),
          },
        ],
      }),
    );
    await until(
      () => procs.length === 1 && n.whereis('proc-echo') !== undefined,
      'first process',
      60_000,
    );
    expect(await n.call('proc-echo', 'ping')).toMatch(/:ping$/);

    procs[0].kill('SIGKILL');
    let r = await restarted(sup, 1);
    expect(r.lastExit).toBe('noconnection');
    expect(await n.call('proc-echo', 'ping')).toBe(`${r.node}:ping`);

    const gone = exited(procs[1]);
    n.send('proc-echo', 'throw');
    r = await restarted(sup, 2);
    expect(r.lastExit).toMatchObject({ type: 'error', message: 'thrown in the worker' });
    await within(gone, 'the process of the actor that threw is closed', 10_000);
    expect(await n.call('proc-echo', 'ping')).toBe(`${r.node}:ping`);

    const last = exited(procs[2]);
    const down = n.waitDown(sup);
    n.exit(sup, 'shutdown');
    await within(down, 'supervisor ends');
    await within(last, 'last process closed with its supervisor', 10_000);
    expect(procs.every((p) => p.exitCode !== null || p.signalCode !== null)).toBe(true);
  }, 180_000);
});
