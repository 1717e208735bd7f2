// Bundle the fixture page (core + browser adapters + peerjs) with Vite's JS API. A static build,
// served as plain files, rather than a dev server: a dev server optimizes dependencies on first
// load and may reload the page mid-test, which makes browser tests flaky.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '../../..');
const FIXTURES = path.resolve(here, '../fixtures');

/**
 * Build a fixture directory (default tests/browser/fixtures; its `index.html`, or the named
 * `pages` of it) into `outDir` (emptied first); resolves with `outDir`.
 */
export async function buildFixtures(
  outDir = path.join(ROOT, 'test-results', 'browser-fixtures'),
  options: { root?: string; pages?: string[] } = {},
): Promise<string> {
  const root = options.root ?? FIXTURES;
  const pages = options.pages ?? ['index.html'];
  const input = Object.fromEntries(
    pages.map((p) => [path.basename(p, '.html'), path.join(root, p)]),
  );
  await build({
    configFile: false, // the project's vite.config.ts is vitest's
    root,
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
      rollupOptions: { input, checks: { pluginTimings: false } },
    },
    worker: { format: 'es' },
  });
  return outDir;
}
