#!/usr/bin/env node
// The `kubedos` CLI. Runs the prebuilt bundle, out/cli/kubedos.mjs (`npm run build:cli`), when it
// is current (no source file it was built from changed since: ./cli-bundle.mjs); otherwise the
// TypeScript engine directly through tsx, so `npx kubedos` works right after `npm install` with
// no build step and no Electron binary, and an edited source is never shadowed by an old bundle.
// With a current bundle, help and --version are answered from the texts the build stored
// (out/cli/help.json, made by main/cli/main.ts helpIndex()) without loading the engine.
// KUBEDOS_DEBUG=1 says which way ran.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cliBundle, helpRequest } from './cli-bundle.mjs';

const argv = process.argv.slice(2);
const { bundle, why } = cliBundle();
const debug = (text) => process.env.KUBEDOS_DEBUG && process.stderr.write(`kubedos: ${text}\n`);
const asked = bundle ? helpRequest(argv) : undefined;
let answered = false;
if (asked) {
  try {
    const index = JSON.parse(readFileSync(join(bundle, '..', 'help.json'), 'utf8'));
    const text = asked.kind === 'top' ? index.top : asked.kind === 'version' ? index.version : index.commands[asked.command];
    if (typeof text === 'string') {
      debug('answered from the prebuilt help');
      process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
      process.exitCode = asked.exitCode;
      answered = true;
    }
  } catch {
    // No index: main() answers below.
  }
}
if (!answered) {
  let main;
  if (bundle) {
    ({ main } = await import(pathToFileURL(bundle).href));
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    ({ main } = await import('../main/cli/main.ts'));
  }
  debug(`running ${bundle ? 'the prebuilt bundle' : `from source (bundle ${why})`}`);
  process.exitCode = await main(argv);
}
