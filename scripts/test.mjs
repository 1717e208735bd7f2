#!/usr/bin/env node
/**
 * `npm test`: every check, one summary line.
 *   1. `npm run typecheck` (tsc over the project, tsc over core alone) — counted as one test;
 *      then `npm run lint` (Biome format check and lint, dependency rules) — one test;
 *   2. when browser tests exist (`tests/**\/*.browser.test.ts` or `tests/browser/`), finds or
 *      installs Chromium (scripts/find-chromium.mjs) and exports CHROMIUM_PATH to the tests;
 *   3. vitest once over all suites, with a JSON report in test-results/vitest.json;
 *   4. prints, as the very last line, `tests: N passed, M failed`, counted from the JSON report,
 *      and exits non-zero when anything failed.
 * Suites that fail without a failing test (import errors, hook errors), tests left unfinished,
 * errors outside any test (from scripts/vitest-run-reporter.mjs), a missing report and a vitest
 * exit code that disagrees with the report all count as failures,
 * so a crashed run can never read as a pass. Extra arguments go to vitest:
 * `npm test -- tests/core-actor.test.ts`. Writes only under test-results/ (git-ignored).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findChromium } from './find-chromium.mjs';
import { findNatsServer } from './find-nats.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const reportFile = path.join(root, 'test-results', 'vitest.json');
const runFile = path.join(root, 'test-results', 'vitest-run.json');
const runReporter = path.join(root, 'scripts', 'vitest-run-reporter.mjs');
const vitestBin = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');
const extraArgs = process.argv.slice(2);

let passed = 0;
let failed = 0;
const notes = [];

function banner(text) {
  console.log(`\n=== ${text} ===`);
}

function fail(note) {
  failed += 1;
  notes.push(`FAILED: ${note}`);
}

function hasBrowserTests(dir) {
  if (!existsSync(dir)) return false;
  if (existsSync(path.join(dir, 'browser')) && statSync(path.join(dir, 'browser')).isDirectory())
    return true;
  const walk = (d) =>
    readdirSync(d, { withFileTypes: true }).some((e) => {
      if (e.name === 'node_modules') return false;
      const full = path.join(d, e.name);
      return e.isDirectory() ? walk(full) : e.name.endsWith('.browser.test.ts');
    });
  return walk(dir);
}

// 1. Type-check (counts as one test).
banner('typecheck (npm run typecheck)');
const tc = spawnSync('npm', ['run', 'typecheck'], { cwd: root, stdio: 'inherit' });
if (tc.error) fail(`typecheck could not start: ${tc.error.message}`);
else if (tc.status === 0) passed += 1;
else fail(`typecheck (exit ${tc.status ?? tc.signal})`);

// 1b. Lint (counts as one test): format check, lint rules, dependency rules.
banner('lint (npm run lint)');
const lint = spawnSync('npm', ['run', 'lint'], { cwd: root, stdio: 'inherit' });
if (lint.error) fail(`lint could not start: ${lint.error.message}`);
else if (lint.status === 0) passed += 1;
else fail(`lint (exit ${lint.status ?? lint.signal})`);

// 2. Chromium, only when some test drives a browser.
if (hasBrowserTests(path.join(root, 'tests'))) {
  banner('chromium');
  try {
    process.env.CHROMIUM_PATH = findChromium();
    console.log(`CHROMIUM_PATH=${process.env.CHROMIUM_PATH}`);
  } catch (err) {
    // Keep going: the browser tests then fail and are counted, the other suites still run.
    console.error(err instanceof Error ? err.message : String(err));
    fail('chromium setup (browser tests cannot run; see the message above)');
  }
}

// 2b. nats-server for the NATS suites (tests/*nats*.test.ts start their own servers).
banner('nats-server');
try {
  process.env.NATS_SERVER_PATH = findNatsServer();
  console.log(`NATS_SERVER_PATH=${process.env.NATS_SERVER_PATH}`);
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  fail('nats-server setup (the NATS tests cannot run; see the message above)');
}

// 3. Every vitest suite, once.
banner(`vitest run${extraArgs.length ? ` ${extraArgs.join(' ')}` : ''}`);
rmSync(reportFile, { force: true });
rmSync(runFile, { force: true });
mkdirSync(path.dirname(reportFile), { recursive: true });
const failedBefore = failed;
if (!existsSync(vitestBin)) {
  fail(`vitest is not installed (${path.relative(root, vitestBin)} missing): run npm install`);
} else {
  const vt = spawnSync(
    process.execPath,
    [
      vitestBin,
      'run',
      '--reporter=default',
      '--reporter=json',
      `--reporter=${runReporter}`,
      `--outputFile=${path.relative(root, reportFile)}`,
      ...extraArgs,
    ],
    { cwd: root, stdio: 'inherit', env: process.env },
  );
  const exit = vt.error ? `could not start: ${vt.error.message}` : `exit ${vt.status ?? vt.signal}`;
  let report;
  try {
    report = JSON.parse(readFileSync(reportFile, 'utf8'));
  } catch (err) {
    const why =
      err && err.code === 'ENOENT'
        ? 'no JSON report was written'
        : `the JSON report is unreadable (${err.message})`;
    fail(`vitest (${exit}): ${why}; counting the run as one failure`);
  }
  if (report) {
    passed += report.numPassedTests ?? 0;
    failed += report.numFailedTests ?? 0;
    if ((report.numFailedTests ?? 0) > 0)
      notes.push(`FAILED: ${report.numFailedTests} vitest test(s)`);
    for (const file of report.testResults ?? []) {
      const rel = path.relative(root, file.name ?? '?');
      const results = file.assertionResults ?? [];
      const unfinished = results.filter((a) => a.status === 'pending').length;
      if (unfinished > 0) fail(`${rel}: ${unfinished} test(s) never finished`);
      // A suite can fail with no failing test: it did not load, or a hook/teardown threw.
      if (file.status === 'failed' && !results.some((a) => a.status === 'failed')) {
        const firstLine = String(file.message || 'suite failed').split('\n')[0];
        fail(
          `${rel}: suite failed ${results.length === 0 ? 'to load' : 'outside its tests'}: ${firstLine}`,
        );
      }
    }
    let run;
    try {
      run = JSON.parse(readFileSync(runFile, 'utf8'));
    } catch {
      run = undefined; // the exit-code check below still catches a run that went wrong
    }
    for (const msg of run?.unhandledErrors ?? []) fail(`error outside any test: ${msg}`);
    if (run && run.reason === 'interrupted') fail('the vitest run was interrupted');
    const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
    if (skipped > 0) notes.push(`note: ${skipped} test(s) skipped or todo (not counted)`);
    // Unhandled errors and the like fail vitest without failing a test: never read that as a pass.
    if (vt.status !== 0 && failed === failedBefore)
      fail(
        `vitest ${exit} although its report shows no failure (unhandled error? see the output above)`,
      );
  }
}

// 4. The one line CI reads; nothing is printed after it.
banner('summary');
for (const n of notes) console.log(n);
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 ? 1 : 0;
