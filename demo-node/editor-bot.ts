// A Node-side participant of the demo's shared text (troupe/yjs): it shows up in the presence
// list like a page, and answers a line that is exactly `bot?` by replacing it with a greeting
// from its node, to show an edit made in a Node process reaching every page.
import type { Node } from '../core/index.ts';
import { joinDocument, type YjsProvider } from '../collab/index.ts';
import { EDITOR_DOC } from '../demo-web/board-editor-name.ts';

/** Join the shared text as a bot on `node`. */
export function startEditorBot(node: Node): YjsProvider {
  const provider = joinDocument(node, { name: EDITOR_DOC, user: `bot on ${node.id}` });
  provider.awareness.setLocalStateField('user', {
    name: `bot on ${node.id}`,
    color: '#6b7280',
    colorLight: '#6b728033',
  });
  const text = provider.doc.getText('body');
  text.observe((event) => {
    if (event.transaction.origin === null) return; // our own edit
    const s = text.toString();
    const at = s.search(/(^|\n)bot\?(\n|$)/);
    if (at < 0) return;
    const start = s[at] === '\n' ? at + 1 : at;
    // Edit after the current transaction (observers must not edit inside it).
    queueMicrotask(() => {
      if (text.toString().slice(start, start + 4) !== 'bot?') return;
      provider.doc.transact(() => {
        text.delete(start, 4);
        text.insert(
          start,
          `bot: hello from ${node.id} at ${new Date().toISOString().slice(11, 19)}`,
        );
      });
    });
  });
  return provider;
}
