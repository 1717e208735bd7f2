// The board's shared text: a CodeMirror 6 editor bound to a Yjs document through
// y-codemirror.next, kept in sync by troupe/yjs (the document actor lives on the relay and passes
// each edit on, after checking the sender may write), with the others' cursors and selections, a presence list, and a
// "go offline" switch: edits made offline stay in the page (y-indexeddb) and merge on return.
import { EditorView, basicSetup } from 'codemirror';
import { IndexeddbPersistence } from 'y-indexeddb';
import { yCollab } from 'y-codemirror.next';
import * as Y from 'yjs';
import type { Node } from '../core/index.ts';
import { joinDocument, type YjsProvider } from '../collab/index.ts';
import { el } from './dom.ts';

import { EDITOR_DOC } from './board-editor-name.ts';

/** The editor panel beside the board. */
export class BoardEditor {
  #root: HTMLElement;
  #node: Node;
  #identity: { name: string; colour: string };
  #provider: YjsProvider | undefined;
  #view: EditorView | undefined;
  /** The shared document: the text (`body`) and the board's notes (`notes`, see BoardView.useNotes). */
  readonly doc = new Y.Doc();

  constructor(root: HTMLElement, node: Node, identity: { name: string; colour: string }) {
    this.#root = root;
    this.#node = node;
    this.#identity = identity;
  }

  /** The shared text as this page has it. */
  text(): string {
    return this.#provider?.doc.getText('body').toString() ?? '';
  }

  /** Who is here (names from presence), this page included. */
  presence(): string[] {
    const states = this.#provider?.awareness.getStates() ?? new Map();
    return [...states.values()]
      .map((s) => (s as { user?: { name?: string } }).user?.name)
      .filter((n): n is string => !!n);
  }

  /** Mount the editor and join the document. */
  async start(): Promise<void> {
    const doc = this.doc;
    // The page's own copy: survives going offline and a reload.
    const idb = new IndexeddbPersistence(`troupe-demo-${EDITOR_DOC}`, doc);
    await idb.whenSynced;
    const provider = joinDocument(this.#node, { name: EDITOR_DOC, user: this.#identity.name, doc });
    this.#provider = provider;
    provider.awareness.setLocalStateField('user', {
      name: this.#identity.name,
      color: this.#identity.colour,
      colorLight: `${this.#identity.colour}33`,
    });

    const status = el(
      'span',
      { class: 'editor-status', 'data-testid': 'editor-status' },
      'connecting…',
    );
    const offline = el('input', {
      type: 'checkbox',
      'data-testid': 'editor-offline',
    }) as HTMLInputElement;
    offline.addEventListener('change', () =>
      offline.checked ? provider.disconnect() : provider.connect(),
    );
    const people = el('ul', { class: 'editor-people', 'data-testid': 'editor-people' });
    const host = el('div', { class: 'editor-host' });
    const panel = el(
      'section',
      { class: 'card editor', 'data-testid': 'editor' },
      el(
        'header',
        { class: 'editor-head' },
        el('h2', {}, 'Shared text'),
        status,
        el('label', { class: 'editor-offline' }, offline, ' go offline'),
      ),
      host,
      el('h3', {}, 'Here now'),
      people,
    );
    this.#root.append(panel);

    this.#view = new EditorView({
      parent: host,
      doc: doc.getText('body').toString(),
      extensions: [
        basicSetup,
        EditorView.lineWrapping,
        yCollab(doc.getText('body'), provider.awareness),
      ],
    });

    const renderPeople = () => {
      people.replaceChildren(
        ...[...provider.awareness.getStates().entries()].map(([client, s]) => {
          const user = (s as { user?: { name?: string; color?: string } }).user;
          const li = el(
            'li',
            {},
            `${user?.name ?? 'someone'}${client === doc.clientID ? ' (you)' : ''}`,
          );
          li.style.borderLeft = `4px solid ${user?.color ?? '#999'}`;
          return li;
        }),
      );
    };
    provider.awareness.on('change', renderPeople);
    renderPeople();
    const renderStatus = () => {
      status.textContent =
        provider.status === 'connected'
          ? `live, ${provider.peers.length} other participant(s)`
          : provider.status;
      status.dataset.state = provider.status;
    };
    provider.events.on('status', renderStatus);
    provider.events.on('peers', renderStatus);
    renderStatus();
  }
}
