// A Web Worker of the compute view: its own troupe node, linked to the page that started it,
// offering the tile actor for remote spawn and a probe for the cluster view.
import { createWorkerNode } from '../adapters/worker.ts';
import { installProbe } from './cluster-probe.ts';
import { defineTileBehaviour } from './tile-actor.ts';

// The page names the worker after the node id it wants (`new Worker(url, { name })`).
const name = (globalThis as { name?: string }).name || undefined;
const { node, parent } = createWorkerNode({ name });
defineTileBehaviour(node);
installProbe(node, { kind: 'worker', label: name ? `worker ${name.slice(name.lastIndexOf('-') + 1)}` : 'worker' });
parent.catch((err: Error) => console.error(`troupe demo worker ${node.id}: ${err.message}`));
