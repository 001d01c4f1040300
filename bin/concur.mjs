#!/usr/bin/env node
// The package's bin: loads tsx so the TypeScript sources run as they are, then the CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../apps/cli/main.ts');
await main(process.argv);
