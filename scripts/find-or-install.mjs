/**
 * What scripts/find-chromium.mjs and scripts/find-nats.mjs share: find an executable the tests
 * need (an environment variable, known paths, optionally the PATH) and, when none exists and we
 * run as root on Debian, install its Debian package with apt-get (output shown on stderr);
 * otherwise throw with the exact command to run.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

/** Whether `file` exists and may be executed. */
function isExecutable(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `apt-get update && apt-get install -y --no-install-recommends <pkg>`, with sudo when asked. */
export function aptInstallCommand(pkg, sudo = false) {
  const s = sudo ? 'sudo ' : '';
  return `${s}apt-get update && ${s}apt-get install -y --no-install-recommends ${pkg}`;
}

/**
 * Returns the path of a runnable executable, installing a Debian package when allowed.
 * @param {{
 *   tag: string,          // prefix of every message, e.g. 'find-nats'
 *   what: string,         // what is looked for, in messages, e.g. 'nats-server'
 *   envVar: string,       // an environment variable that names it (checked first, must be executable)
 *   candidates: string[], // known paths, in order
 *   binary?: string,      // a name to look for on the PATH after the candidates
 *   aptPackage: string,   // the Debian package that provides it
 *   envHint: string,      // what envVar should point at, in the message when nothing is found
 *   install?: boolean,    // try apt-get as root when missing (default true)
 * }} o
 * @returns {string}
 * @throws {Error} when none is found and it cannot be installed; the message holds the command to run
 */
export function findOrInstall(o) {
  const { tag, what, envVar, candidates, binary, aptPackage, envHint, install = true } = o;
  const fromEnv = process.env[envVar];
  if (fromEnv) {
    if (isExecutable(fromEnv)) return path.resolve(fromEnv);
    throw new Error(
      `${tag}: ${envVar}=${fromEnv} is not an executable file; fix it or unset it to use ${candidates.join(' or ')}`,
    );
  }
  const findInstalled = () => {
    const known = candidates.find(isExecutable);
    if (known || !binary) return known;
    for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
      if (dir && isExecutable(path.join(dir, binary))) return path.join(dir, binary);
    }
    return undefined;
  };
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
    const where = [`$${envVar}`, ...candidates, ...(binary ? ['the PATH'] : [])].join(', ');
    throw new Error(
      `${tag}: no ${what} found (looked at ${where}) and ${why}.\n` +
        `  Install Debian's package:  ${aptInstallCommand(aptPackage, !isRoot)}\n` +
        `  or point ${envVar} at ${envHint}.`,
    );
  }
  const run = (cmd, args) => {
    console.log(`${tag}: $ ${[cmd, ...args].join(' ')}`);
    // Output goes to our stderr so that a CLI caller's stdout stays just the path.
    const r = spawnSync(cmd, args, {
      stdio: ['ignore', process.stderr, process.stderr],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    if (r.error) throw new Error(`${tag}: could not run ${cmd}: ${r.error.message}`);
    if (r.status !== 0)
      throw new Error(
        `${tag}: '${[cmd, ...args].join(' ')}' failed (exit ${r.status ?? r.signal}); install ${what} yourself with: ${aptInstallCommand(aptPackage)}`,
      );
  };
  console.log(`${tag}: ${what} is missing; installing Debian's ${aptPackage} package`);
  // Wait for a dpkg lock held by another apt run instead of failing at once.
  const lock = ['-o', 'DPkg::Lock::Timeout=300'];
  run('apt-get', [...lock, 'update']);
  run('apt-get', [...lock, 'install', '-y', '--no-install-recommends', aptPackage]);
  const installed = findInstalled();
  if (!installed)
    throw new Error(
      `${tag}: apt-get installed ${aptPackage} but none of ${candidates.join(', ')} is executable`,
    );
  return installed;
}

/**
 * Run `find` as a CLI: stdout is only the path (progress lines go to stderr), so
 * `$(node scripts/find-….mjs)` works; on failure the reason goes to stderr, exit code 1.
 * @param {() => string} find
 */
export function runFinderCli(find) {
  try {
    console.log = (...args) => console.error(...args);
    process.stdout.write(`${find()}\n`);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  }
}
