// The core import guard (scripts/check-core-imports.mjs), run as the CLI the typecheck script
// runs: it passes on the real core, and fails with file:line on every kind of leak planted in a
// throwaway copy of a core layout in a temp dir (never in core/ itself).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const script = fileURLToPath(new URL('../scripts/check-core-imports.mjs', import.meta.url));
const repo = path.dirname(path.dirname(script));
const temps: string[] = [];

function check(cwd: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [script, ...args], { cwd, encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

/** Writes `files` (path → lines) under a fresh temp dir and returns the dir. */
function tree(files: Record<string, string[]>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'troupe-core-imports-'));
  temps.push(dir);
  for (const [name, lines] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), lines.join('\n') + '\n');
  }
  return dir;
}

afterAll(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

describe('check-core-imports', () => {
  it('passes on the real core, by default and given core/ explicitly', () => {
    const byDefault = check(repo);
    expect(byDefault.out).toMatch(/^check-core-imports: core ok \(\d+ files, \d+ imports\)$/m);
    expect(byDefault.status).toBe(0);
    const explicit = check(repo, 'core');
    expect(explicit.status).toBe(0);
  });

  it('accepts allowed packages, files inside core and local bindings named like host globals', () => {
    const dir = tree({
      'core/a.ts': [
        "import { z } from 'zod';",
        "import SuperJSON from 'superjson';",
        "import { sha256 } from '@noble/hashes/sha2.js';",
        "import { b } from './nested/b.ts';",
        "export { b } from './nested/b.ts';",
        'export const a = (self: { process: number }) => {',
        '  const process = self.process;',
        '  const o = { document: 1, window: process };',
        '  const { window: w } = o;',
        '  return [z, SuperJSON, sha256, b, o.document, w, { process }];',
        '};',
      ],
      'core/nested/b.ts': [
        "import type { a } from '../a.ts';",
        'export const b = 1;',
        'export type A = typeof a;',
      ],
    });
    const r = check(dir, 'core');
    expect(r.out).toContain('check-core-imports: core ok (2 files, 6 imports)');
    expect(r.status).toBe(0);
  });

  it('fails with file:line on every way out of core', () => {
    const dir = tree({
      'adapters/tcp.ts': ['export const tcp = 1;'],
      'core/imports.ts': [
        "import { tcp } from '../adapters/tcp.ts';", // 1: an adapter
        "import { readFile } from 'node:fs';", // 2: node: builtin
        "import net from 'net';", // 3: bare builtin
        "import WebSocket from 'ws';", // 4: ws
        "export { Peer } from 'peerjs';", // 5: peerjs, re-exported
        "import { z } from 'zod/v4';", // 6: allowed subpath
        "const p = await import('node:path');", // 7: dynamic import
        'const q = await import(String(z));', // 8: unverifiable dynamic import
        "const r = require('fs');", // 9: require
        "type W = import('ws').WebSocket;", // 10: import() type
        "import fs = require('fs');", // 11: import = require
        "import { x } from '#internal';", // 12: package.json subpath import
        'export { tcp, readFile, net, WebSocket, p, q, r, fs, x };',
        'export type { W };',
      ],
      'core/globals.ts': [
        '/// <reference types="node" />', // 1
        '/// <reference lib="dom" />', // 2
        '/// <reference lib="es2022" />', // 3: fine
        'declare const process: { env: Record<string, string> };', // 4: declared to dodge tsc
        'export const a = process.env.HOME;', // 5
        'export const b = (globalThis as any).Buffer;', // 6
        "export const c = (globalThis as any)['document'];", // 7
        'export const d = window.location;', // 8
        'export const e = typeof self;', // 9
        'export const f = { process };', // 10: shorthand of the declared global
      ],
    });
    const r = check(dir, 'core');
    expect(r.status).toBe(1);
    const expected = [
      ['core/globals.ts:1:', 'types="node"'],
      ['core/globals.ts:2:', 'lib="dom"'],
      ['core/globals.ts:4:', "'process' is a host-specific global"],
      ['core/globals.ts:5:', "'process' is a host-specific global"],
      ['core/globals.ts:6:', 'globalThis.Buffer'],
      ['core/globals.ts:7:', 'globalThis.document'],
      ['core/globals.ts:8:', "'window' is a host-specific global"],
      ['core/globals.ts:9:', "'self' is a host-specific global"],
      ['core/globals.ts:10:', "'process' is a host-specific global"],
      ['core/imports.ts:1:', "'../adapters/tcp.ts' leaves core"],
      ['core/imports.ts:2:', "Node builtin 'node:fs'"],
      ['core/imports.ts:3:', "Node builtin 'net'"],
      ['core/imports.ts:4:', "package 'ws' is not allowed"],
      ['core/imports.ts:5:', "package 'peerjs' is not allowed"],
      ['core/imports.ts:7:', "dynamic import(): Node builtin 'node:path'"],
      ['core/imports.ts:8:', 'computed specifier'],
      ['core/imports.ts:9:', "require('fs'): CommonJS require"],
      ['core/imports.ts:10:', "import() type: package 'ws'"],
      ['core/imports.ts:11:', "import = require('fs'): CommonJS"],
      ['core/imports.ts:12:', "subpath import '#internal'"],
    ];
    const problems = r.out.split('\n').filter((l) => /^core\/\S+:\d+:\d+: /.test(l));
    for (const [where, what] of expected) {
      expect(
        problems.some((l) => l.startsWith(where) && l.includes(what)),
        `${where} ${what}\n${r.out}`,
      ).toBe(true);
    }
    expect(problems).toHaveLength(expected.length);
    expect(r.out).toContain(`check-core-imports: ${expected.length} problem(s) in core`);
  });

  it('fails on a single leak in an otherwise clean core', () => {
    const dir = tree({
      'core/a.ts': ["import { z } from 'zod';", 'export const a = z;'],
      'core/b.ts': [
        "import { a } from './a.ts';",
        "import { WebSocketServer } from 'ws';",
        'export { a, WebSocketServer };',
      ],
    });
    const r = check(dir, 'core');
    expect(r.out).toMatch(/^core\/b\.ts:2:1: import: package 'ws' is not allowed in core/m);
    expect(r.status).toBe(1);
  });

  it('refuses to pass a directory that does not exist or holds no TypeScript', () => {
    const dir = tree({ 'empty/readme.md': ['nothing here'] });
    const missing = check(dir, 'nope');
    expect(missing.out).toContain('is not a directory');
    expect(missing.status).toBe(2);
    const empty = check(dir, 'empty');
    expect(empty.out).toContain('no TypeScript files');
    expect(empty.status).toBe(2);
  });
});
