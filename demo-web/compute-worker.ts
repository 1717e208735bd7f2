// A Web Worker of the compute view's pool (createWebWorkerPool): its own troupe node, linked to
// the page that started it, serving the `tile` function, with a probe for the cluster view.
import { servePoolWorker } from '../patterns/browser.ts';
import { installProbe } from './cluster-probe.ts';
import { tileFunctions } from './tile-functions.ts';

// Only named functions: the tab's cluster (other tabs, the relay) gets no code execution here.
const { node, parent } = servePoolWorker({
  functions: tileFunctions(() => node.id),
  allowSource: false,
});
// The pool names its workers `<tab>.w<pool>.<index>`.
installProbe(node, {
  kind: 'worker',
  label: `worker ${Number(node.id.slice(node.id.lastIndexOf('.') + 1)) + 1}`,
});
parent.catch((err: Error) => console.error(`troupe demo worker ${node.id}: ${err.message}`));
