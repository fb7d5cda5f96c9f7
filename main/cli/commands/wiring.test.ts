import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TEMPLATES } from '../../../common/spec/index';
import type { CliIo } from '../command';
import { UsageError } from '../command';
import { wiringCommand } from './wiring';

function io(cwd: string): CliIo & { outText: string[]; errText: string[] } {
  const outText: string[] = [];
  const errText: string[] = [];
  return { out: (t) => outText.push(t), err: (t) => errText.push(t), cwd, env: {}, signal: new AbortController().signal, isTty: false, outText, errText };
}

describe('kubedos wiring', () => {
  it('rejects bad usage', async () => {
    await expect(wiringCommand.run([], io('/'))).rejects.toBeInstanceOf(UsageError);
    await expect(wiringCommand.run(['verify', 'x.yaml'], io('/'))).rejects.toBeInstanceOf(UsageError);
    await expect(wiringCommand.run(['check', 'x.yaml', '--deny-pairs', 'some'], io('/'))).rejects.toBeInstanceOf(UsageError);
  });

  it('says plainly that a deployed cluster cannot be checked yet, and reports invalid specs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kd-wiring-'));
    writeFileSync(join(dir, 'lab-3.yaml'), TEMPLATES['lab-3'].text);
    const a = io(dir);
    expect(await wiringCommand.run(['check', 'lab-3.yaml'], a)).toBe(1);
    expect(a.errText.join('\n')).toMatch(/not implemented yet.*--lab/);
    writeFileSync(join(dir, 'bad.yaml'), 'apiVersion: nope\n');
    const b = io(dir);
    expect(await wiringCommand.run(['check', 'bad.yaml', '--lab'], b)).toBe(1);
    expect(b.errText.join('\n')).toMatch(/not valid; nothing checked/);
  });
});
