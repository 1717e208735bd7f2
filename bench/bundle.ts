/**
 * What a browser user pays: a production Vite build of a page that uses `troupe`,
 * `troupe/websocket` and `troupe/webrtc` (the package's subpaths resolved to their sources, as the
 * exports map says), split into one chunk per part so each part is gzipped on its own:
 *   bundle.troupe_gz_kb     troupe's own code
 *   bundle.zod_gz_kb        zod (users pass their own schemas, so most apps have it anyway)
 *   bundle.superjson_gz_kb  superjson and its dependencies
 *   bundle.noble_gz_kb      @noble/hashes
 *   bundle.peerjs_gz_kb     peerjs and its dependencies (loaded on first WebRTC use: its own chunk)
 *   bundle.core_gz_kb       troupe + superjson + @noble/hashes, target ≤ 30 kB
 *   bundle.total_gz_kb      every part
 * Sizes are gzip level 9 of the minified chunks, in kB (1000 bytes); where the bundler put several
 * parts in one chunk, that chunk's gzipped size is shared by their share of its rendered code.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { BenchCase, Result } from './harness.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const PAGE = `import { z } from 'zod';
import { createNode, behaviour } from 'troupe';
import { createWebSocketTransport } from 'troupe/websocket';
import { createWebRtcTransport } from 'troupe/webrtc';

const node = createNode({
  name: 'page',
  secret: 'bundle',
  transports: [createWebSocketTransport(), createWebRtcTransport({ signal: { host: '127.0.0.1', port: 9000 } })],
});
const counter = node.spawn(behaviour({ schema: z.object({ add: z.number() }), init: () => 0, handle: (m, n) => n + m.add }));
counter.send({ add: 1 });
document.title = node.id;
`;

type Part = 'troupe' | 'zod' | 'superjson' | 'noble' | 'peerjs';

/** Which part a module belongs to: by its package, anything else from node_modules is peerjs's. */
function partOf(id: string): Part {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(id.replaceAll('\\', '/'));
  if (!m) return 'troupe';
  const name = m[1]!;
  if (name === 'zod') return 'zod';
  if (name === 'superjson' || name === 'copy-anything' || name === 'is-what') return 'superjson';
  if (name === '@noble/hashes') return 'noble';
  return 'peerjs';
}

/** `troupe`, `troupe/websocket`, … → the `.ts` source behind each exports entry. */
function sourceAliases(): { find: RegExp; replacement: string }[] {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    exports: Record<string, string | { import: string }>;
  };
  return Object.entries(pkg.exports)
    .filter((e): e is [string, { import: string }] => typeof e[1] === 'object')
    .map(([sub, t]) => ({
      find: new RegExp(`^troupe${sub.slice(1).replace(/[/.]/g, '\\$&')}$`),
      replacement: join(root, t.import.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts')),
    }));
}

const bundle: BenchCase = {
  name: 'bundle',
  async run(): Promise<Result[]> {
    const { build } = await import('vite');
    // Inside the repository, so the page's own `zod` import resolves from its node_modules.
    mkdirSync(join(root, 'node_modules', '.cache'), { recursive: true });
    const dir = mkdtempSync(join(root, 'node_modules', '.cache', 'troupe-bundle-'));
    try {
      writeFileSync(
        join(dir, 'index.html'),
        '<!doctype html><html><body><script type="module" src="./main.js"></script></body></html>\n',
      );
      writeFileSync(join(dir, 'main.js'), PAGE);
      const out = await build({
        root: dir,
        configFile: false,
        logLevel: 'silent',
        resolve: { alias: sourceAliases() },
        build: {
          write: false,
          minify: true,
          target: 'es2022',
          modulePreload: false,
          rolldownOptions: {
            output: {
              codeSplitting: {
                groups: [{ name: (id: string) => (partOf(id) === 'troupe' ? null : partOf(id)) }],
              },
            },
          },
        },
      });
      const outputs = (Array.isArray(out) ? out : [out]) as {
        output: {
          type: string;
          fileName: string;
          code?: string;
          modules?: Record<string, { renderedLength: number }>;
        }[];
      }[];
      const gz: Record<Part, number> = { troupe: 0, zod: 0, superjson: 0, noble: 0, peerjs: 0 };
      for (const o of outputs) {
        for (const chunk of o.output) {
          if (chunk.type !== 'chunk' || !chunk.code) continue;
          // The bundler keeps parts together in one chunk where it sees fit (the grouping above is a
          // request, not a rule), so each chunk's gzipped size is shared among the parts in it by
          // their share of its rendered code.
          const chunkGz = gzipSync(chunk.code, { level: 9 }).length;
          const byPart = new Map<Part, number>();
          for (const [id, m] of Object.entries(chunk.modules ?? {}))
            byPart.set(partOf(id), (byPart.get(partOf(id)) ?? 0) + m.renderedLength);
          const rendered = [...byPart.values()].reduce((x, y) => x + y, 0);
          for (const [part, len] of byPart) gz[part] += rendered ? (chunkGz * len) / rendered : 0;
        }
      }
      const kb = (n: number) => Math.round(n / 10) / 100;
      const core = gz.troupe + gz.superjson + gz.noble;
      const total = Object.values(gz).reduce((a, b) => a + b, 0);
      const r = (key: string, bytes: number, note?: string): Result => ({
        key,
        unit: 'kB',
        value: kb(bytes),
        baseline: null,
        ...(note && { note }),
      });
      return [
        r('bundle.troupe_gz_kb', gz.troupe),
        r('bundle.zod_gz_kb', gz.zod),
        r('bundle.superjson_gz_kb', gz.superjson),
        r('bundle.noble_gz_kb', gz.noble),
        r('bundle.peerjs_gz_kb', gz.peerjs),
        {
          ...r(
            'bundle.core_gz_kb',
            core,
            'bundle: gzipped production Vite build of a page using troupe, troupe/websocket, troupe/webrtc; core = troupe + superjson + @noble/hashes',
          ),
          target: { kind: 'max', limit: 30 },
        },
        r('bundle.total_gz_kb', total),
      ];
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export const cases: BenchCase[] = [bundle];
