// The layer rules of docs/architecture.md are enforced by eslint (scripts/lint/layers.js, wired in
// eslint.config.js). These plant violating files — by every spelling an import can take — and
// check that each is reported, and that the imports the layers allow stay quiet.
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint({ cwd: process.cwd() });
async function layerErrors(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  const fatal = (result?.messages ?? []).filter((m) => m.fatal);
  if (fatal.length) throw new Error(`planted ${filePath} did not parse: ${fatal[0]?.message}`);
  return (result?.messages ?? []).filter((m) => m.ruleId === 'kubedos/layers' || m.ruleId === 'no-restricted-globals').map((m) => m.message);
}

describe('layer rules, by resolved path', () => {
  it('reports an import of e2e/ from main/, however the path is spelled', async () => {
    for (const spec of ['../../e2e/lab/harness', './../../e2e/lab/harness', '../stages/../../e2e/lab/harness', '../../e2e']) {
      const errs = await layerErrors('main/wiring/planted.ts', `import { Lab } from '${spec}';\nexport const x = Lab;\n`);
      expect(errs, spec).toHaveLength(1);
      expect(errs[0]).toContain("resolves to 'e2e");
    }
  });
  it('reports a dynamic import() of e2e/ test code from shipped code, literal or computed', async () => {
    expect(await layerErrors('main/cli/commands/planted.ts', "export async function f() { return import('../../../e2e/lab/harness'); }\n")).toHaveLength(1);
    expect(await layerErrors('main/cli/commands/planted.ts', "export async function f(n: string) { return import(`../../../e2e/lab/${n}`); }\n")).toHaveLength(1);
    expect(await layerErrors('main/cli/commands/planted.ts', "export async function f(n: string) { return import('../../../e2e/lab/' + n); }\n")).toHaveLength(1);
  });
  it('reports the CLI or ipc/ imported from an engine folder, values and types alike', async () => {
    expect(await layerErrors('main/build/planted.ts', "import { renderTable } from '../cli/table';\nexport const x = renderTable;\n")).toHaveLength(1);
    expect(await layerErrors('main/build/planted.ts', "import type { CliCommand } from '../cli/command';\nexport type X = CliCommand;\n")).toHaveLength(1);
    expect(await layerErrors('main/build/planted.ts', "export type X = import('../cli/command').CliCommand;\n")).toHaveLength(1);
    expect(await layerErrors('main/pipeline/planted.ts', "export * from '../ipc/dispatch';\n")).toHaveLength(1);
    expect(await layerErrors('main/ipc/planted.ts', "import { findOnPath } from '../cli/commands/doctor';\nexport const x = findOnPath;\n")).toHaveLength(1);
  });
  it('reports Node built-ins, main/ and globals of one runtime in common/', async () => {
    expect(await layerErrors('common/spec/planted.ts', "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n")).toHaveLength(1);
    expect(await layerErrors('common/plan/planted.ts', "import path from 'path';\nexport const x = path;\n")).toHaveLength(1);
    expect(await layerErrors('common/plan/planted.ts', "import { run } from '../../main/exec/runner';\nexport const x = run;\n")).toHaveLength(1);
    expect(await layerErrors('common/plan/planted.ts', 'export const x = process.env.HOME;\n')).toHaveLength(1);
    expect(await layerErrors('common/plan/planted.ts', 'export const x = () => document.title;\n')).toHaveLength(1);
  });
  it('reports electron in the engine and allows it in main/index.ts and main/ipc/', async () => {
    const code = "import { app } from 'electron';\nexport const x = app;\n";
    expect(await layerErrors('main/pipeline/planted.ts', code)).toHaveLength(1);
    expect(await layerErrors('main/cli/planted.ts', code)).toHaveLength(1);
    expect(await layerErrors('main/index.ts', code)).toHaveLength(0);
    expect(await layerErrors('main/ipc/planted.ts', code)).toHaveLength(0);
  });
  it('reports test helpers imported from shipped code, allows them in tests', async () => {
    expect(await layerErrors('main/stages/planted.ts', "import { specText } from '../../common/testing/specs';\nexport const x = specText;\n")).toHaveLength(1);
    expect(await layerErrors('main/stages/planted.ts', "import { x } from './converge.test';\nexport const y = x;\n")).toHaveLength(1);
    expect(await layerErrors('main/stages/planted.ts', "import { bundleFixture } from '../bundle/testing';\nexport const y = bundleFixture;\n")).toHaveLength(1);
    expect(await layerErrors('renderer/planted.tsx', "import { it } from 'vitest';\nexport const x = it;\n")).toHaveLength(1);
    expect(await layerErrors('main/stages/planted.test.ts', "import { Lab } from '../../e2e/lab/harness';\nimport { specText } from '../../common/testing/specs';\nexport const x = [Lab, specText];\n")).toHaveLength(0);
  });
  it('reports Node built-ins and the engine in the renderer', async () => {
    expect(await layerErrors('renderer/planted.tsx', "import { spawn } from 'node:child_process';\nexport const x = spawn;\n")).toHaveLength(1);
    expect(await layerErrors('renderer/features/planted.ts', "import { plan } from '../../main/stages/index';\nexport const x = plan;\n")).toHaveLength(1);
  });
  it('allows what the layers are for', async () => {
    expect(await layerErrors('main/exec/planted.ts', "import { spawn } from 'node:child_process';\nimport { plan } from '../../common/plan/index';\nexport const x = [spawn, plan];\n")).toHaveLength(0);
    expect(await layerErrors('main/cli/commands/planted.ts', "import { startBridge } from '../../ipc/ws-bridge';\nimport { parseCommandArgs } from '../command';\nexport const x = [startBridge, parseCommandArgs];\n")).toHaveLength(0);
    expect(await layerErrors('main/ipc/planted.ts', "import { run } from '../exec/runner';\nexport const x = run;\n")).toHaveLength(0);
  });
});
