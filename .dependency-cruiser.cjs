/**
 * Dependency rules (`npm run lint` runs them through scripts/check-deps.mjs). Type-only imports
 * count (tsPreCompilationDeps), so a cycle through `import type` is a cycle.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'core-host-neutral',
      comment:
        'core/ imports only core/ and the packages zod, superjson and @noble/hashes: no adapter, no host API, no other package.',
      severity: 'error',
      from: { path: '^core/' },
      to: {
        pathNot: ['^core/', '^node_modules/(zod|superjson|@noble/hashes)/'],
      },
    },
    {
      name: 'core-no-builtins',
      comment: 'core/ is host-neutral: no Node builtin (node:*), even as a type.',
      severity: 'error',
      from: { path: '^core/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'core-no-cycles',
      comment:
        'No import cycle in core/ (type imports count), but for the knot of the types an actor is written against, which name each other: its context (actor-context), behaviour, and the public Node it runs on (node-api).',
      severity: 'error',
      from: { path: '^core/' },
      to: {
        circular: true,
        via: { pathNot: ['^core/(actor-context|behaviour|node-api)[.]ts$'] },
      },
    },
    {
      name: 'core-node-only-from-entry',
      comment:
        'node.ts is the public facade: only the entry point (core/index.ts) imports it inside core/.',
      severity: 'error',
      from: { path: '^core/', pathNot: '^core/(index|node)[.]ts$' },
      to: { path: '^core/node[.]ts$' },
    },
    {
      name: 'no-unresolvable',
      comment: 'Every import resolves.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.d.ts'],
    },
    exclude: { path: '(^|/)(node_modules|dist|test-results)/' },
  },
};
