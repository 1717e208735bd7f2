// Bundle the fixture page (core + browser adapters + peerjs) with Vite's JS API. A static build,
// served as plain files, rather than a dev server: a dev server optimizes dependencies on first
// load and may reload the page mid-test, which makes browser tests flaky.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '../../..');
const FIXTURES = path.resolve(here, '../fixtures');

/** Build tests/browser/fixtures into `outDir` (emptied first); resolves with `outDir`. */
export async function buildFixtures(outDir = path.join(ROOT, 'test-results', 'browser-fixtures')): Promise<string> {
  await build({
    configFile: false, // the project's vite.config.ts is vitest's
    root: FIXTURES,
    base: './',
    logLevel: 'warn',
    clearScreen: false,
    build: {
      outDir,
      emptyOutDir: true,
      target: 'es2022',
      minify: false,
      sourcemap: true,
      reportCompressedSize: false,
      rollupOptions: { input: path.join(FIXTURES, 'index.html'), checks: { pluginTimings: false } },
    },
    worker: { format: 'es' },
  });
  return outDir;
}

/**
 * Build the demo app (`demo-web/`, with its own Vite config when it has one) into `outDir`. Pages
 * are opened with `?relay=<relay url>` so they fetch their credential from the test's relay.
 */
export async function buildDemo(outDir = path.join(ROOT, 'test-results', 'demo-build')): Promise<string> {
  const root = path.join(ROOT, 'demo-web');
  const configs = ['vite.config.ts', 'vite.config.mts', 'vite.config.js'].map((f) => path.join(root, f)).filter((f) => existsSync(f));
  await build({
    configFile: configs[0] ?? false,
    root,
    base: './',
    logLevel: 'warn',
    clearScreen: false,
    build: { outDir, emptyOutDir: true, minify: false, reportCompressedSize: false, rollupOptions: { checks: { pluginTimings: false } } },
    worker: { format: 'es' },
  });
  return outDir;
}
