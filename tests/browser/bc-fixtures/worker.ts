// The BroadcastChannel fixture's Web Worker: its own node (named by the page through the
// Worker's `name` option), found by discovery like the pages; no link to its page is made by hand.
import { createBcNode, spawnFixtureActors } from './common.ts';

const node = createBcNode((self as unknown as { name: string }).name);
spawnFixtureActors(node);
void node.listen();
