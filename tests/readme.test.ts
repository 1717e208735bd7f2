// Runs every ```ts snippet of the README's "API tour" exactly as written (they import 'troupe',
// resolved through the package's own exports), each in its own process.
import { describe, it, expect } from 'vitest';
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { ALL_ERROR_CODES as ERROR_CODES } from '../patterns/errors.ts';

const root = join(import.meta.dirname, '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const tour = readme.slice(readme.indexOf('## API tour'), readme.indexOf('\n## ', readme.indexOf('## API tour') + 5));
const snippets = [...tour.matchAll(/^### (.+)\n[\s\S]*?```ts\n([\s\S]*?)```/gm)].map((m) => ({ title: m[1], code: m[2] }));
const dir = join(root, 'tests', '.readme-snippets');

describe('README error table', () => {
  it('lists exactly the codes in ERROR_CODES', () => {
    const section = readme.slice(readme.indexOf('## Error codes'), readme.indexOf('\n## ', readme.indexOf('## Error codes') + 5));
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
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ extends: '../../tsconfig.json', include: ['./*.ts'] }));

  it('type-checks (tsc --noEmit, strict)', async () => {
    const out = await new Promise<string>((resolve) => {
      execFile(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', join(dir, 'tsconfig.json')], { cwd: root, timeout: 60_000 }, (err, stdout, stderr) =>
        resolve(err ? stdout + stderr || String(err) : ''),
      );
    });
    expect(out).toBe('');
  });

  snippets.forEach(({ title, code }, i) => {
    it(`runs: ${title}`, async () => {
      const file = join(dir, `snippet-${i + 1}.ts`);
      writeFileSync(file, code);
      const { code: exit, out } = await new Promise<{ code: number; out: string }>((resolve) => {
        execFile(process.execPath, ['--import', 'tsx', file], { cwd: root, timeout: 20_000 }, (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
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
      execFile(process.execPath, ['--import', 'tsx', file], { cwd: root, timeout: 30_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      );
    });
    expect(out).not.toMatch(/AssertionError|Error:/);
    expect(exit).toBe(0);
  }, 40_000);
});
