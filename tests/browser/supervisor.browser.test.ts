// A supervised Web Worker in a real Chromium (playwright-core): the page's supervisor starts its
// child in a Web Worker (workerChild, patterns/supervised-worker.ts). The app's own
// `worker.terminate()`, a throw in the child actor and an uncaught error in the worker are child
// exits: each time a new worker runs the child, under the same name, and the old one is closed.
// No WebRTC, so no network namespace: the only socket is the static server on 127.0.0.1.
import { describe, expect, it } from 'vitest';
import { useFixturePage } from './harness/fixture-page.ts';
import type { Supx } from './sup-fixtures/page.ts';

declare const supx: Supx;

describe('a supervised Web Worker in Chromium', () => {
  const fx = useFixturePage('sup', 'supx');

  it('is restarted in a new worker after terminate(), after a throw in the actor and after an uncaught error in the worker', async () => {
    const r = await fx.page.evaluate(() => supx.run());
    expect(r.first).toBe(`${r.firstNode}:ping`);
    expect(r.afterTerminate.lastExit).toBe('noconnection');
    expect(r.afterThrow.lastExit).toMatchObject({ type: 'error', message: 'thrown in the worker' });
    expect(r.afterCrash.lastExit).toBe('noconnection');
    const nodesSeen = [r.firstNode, r.afterTerminate.node, r.afterThrow.node, r.afterCrash.node];
    expect(new Set(nodesSeen).size).toBe(4);
    for (const s of [r.afterTerminate, r.afterThrow, r.afterCrash])
      expect(s.reply).toBe(`${s.node}:ping`);
    expect(r.workers).toBe(4);
    // Only the last worker is still linked: the others were closed.
    expect(r.peers).toEqual([r.afterCrash.node]);
    console.log(
      `supervised Web Worker restart (Chromium): terminate ${r.afterTerminate.ms.toFixed(0)} ms, throw ${r.afterThrow.ms.toFixed(0)} ms, uncaught ${r.afterCrash.ms.toFixed(0)} ms`,
    );
    expect(fx.errors.filter((e) => !e.includes('uncaught in the worker'))).toEqual([]);
  }, 90_000);
});
