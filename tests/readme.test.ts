// Runs every ```ts snippet of the README's "API tour" and "Workflows" sections exactly as written
// (they import 'troupe', 'troupe/tcp', … mapped to the sources), each in its own process; the
// Workflows snippets whose first line says `(browser)` are type-checked only.
import { describe, it, expect } from 'vitest';
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { ALL_ERROR_CODES as ERROR_CODES } from '../patterns/errors.ts';

const root = join(import.meta.dirname, '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const tour = readme.slice(
  readme.indexOf('## API tour'),
  readme.indexOf('\n## ', readme.indexOf('## API tour') + 5),
);
const snippets = [...tour.matchAll(/^### (.+)\n[\s\S]*?```ts\n([\s\S]*?)```/gm)].map((m) => ({
  title: m[1],
  code: m[2],
}));
const section = (title: string) =>
  readme.slice(readme.indexOf(title), readme.indexOf('\n## ', readme.indexOf(title) + 5));
/** Every ```ts block of the Workflows section, titled by the ### heading above it. */
const workflows = (() => {
  const text = section('## Workflows');
  const out: { title: string; code: string }[] = [];
  let title = '';
  for (const m of text.matchAll(/^### (.+)$|^```ts\n([\s\S]*?)^```/gm)) {
    if (m[1] !== undefined) title = m[1];
    else out.push({ title, code: m[2]! });
  }
  return out;
})();
const dir = join(root, 'tests', '.readme-snippets');

/**
 * `troupe`, `troupe/tcp`, … as tsconfig `paths` to the `.ts` sources: the package's exports point
 * into dist/ (built only by `npm run build`), the snippets run against the sources. tsc and tsx
 * (through TSX_TSCONFIG_PATH) both honour them.
 */
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

describe('README error table', () => {
  it('lists exactly the codes in ERROR_CODES', () => {
    const section = readme.slice(
      readme.indexOf('## Error codes'),
      readme.indexOf('\n## ', readme.indexOf('## Error codes') + 5),
    );
    const listed = [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect([...listed].sort()).toEqual([...ERROR_CODES].sort());
  });
});

describe('README API tour', () => {
  it('has snippets', () => {
    expect(snippets.length).toBeGreaterThanOrEqual(5);
  });
  mkdirSync(dir, { recursive: true });
  snippets.forEach(({ code }, i) => writeFileSync(join(dir, `snippet-${i + 1}.ts`), code));
  workflows.forEach(({ code }, i) => writeFileSync(join(dir, `workflow-${i + 1}.ts`), code));
  writeFileSync(
    join(dir, 'tsconfig.json'),
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
        [
          join(root, 'node_modules/typescript/bin/tsc'),
          '--noEmit',
          '-p',
          join(dir, 'tsconfig.json'),
        ],
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
          {
            cwd: root,
            timeout: 20_000,
            env: { ...process.env, TSX_TSCONFIG_PATH: join(dir, 'tsconfig.json') },
          },
          (err, stdout, stderr) =>
            resolve({
              code: err ? ((err as { code?: number }).code ?? 1) : 0,
              out: stdout + stderr,
            }),
        );
      });
      expect(out).not.toMatch(/AssertionError|Error:/);
      expect(exit).toBe(0);
    });
  });
});

describe('README Collaboration (Yjs)', () => {
  const start = readme.indexOf('## Collaboration (Yjs)');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 5));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1] ?? '';

  it('runs its snippet', async () => {
    expect(code).toMatch(/troupe\/yjs/);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'snippet-collab.ts');
    writeFileSync(file, code);
    const { code: exit, out } = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', file],
        {
          cwd: root,
          timeout: 30_000,
          env: { ...process.env, TSX_TSCONFIG_PATH: join(dir, 'tsconfig.json') },
        },
        (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      );
    });
    expect(out).not.toMatch(/AssertionError|Error:/);
    expect(exit).toBe(0);
  }, 40_000);
});

describe('README Workflows', () => {
  it('has complete snippets (each with its imports)', () => {
    expect(workflows.length).toBeGreaterThanOrEqual(4);
    for (const { title, code } of workflows)
      expect(code, title).toMatch(/^import .* from 'troupe/m);
  });

  workflows.forEach(({ title, code }, i) => {
    if (code.split('\n')[0]!.includes('(browser')) return; // type-checked above, runs in a page
    it(`runs: ${title}`, async () => {
      const file = join(dir, `workflow-${i + 1}.ts`);
      writeFileSync(file, code);
      const { code: exit, out } = await new Promise<{ code: number; out: string }>((resolve) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', file],
          {
            cwd: root,
            timeout: 100_000,
            env: { ...process.env, TSX_TSCONFIG_PATH: join(dir, 'tsconfig.json') },
          },
          (err, stdout, stderr) =>
            resolve({
              code: err ? ((err as { code?: number }).code ?? 1) : 0,
              out: stdout + stderr,
            }),
        );
      });
      expect(out).not.toMatch(/AssertionError|Error:/);
      expect(exit).toBe(0);
    }, 120_000);
  });
});
