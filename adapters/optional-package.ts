/**
 * Loading an optional peer dependency on first use. troupe's core needs only zod, superjson and
 * @noble/hashes; `ws`, `peer` and `peerjs` (and any future adapter's package, such as `nats` or
 * `yjs`) are optional peer dependencies that only the subpath using them loads, through
 * {@link importOptional}, so a missing one fails with `MISSING_PACKAGE` naming what to install.
 *
 * Convention for a new optional package: add it to package.json `peerDependencies` with
 * `peerDependenciesMeta: { "<name>": { "optional": true } }` and to `devDependencies`, import its
 * types with `import type` only, and load its values with `importOptional('<name>', …)`.
 */
import { TroupeError } from '../core/index.ts';

/** Whether `err` says that `pkg` itself (not something it imports) could not be found. */
function isNotFound(err: unknown, pkg: string): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  const message = typeof e?.message === 'string' ? e.message : '';
  const named =
    message.includes(`'${pkg}'`) || message.includes(`"${pkg}"`) || message.includes(` ${pkg} `);
  return (
    named &&
    (e?.code === 'ERR_MODULE_NOT_FOUND' ||
      e?.code === 'MODULE_NOT_FOUND' ||
      /cannot find|could not find|not found|failed to resolve/i.test(message))
  );
}

/**
 * Import the optional package `pkg` through `load` (a literal `() => import('pkg')`, so bundlers
 * still see it).
 * @param pkg the npm package name, as the user must install it
 * @param neededBy what needs it, for the message (for example `troupe/websocket-server`)
 * @throws {TroupeError} `MISSING_PACKAGE` when `pkg` is not installed; other load errors as they are
 * @example
 * const { WebSocketServer } = await importOptional('ws', 'troupe/websocket-server', () => import('ws'));
 */
export async function importOptional<T>(
  pkg: string,
  neededBy: string,
  load: () => Promise<T>,
): Promise<T> {
  try {
    return await load();
  } catch (err) {
    if (!isNotFound(err, pkg)) throw err;
    throw new TroupeError(
      'MISSING_PACKAGE',
      `${neededBy} needs the optional package "${pkg}", which is not installed: npm install ${pkg}`,
      { cause: err },
    );
  }
}
