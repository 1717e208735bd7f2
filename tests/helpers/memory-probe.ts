// Retained-memory measurement for flow-control and soak tests: a full GC, then the heap and the
// off-heap buffers (sockets' write buffers live there). Garbage is excluded, so the figure is
// what the process actually holds on to.
import v8 from 'node:v8';
import vm from 'node:vm';

let gcFn: (() => void) | undefined;

/** A full garbage collection (exposes `gc` at run time; vitest's forks do not pass --expose-gc). */
export function fullGc(): void {
  if (!gcFn) {
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc') as () => void;
  }
  gcFn();
}

/** Bytes retained after a full GC: V8 heap in use plus external memory (Buffers). */
export function retainedBytes(): number {
  fullGc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/** Samples {@link retainedBytes} every `everyMs` and keeps the peak (relative to the baseline taken at start). */
export class MemoryProbe {
  readonly baseline: number;
  peak: number;
  samples = 0;
  #timer: NodeJS.Timeout;

  constructor(everyMs = 1000) {
    this.baseline = retainedBytes();
    this.peak = this.baseline;
    this.#timer = setInterval(() => this.sample(), everyMs);
  }

  /** Take one sample now (also call it at moments of interest: the producer just finished). */
  sample(): number {
    const v = retainedBytes();
    this.samples++;
    if (v > this.peak) this.peak = v;
    return v;
  }

  /** Growth of the peak over the baseline, in bytes. */
  get peakGrowth(): number {
    return this.peak - this.baseline;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** `n` bytes as MB with one decimal, for messages. */
export function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}
