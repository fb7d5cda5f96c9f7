#!/usr/bin/env node
// The `kubedos` CLI. Runs the TypeScript engine directly through tsx, so `npx kubedos`
// works right after `npm install` with no build step and no Electron binary.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../main/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
