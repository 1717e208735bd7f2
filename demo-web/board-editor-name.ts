/** The demo's shared text document (the pages' editor and the Node bot join it). */
export const EDITOR_DOC = 'demo-text';
