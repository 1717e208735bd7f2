// A user's project around the packed tarball, installed offline: `npm pack` (whose prepack builds
// dist/), then `npm ci --offline` in a fresh temporary folder. The folder gets a package-lock.json
// made from this repository's own lock (the same versions, resolved URLs and integrity hashes),
// so npm needs only tarballs, which the repository's `npm install` left in the npm cache — it
// never asks the registry for package metadata, which a clean machine's cache does not hold.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** What `npm pack --json` says about the tarball. */
export interface Packed {
  /** Absolute path of the .tgz. */
  file: string;
  /** The paths inside the package. */
  files: string[];
  /** Bytes of the .tgz. */
  size: number;
  unpackedSize: number;
}

type LockEntry = {
  version?: string;
  resolved?: string;
  integrity?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [k: string]: unknown;
};

/** `npm pack` of `root` into `dest`. */
export function pack(root: string, dest: string): Packed {
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dest], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 << 20,
  });
  // prepack's build prints to stdout too: the JSON is the last top-level array.
  const json = JSON.parse(out.slice(out.lastIndexOf('\n[') + 1)) as {
    filename: string;
    files: { path: string }[];
    size: number;
    unpackedSize: number;
  }[];
  const [info] = json;
  if (!info) throw new Error(`npm pack printed no package:\n${out}`);
  return {
    file: path.join(dest, info.filename),
    files: info.files.map((f) => f.path),
    size: info.size,
    unpackedSize: info.unpackedSize,
  };
}

/**
 * Write `dir`/package.json and a package-lock.json for a project that depends on the tarball
 * (copied into `dir`) and on `extra` packages, every version taken from `repoRoot`'s lock.
 */
export function writeConsumerProject(
  dir: string,
  repoRoot: string,
  tarball: string,
  extra: string[],
): void {
  const repoLock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    license: string;
    dependencies: Record<string, string>;
    peerDependencies: Record<string, string>;
    peerDependenciesMeta: Record<string, { optional?: boolean }>;
    bin: Record<string, string>;
    engines: Record<string, string>;
  };
  const tgz = path.basename(tarball);
  execFileSync('cp', [tarball, path.join(dir, tgz)]);
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;

  const packages: Record<string, LockEntry> = {};
  // Copy `name` as npm would find it from `from` (a lock key): nested first, then up the tree.
  const add = (name: string, from: string, optional: boolean): void => {
    let base = from;
    for (;;) {
      const key = `${base ? `${base}/` : ''}node_modules/${name}`;
      const entry = repoLock.packages[key];
      if (entry) {
        if (packages[key]) return;
        const {
          dev: _d,
          devOptional: _o,
          peer: _p,
          ...rest
        } = entry as LockEntry & { dev?: unknown; devOptional?: unknown; peer?: unknown };
        packages[key] = rest;
        for (const d of Object.keys(entry.dependencies ?? {})) add(d, key, false);
        for (const d of Object.keys(entry.optionalDependencies ?? {})) add(d, key, true);
        for (const [d] of Object.entries(entry.peerDependencies ?? {}).filter(
          ([p]) => !entry.peerDependenciesMeta?.[p]?.optional,
        ))
          add(d, key, false);
        return;
      }
      if (!base) {
        if (optional) return; // a platform package this machine never installed
        throw new Error(
          `consumer lock: ${name} (needed from ${from || 'the root'}) is not in the repository's package-lock.json`,
        );
      }
      const i = base.lastIndexOf('/node_modules/');
      base = i < 0 ? '' : base.slice(0, i);
    }
  };
  const versionOf = (name: string): string => {
    const v = repoLock.packages[`node_modules/${name}`]?.version;
    if (!v) throw new Error(`consumer lock: ${name} is not installed in the repository`);
    return v;
  };
  const required = {
    ...pkg.dependencies,
    ...Object.fromEntries(
      Object.entries(pkg.peerDependencies).filter(([p]) => !pkg.peerDependenciesMeta[p]?.optional),
    ),
  };
  for (const d of Object.keys(required)) add(d, '', false);
  for (const d of extra) add(d, '', false);
  const dependencies = {
    troupe: `file:${tgz}`,
    ...Object.fromEntries(extra.map((d) => [d, versionOf(d)])),
  };
  packages['node_modules/troupe'] = {
    version: pkg.version,
    resolved: `file:${tgz}`,
    integrity,
    license: pkg.license,
    dependencies: pkg.dependencies,
    bin: pkg.bin,
    engines: pkg.engines,
    peerDependencies: pkg.peerDependencies,
    peerDependenciesMeta: pkg.peerDependenciesMeta,
  };
  const project = {
    name: 'troupe-consumer',
    version: '1.0.0',
    private: true,
    type: 'module',
    dependencies,
  };
  writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(project, null, 2)}\n`);
  const lock = {
    name: project.name,
    version: project.version,
    lockfileVersion: 3,
    requires: true,
    packages: { '': { name: project.name, version: project.version, dependencies }, ...packages },
  };
  writeFileSync(path.join(dir, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`);
}

/** `npm ci --offline` in `dir`: only the npm cache, never the network. Throws with npm's output. */
export function installOffline(dir: string): void {
  const r = spawnSync('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 240_000,
  });
  if (r.status !== 0)
    throw new Error(
      `npm ci --offline failed (exit ${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`,
    );
}
