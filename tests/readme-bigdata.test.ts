// Runs every ```ts snippet of the README's "Big data" section exactly as written, each in its own
// process, as tests/readme.test.ts does for the API tour (tests/helpers/readme-snippets.ts: the
// `troupe…` imports resolve to the .ts sources, so no `npm run build` is needed).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  readmeSection,
  root,
  runSnippet,
  snippetDir,
  typecheckSnippets,
} from './helpers/readme-snippets.ts';

const section = readmeSection('## Big data');
const snippets = [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m, i) => ({
  title: `snippet ${i + 1}`,
  code: m[1],
}));
const dir = join(root, 'tests', '.readme-snippets-bigdata');

describe('README Big data', () => {
  it('has snippets', () => {
    expect(section.length).toBeGreaterThan(0);
    expect(snippets.length).toBeGreaterThanOrEqual(4);
  });
  snippetDir(dir);
  snippets.forEach(({ code }, i) => writeFileSync(join(dir, `snippet-${i + 1}.ts`), code));

  it('type-checks (tsc --noEmit, strict)', async () => {
    expect(await typecheckSnippets(dir)).toBe('');
  }, 160_000); // tsc over the snippets and every source they import: slow on a loaded machine

  snippets.forEach(({ title, code }, i) => {
    it(`runs: ${title}`, async () => {
      const { code: exit, out } = await runSnippet(dir, `snippet-${i + 1}.ts`, code, 30_000);
      expect(out).not.toMatch(/AssertionError|Error:/);
      expect(exit, out).toBe(0);
      console.log(`[readme big data ${i + 1}] ${out.trim().split('\n').join(' | ')}`);
    }, 40_000);
  });
});
