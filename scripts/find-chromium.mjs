#!/usr/bin/env node
/**
 * Finds the Chromium executable the browser tests drive through playwright-core (Playwright's own
 * browser download does not work on our machines). Order: $CHROMIUM_PATH, /usr/bin/chromium,
 * /usr/lib/chromium/chromium. When none exists and we run as root on Debian, installs Debian's
 * `chromium` package (`apt-get update`, then `apt-get install -y --no-install-recommends chromium`, output shown);
 * otherwise throws with the exact command to run (scripts/find-or-install.mjs).
 *
 * Library: `findChromium({ install })` → absolute path.   CLI: `node scripts/find-chromium.mjs`
 * prints the path (exit 0) or the reason and the command to run (exit 1).
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { aptInstallCommand, findOrInstall, runFinderCli } from './find-or-install.mjs';

/** Where Debian's `chromium` package puts the browser: the wrapper script, then the real binary. */
export const CHROMIUM_CANDIDATES = ['/usr/bin/chromium', '/usr/lib/chromium/chromium'];
export const INSTALL_COMMAND = aptInstallCommand('chromium');

/**
 * Returns the path of a runnable Chromium, installing Debian's package when allowed.
 * @param {{ install?: boolean }} [options] install: try `apt-get` as root when missing (default true)
 * @returns {string}
 * @throws {Error} when no Chromium is found and it cannot be installed; the message holds the command to run
 */
export function findChromium({ install = true } = {}) {
  return findOrInstall({
    tag: 'find-chromium',
    what: 'Chromium',
    envVar: 'CHROMIUM_PATH',
    candidates: CHROMIUM_CANDIDATES,
    aptPackage: 'chromium',
    envHint: 'a Chromium/Chrome executable',
    install,
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href)
  runFinderCli(findChromium);
