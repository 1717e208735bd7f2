#!/usr/bin/env node
// The `troupe` command run from the TypeScript sources (server/cli.ts) through tsx, for this
// repository's tests and development. The npm package's bin is the compiled dist/server/cli.js.
import { register } from 'tsx/esm/api';

register();
await import('../server/cli.ts');
