// The host globals core may use: the subset that browsers, Web Workers, Deno and Node all provide.
// core compiles without DOM or Node types (core/tsconfig.json); anything not declared here is
// out of bounds for core and must live in an adapter.
declare function setTimeout(fn: () => void, ms?: number): unknown;
declare function clearTimeout(handle: unknown): void;
declare function queueMicrotask(fn: () => void): void;
declare class TextEncoder {
  encode(input?: string): Uint8Array;
  encodeInto(input: string, dest: Uint8Array): { read: number; written: number };
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean });
  decode(input?: Uint8Array): string;
}
declare const performance: { now(): number };
// Cancellation (every host has them since 2021).
declare class AbortSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}
declare class AbortController {
  readonly signal: AbortSignal;
  abort(reason?: unknown): void;
}
// The web stream a consumer may want instead of an async iterator (core only creates one).
declare class ReadableStream<R = unknown> {
  constructor(
    source: {
      pull?(controller: {
        enqueue(chunk: R): void;
        close(): void;
        error(e?: unknown): void;
      }): void | Promise<void>;
      cancel?(reason?: unknown): void | Promise<void>;
    },
    strategy?: { highWaterMark?: number },
  );
}
