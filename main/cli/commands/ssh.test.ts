// `kubedos ssh`: usage mistakes exit 2 with one line; a cluster with no first-boot record is
// refused before any connection (exit 255, saying to deploy first). The SSH path itself is the
// lab test e2e/terminal/terminal.lab.test.ts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TEMPLATES } from '../../../common/spec/index';
import type { CliIo } from '../command';
import { UsageError } from '../command';
import { sshCommand } from './ssh';

const ws = mkdtempSync(join(tmpdir(), 'h17-ssh-cli-'));
writeFileSync(join(ws, 'lab-3.yaml'), TEMPLATES['lab-3'].text);
afterAll(() => rmSync(ws, { recursive: true, force: true }));

function io(err: string[]): CliIo {
  return { out: () => {}, err: (t) => err.push(t), cwd: ws, env: { KUBEDOS_WORKSPACE: join(ws, 'engine') }, signal: new AbortController().signal, isTty: false };
}

describe('kubedos ssh', () => {
  it.each([
    [[], /missing the SPEC/],
    [['lab-3.yaml'], /missing the NODE/],
    [['lab-3.yaml', 'w-1', 'uptime'], /put the remote command after --/],
    [['lab-3.yaml', 'w-1', '--'], /nothing after --/],
    [['lab-3.yaml', 'w-1', '--port', '99999'], /--port 99999: give a TCP port/],
  ])('usage %j', async (argv, message) => {
    await expect(sshCommand.run(argv as string[], io([]))).rejects.toThrow(UsageError);
    await expect(sshCommand.run(argv as string[], io([]))).rejects.toThrow(message);
  });

  it('refuses a cluster with no recorded first boot, before connecting, with what to do', async () => {
    const err: string[] = [];
    expect(await sshCommand.run(['lab-3.yaml', 'w-1', '--', 'uptime'], io(err))).toBe(255);
    expect(err.join('\n')).toMatch(/^kubedos ssh w-1: no first-boot record in .*journal\.jsonl: .*deploy the cluster first \(kubedos deploy SPEC\)$/);
  });

  it('names the closest node for a typo', async () => {
    const err: string[] = [];
    expect(await sshCommand.run(['lab-3.yaml', 'w1', '--', 'uptime'], io(err))).toBe(255);
    expect(err.join('\n')).toContain('no node "w1" in cluster lab-3; did you mean w-1?');
  });
});
