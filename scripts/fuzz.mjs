#!/usr/bin/env node
/**
 * `npm run fuzz`: the fuzz suites (tests/fuzz-*.test.ts) with many more cases than `npm test`
 * runs. FUZZ_RUNS sets the total across the properties (default here 200 000; `npm test` uses
 * 10 000); FUZZ_SEED replays one seed (fast-check prints the seed of a failure). Extra
 * arguments go to vitest, e.g. `npm run fuzz -- tests/fuzz-codec.test.ts`.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const runs = process.env.FUZZ_RUNS || '200000';
const files = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('-'));
console.log(
  `fuzz: FUZZ_RUNS=${runs}${process.env.FUZZ_SEED ? ` FUZZ_SEED=${process.env.FUZZ_SEED}` : ''}`,
);
const r = spawnSync(
  process.execPath,
  [
    path.join(root, 'node_modules', 'vitest', 'vitest.mjs'),
    'run',
    ...(files.length ? files : ['tests/fuzz-']),
    '--testTimeout=0',
    '--hookTimeout=60000',
    ...flags,
  ],
  { cwd: root, stdio: 'inherit', env: { ...process.env, FUZZ_RUNS: runs } },
);
process.exitCode = r.status ?? 1;
