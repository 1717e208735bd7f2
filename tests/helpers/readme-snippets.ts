// Running the README's ```ts snippets exactly as written: each in its own process, with its
// `troupe…` imports resolved to the .ts sources through tsconfig `paths` (tsc reads them, tsx
// through TSX_TSCONFIG_PATH), so no `npm run build` is needed. Shared by tests/readme.test.ts and
// tests/readme-bigdata.test.ts.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The repository root. */
export const root = join(import.meta.dirname, '..', '..');

/** The README's text. */
export const readme = readFileSync(join(root, 'README.md'), 'utf8');

/** The README section that starts at heading `title` (up to the next `## ` heading). */
export function readmeSection(title: string): string {
  const start = readme.indexOf(title);
  if (start < 0) return '';
  return readme.slice(start, readme.indexOf('\n## ', start + 5));
}

/** `troupe`, `troupe/tcp`, … → their .ts sources (the package's exports point into dist/). */
export function sourcePaths(): Record<string, string[]> {
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

/** Make `dir` (under tests/) with a tsconfig.json that maps `troupe…` to the sources. */
export function snippetDir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      extends: '../../tsconfig.json',
      compilerOptions: { paths: sourcePaths() },
      include: ['./*.ts'],
    }),
  );
  return dir;
}

/** tsc --noEmit over the snippets in `dir`: '' when clean, else what it printed. */
export function typecheckSnippets(dir: string): Promise<string> {
  return new Promise<string>((resolve) => {
    execFile(
      process.execPath,
      [join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', join(dir, 'tsconfig.json')],
      { cwd: root, timeout: 150_000 },
      (err, stdout, stderr) => resolve(err ? stdout + stderr || String(err) : ''),
    );
  });
}

/** Write `code` to `dir/name` and run it with tsx against the sources; its exit code and output. */
export function runSnippet(
  dir: string,
  name: string,
  code: string,
  timeout: number,
): Promise<{ code: number; out: string }> {
  const file = join(dir, name);
  writeFileSync(file, code);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', file],
      {
        cwd: root,
        timeout,
        env: { ...process.env, TSX_TSCONFIG_PATH: join(dir, 'tsconfig.json') },
      },
      (err, stdout, stderr) =>
        resolve({
          code: err ? ((err as { code?: number }).code ?? 1) : 0,
          out: stdout + stderr,
        }),
    );
  });
}
