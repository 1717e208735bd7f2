#!/usr/bin/env node
// The `troupe` command. The package ships TypeScript sources; tsx loads them.
import { register } from 'tsx/esm/api';

register();
await import('../demo-node/cli.ts');
