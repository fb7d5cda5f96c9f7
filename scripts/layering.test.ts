// The layering rule of ARCHITECTURE.md is enforced by eslint; this proves the rule bites.
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint({ cwd: process.cwd() });
async function errors(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('layering lint rule', () => {
  it('rejects Node built-ins in common/', async () => {
    expect(await errors('common/spec/bad.ts', "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n")).toHaveLength(1);
    expect(await errors('common/plan/bad.ts', "import path from 'path';\nexport const x = path;\n")).toHaveLength(1);
  });
  it('rejects electron in the engine, allows it in main/index.ts and main/ipc/', async () => {
    const code = "import { app } from 'electron';\nexport const x = app;\n";
    expect(await errors('main/pipeline/bad.ts', code)).toHaveLength(1);
    expect(await errors('main/index.ts', code)).toHaveLength(0);
    expect(await errors('main/ipc/ok.ts', code)).toHaveLength(0);
  });
  it('rejects Node built-ins in the renderer', async () => {
    expect(await errors('renderer/bad.tsx', "import { spawn } from 'node:child_process';\nexport const x = spawn;\n")).toHaveLength(1);
  });
  it('allows Node in the engine', async () => {
    expect(await errors('main/exec/ok.ts', "import { spawn } from 'node:child_process';\nexport const x = spawn;\n")).toHaveLength(0);
  });
});
