#!/usr/bin/env node
/**
 * Finds the nats-server binary the NATS tests and benchmarks start (tests/helpers/nats-server.ts).
 * Order: $NATS_SERVER_PATH, /usr/sbin/nats-server, /usr/bin/nats-server, `nats-server` on the PATH.
 * When none exists and we run as root on Debian, installs Debian's `nats-server` package
 * (`apt-get update`, then `apt-get install -y --no-install-recommends nats-server`, output shown);
 * otherwise throws with the exact command to run (scripts/find-or-install.mjs).
 *
 * Library: `findNatsServer({ install })` → absolute path.   CLI: `node scripts/find-nats.mjs`
 * prints the path (exit 0) or the reason and the command to run (exit 1).
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { aptInstallCommand, findOrInstall, runFinderCli } from './find-or-install.mjs';

export const NATS_CANDIDATES = ['/usr/sbin/nats-server', '/usr/bin/nats-server'];
export const NATS_INSTALL_COMMAND = aptInstallCommand('nats-server');

/**
 * Returns the path of a runnable nats-server, installing Debian's package when allowed.
 * @param {{ install?: boolean }} [options] install: try `apt-get` as root when missing (default true)
 * @returns {string}
 * @throws {Error} when none is found and it cannot be installed; the message holds the command to run
 */
export function findNatsServer({ install = true } = {}) {
  return findOrInstall({
    tag: 'find-nats',
    what: 'nats-server',
    envVar: 'NATS_SERVER_PATH',
    candidates: NATS_CANDIDATES,
    binary: 'nats-server',
    aptPackage: 'nats-server',
    envHint: 'a nats-server executable (2.9 or later)',
    install,
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href)
  runFinderCli(findNatsServer);
