/**
 * Where a document actor keeps its documents: every accepted update is appended, and now and
 * then the whole state replaces them (a compacted snapshot). Loaded again when the actor starts.
 */
export interface DocStore {
  /** Everything stored for `doc`: a snapshot (if any) then the updates appended after it. */
  load(doc: string): Promise<Uint8Array[]>;
  /** Append one accepted update. Must be durable against a crash of the process once it returns. */
  append(doc: string, update: Uint8Array): Promise<void>;
  /** Replace everything stored for `doc` by `snapshot` (the whole state as one update). */
  compact(doc: string, snapshot: Uint8Array): Promise<void>;
  /** Names of the documents stored. */
  list(): Promise<string[]>;
  /** Release files or handles. */
  close?(): Promise<void>;
}

/**
 * A store in memory (browsers, tests, a page hosting the document): nothing survives the process.
 * @example
 * serveDocuments(node, { store: createMemoryStore() });
 */
export function createMemoryStore(): DocStore {
  const docs = new Map<string, Uint8Array[]>();
  return {
    async load(doc) {
      return [...(docs.get(doc) ?? [])];
    },
    async append(doc, update) {
      let list = docs.get(doc);
      if (!list) docs.set(doc, (list = []));
      list.push(update);
    },
    async compact(doc, snapshot) {
      docs.set(doc, [snapshot]);
    },
    async list() {
      return [...docs.keys()];
    },
  };
}
