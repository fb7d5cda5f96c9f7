// `kubedos lock update --source NAME`: usage and the refusal without a lock (the move itself:
// e2e/sources/upstream-move.lab.test.ts, against a loopback repository).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TEMPLATES } from '../../../common/spec/index';
import type { CliIo } from '../command';
import { UsageError } from '../command';
import { lockCommand } from './lock';

const root = mkdtempSync(join(tmpdir(), 'kd-lock-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const spec = join(root, 'lab-3.yaml');
writeFileSync(spec, TEMPLATES['lab-3'].text);

function io(): CliIo & { outText: string[]; errText: string[] } {
  const outText: string[] = [];
  const errText: string[] = [];
  return { out: (t) => outText.push(t), err: (t) => errText.push(t), cwd: root, env: { KUBEDOS_WORKSPACE: join(root, 'ws'), KUBEDOS_CACHE: join(root, 'cache') }, signal: new AbortController().signal, isTty: false, outText, errText };
}

describe('kubedos lock --source', () => {
  it('goes with update only, and the help says what it moves', async () => {
    await expect(lockCommand.run(['show', '--spec', spec, '--source', 'vendor'], io())).rejects.toThrow(UsageError);
    expect(lockCommand.usage).toContain('--source NAME');
    expect(lockCommand.help).toMatch(/update --source NAME .*resolve only that declared apt source/s);
  });

  it('without a lock yet: refused naming the command that resolves one; nothing is written or asked', async () => {
    const o = io();
    expect(await lockCommand.run(['update', '--spec', spec, '--source', 'vendor'], o)).toBe(1);
    expect(o.errText.join('\n')).toContain(`lock update --source vendor refused: lab-3 has no lock yet (${join(root, 'ws/clusters/lab-3/darksite.lock.json')}); --source moves a locked source. Resolve one first: kubedos lock update --spec ${spec} (or build once)`);
  });
});
