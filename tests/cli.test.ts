// Issue 10 — the `troupe` command as scripts use it: --version, exit codes (usage 2, timeout 3,
// refused secret 4 at once, not after the 10 s wait for a name), and `--log json`.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { SECRET, useCluster } from './helpers/cluster.ts';

const cluster = useCluster();
const CLI = fileURLToPath(new URL('../bin/troupe.mjs', import.meta.url));
const version = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/** Run `troupe args…` (bin/troupe.mjs, the sources through tsx) to its end; killed after `ms`. */
function runCli(args: string[], ms = 90_000): Promise<{ code: number | null; lines: string[] }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      {
        timeout: ms,
        killSignal: 'SIGKILL',
        env: { ...process.env, TROUPE_SECRET: '', NODE_OPTIONS: '' },
      },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number | string }).code ?? null) : 0;
        const lines = [
          ...stdout.split('\n'),
          ...stderr.split('\n').map((l) => (l ? `! ${l}` : l)),
        ].filter((l) => l !== '');
        resolve({ code: typeof code === 'number' ? code : null, lines });
      },
    );
  });
}

// Each case starts several processes through tsx: slow on a loaded machine, hence the timeouts.
describe('troupe CLI', () => {
  it('--version prints the package version; an unknown option is a usage error (exit 2)', async () => {
    const v = await runCli(['--version']);
    expect(v.lines).toEqual([version]);
    expect(v.code).toBe(0);
    const bad = await runCli(['--no-such-option']);
    expect(bad.code).toBe(2);
    expect(bad.lines.join('\n')).toMatch(/^! troupe: Unknown option '--no-such-option'/m);
  }, 150_000);

  it('a refused secret fails at once with UNAUTHORIZED and exit code 4', async () => {
    const target = await cluster.start({ name: 'cli-target' });
    const r = await runCli(['ping', '--seed', target.hostPort, '--secret', 'not-the-secret']);
    expect(r.code).toBe(4);
    expect(r.lines.join('\n')).toMatch(/troupe: refused by tcp:\/\/127\.0\.0\.1:\d+: UNAUTHORIZED/);
    // It did not go on to wait for the name "pong" (that wait ends with another message).
    expect(r.lines.join('\n')).not.toMatch(/no actor is registered/);
  }, 150_000);

  it('a timed-out request exits 3; --log json prints one JSON object per line', async () => {
    const target = await cluster.start({ name: 'cli-sleepy' });
    const r = await runCli([
      'request',
      '--seed',
      target.hostPort,
      '--secret',
      SECRET,
      '--ms',
      '3000',
      '--timeout',
      '200',
      '--log',
      'json',
    ]);
    expect(r.code).toBe(3);
    const objects = r.lines
      .filter((l) => !l.startsWith('! '))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(objects[0]).toMatchObject({ level: 'info', event: 'listening' });
    expect(objects.find((o) => o.event === 'failed')).toMatchObject({ code: 'TIMEOUT' });
    // And an answered request exits 0.
    const ok = await runCli([
      'request',
      '--seed',
      target.hostPort,
      '--secret',
      SECRET,
      '--ms',
      '10',
      '--timeout',
      '10000',
    ]);
    expect(ok.lines.join('\n')).toMatch(/request answered/);
    expect(ok.code).toBe(0);
  }, 150_000);
});
