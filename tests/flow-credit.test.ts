// Issue 14 (phase 2 groundwork) — the credit book behind awaited sends (core/flow-credit.ts),
// with a manual clock: a send goes at once while it fits the window (or nothing is outstanding,
// so any size goes), waits first-come-first-served otherwise, and is released by grants; node
// loss and aborts reject waiters; the receiver grants back per quarter window or after a delay.
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../core/index.ts';
import { CreditBook } from '../core/flow-credit.ts';

const noGrant = (): void => {};

describe('CreditBook (sender side)', () => {
  it('goes at once within the window; any size goes when nothing is outstanding', () => {
    const book = new CreditBook(100, createManualClock(), noGrant);
    expect(book.acquire('b', 60)).toBeUndefined();
    expect(book.acquire('b', 40)).toBeUndefined();
    expect(book.outstanding('b')).toBe(100);
    const other = new CreditBook(100, createManualClock(), noGrant);
    expect(other.acquire('b', 1000)).toBeUndefined(); // larger than the window, alone
  });

  it('waits first come first served; grants release waiters in order, a large one is not starved', async () => {
    const book = new CreditBook(100, createManualClock(), noGrant);
    book.acquire('b', 90);
    const order: string[] = [];
    const big = book.acquire('b', 100)!.then(() => order.push('big'));
    const small = book.acquire('b', 5)!.then(() => order.push('small')); // fits, but waits behind big
    expect(big).toBeDefined();
    book.release('b', 50);
    await Promise.resolve();
    expect(order).toEqual([]);
    book.release('b', 40); // outstanding 0: big goes alone
    await big;
    book.release('b', 100);
    await small;
    expect(order).toEqual(['big', 'small']);
    expect(book.outstanding('b')).toBe(5);
  });

  it('node loss rejects waiters NODE_DOWN and forgets the outstanding bytes; abort rejects ABORTED and lets the next go', async () => {
    const book = new CreditBook(10, createManualClock(), noGrant);
    book.acquire('b', 10);
    const w = book.acquire('b', 5)!;
    book.dropNode('b', 'noconnection');
    await expect(w).rejects.toMatchObject({ code: 'NODE_DOWN' });
    expect(book.outstanding('b')).toBe(0);
    book.acquire('b', 8);
    const ac = new AbortController();
    const head = book.acquire('b', 10, ac.signal)!;
    const next = book.acquire('b', 2)!;
    ac.abort();
    await expect(head).rejects.toMatchObject({ code: 'ABORTED' });
    await next; // 8 + 2 fits once the head is gone
    expect(book.outstanding('b')).toBe(10);
  });
});

describe('CreditBook (receiver side)', () => {
  it('grants per quarter window at once, and the rest after the flush delay', () => {
    const clock = createManualClock();
    const grants: [string, number][] = [];
    const book = new CreditBook(100, clock, (n, b) => grants.push([n, b]), 2);
    book.taken('a', 10);
    book.taken('a', 10);
    expect(grants).toEqual([]);
    book.taken('a', 10); // 30 ≥ 25
    expect(grants).toEqual([['a', 30]]);
    book.taken('a', 3);
    book.taken('c', 4);
    clock.advance(2);
    expect(grants).toEqual([
      ['a', 30],
      ['a', 3],
      ['c', 4],
    ]);
  });
});
