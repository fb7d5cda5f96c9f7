#!/usr/bin/env node
// `npm run build:cli`: the kubedos CLI as one ES module, out/cli/kubedos.mjs, so a start does not
// transpile TypeScript (tsx) every time. Dependencies (zod, yaml, ssh2, ws, …) stay in
// node_modules; only this repository's TypeScript is bundled. Beside the bundle,
// kubedos.inputs.json lists the source files it was built from: bin/kubedos.mjs runs the bundle
// only while none of them is newer than it, and falls back to the sources through tsx otherwise.
import { build } from 'esbuild';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Dependencies loaded from node_modules at run time: native or optional-native parts. */
const EXTERNAL = ['ssh2', 'cpu-features', 'bufferutil', 'utf-8-validate', 'ws'];

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'out', 'cli');
mkdirSync(outDir, { recursive: true });
const t0 = performance.now();
// Sources changed after this instant may not be in the bundle: bin/kubedos.mjs compares with it.
const startedMs = Date.now();
// Built in a fresh directory beside the target and moved into place, so a half-written bundle is never run.
const tmpDir = mkdtempSync(join(outDir, '.build-'));
const tmp = join(tmpDir, 'kubedos.mjs');
const result = await build({
  absWorkingDir: root,
  entryPoints: ['main/cli/main.ts'],
  outfile: tmp,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // The pure-JS dependencies are bundled too: Node loads one file instead of hundreds (zod alone
  // is ~150 modules). Those with native or optional native parts stay in node_modules.
  external: EXTERNAL,
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
  legalComments: 'none',
  minify: true,
  keepNames: true,
  banner: {
    js: [
      '// Built by scripts/build-cli.mjs from main/cli/main.ts; do not edit. bin/kubedos.mjs runs it.',
      // Bundled CommonJS dependencies call require() for Node built-ins.
      "import { createRequire as __kubedosCreateRequire } from 'node:module';",
      'const require = __kubedosCreateRequire(import.meta.url);',
    ].join('\n'),
  },
});
// The help texts and the version, so `kubedos --help` and `kubedos CMD --help` answer without
// loading the engine (bin/kubedos.mjs; the same freshness rule as the bundle).
const { helpIndex } = await import(pathToFileURL(tmp).href);
writeFileSync(join(tmpDir, 'help.json'), `${JSON.stringify(helpIndex(), null, 1)}\n`);
const inputs = Object.keys(result.metafile.inputs).filter((f) => !f.includes('node_modules/')).sort();
// The bundle last, so a crash in between leaves no bundle newer than an input list that does not match it.
writeFileSync(join(outDir, 'kubedos.inputs.json'), `${JSON.stringify({ entry: 'main/cli/main.ts', startedMs, inputs }, null, 1)}\n`);
renameSync(join(tmpDir, 'help.json'), join(outDir, 'help.json'));
renameSync(`${tmp}.map`, join(outDir, 'kubedos.mjs.map'));
renameSync(tmp, join(outDir, 'kubedos.mjs'));
rmSync(tmpDir, { recursive: true, force: true });
console.log(`out/cli/kubedos.mjs: ${inputs.length} source files bundled in ${Math.round(performance.now() - t0)} ms`);
