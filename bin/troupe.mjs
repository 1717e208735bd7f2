#!/usr/bin/env node
// The `troupe` command. The package ships TypeScript sources; tsx loads them (server/cli.ts).
import { register } from 'tsx/esm/api';

register();
await import('../server/cli.ts');
