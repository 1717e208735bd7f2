#!/usr/bin/env node
/**
 * Guards the host-neutral core: every module under a directory (default `core/`) may import only
 * other files inside that directory and the packages zod, superjson and @noble/hashes. It fails
 * (exit 1, one `file:line:col: …` line per problem) on:
 *   - static `import`/`export … from`, `import x = require()`, dynamic `import()`, `import('x')`
 *     types and `require()` calls that leave the directory (e.g. an adapter), name a `node:` or
 *     bare Node builtin, or any other package;
 *   - `/// <reference types|lib|path>` directives that would pull DOM or Node typings in;
 *   - references to browser- or Node-only globals (`window`, `document`, `process`, `Buffer`,
 *     `require`, …) that are not a local binding, including `globalThis.process` and
 *     `globalThis['Buffer']` — the shapes that slip past `tsc` through a `declare` or an `as any`.
 *
 * Usage: node scripts/check-core-imports.mjs [dir]   (exit 0 ok, 1 problems, 2 bad usage)
 * Library: `checkCore(dir)` → `{ files, imports, problems }`.
 */
import { readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

/** Bare packages core may import (any subpath of them too). */
export const ALLOWED_PACKAGES = ['zod', 'superjson', '@noble/hashes'];

/** Globals that exist only in browsers/workers or only in Node: core must not touch them. */
export const FORBIDDEN_GLOBALS = [
  // browser / worker
  'window',
  'document',
  'navigator',
  'location',
  'self',
  'importScripts',
  'localStorage',
  'sessionStorage',
  'XMLHttpRequest',
  'postMessage',
  // Node / CommonJS
  'process',
  'Buffer',
  'require',
  'module',
  'exports',
  '__dirname',
  '__filename',
  'global',
  'setImmediate',
  'clearImmediate',
];

const forbidden = new Set(FORBIDDEN_GLOBALS);
const builtins = new Set(builtinModules.map((m) => m.replace(/^node:/, '')));
const SOURCE = /\.(ts|mts|cts|tsx)$/;
// `/// <reference lib="…">` may only name ECMAScript libs (es2022, esnext.array, …), never dom/webworker.
const ES_LIB = /^es(5|6|20\d\d|next)(\.|$)/i;

function listSources(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listSources(full));
    else if (entry.isFile() && SOURCE.test(entry.name)) out.push(full);
  }
  return out.sort();
}

function packageName(spec) {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Why `spec`, imported from `file`, is not allowed in a core rooted at `root`; null when fine. */
function judgeSpecifier(spec, file, root) {
  if (spec.startsWith('node:')) return `Node builtin '${spec}' is not allowed in core`;
  if (spec.startsWith('.') || spec.startsWith('/')) {
    const target = path.resolve(path.dirname(file), spec);
    const rel = path.relative(root, target);
    if (rel.startsWith('..') || path.isAbsolute(rel)) {
      return `'${spec}' leaves core (resolves to ${path.relative(process.cwd(), target) || target}); core must not import adapters or other project code`;
    }
    return null;
  }
  if (spec.startsWith('#'))
    return `subpath import '${spec}' cannot be checked; use a relative path inside core`;
  if (/^[a-z][a-z0-9+.-]*:/i.test(spec)) return `URL import '${spec}' is not allowed in core`;
  const name = packageName(spec);
  if (ALLOWED_PACKAGES.includes(name)) return null;
  if (builtins.has(name)) return `Node builtin '${spec}' is not allowed in core`;
  return `package '${name}' is not allowed in core (allowed: ${ALLOWED_PACKAGES.join(', ')})`;
}

function unwrap(expr) {
  while (
    ts.isParenthesizedExpression(expr) ||
    ts.isAsExpression(expr) ||
    ts.isTypeAssertionExpression(expr) ||
    ts.isNonNullExpression(expr) ||
    ts.isSatisfiesExpression(expr)
  )
    expr = expr.expression;
  return expr;
}

function isAmbient(decl) {
  return (
    decl.getSourceFile().isDeclarationFile ||
    (ts.getCombinedNodeFlags(decl) & ts.NodeFlags.Ambient) !== 0
  );
}

/**
 * Scans every TypeScript file under `dir`.
 * @returns {{ files: string[], imports: number, problems: { file: string, line: number, column: number, message: string }[] }}
 */
export function checkCore(dir) {
  const root = path.resolve(dir);
  if (!existsDir(root)) throw new Error(`check-core-imports: ${dir} is not a directory`);
  const files = listSources(root);
  if (files.length === 0) throw new Error(`check-core-imports: no TypeScript files under ${dir}`);

  // noResolve: we judge specifiers ourselves and must not load anything outside `root`; the
  // checker is only used to tell a local binding named `process` from the global one.
  const program = ts.createProgram(files, {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ['lib.es2022.d.ts'],
    types: [],
    noResolve: true,
    noEmit: true,
    allowImportingTsExtensions: true,
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  const problems = [];
  let imports = 0;

  for (const file of files) {
    const sf = program.getSourceFile(file);
    if (!sf) continue;
    const report = (pos, message) => {
      const { line, character } = sf.getLineAndCharacterOfPosition(pos);
      problems.push({
        file: path.relative(process.cwd(), file) || file,
        line: line + 1,
        column: character + 1,
        message,
      });
    };
    const checkSpec = (node, spec, what) => {
      imports += 1;
      const why = judgeSpecifier(spec, file, root);
      if (why) report(node.getStart(sf), `${what}: ${why}`);
    };

    for (const ref of sf.typeReferenceDirectives) {
      report(ref.pos, `/// <reference types="${ref.fileName}"> pulls host typings into core`);
    }
    for (const ref of sf.libReferenceDirectives) {
      if (!ES_LIB.test(ref.fileName))
        report(ref.pos, `/// <reference lib="${ref.fileName}"> pulls host typings into core`);
    }
    for (const ref of sf.referencedFiles) {
      const why = judgeSpecifier(
        ref.fileName.startsWith('.') ? ref.fileName : `./${ref.fileName}`,
        file,
        root,
      );
      if (why) report(ref.pos, `/// <reference path="${ref.fileName}">: ${why}`);
    }

    const visit = (node) => {
      if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
        if (ts.isStringLiteral(node.moduleSpecifier))
          checkSpec(node, node.moduleSpecifier.text, 'import');
      } else if (
        ts.isImportEqualsDeclaration(node) &&
        ts.isExternalModuleReference(node.moduleReference)
      ) {
        const e = node.moduleReference.expression;
        imports += 1;
        const why = ts.isStringLiteralLike(e) ? judgeSpecifier(e.text, file, root) : null;
        const spec = ts.isStringLiteralLike(e) ? `('${e.text}')` : '';
        report(
          node.getStart(sf),
          `import = require${spec}: CommonJS is not allowed in core${why ? `; also ${why}` : ''}`,
        );
      } else if (ts.isImportTypeNode(node)) {
        const arg = node.argument;
        if (ts.isLiteralTypeNode(arg) && ts.isStringLiteralLike(arg.literal))
          checkSpec(node, arg.literal.text, 'import() type');
      } else if (ts.isCallExpression(node)) {
        const callee = unwrap(node.expression);
        const first = node.arguments[0];
        if (node.expression.kind === ts.SyntaxKind.ImportKeyword) {
          if (first && ts.isStringLiteralLike(first))
            checkSpec(node, first.text, 'dynamic import()');
          else
            report(
              node.getStart(sf),
              'dynamic import() with a computed specifier cannot be checked; not allowed in core',
            );
        } else if (ts.isIdentifier(callee) && callee.text === 'require') {
          imports += 1;
          const spec = first && ts.isStringLiteralLike(first) ? `('${first.text}')` : '';
          report(node.getStart(sf), `require${spec}: CommonJS require is not allowed in core`);
        }
      } else if (ts.isPropertyAccessExpression(node) || ts.isElementAccessExpression(node)) {
        // globalThis.process / (globalThis as any)['Buffer']
        const target = unwrap(node.expression);
        const name = ts.isPropertyAccessExpression(node)
          ? node.name.text
          : ts.isStringLiteralLike(node.argumentExpression)
            ? node.argumentExpression.text
            : undefined;
        if (
          name &&
          forbidden.has(name) &&
          ts.isIdentifier(target) &&
          target.text === 'globalThis' &&
          !isLocal(target)
        ) {
          report(
            node.getStart(sf),
            `globalThis.${name} is a host-specific global; core may use only what core/host.d.ts declares`,
          );
        }
      } else if (ts.isIdentifier(node) && forbidden.has(node.text)) {
        checkIdentifier(node);
      }
      ts.forEachChild(node, visit);
    };

    const isLocal = (id) => {
      const sym = checker.getSymbolAtLocation(id);
      return !!sym?.declarations?.length && sym.declarations.every((d) => !isAmbient(d));
    };

    const checkIdentifier = (id) => {
      const p = id.parent;
      // Positions where the identifier names a property, label or export, not a variable.
      if (ts.isPropertyAccessExpression(p) && p.name === id) return;
      if (ts.isQualifiedName(p) && p.right === id) return;
      if (
        (ts.isPropertyAssignment(p) ||
          ts.isPropertyDeclaration(p) ||
          ts.isPropertySignature(p) ||
          ts.isMethodDeclaration(p) ||
          ts.isMethodSignature(p) ||
          ts.isGetAccessorDeclaration(p) ||
          ts.isSetAccessorDeclaration(p) ||
          ts.isEnumMember(p) ||
          ts.isPropertyAccessExpression(p)) &&
        p.name === id
      )
        return;
      if (ts.isBindingElement(p) && p.propertyName === id) return;
      if ((ts.isImportSpecifier(p) || ts.isExportSpecifier(p)) && p.propertyName === id) return;
      if (ts.isExportSpecifier(p) && p.propertyName) return; // `export { x as process }`: an export name
      if ((ts.isLabeledStatement(p) || ts.isBreakOrContinueStatement(p)) && p.label === id) return;
      // `require('x')` is already reported as an import.
      if (ts.isCallExpression(p) && unwrap(p.expression) === id && id.text === 'require') return;

      let sym;
      if (ts.isShorthandPropertyAssignment(p) && p.name === id)
        sym = checker.getShorthandAssignmentValueSymbol(p);
      else if (ts.isExportSpecifier(p)) sym = checker.getExportSpecifierLocalTargetSymbol(p);
      else sym = checker.getSymbolAtLocation(id);
      const decls = sym?.declarations ?? [];
      if (decls.length > 0 && decls.every((d) => !isAmbient(d))) return; // a local binding
      report(
        id.getStart(sf),
        `'${id.text}' is a host-specific global; core may use only what core/host.d.ts declares`,
      );
    };

    visit(sf);
  }
  problems.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
  return { files, imports, problems };
}

function existsDir(p) {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function main(argv) {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const dir = argv[0] ?? path.join(here, '..', 'core');
  if (argv.length > 1) {
    console.error('usage: node scripts/check-core-imports.mjs [dir]');
    return 2;
  }
  let result;
  try {
    result = checkCore(dir);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    return 2;
  }
  const shown = path.relative(process.cwd(), path.resolve(dir)) || '.';
  if (result.problems.length > 0) {
    for (const p of result.problems) console.error(`${p.file}:${p.line}:${p.column}: ${p.message}`);
    console.error(
      `check-core-imports: ${result.problems.length} problem(s) in ${shown} — core must stay host-neutral (see scripts/check-core-imports.mjs)`,
    );
    return 1;
  }
  console.log(
    `check-core-imports: ${shown} ok (${result.files.length} files, ${result.imports} imports)`,
  );
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2));
}
