import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../../testing/temp-dir';
import { TEMPLATES } from '../../../common/spec/index';
import type { CliIo } from '../command';
import { UsageError } from '../command';
import { writeDeployJournal } from '../../upgrade/testing';
import { renderHandshakes, wiringCommand } from './wiring';

afterAll(removeTempDirs);

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

  it('refuses a cluster that was never deployed or is stopped, with the journal\'s words, and reports invalid specs', async () => {
    const dir = tempDir('kd-wiring-');
    writeFileSync(join(dir, 'lab-3.yaml'), TEMPLATES['lab-3'].text);
    const env = { KUBEDOS_WORKSPACE: join(dir, 'ws') };
    const a = { ...io(dir), env };
    expect(await wiringCommand.run(['check', 'lab-3.yaml'], a)).toBe(1);
    expect(a.errText.at(-1)).toMatch(/^kubedos wiring check: refused: lab-3 has no deploy in its journal \(.*\): deploy it first \(kubedos deploy lab-3\.yaml\), then run the wiring check; nothing was probed$/);
    writeDeployJournal('lab-3', env, { after: [{ pipeline: 'stop', ok: true }] });
    const s = { ...io(dir), env };
    expect(await wiringCommand.run(['check', 'lab-3.yaml', '--json'], s)).toBe(1);
    expect(s.errText.at(-1)).toMatch(/^kubedos wiring check: refused: lab-3 is not running: stopped at .*Start it first \(kubedos start lab-3\.yaml\), then run the wiring check; nothing was probed$/);
    expect([...a.outText, ...s.outText]).toEqual([]);
    expect(existsSync(join(env.KUBEDOS_WORKSPACE, 'clusters/lab-3/wiring'))).toBe(false);
    await expect(wiringCommand.run(['check', 'lab-3.yaml', '--lab', '--target', 'qemu-local'], io(dir))).rejects.toThrow(/--lab builds its own namespace cluster/);
    writeFileSync(join(dir, 'bad.yaml'), 'apiVersion: nope\n');
    const b = io(dir);
    expect(await wiringCommand.run(['check', 'bad.yaml', '--lab'], b)).toBe(1);
    expect(b.errText.join('\n')).toMatch(/not valid; nothing checked/);
  });

  it('prints handshake ages per node and plane, "never" when there was none', () => {
    const text = renderHandshakes('master', [
      { node: 'cp-1', plane: 'wg1', ageSeconds: 4 },
      { node: 'cp-1', plane: 'wg2', ageSeconds: 17 },
      { node: 'cp-1', plane: 'wg3', ageSeconds: null },
    ]);
    expect(text.split('\n')[0]).toBe('last handshake with master:');
    expect(text).toMatch(/cp-1\s+4 s ago\s+17 s ago\s+never/);
    expect(renderHandshakes('master', [])).toBe('handshakes with master: none read');
  });
});
