// Run a scenario script inside a loopback-only network namespace, so WebRTC in Chromium can only
// offer 127.0.0.1 candidates (TESTING.md): `unshare -n sh -c 'ip link set lo up && exec node …'`.
// The script prints one `RESULT {json}` line per scenario; tests await them by name.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll } from 'vitest';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './build.ts';

/** One scenario's outcome, as the scenario script prints it. */
export interface ScenarioResult<T = any> {
  scenario: string;
  ok: boolean;
  /** What the scenario measured (on success). */
  value?: T;
  /** Why it failed. */
  error?: string;
  /** Page errors, node events and the like, for the failure message. */
  diagnostics?: string[];
}

/** A running scenario script. */
export interface ScenarioRun {
  /** The result of `scenario`; rejects if the script ends (or times out) without printing it. */
  result<T = any>(scenario: string): Promise<ScenarioResult<T>>;
  /** Resolves when the script has exited. */
  readonly exited: Promise<void>;
  /** Kill the script (and what it started) if it still runs. */
  stop(): Promise<void>;
  /** The script's stderr and non-result stdout, last lines first trimmed (for failure messages). */
  output(): string;
}

/**
 * Why this machine cannot make a loopback-only namespace, or undefined when it can. The browser
 * tests fail with this message (they never skip): WebRTC must not reach real interfaces.
 */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux')
    return `WebRTC browser tests need Linux network namespaces (this is ${process.platform})`;
  if (process.getuid?.() !== 0)
    return 'WebRTC browser tests need root to create a loopback-only network namespace (`unshare -n`): run them as root';
  const probe = spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up && ip -o addr show'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (probe.error)
    return `cannot run unshare (util-linux) to make a loopback-only network namespace: ${probe.error.message}`;
  if (probe.status !== 0) return `unshare -n failed (exit ${probe.status}): ${probe.stderr.trim()}`;
  const nonLoopback = probe.stdout.split('\n').filter((l) => l.trim() && !/^\d+:\s+lo\s/.test(l));
  if (nonLoopback.length)
    return `the namespace made by unshare -n has interfaces other than lo: ${nonLoopback.join('; ')}`;
  return undefined;
}

/**
 * Start `script` (a .ts file under tests/browser/scenarios, run with tsx) in a fresh loopback-only
 * network namespace with `args`. The whole run is killed after `timeoutMs`.
 */
export function runInNetns(script: string, args: string[], timeoutMs: number): ScenarioRun {
  const why = netnsUnavailable();
  if (why) throw new Error(why);
  const file = path.resolve(ROOT, script);
  if (!existsSync(file)) throw new Error(`no scenario script ${file}`);
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = `ip link set lo up && exec ${quote(process.execPath)} --import tsx ${[file, ...args].map(quote).join(' ')}`;
  const child: ChildProcess = spawn('unshare', ['-n', 'sh', '-c', command], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: stop() ends Chromium and the rest with it
  });
  const results = new Map<string, ScenarioResult>();
  const waiters = new Map<string, { resolve(r: ScenarioResult): void; reject(e: Error): void }[]>();
  const lines: string[] = [];
  let ended: string | undefined;
  const note = (line: string) => {
    lines.push(line);
    if (lines.length > 400) lines.splice(0, lines.length - 400);
  };
  let outBuf = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    outBuf += chunk;
    let nl: number;
    while ((nl = outBuf.indexOf('\n')) >= 0) {
      const line = outBuf.slice(0, nl);
      outBuf = outBuf.slice(nl + 1);
      if (!line.startsWith('RESULT ')) {
        note(line);
        continue;
      }
      let r: ScenarioResult;
      try {
        r = JSON.parse(line.slice(7)) as ScenarioResult;
      } catch {
        note(`(unparsable) ${line}`);
        continue;
      }
      results.set(r.scenario, r);
      for (const w of waiters.get(r.scenario) ?? []) w.resolve(r);
      waiters.delete(r.scenario);
    }
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    for (const line of chunk.split('\n')) if (line.trim()) note(`stderr: ${line}`);
  });
  const kill = () => {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const timer = setTimeout(() => {
    ended ??= `the scenario script ran longer than ${timeoutMs} ms and was killed`;
    kill();
  }, timeoutMs);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      // Chromium and the like may outlive sh/node: end the whole group.
      kill();
      ended ??= `the scenario script exited (${signal ?? `code ${code}`}) without this result`;
      for (const [name, ws] of waiters)
        for (const w of ws)
          w.reject(
            new Error(
              `${name}: ${ended}\n--- script output (tail) ---\n${lines.slice(-60).join('\n')}`,
            ),
          );
      waiters.clear();
      resolve();
    });
    child.once('error', (err) => {
      ended ??= `cannot start the scenario script: ${err.message}`;
    });
  });
  return {
    result(scenario) {
      const r = results.get(scenario);
      if (r) return Promise.resolve(r);
      if (ended)
        return Promise.reject(new Error(`${scenario}: ${ended}\n${lines.slice(-60).join('\n')}`));
      return new Promise((resolve, reject) => {
        const ws = waiters.get(scenario) ?? [];
        ws.push({ resolve, reject });
        waiters.set(scenario, ws);
      });
    },
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) kill();
      await exited;
    },
    output: () => lines.join('\n'),
  };
}

/** A failure message for a scenario that did not succeed. */
export function explain(r: ScenarioResult): string {
  return `${r.scenario} failed: ${r.error ?? '(no error)'}\n${(r.diagnostics ?? []).slice(-80).join('\n')}`;
}

/**
 * The usual shape of a namespace-backed test file: start `script` with `scenarios` before the
 * file's tests (vitest `beforeAll`), stop it after them, and return a function that awaits one
 * scenario's value — throwing, with its diagnostics, if it failed or the run could not start.
 */
export function netnsScenarios(
  script: string,
  scenarios: string[],
  timeoutMs: number,
): <T>(name: string) => Promise<T> {
  let run: ScenarioRun | undefined;
  let startError: Error | undefined;
  beforeAll(() => {
    try {
      run = runInNetns(script, scenarios, timeoutMs);
    } catch (err) {
      startError = err as Error;
    }
  });
  afterAll(async () => {
    await run?.stop();
  });
  const seen = new Map<string, Promise<unknown>>();
  return <T>(name: string): Promise<T> => {
    let p = seen.get(name);
    if (p === undefined) {
      p = (async () => {
        if (startError) throw startError;
        const r: ScenarioResult<T> = await run!.result<T>(name);
        if (!r.ok) throw new Error(explain(r));
        return r.value as T;
      })();
      seen.set(name, p);
    }
    return p as Promise<T>;
  };
}
