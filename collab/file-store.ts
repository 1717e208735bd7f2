/**
 * troupe/yjs/file-store — a {@link DocStore} in plain files (Node only: it imports `node:fs`; the
 * browser bundle of troupe/yjs never does).
 *
 * Why files, not y-leveldb or SQLite: a Yjs document needs only "append an update" and "replace
 * everything by one snapshot", which an append-only log and an atomic rename give with no native
 * module (better-sqlite3 and LevelDB's classic-level ship compiled binaries per platform) and no
 * extra dependency. Per document `<hex of the name>.ylog` holds length-prefixed updates
 * (4-byte big-endian length, then the bytes); `<hex>.ysnap` the last compacted snapshot, written
 * to a temporary file and renamed over the old one, after which the log is emptied. A process
 * killed mid-write leaves at most a torn last record, which loading drops (and cuts off); a kill
 * between the rename and the emptying leaves updates that are also in the snapshot, and applying a
 * Yjs update twice changes nothing.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { Buffer } from 'node:buffer';
import type { DocStore } from './store.ts';

/** Options of {@link createFileStore}. */
export interface FileStoreOptions {
  /** fsync every append and snapshot (survives a power loss, not only a process crash). @default false */
  fsync?: boolean;
}

const LOG = '.ylog';
const SNAP = '.ysnap';

/**
 * A document store in the folder `dir` (created if missing).
 * @example
 * import { createFileStore } from 'troupe/yjs/file-store';
 * serveDocuments(node, { store: createFileStore('./data/docs') });
 */
export function createFileStore(dir: string, options: FileStoreOptions = {}): DocStore {
  mkdirSync(dir, { recursive: true });
  const fds = new Map<string, number>();
  const base = (doc: string) => join(dir, Buffer.from(doc, 'utf8').toString('hex'));
  const logFd = (doc: string): number => {
    let fd = fds.get(doc);
    if (fd === undefined) fds.set(doc, (fd = openSync(base(doc) + LOG, 'a')));
    return fd;
  };
  return {
    async load(doc) {
      const out: Uint8Array[] = [];
      const b = base(doc);
      if (existsSync(b + SNAP)) out.push(new Uint8Array(readFileSync(b + SNAP)));
      if (!existsSync(b + LOG)) return out;
      const log = readFileSync(b + LOG);
      let at = 0;
      while (log.length - at >= 4) {
        const len = log.readUInt32BE(at);
        if (log.length - at - 4 < len) break; // a torn last record
        out.push(new Uint8Array(log.subarray(at + 4, at + 4 + len)));
        at += 4 + len;
      }
      if (at < log.length) {
        // Cut the torn tail off, so later appends follow the last whole record.
        const fd = openSync(b + LOG, 'r+');
        ftruncateSync(fd, at);
        closeSync(fd);
      }
      return out;
    },
    async append(doc, update) {
      const fd = logFd(doc);
      const record = Buffer.allocUnsafe(4 + update.byteLength);
      record.writeUInt32BE(update.byteLength, 0);
      record.set(update, 4);
      writeSync(fd, record);
      if (options.fsync) fsyncSync(fd);
    },
    async compact(doc, snapshot) {
      const b = base(doc);
      writeFileSync(b + SNAP + '.tmp', snapshot, { flush: options.fsync === true });
      renameSync(b + SNAP + '.tmp', b + SNAP);
      const fd = logFd(doc);
      ftruncateSync(fd, 0);
    },
    async list() {
      const names = new Set<string>();
      for (const f of readdirSync(dir)) {
        const m = /^([0-9a-f]+)\.(ylog|ysnap)$/.exec(f);
        if (m) names.add(Buffer.from(m[1], 'hex').toString('utf8'));
      }
      return [...names];
    },
    async close() {
      for (const fd of fds.values()) closeSync(fd);
      fds.clear();
    },
  };
}
