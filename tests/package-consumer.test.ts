// Issue 10 — troupe as a user gets it: `npm pack` (prepack builds dist/), installed offline into
// fresh projects in a temporary folder (tests/helpers/consumer.ts), then used there the way the
// README says: a plain .mjs program with no loader, a strict TypeScript program, `npx troupe`,
// the same two-process scenario under Node, Bun and Deno, and a Vite page in Chromium.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { installOffline, pack, writeConsumerProject, type Packed } from './helpers/consumer.ts';
import { launchChromium } from './browser/harness/browser.ts';
import { serveStatic } from './browser/harness/static-server.ts';
import { startNatsServer } from './helpers/nats-server.ts';

const root = path.resolve(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  version: string;
  exports: Record<string, string | { types: string; import: string }>;
  bin: Record<string, string>;
};
const fixture = (name: string) => path.join(root, 'tests', 'fixtures', name);

/** What a runtime needs to run a plain .mjs file, or why it cannot run here. */
const RUNTIMES: { name: string; command: string[]; unavailable?: string }[] = [
  { name: 'node', command: [process.execPath] },
  { name: 'bun', command: [path.join(root, 'node_modules', '.bin', 'bun')] },
  // Deno reads node_modules through the project's package.json; no lock file, every permission.
  {
    name: 'deno',
    command: [path.join(root, 'node_modules', '.bin', 'deno'), 'run', '-A', '--no-lock'],
  },
];
for (const rt of RUNTIMES) {
  const r = spawnSync(rt.command[0]!, ['--version'], { encoding: 'utf8', timeout: 60_000 });
  if (r.error || r.status !== 0) {
    rt.unavailable = `${rt.name} cannot run here (${r.error?.message ?? `exit ${r.status ?? r.signal}: ${r.stderr.trim()}`})`;
    console.log(`package-consumer: skipping ${rt.name}: ${rt.unavailable}`);
  }
}

/** A child process whose output lines are collected. */
class Proc {
  readonly lines: string[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  #wake: (() => void)[] = [];

  constructor(command: string[], args: string[], cwd: string) {
    this.child = spawn(command[0]!, [...command.slice(1), ...args], {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    for (const [stream, prefix] of [
      [this.child.stdout!, ''],
      [this.child.stderr!, '! '],
    ] as const) {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const parts = (rest + chunk).split('\n');
        rest = parts.pop()!;
        this.lines.push(...parts.map((l) => prefix + l));
        for (const w of this.#wake.splice(0)) w();
      });
    }
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code) => {
        resolve(code);
        for (const w of this.#wake.splice(0)) w();
      }),
    );
  }

  /** The first line matching `re`, waiting up to `ms`. */
  async line(re: RegExp, ms: number): Promise<string> {
    const until = Date.now() + ms;
    for (;;) {
      const hit = this.lines.find((l) => re.test(l));
      if (hit) return hit;
      if (Date.now() > until || this.child.exitCode !== null)
        throw new Error(
          `no line matching ${re} (exit ${this.child.exitCode}) in:\n${this.lines.join('\n')}`,
        );
      await new Promise<void>((resolve) => {
        this.#wake.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** Run to the end; resolves with the exit code and the output. */
function run(
  command: string,
  args: string[],
  cwd: string,
  timeout = 120_000,
): { status: number | null; out: string } {
  const r = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    timeout,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  return {
    status: r.status,
    out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`,
  };
}

/** Every package folder under `dir`/node_modules (scoped and nested), as `name` → bytes. */
function installed(dir: string): Map<string, number> {
  const size = (p: string): number =>
    statSync(p).isDirectory()
      ? readdirSync(p).reduce((s, f) => s + size(path.join(p, f)), 0)
      : statSync(p).size;
  const out = new Map<string, number>();
  const walk = (nm: string): void => {
    if (!existsSync(nm)) return;
    for (const e of readdirSync(nm)) {
      if (e.startsWith('.')) continue;
      const names = e.startsWith('@') ? readdirSync(path.join(nm, e)).map((s) => `${e}/${s}`) : [e];
      for (const name of names) {
        out.set(name, size(path.join(nm, name)));
        walk(path.join(nm, name, 'node_modules'));
      }
    }
  };
  walk(path.join(dir, 'node_modules'));
  return out;
}

describe('the packed package, installed offline in a user project', () => {
  let tmp: string;
  let packed: Packed;
  /** troupe alone (npm adds its required peer, zod). */
  let core: string;
  /** troupe plus what a TypeScript user of every subpath adds: @types/node, ws, @types/ws. */
  let typed: string;
  /** troupe plus the optional packages of troupe/nats and troupe/yjs. */
  let optional: string;
  const procs: Proc[] = [];

  beforeAll(() => {
    tmp = mkdtempSync(path.join(tmpdir(), 'troupe-consumer-'));
    packed = pack(root, tmp);
    core = path.join(tmp, 'core');
    typed = path.join(tmp, 'typed');
    optional = path.join(tmp, 'optional');
    for (const [dir, extra] of [
      [core, []],
      [typed, ['@types/node', 'ws', '@types/ws']],
      [optional, ['nats', 'yjs', 'y-protocols']],
    ] as const) {
      mkdirSync(dir);
      writeConsumerProject(dir, root, packed.file, [...extra]);
      installOffline(dir);
    }
  }, 600_000);

  afterAll(() => {
    for (const p of procs) p.kill();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('ships only dist/, LICENSE, README.md and package.json, with every exports and bin target', () => {
    console.log(
      `package-consumer: tarball ${packed.files.length} files, ${(packed.size / 1024).toFixed(1)} kB (unpacked ${(packed.unpackedSize / 1024).toFixed(1)} kB)`,
    );
    const outside = packed.files.filter(
      (f) => !f.startsWith('dist/') && !['LICENSE', 'README.md', 'package.json'].includes(f),
    );
    expect(outside).toEqual([]);
    expect(packed.files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    const targets = [
      ...Object.values(pkg.exports).flatMap((t) =>
        typeof t === 'string' ? [] : [t.types, t.import],
      ),
      ...Object.values(pkg.bin),
    ];
    for (const t of targets) expect(packed.files, t).toContain(t.replace(/^\.\//, ''));
    expect(packed.files).toContain('LICENSE');
  });

  it('a core-only project gets troupe, zod, superjson and @noble/hashes (and their own dependencies), nothing else', () => {
    const got = installed(core);
    const mb = [...got.values()].reduce((a, b) => a + b, 0) / 1e6;
    console.log(
      `package-consumer: core-only project: ${got.size} packages, ${mb.toFixed(2)} MB (${[...got.keys()].sort().join(', ')})`,
    );
    expect(
      [...got.keys()].filter(
        (n) =>
          !['troupe', 'zod', 'superjson', '@noble/hashes', 'copy-anything', 'is-what'].includes(n),
      ),
    ).toEqual([]);
    for (const n of ['troupe', 'zod', 'superjson', '@noble/hashes'])
      expect(got.has(n), n).toBe(true);
  });

  it('a plain .mjs program runs with no loader: core, a memory link, and TCP between two nodes', () => {
    cpSync(fixture('consumer-app.mjs'), path.join(core, 'app.mjs'));
    const r = run(process.execPath, ['app.mjs'], core);
    expect(r.out).toContain('consumer app ok');
    expect(r.status).toBe(0);
  });

  it('troupe/nats, troupe/yjs and troupe/yjs/file-store run from a plain .mjs with their optional packages installed', async () => {
    cpSync(fixture('consumer-optional.mjs'), path.join(optional, 'app.mjs'));
    const nats = await startNatsServer();
    try {
      const r = spawnSync(process.execPath, ['app.mjs'], {
        cwd: optional,
        encoding: 'utf8',
        timeout: 120_000,
        env: { ...process.env, NODE_OPTIONS: '', NATS_URL: nats.url },
      });
      const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
      expect(out).toContain('nats ok');
      expect(out).toContain('yjs ok');
      expect(out).toContain('consumer optional ok');
      expect(r.status, out).toBe(0);
    } finally {
      await nats.kill();
    }
  }, 150_000);

  it('a subpath whose optional package is missing fails with MISSING_PACKAGE naming the package', () => {
    writeFileSync(
      path.join(core, 'missing.mjs'),
      `import { createNode } from 'troupe';
import { createWebSocketServerTransport } from 'troupe/websocket-server';
const node = createNode({ secret: 's', transports: [createWebSocketServerTransport()] });
const err = await node.listen().then(() => undefined, (e) => e);
await node.shutdown();
console.log(JSON.stringify({ name: err?.name, code: err?.code, message: err?.message }));
`,
    );
    const r = run(process.execPath, ['missing.mjs'], core);
    expect(r.status, r.out).toBe(0);
    const err = JSON.parse(r.out.trim().split('\n').pop()!) as {
      name: string;
      code: string;
      message: string;
    };
    expect(err).toMatchObject({ name: 'TroupeError', code: 'MISSING_PACKAGE' });
    expect(err.message).toContain('npm install ws');
  });

  it('npx troupe: --version prints the version, --help the usage, a missing relay package exits 1 naming it', () => {
    const v = run('npx', ['--offline', '--no-install', 'troupe', '--version'], core);
    expect(v.out.trim()).toBe(pkg.version);
    expect(v.status).toBe(0);
    const h = run('npx', ['--offline', '--no-install', 'troupe', '--help'], core);
    expect(h.out).toMatch(/troupe node +--name NAME/);
    expect(h.status).toBe(0);
    const relay = run(
      'npx',
      ['--offline', '--no-install', 'troupe', 'relay', '--secret', 's', '--listen', '127.0.0.1:0'],
      core,
    );
    expect(relay.out).toMatch(/MISSING_PACKAGE .*npm install (peer|ws)/);
    expect(relay.status).toBe(1);
  });

  it('a strict TypeScript program (NodeNext, exactOptionalPropertyTypes, noUncheckedIndexedAccess, skipLibCheck false) type-checks with zero errors', () => {
    cpSync(fixture('consumer-strict.ts'), path.join(typed, 'main.ts'));
    writeFileSync(
      path.join(typed, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noUncheckedIndexedAccess: true,
          exactOptionalPropertyTypes: true,
          skipLibCheck: false,
          noEmit: true,
          types: ['node'],
        },
        files: ['main.ts'],
      }),
    );
    const r = run(
      process.execPath,
      [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'],
      typed,
      240_000,
    );
    expect(r.out).toBe('');
    expect(r.status).toBe(0);
    // The program's `@ts-expect-error` line is then a real error: tsc reports an unused directive
    // (TS2578) otherwise.
  }, 280_000);

  describe.each(RUNTIMES)('on $name', (rt) => {
    it.skipIf(rt.unavailable !== undefined)(
      'two processes: register, whereis, call, then SIGKILL of the one → DOWN noconnection',
      async () => {
        cpSync(fixture('runtime-scenario.mjs'), path.join(core, 'runtime-scenario.mjs'));
        const a = new Proc(rt.command, ['runtime-scenario.mjs', 'a'], core);
        procs.push(a);
        const address = (await a.line(/^listening /, 60_000)).split(' ')[1]!;
        const b = new Proc(rt.command, ['runtime-scenario.mjs', 'b', address], core);
        procs.push(b);
        const called = await b.line(/^called /, 60_000);
        expect(JSON.parse(called.slice('called '.length))).toEqual({
          square: 49,
          runtime: rt.name,
          by: rt.name,
        });
        a.child.kill('SIGKILL');
        await b.line(/^down /, 30_000);
        expect(b.lines).toContain('down noconnection');
        expect(await b.exited).toBe(0);
      },
      150_000,
    );
  });

  it('a Vite page that imports troupe builds and runs in Chromium', async () => {
    const page = path.join(core, 'page');
    mkdirSync(page, { recursive: true });
    writeFileSync(
      path.join(page, 'index.html'),
      '<!doctype html><html><body><script type="module" src="./main.js"></script></body></html>\n',
    );
    cpSync(fixture('consumer-page.js'), path.join(page, 'main.js'));
    const { build } = await import('vite');
    await build({
      root: page,
      configFile: false,
      logLevel: 'warn',
      build: { outDir: path.join(page, 'out'), emptyOutDir: true },
    });
    const server = await serveStatic(path.join(page, 'out'));
    const chrome = await launchChromium();
    try {
      const ctx = await chrome.newContext();
      const tab = await ctx.newPage();
      const errors: string[] = [];
      tab.on('pageerror', (e) => errors.push(e.message));
      await tab.goto(server.url);
      await tab.waitForFunction(() => document.body.dataset.result !== undefined, undefined, {
        timeout: 60_000,
      });
      const result = await tab.evaluate(() => document.body.dataset.result);
      expect(errors).toEqual([]);
      expect(JSON.parse(result!)).toEqual({
        doubled: 42,
        echoed: 'echo hi',
        codeOfWrong: 'INVALID_MESSAGE',
      });
    } finally {
      await chrome.close();
      await server.close();
    }
  }, 180_000);
});
