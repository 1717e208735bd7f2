// Runs every ```ts snippet of the README's "Big data" section exactly as written (they import
// 'troupe', resolved through the package's own exports), each in its own process, as
// tests/readme.test.ts does for the API tour.
import { describe, it, expect } from 'vitest';
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const start = readme.indexOf('## Big data');
const section = readme.slice(start, readme.indexOf('\n## ', start + 5));
const snippets = [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m, i) => ({ title: `snippet ${i + 1}`, code: m[1] }));
const dir = join(root, 'tests', '.readme-snippets-bigdata');

describe('README Big data', () => {
  it('has snippets', () => {
    expect(start).toBeGreaterThan(0);
    expect(snippets.length).toBeGreaterThanOrEqual(4);
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
  }, 90_000);

  snippets.forEach(({ title, code }, i) => {
    it(`runs: ${title}`, async () => {
      const file = join(dir, `snippet-${i + 1}.ts`);
      writeFileSync(file, code);
      const { code: exit, out } = await new Promise<{ code: number; out: string }>((resolve) => {
        execFile(process.execPath, ['--import', 'tsx', file], { cwd: root, timeout: 30_000 }, (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
        );
      });
      expect(out).not.toMatch(/AssertionError|Error:/);
      expect(exit, out).toBe(0);
      console.log(`[readme big data ${i + 1}] ${out.trim().split('\n').join(' | ')}`);
    }, 40_000);
  });
});
