// A Web Worker that never links to its page (it does not call servePoolWorker): a pool must give
// up on it after its start timeout, and terminate it.
export {};
