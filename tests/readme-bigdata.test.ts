// Runs every ```ts snippet of the README's "Big data" section exactly as written, each in its own
// process, as tests/readme.test.ts does for the API tour: their `troupe…` imports resolve to the
// .ts sources through tsconfig `paths` (tsc, and tsx through TSX_TSCONFIG_PATH), so no
// `npm run build` is needed.
import { describe, it, expect } from 'vitest';
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const start = readme.indexOf('## Big data');
const section = readme.slice(start, readme.indexOf('\n## ', start + 5));
const snippets = [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m, i) => ({
  title: `snippet ${i + 1}`,
  code: m[1],
}));
const dir = join(root, 'tests', '.readme-snippets-bigdata');
const tsconfig = join(dir, 'tsconfig.json');

/** `troupe`, `troupe/tcp`, … → their .ts sources (the exports point into dist/); as in tests/readme.test.ts. */
function sourcePaths(): Record<string, string[]> {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    exports: Record<string, string | { import: string }>;
  };
  return Object.fromEntries(
    Object.entries(pkg.exports)
      .filter((e): e is [string, { import: string }] => typeof e[1] === 'object')
      .map(([sub, t]) => [
        `troupe${sub.slice(1)}`,
        [join(root, t.import.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts'))],
      ]),
  );
}

describe('README Big data', () => {
  it('has snippets', () => {
    expect(start).toBeGreaterThan(0);
    expect(snippets.length).toBeGreaterThanOrEqual(4);
  });
  mkdirSync(dir, { recursive: true });
  snippets.forEach(({ code }, i) => writeFileSync(join(dir, `snippet-${i + 1}.ts`), code));
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: '../../tsconfig.json',
      compilerOptions: { paths: sourcePaths() },
      include: ['./*.ts'],
    }),
  );

  it('type-checks (tsc --noEmit, strict)', async () => {
    const out = await new Promise<string>((resolve) => {
      execFile(
        process.execPath,
        [join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', tsconfig],
        { cwd: root, timeout: 150_000 },
        (err, stdout, stderr) => resolve(err ? stdout + stderr || String(err) : ''),
      );
    });
    expect(out).toBe('');
  }, 160_000); // tsc over the snippets and every source they import: slow on a loaded machine

  snippets.forEach(({ title, code }, i) => {
    it(`runs: ${title}`, async () => {
      const file = join(dir, `snippet-${i + 1}.ts`);
      writeFileSync(file, code);
      const { code: exit, out } = await new Promise<{ code: number; out: string }>((resolve) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', file],
          { cwd: root, timeout: 30_000, env: { ...process.env, TSX_TSCONFIG_PATH: tsconfig } },
          (err, stdout, stderr) =>
            resolve({
              code: err ? ((err as { code?: number }).code ?? 1) : 0,
              out: stdout + stderr,
            }),
        );
      });
      expect(out).not.toMatch(/AssertionError|Error:/);
      expect(exit, out).toBe(0);
      console.log(`[readme big data ${i + 1}] ${out.trim().split('\n').join(' | ')}`);
    }, 40_000);
  });
});
