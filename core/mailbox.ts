/** Past this many taken slots, a mailbox compacts once they are half of its array. */
const COMPACT_AT = 4096;

/**
 * An actor's mailbox: a FIFO of items with O(1) take from the head (a moving head index over an
 * array, compacted when the taken prefix grows large) and removal from the middle for selective
 * receive. Holds user messages, calls and system messages alike; the actor tells them apart.
 * @internal
 */
export class Mailbox {
  #items: unknown[] = [];
  #head = 0;

  /** Items waiting. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Index of the first waiting item (for a scan with {@link at} up to {@link end}). */
  get start(): number {
    return this.#head;
  }

  /** One past the index of the last waiting item. */
  get end(): number {
    return this.#items.length;
  }

  /** The item at index `i` (between {@link start} and {@link end}). */
  at(i: number): unknown {
    return this.#items[i];
  }

  /** Append an item. */
  push(item: unknown): void {
    this.#items.push(item);
  }

  /** Take the first item (the mailbox must not be empty). */
  shift(): unknown {
    const items = this.#items;
    const h = this.#head;
    const item = items[h];
    items[h] = undefined;
    const next = h + 1;
    if (next === items.length) {
      // Emptied: a one-item mailbox (a call's round trip) pops, cheaper than setting the length.
      if (h === 0) items.pop();
      else items.length = 0;
      this.#head = 0;
    } else if (next >= COMPACT_AT && next * 2 >= items.length) {
      items.splice(0, next);
      this.#head = 0;
    } else {
      this.#head = next;
    }
    return item;
  }

  /** Take the item at index `i` (found by a scan), keeping the others in order. */
  removeAt(i: number): unknown {
    if (i === this.#head) return this.shift();
    return this.#items.splice(i, 1)[0];
  }

  /** Empty the mailbox, returning what was waiting, in order. */
  clear(): unknown[] {
    const rest = this.#head === 0 ? this.#items : this.#items.slice(this.#head);
    this.#items = [];
    this.#head = 0;
    return rest;
  }
}
