#!/usr/bin/env node
// The `kubedos` CLI. Runs the prebuilt bundle, out/cli/kubedos.mjs (`npm run build:cli`), when it
// is current (no source file it was built from changed since: ./cli-bundle.mjs); otherwise the
// TypeScript engine directly through tsx, so `npx kubedos` works right after `npm install` with
// no build step and no Electron binary, and an edited source is never shadowed by an old bundle.
// KUBEDOS_DEBUG=1 says which one ran.
import { pathToFileURL } from 'node:url';
import { cliBundle } from './cli-bundle.mjs';

const { bundle, why } = cliBundle();
let main;
if (bundle) {
  ({ main } = await import(pathToFileURL(bundle).href));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../main/cli/main.ts'));
}
if (process.env.KUBEDOS_DEBUG) process.stderr.write(`kubedos: running ${bundle ? 'the prebuilt bundle' : `from source (bundle ${why})`}\n`);
process.exitCode = await main(process.argv.slice(2));
