// Runs every ```ts snippet of the README's "API tour", "Workflows" and "Collaboration (Yjs)"
// sections exactly as written (they import 'troupe', 'troupe/tcp', … mapped to the sources), each
// in its own process; the Workflows snippets whose first line says `(browser)` are type-checked
// only. The README's error table must list exactly the error codes.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALL_ERROR_CODES as ERROR_CODES } from '../patterns/errors.ts';
import {
  readmeSection,
  root,
  runSnippet,
  snippetDir,
  typecheckSnippets,
} from './helpers/readme-snippets.ts';

const tour = readmeSection('## API tour');
const snippets = [...tour.matchAll(/^### (.+)\n[\s\S]*?```ts\n([\s\S]*?)```/gm)].map((m) => ({
  title: m[1],
  code: m[2],
}));
/** Every ```ts block of the Workflows section, titled by the ### heading above it. */
const workflows = (() => {
  const text = readmeSection('## Workflows');
  const out: { title: string; code: string }[] = [];
  let title = '';
  for (const m of text.matchAll(/^### (.+)$|^```ts\n([\s\S]*?)^```/gm)) {
    if (m[1] !== undefined) title = m[1];
    else out.push({ title, code: m[2]! });
  }
  return out;
})();
const dir = join(root, 'tests', '.readme-snippets');

describe('README error table', () => {
  it('lists exactly the codes in ERROR_CODES', () => {
    const section = readmeSection('## Error codes');
    const listed = [...section.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect([...listed].sort()).toEqual([...ERROR_CODES].sort());
  });
});

describe('README API tour', () => {
  it('has snippets', () => {
    expect(snippets.length).toBeGreaterThanOrEqual(5);
  });
  snippetDir(dir);
  snippets.forEach(({ code }, i) => writeFileSync(join(dir, `snippet-${i + 1}.ts`), code));
  workflows.forEach(({ code }, i) => writeFileSync(join(dir, `workflow-${i + 1}.ts`), code));

  it('type-checks (tsc --noEmit, strict)', async () => {
    expect(await typecheckSnippets(dir)).toBe('');
  }, 160_000); // tsc over the snippets and every source they import: slow on a loaded machine

  snippets.forEach(({ title, code }, i) => {
    it(`runs: ${title}`, async () => {
      const { code: exit, out } = await runSnippet(dir, `snippet-${i + 1}.ts`, code, 20_000);
      expect(out).not.toMatch(/AssertionError|Error:/);
      expect(exit).toBe(0);
    });
  });
});

describe('README Collaboration (Yjs)', () => {
  const code = /```ts\n([\s\S]*?)```/.exec(readmeSection('## Collaboration (Yjs)'))?.[1] ?? '';

  it('runs its snippet', async () => {
    expect(code).toMatch(/troupe\/yjs/);
    snippetDir(dir);
    const { code: exit, out } = await runSnippet(dir, 'snippet-collab.ts', code, 30_000);
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
      const { code: exit, out } = await runSnippet(dir, `workflow-${i + 1}.ts`, code, 100_000);
      expect(out).not.toMatch(/AssertionError|Error:/);
      expect(exit).toBe(0);
    }, 120_000);
  });
});
