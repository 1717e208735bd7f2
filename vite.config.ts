import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The demo app (demo-web/) is the Vite root for `vite`, `vite build` and `npm run demo`; Vitest
// (mode 'test') keeps the repository root, so the `test` block's paths stay as they are.
const appRoot = fileURLToPath(new URL('./demo-web', import.meta.url));
// Where the relay is, for the dev server's proxy of `/troupe/*` (npm run demo sets it itself).
const relay = process.env.TROUPE_RELAY_URL;

export default defineConfig(({ mode }) => ({
  ...(mode === 'test'
    ? {}
    : {
        root: appRoot,
        // Its own dependency cache, apart from other Vite users of this repository.
        cacheDir: fileURLToPath(new URL('./node_modules/.vite-demo', import.meta.url)),
        build: {
          // build/, not dist/: dist/ is only the npm package (npm run build).
          outDir: fileURLToPath(new URL('./build/demo-web', import.meta.url)),
          emptyOutDir: true,
          target: 'es2022',
          rollupOptions: {
            input: { index: fileURLToPath(new URL('./demo-web/index.html', import.meta.url)) },
          },
        },
        worker: { format: 'es' as const },
        server: {
          host: '127.0.0.1',
          strictPort: false,
          ...(relay && { proxy: { '/troupe': { target: relay, changeOrigin: true } } }),
        },
        preview: {
          host: '127.0.0.1',
          ...(relay && { proxy: { '/troupe': { target: relay, changeOrigin: true } } }),
        },
      }),
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
}));
