// The transfer fixture page: a node linked to one Web Worker node; `window.xfx.big(mb)` sends a
// buffer of `mb` MB to the worker with a transfer list and reports what the worker saw, whether
// the page's buffer was detached, and the time; `xfx.back(mb)` has the worker move one back.
import { createNode } from '../../../core/index.ts';
import { spawnWorkerNode } from '../../../adapters/worker.ts';

const node = createNode({ name: 'page' });
const ready = (async () => {
  await spawnWorkerNode(
    node,
    new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' }),
  );
  for (let i = 0; i < 500 && !node.whereis('check'); i++)
    await new Promise((r) => setTimeout(r, 10));
  const check = node.whereis('check');
  if (!check) throw new Error('the worker did not register `check`');
  return check;
})();

function checksum(v: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum = (sum + v[i] * (i % 31)) % 1_000_000_007;
  return sum;
}

const xfx = {
  async big(mb: number) {
    const check = await ready;
    const buf = new ArrayBuffer(mb * 1024 * 1024);
    const v = new Uint8Array(buf);
    for (let i = 0; i < v.length; i++) v[i] = (i * 13) & 255;
    const expected = checksum(v);
    const t0 = performance.now();
    const seen = (await check.call({ buf }, { transfer: [buf], timeout: 30_000 })) as {
      bytes: number;
      sum: number;
      isArrayBuffer: boolean;
    };
    return {
      seen,
      expected,
      bytes: mb * 1024 * 1024,
      detached: buf.byteLength === 0,
      ms: performance.now() - t0,
    };
  },
  async back(mb: number) {
    const check = await ready;
    const r = (await check.call({ make: mb * 1024 * 1024 }, { timeout: 30_000 })) as {
      buf: ArrayBuffer;
    };
    const v = new Uint8Array(r.buf);
    let ok = v.length === mb * 1024 * 1024;
    for (let i = 0; ok && i < v.length; i += 997) ok = v[i] === ((i * 7) & 255);
    return { bytes: r.buf.byteLength, ok };
  },
};
(globalThis as { xfx?: typeof xfx }).xfx = xfx;
export type Xfx = typeof xfx;
