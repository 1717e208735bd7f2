#!/usr/bin/env node
/**
 * Finds the nats-server binary the NATS tests and benchmarks start (tests/helpers/nats-server.ts).
 * Order: $NATS_SERVER_PATH, /usr/sbin/nats-server, /usr/bin/nats-server, `nats-server` on the PATH.
 * When none exists and we run as root on Debian, installs Debian's `nats-server` package
 * (`apt-get update`, then `apt-get install -y --no-install-recommends nats-server`, output shown);
 * otherwise throws with the exact command to run.
 *
 * Library: `findNatsServer({ install })` → absolute path.   CLI: `node scripts/find-nats.mjs`
 * prints the path (exit 0) or the reason and the command to run (exit 1).
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export const NATS_CANDIDATES = ['/usr/sbin/nats-server', '/usr/bin/nats-server'];
export const NATS_INSTALL_COMMAND =
  'apt-get update && apt-get install -y --no-install-recommends nats-server';

function isExecutable(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findInstalled() {
  const known = NATS_CANDIDATES.find(isExecutable);
  if (known) return known;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, 'nats-server'))) return path.join(dir, 'nats-server');
  }
  return undefined;
}

function run(cmd, args) {
  console.log(`find-nats: $ ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, {
    stdio: ['ignore', process.stderr, process.stderr],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.error) throw new Error(`find-nats: could not run ${cmd}: ${r.error.message}`);
  if (r.status !== 0)
    throw new Error(
      `find-nats: '${[cmd, ...args].join(' ')}' failed (exit ${r.status ?? r.signal}); install it yourself with: ${NATS_INSTALL_COMMAND}`,
    );
}

/**
 * Returns the path of a runnable nats-server, installing Debian's package when allowed.
 * @param {{ install?: boolean }} [options] install: try `apt-get` as root when missing (default true)
 * @returns {string}
 * @throws {Error} when none is found and it cannot be installed; the message holds the command to run
 */
export function findNatsServer({ install = true } = {}) {
  const fromEnv = process.env.NATS_SERVER_PATH;
  if (fromEnv) {
    if (isExecutable(fromEnv)) return path.resolve(fromEnv);
    throw new Error(
      `find-nats: NATS_SERVER_PATH=${fromEnv} is not an executable file; fix it or unset it`,
    );
  }
  const found = findInstalled();
  if (found) return found;
  const isRoot = process.getuid?.() === 0;
  const hasApt = existsSync('/usr/bin/apt-get');
  if (!install || !isRoot || !hasApt) {
    const why = !hasApt
      ? 'apt-get is not available here'
      : !isRoot
        ? 'not running as root'
        : 'installing was not allowed';
    const cmd = isRoot
      ? NATS_INSTALL_COMMAND
      : 'sudo apt-get update && sudo apt-get install -y --no-install-recommends nats-server';
    throw new Error(
      `find-nats: no nats-server found (looked at $NATS_SERVER_PATH, ${NATS_CANDIDATES.join(', ')}, the PATH) and ${why}.\n` +
        `  Install Debian's package:  ${cmd}\n` +
        `  or point NATS_SERVER_PATH at a nats-server executable (2.9 or later).`,
    );
  }
  console.log("find-nats: nats-server is missing; installing Debian's nats-server package");
  const lock = ['-o', 'DPkg::Lock::Timeout=300'];
  run('apt-get', [...lock, 'update']);
  run('apt-get', [...lock, 'install', '-y', '--no-install-recommends', 'nats-server']);
  const installed = findInstalled();
  if (!installed)
    throw new Error(
      `find-nats: apt-get installed nats-server but none of ${NATS_CANDIDATES.join(', ')} is executable`,
    );
  return installed;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    console.log(findNatsServer());
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  }
}
