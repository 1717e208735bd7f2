#!/usr/bin/env node
/**
 * Finds the Chromium executable the browser tests drive through playwright-core (Playwright's own
 * browser download does not work on our machines). Order: $CHROMIUM_PATH, /usr/bin/chromium,
 * /usr/lib/chromium/chromium. When none exists and we run as root on Debian, installs Debian's
 * `chromium` package (`apt-get update`, then `apt-get install -y --no-install-recommends chromium`, output shown);
 * otherwise throws with the exact command to run.
 *
 * Library: `findChromium({ install })` → absolute path.   CLI: `node scripts/find-chromium.mjs`
 * prints the path (exit 0) or the reason and the command to run (exit 1).
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** Where Debian's `chromium` package puts the browser: the wrapper script, then the real binary. */
export const CHROMIUM_CANDIDATES = ['/usr/bin/chromium', '/usr/lib/chromium/chromium'];
export const INSTALL_COMMAND =
  'apt-get update && apt-get install -y --no-install-recommends chromium';

function isExecutable(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findInstalled() {
  return CHROMIUM_CANDIDATES.find(isExecutable);
}

function run(cmd, args) {
  console.log(`find-chromium: $ ${[cmd, ...args].join(' ')}`);
  // Output goes to our stderr so that a CLI caller's stdout stays just the path.
  const r = spawnSync(cmd, args, {
    stdio: ['ignore', process.stderr, process.stderr],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.error) throw new Error(`find-chromium: could not run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(
      `find-chromium: '${[cmd, ...args].join(' ')}' failed (exit ${r.status ?? r.signal}); install Chromium yourself with: ${INSTALL_COMMAND}`,
    );
  }
}

/**
 * Returns the path of a runnable Chromium, installing Debian's package when allowed.
 * @param {{ install?: boolean }} [options] install: try `apt-get` as root when missing (default true)
 * @returns {string}
 * @throws {Error} when no Chromium is found and it cannot be installed; the message holds the command to run
 */
export function findChromium({ install = true } = {}) {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) {
    if (isExecutable(fromEnv)) return path.resolve(fromEnv);
    throw new Error(
      `find-chromium: CHROMIUM_PATH=${fromEnv} is not an executable file; fix it or unset it to use ${CHROMIUM_CANDIDATES.join(' or ')}`,
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
      ? INSTALL_COMMAND
      : `sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium`;
    throw new Error(
      `find-chromium: no Chromium found (looked at $CHROMIUM_PATH, ${CHROMIUM_CANDIDATES.join(', ')}) and ${why}.\n` +
        `  Install Debian's package:  ${cmd}\n` +
        `  or point CHROMIUM_PATH at a Chromium/Chrome executable.`,
    );
  }
  console.log("find-chromium: Chromium is missing; installing Debian's chromium package");
  // Wait for a dpkg lock held by another apt run instead of failing at once.
  const lock = ['-o', 'DPkg::Lock::Timeout=300'];
  run('apt-get', [...lock, 'update']);
  run('apt-get', [...lock, 'install', '-y', '--no-install-recommends', 'chromium']);
  const installed = findInstalled();
  if (!installed)
    throw new Error(
      `find-chromium: apt-get installed chromium but none of ${CHROMIUM_CANDIDATES.join(', ')} is executable`,
    );
  return installed;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  try {
    // Progress lines go to stderr; stdout is only the path, so `$(node scripts/find-chromium.mjs)` works.
    console.log = (...args) => console.error(...args);
    process.stdout.write(`${findChromium()}\n`);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  }
}
