import type { Connection } from '../../core/index.ts';

/**
 * An in-memory connection pair whose ends fail separately, for faults the memory transport
 * cannot make: `cutA()` closes only A's end (B never hears of it, as with a TCP connection
 * whose FIN was lost), and `blackhole('a→b')` silently drops what A sends from then on.
 */
export interface SidedPair {
  a: Connection;
  b: Connection;
  cutA(): void;
  cutB(): void;
  blackhole(direction: 'a→b' | 'b→a'): void;
}

export function sidedPair(): SidedPair {
  type End = Connection & { other?: End; dead: boolean; dropping: boolean };
  const mk = (label: string): End => {
    const end: End = {
      label,
      dead: false,
      dropping: false,
      onframe: null,
      onclose: null,
      send(f) {
        if (end.dead || end.other!.dead || end.dropping) return;
        queueMicrotask(() => !end.other!.dead && end.other!.onframe?.(f));
      },
      close() {
        if (end.dead) return;
        end.dead = true;
        end.onclose?.('closed');
      },
    };
    return end;
  };
  const a = mk('a');
  const b = mk('b');
  a.other = b;
  b.other = a;
  return {
    a,
    b,
    cutA: () => a.close(),
    cutB: () => b.close(),
    blackhole: (direction) => ((direction === 'a→b' ? a : b).dropping = true),
  };
}
