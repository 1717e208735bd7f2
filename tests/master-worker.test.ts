// Master and workers (patterns/master-worker.ts, patterns/node.ts): real worker processes
// (demo-node/dist-worker.ts) found by multicast on 127.0.0.1; the master runs in this process.
import { describe, expect, it } from 'vitest';
import { startMaster } from '../patterns/node.ts';
import type { LogEntry } from '../patterns/index.ts';
import { freshGroup, groupArgs, useDist, eventually, within } from './dist-fixtures.ts';

const SECRET = 'master-worker-secret';

describe('master and workers', () => {
  const dist = useDist();

  it('finds four workers, runs a job on each, gets their logs, finds a late worker, terminates them all', async () => {
    const g = freshGroup();
    const procs = await Promise.all(
      ['mw-1', 'mw-2', 'mw-3', 'mw-4'].map((n) =>
        dist.start(n, 'dist-worker.ts', ['--name', n, ...groupArgs(g, SECRET)]),
      ),
    );
    const logs: LogEntry[] = [];

    const summary = await startMaster(
      { name: 'mw-master', secret: SECRET, discovery: g, minWorkers: 4, findTimeout: 20_000 },
      async (workers, master) => {
        expect(workers.map((w) => w.id)).toEqual(['mw-1', 'mw-2', 'mw-3', 'mw-4']);
        for (const w of workers)
          expect(w.info.info.pid).toBe(procs.find((p) => p.id === w.id)!.proc.pid);

        await master.redirectLogsHere({ onLog: (e) => logs.push(e) });

        // A job on each worker: a served function, and a spawned behaviour ending with its result.
        const fibs = await Promise.all(
          workers.map((w) => w.run<{ value: number; by: string }>('fib', 20)),
        );
        expect(fibs).toEqual(workers.map((w) => ({ value: 6765, by: w.id })));
        const sums = await Promise.all(workers.map((w, i) => w.spawn<number>('sum', [i, 10, 100])));
        expect(sums).toEqual([110, 111, 112, 113]);

        // Their console output arrives here, in order per worker, and is no longer printed there.
        await Promise.all(workers.map((w) => w.run('say', `first from ${w.id}`)));
        await Promise.all(workers.map((w) => w.run('say', `second from ${w.id}`)));
        await eventually(
          () => logs.filter((e) => e.line.includes(' says: ')).length === 8,
          'eight log lines at the master',
        );
        for (const w of workers) {
          expect(
            logs
              .filter((e) => e.worker === w.id && e.line.includes(' says: '))
              .map((e) => [e.stream, e.line]),
          ).toEqual([
            ['out', `${w.id} says: first from ${w.id}`],
            ['out', `${w.id} says: second from ${w.id}`],
          ]);
          expect(procs.find((p) => p.id === w.id)!.lines.some((l) => l.includes(' says: '))).toBe(
            false,
          );
        }

        // Nothing new yet; then a worker started now is found by findWorkers.
        expect(await master.findWorkers({ settle: 100 })).toEqual([]);
        const late = await dist.start('mw-5', 'dist-worker.ts', [
          '--name',
          'mw-5',
          ...groupArgs(g, SECRET),
        ]);
        const found = await master.findWorkers({ min: 1, timeout: 20_000 });
        expect(found.map((w) => w.id)).toEqual(['mw-5']);
        expect(await found[0].run('fib', 10)).toEqual({ value: 55, by: 'mw-5' });
        // Log redirection covers workers found later too.
        await found[0].run('say', 'late one');
        await eventually(
          () => logs.some((e) => e.worker === 'mw-5' && e.line === 'mw-5 says: late one'),
          'the late worker logs at the master',
        );

        // Terminate one, then all the others: each process exits cleanly.
        await master.terminateWorker('mw-1');
        expect(await within(procs[0].exited, 'mw-1 exits', 10_000)).toEqual({
          code: 0,
          signal: null,
        });
        expect(master.workers().map((w) => w.id)).not.toContain('mw-1');
        await master.terminateAllWorkers();
        return { late, left: master.workers().length };
      },
    );

    for (const p of [...procs, summary.late])
      expect(await within(p.exited, `${p.name} exits`, 10_000)).toEqual({ code: 0, signal: null });
    expect(summary.left).toBe(0);
  }, 90_000);
});
