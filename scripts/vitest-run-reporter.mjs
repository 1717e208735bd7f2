/**
 * A vitest reporter used only by scripts/test.mjs: records what vitest's JSON report leaves out —
 * errors thrown outside any test (unhandled rejections, errors in a worker) and how the run ended
 * ('passed' | 'failed' | 'interrupted') — in test-results/vitest-run.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export default class RunReporter {
  onInit(vitest) {
    this.file = path.join(vitest.config.root, 'test-results', 'vitest-run.json');
  }

  onTestRunEnd(_modules, unhandledErrors, reason) {
    const errors = unhandledErrors.map((e) => String(e?.message ?? e).split('\n')[0]);
    mkdirSync(path.dirname(this.file), { recursive: true });
    writeFileSync(this.file, JSON.stringify({ reason, unhandledErrors: errors }));
  }
}
