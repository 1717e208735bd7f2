#!/usr/bin/env node
/**
 * `npm run build` (and `prepack`): compiles the package into dist/ — ESM JavaScript, .d.ts
 * declarations and source maps for both — with the TypeScript compiler.
 *
 * The one list is package.json `exports`. Each subpath maps to `./dist/<path>.js` (import) and
 * `./dist/<path>.d.ts` (types), compiled from `<path>.ts`. To ship a new subpath, add one entry
 * there, for example `"./nats": { "types": "./dist/adapters/nats.d.ts", "import": "./dist/adapters/nats.js" }`;
 * nothing here changes. What gets compiled: every `.ts` file in the top-level folders that hold an
 * export's source (core/, adapters/, patterns/, server/ today, a new folder as soon as an export
 * points into it), plus the bin. Sources import each other with `.ts` extensions; tsc's
 * `rewriteRelativeImportExtensions` turns them into `.js` in the output.
 *
 * The repository itself never needs dist/: tests, demo, bench and the README snippets run the
 * `.ts` sources (tsx, Vite, Vitest). dist/ is only the package; `npm pack` rebuilds it.
 *
 * Fails (exit 1) on any compiler error, or when an `exports`/`bin` target was not produced.
 */
import {
  chmodSync,
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(root, 'dist');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

/** `./dist/a/b.js` or `./dist/a/b.d.ts` → `a/b.ts`. */
export function sourceOf(target) {
  const m = /^\.\/dist\/(.+?)(\.d\.ts|\.js)$/.exec(target);
  if (!m)
    throw new Error(`build: ${target} is not of the form ./dist/<path>.js or ./dist/<path>.d.ts`);
  return `${m[1]}.ts`;
}

/** Every `{ types, import }` target of package.json `exports` and `bin`, with the source it comes from. */
export function entriesOf(p = pkg) {
  const out = [];
  for (const [subpath, value] of Object.entries(p.exports)) {
    if (typeof value === 'string') continue; // ./package.json
    const { types, import: js } = value;
    if (!types || !js)
      throw new Error(`build: exports["${subpath}"] needs both "types" and "import"`);
    if (sourceOf(types) !== sourceOf(js))
      throw new Error(`build: exports["${subpath}"]: types and import point at different files`);
    out.push({ subpath, source: sourceOf(js), targets: [types, js] });
  }
  for (const [name, target] of Object.entries(p.bin ?? {}))
    out.push({ subpath: `bin:${name}`, source: sourceOf(target), targets: [target] });
  return out;
}

function tsFilesUnder(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : tsFilesUnder(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

function build() {
  const entries = entriesOf();
  for (const e of entries) {
    if (!existsSync(path.join(root, e.source)))
      throw new Error(`build: ${e.subpath} points at ${e.source}, which does not exist`);
  }
  const folders = [...new Set(entries.map((e) => e.source.split('/')[0]))];
  const rootNames = folders.flatMap((f) => tsFilesUnder(path.join(root, f)));

  const configFile = path.join(root, 'tsconfig.build.json');
  const { config, error } = ts.readConfigFile(configFile, ts.sys.readFile);
  if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, root, undefined, configFile);
  rmSync(outDir, { recursive: true, force: true });
  const program = ts.createProgram({ rootNames, options: parsed.options });
  const emitted = program.emit();
  const diagnostics = [...ts.getPreEmitDiagnostics(program), ...emitted.diagnostics];
  if (diagnostics.length) {
    const host = {
      getCanonicalFileName: (f) => f,
      getCurrentDirectory: () => root,
      getNewLine: () => '\n',
    };
    console.error(ts.formatDiagnosticsWithColorAndContext(diagnostics, host));
    throw new Error(`build: ${diagnostics.length} compiler error(s)`);
  }
  // tsc rewrites `.ts` specifiers in the JavaScript but not in the declarations: do it here, so a
  // consumer's compiler never sees a `.ts` import (TS5097 under NodeNext).
  for (const file of tsFilesUnder(outDir)) {
    const text = readFileSync(file, 'utf8');
    const fixed = text.replace(
      /((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]+?)\.ts(['"])/g,
      '$1$2.js$3',
    );
    if (fixed !== text) writeFileSync(file, fixed);
  }
  for (const e of entries) {
    for (const t of e.targets) {
      if (!existsSync(path.join(root, t)))
        throw new Error(`build: ${e.subpath}: ${t} was not produced`);
    }
  }
  for (const target of Object.values(pkg.bin ?? {})) chmodSync(path.join(root, target), 0o755);
  const files = tsFilesUnder(outDir).length; // .d.ts files
  const total = readdirSync(outDir, { recursive: true }).filter((f) =>
    statSync(path.join(outDir, f)).isFile(),
  ).length;
  console.log(
    `build: dist/ from ${folders.join(', ')} — ${rootNames.length} sources, ${total} files (${files} .d.ts)`,
  );
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    build();
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  }
}
