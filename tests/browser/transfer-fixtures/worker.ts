// The Web Worker of the transfer fixture: a troupe node linked to its page, with an actor `check`
// that answers a call { buf } with the buffer's size and a checksum over every byte, and a call
// { make: n } with a buffer of n bytes (i * 7 & 255) moved back with a transfer list.
import { createWorkerNode } from '../../../adapters/worker.ts';

const { node } = createWorkerNode();
node.spawn(
  async (self) => {
    for (;;) {
      const m = (await self.receive()) as { buf?: ArrayBuffer; make?: number };
      if (m.buf !== undefined) {
        const v = new Uint8Array(m.buf);
        let sum = 0;
        for (let i = 0; i < v.length; i++) sum = (sum + v[i] * (i % 31)) % 1_000_000_007;
        self.reply({ bytes: m.buf.byteLength, sum, isArrayBuffer: m.buf instanceof ArrayBuffer });
      } else if (m.make !== undefined) {
        const buf = new ArrayBuffer(m.make);
        const v = new Uint8Array(buf);
        for (let i = 0; i < v.length; i++) v[i] = (i * 7) & 255;
        self.reply({ buf }, { transfer: [buf] });
      }
    }
  },
  { name: 'check' },
);
