// Issue 14 — transfer lists in a real Chromium: a 64 MB ArrayBuffer sent to a Web Worker node with
// `call(msg, { transfer: [buf] })` arrives intact (checksum over every byte) and the page's buffer
// is detached (moved, not copied); the worker moves a 16 MB buffer back in its reply. Runs
// Chromium directly (no WebRTC, no namespace): the only socket is the static server on 127.0.0.1.
import { describe, expect, it } from 'vitest';
import { useFixturePage } from './harness/fixture-page.ts';
import type { Xfx } from './transfer-fixtures/page.ts';

declare const xfx: Xfx;

describe('transfer lists to a Web Worker in Chromium', () => {
  const fx = useFixturePage('transfer', 'xfx');

  it("a 64 MB buffer moved to the worker arrives intact; the page's buffer is detached", async () => {
    const r = await fx.page.evaluate(() => xfx.big(64));
    expect(r.seen).toEqual({ bytes: r.bytes, sum: r.expected, isArrayBuffer: true });
    expect(r.detached).toBe(true);
    console.log(
      `[flow/transfer chromium] 64 MB call with transfer list: ${r.ms.toFixed(1)} ms round trip (checksum in the worker included)`,
    );
    expect(fx.errors).toEqual([]);
  }, 60_000);

  it('the worker moves a 16 MB buffer back in its reply', async () => {
    expect(await fx.page.evaluate(() => xfx.back(16))).toEqual({
      bytes: 16 * 1024 * 1024,
      ok: true,
    });
    expect(fx.errors).toEqual([]);
  }, 60_000);
});
