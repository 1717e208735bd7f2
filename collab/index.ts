/**
 * troupe/yjs — collaborative documents (Yjs) over any troupe transport: a document actor
 * ({@link serveDocuments}) and a participant ({@link joinDocument}) for pages, workers and Node.
 * Browser-safe; the file store is `troupe/yjs/file-store`.
 */
export { serveDocuments } from './document-actor.ts';
export type {
  DocumentServer,
  DocumentServerEvents,
  DocumentServerOptions,
  JoinRequest,
} from './document-actor.ts';
export { joinDocument, YjsProvider } from './provider.ts';
export type { ProviderEvents, ProviderOptions, ProviderStatus } from './provider.ts';
export { createMemoryStore } from './store.ts';
export type { DocStore } from './store.ts';
export { DEFAULT_MAX_UPDATE_BYTES, DocName, Participant, Role } from './messages.ts';
