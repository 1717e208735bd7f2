import type { AnyActorRef } from './actor-ref.ts';
import type { ProcessFn, SpawnOptions } from './behaviour.ts';
import { TroupeError, toTroupeError } from './errors.ts';
import { Down } from './messages.ts';

/** What a watch needs from its runtime. @internal */
export interface WatchHost {
  readonly id: string;
  spawnLocal(what: ProcessFn<any>, options: SpawnOptions): AnyActorRef;
  exitTo(ref: AnyActorRef, reason: unknown): void;
}

/**
 * Call `onDown` once when `ref` ends (with `noproc` if it is not alive, `noconnection` if its
 * node is lost). Returns a function that cancels the watch.
 */
export function watch(
  host: WatchHost,
  ref: AnyActorRef,
  onDown: (down: Down) => void,
  onCancel?: (err: TroupeError) => void,
): () => void {
  const watcher = host.spawnLocal(async (self) => {
    self.monitor(ref);
    let m: unknown;
    try {
      m = await self.receive((x) => x instanceof Down);
    } catch (err) {
      // The watch ended first (this node shut down, or the watch was cancelled).
      onCancel?.(toTroupeError(err, 'SHUTDOWN'));
      return;
    }
    onDown(m as Down);
  }, {});
  return () => host.exitTo(watcher, 'kill');
}

/**
 * Resolve with the DOWN message of `ref` (see {@link Node.watch}).
 * @throws {TroupeError} `SHUTDOWN` when this node shuts down first.
 */
export function waitDown(host: WatchHost, ref: AnyActorRef): Promise<Down> {
  return new Promise((resolve, reject) =>
    watch(host, ref, resolve, () =>
      reject(new TroupeError('SHUTDOWN', `node ${host.id} shut down while waiting for ${ref.key}`)),
    ),
  );
}
