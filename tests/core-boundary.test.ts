// The dependency rules of `npm run lint` (.dependency-cruiser.cjs), run as the CLI runs them: the
// real core passes (no baseline of known violations), and a throwaway core layout in a temp dir
// with each kind of leak planted fails with that rule's name (never in core/ itself).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const repo = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const bin = path.join(repo, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
const config = path.join(repo, '.dependency-cruiser.cjs');
const temps: string[] = [];

function cruise(cwd: string, ...args: string[]) {
  const r = spawnSync(
    process.execPath,
    [bin, '--config', config, '--output-type', 'err', ...args],
    {
      cwd,
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  return { status: r.status, out: r.stdout + r.stderr };
}

/** Writes `files` (path → lines) under a fresh temp dir (with a tsconfig) and returns the dir. */
function tree(files: Record<string, string[]>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'troupe-core-boundary-'));
  temps.push(dir);
  const all = {
    'tsconfig.json': ['{ "compilerOptions": { "allowImportingTsExtensions": true } }'],
    ...files,
  };
  for (const [name, lines] of Object.entries(all)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), `${lines.join('\n')}\n`);
  }
  return dir;
}

afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

describe('dependency rules', () => {
  it('pass on the real core, with no baseline of known violations', () => {
    const r = cruise(repo, 'core');
    expect(r.out).toMatch(/no dependency violations found/);
    expect(r.status).toBe(0);
  });

  it('a clean core layout passes; the actor knot (actor-context, behaviour, node-api) may cycle', () => {
    const dir = tree({
      'core/node-api.ts': ["import type { C } from './actor-context.ts';", 'export type A = C;'],
      'core/actor-context.ts': [
        "import type { A } from './node-api.ts';",
        'export type C = A | 1;',
      ],
      'core/index.ts': ["export * from './node.ts';"],
      'core/node.ts': ["import type { A } from './node-api.ts';", 'export type N = A;'],
    });
    const r = cruise(dir, 'core');
    expect(r.out).toMatch(/no dependency violations found/);
    expect(r.status).toBe(0);
  });

  it('fails on an adapter, a builtin, a foreign package, a cycle and node.ts imported in core', () => {
    const dir = tree({
      'adapters/tcp.ts': ['export const tcp = 1;'],
      'core/a.ts': [
        "import { tcp } from '../adapters/tcp.ts';",
        "import { readFileSync } from 'node:fs';",
        "import { b } from './b.ts';",
        'export const a = [tcp, readFileSync, b];',
      ],
      'core/b.ts': ["import type { N } from './node.ts';", 'export const b = 1 as N;'],
      'core/node.ts': [
        "import { a } from './a.ts';",
        'export type N = typeof a extends unknown ? number : 0;',
      ],
      'core/ws.ts': ["import WebSocket from 'ws';", 'export const W = WebSocket;'],
    });
    const r = cruise(dir, 'core');
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/core-host-neutral: core\/a\.ts → adapters\/tcp\.ts/);
    expect(r.out).toMatch(/core-no-builtins: core\/a\.ts → (node:)?fs/);
    expect(r.out).toMatch(/core-host-neutral: core\/ws\.ts → /);
    expect(r.out).toMatch(/core-no-cycles: core\/(a|b|node)\.ts/);
    expect(r.out).toMatch(/core-node-only-from-entry: core\/b\.ts → core\/node\.ts/);
  });
});

// Biome (`npm run lint`) keeps every file formatted at 100 columns, so a file's line count is its
// formatted length: a core module stays small enough to read in one sitting.
describe('core module size', () => {
  it('every core/*.ts file is at most 400 lines as formatted at 100 columns', () => {
    const core = path.join(repo, 'core');
    const long = readdirSync(core)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => ({ f, lines: readFileSync(path.join(core, f), 'utf8').split('\n').length - 1 }))
      .filter((x) => x.lines > 400);
    expect(long).toEqual([]);
  });
});
