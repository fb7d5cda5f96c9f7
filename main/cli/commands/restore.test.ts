import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BundleFixture } from '../../bundle/testing';
import { bundleFixture, recoveryFixture, recoveryInputOf, writeFakeBuild } from '../../bundle/testing';
import { writeBundle } from '../../bundle/write';
import { createRecoveryKey, recoveryIdentityFileText } from '../../trust/recovery';
import type { CliIo } from '../command';
import { UsageError } from '../command';
import { restoreCommand } from './restore';

let a: string;
let b: string;
let fx: BundleFixture;
let idFile: string;
let bundle: string;

function io(env: NodeJS.ProcessEnv): CliIo & { outText: string[]; errText: string[] } {
  const outText: string[] = [];
  const errText: string[] = [];
  return { out: (t) => outText.push(t), err: (t) => errText.push(t), cwd: b, env, signal: new AbortController().signal, isTty: false, outText, errText };
}

beforeEach(async () => {
  a = mkdtempSync(join(tmpdir(), 'kd-h15-restore-cli-a-'));
  b = mkdtempSync(join(tmpdir(), 'kd-h15-restore-cli-b-'));
  fx = await bundleFixture(a);
  writeFakeBuild(fx.buildDir, fx.plan, fx.specText, fx.signingKey, true);
  idFile = join(b, 'recovery.txt');
  await recoveryFixture(fx, idFile);
  bundle = join(b, 'bundle');
  cpSync(writeBundle({ ...fx, recovery: await recoveryInputOf(fx) }).dir, bundle, { recursive: true });
});
afterEach(() => {
  rmSync(a, { recursive: true, force: true });
  rmSync(b, { recursive: true, force: true });
});

describe('kubedos restore', () => {
  it('needs a bundle, --artifact and a recovery key', async () => {
    await expect(restoreCommand.run([], io({}))).rejects.toBeInstanceOf(UsageError);
    await expect(restoreCommand.run([bundle], io({}))).rejects.toBeInstanceOf(UsageError);
    await expect(restoreCommand.run([bundle, '--artifact', fx.buildDir], io({}))).rejects.toBeInstanceOf(UsageError);
  });

  it('restores the workspace without --target and records its timeline', async () => {
    const env = { KUBEDOS_WORKSPACE: join(b, 'ws') };
    const x = io(env);
    expect(await restoreCommand.run([bundle, '--artifact', fx.buildDir, '--recovery-key', idFile], x)).toBe(0);
    const out = x.outText.join('\n');
    expect(out).toMatch(/^verify: bundle, recovery key and artifact of lab-3 check out offline/m);
    expect(out).toMatch(/^workspace: .*same root CA/m);
    expect(out).toMatch(/deploy it with: kubedos deploy .*spec\.yaml --target TARGET/);
    const timeline = JSON.parse(readFileSync(join(b, 'ws/clusters/lab-3/restore-timeline.json'), 'utf8')) as { phases: { name: string }[]; totalMs: number };
    expect(timeline.phases.map((p) => p.name)).toEqual(['verify', 'workspace']);
  });

  it('a second run of the same restore resumes its workspace (a rerun finishes); --expect-key needs --target', async () => {
    const env = { KUBEDOS_WORKSPACE: join(b, 'ws') };
    expect(await restoreCommand.run([bundle, '--artifact', fx.buildDir, '--recovery-key', idFile], io(env))).toBe(0);
    const x = io(env);
    expect(await restoreCommand.run([bundle, '--artifact', fx.buildDir, '--recovery-key', idFile], x)).toBe(0);
    const out = x.outText.join('\n');
    expect(out).toMatch(/was restored from this bundle before: resuming it/);
    expect(out).toMatch(/^workspace: .*resumed \(an earlier run of this restore made it\)/m);
    expect(out).not.toMatch(/etcd is not put back/); // this bundle holds no etcd snapshot: nothing to say
    // Another bundle (another identity) into the same workspace is still refused.
    const other = await bundleFixture(join(a, 'other'));
    writeFakeBuild(other.buildDir, other.plan, other.specText, other.signingKey, true);
    const otherId = join(b, 'other-recovery.txt');
    await recoveryFixture(other, otherId);
    const otherBundle = join(b, 'other-bundle');
    cpSync(writeBundle({ ...other, recovery: await recoveryInputOf(other) }).dir, otherBundle, { recursive: true });
    const y = io(env);
    expect(await restoreCommand.run([otherBundle, '--artifact', other.buildDir, '--recovery-key', otherId], y)).toBe(1);
    expect(y.errText.join('\n')).toMatch(/restore refused \(cluster\): .*another cluster of that name/);
    await expect(restoreCommand.run([bundle, '--artifact', fx.buildDir, '--recovery-key', idFile, '--expect-key', 'k'], io(env))).rejects.toBeInstanceOf(UsageError);
  });

  it('refuses the wrong recovery key with one message and writes nothing', async () => {
    const wrong = await createRecoveryKey();
    const wrongFile = join(b, 'wrong.txt');
    writeFileSync(wrongFile, recoveryIdentityFileText('lab-3', wrong.identity, wrong.recipient), { mode: 0o600 });
    const env = { KUBEDOS_WORKSPACE: join(b, 'ws') };
    const x = io(env);
    expect(await restoreCommand.run([bundle, '--artifact', fx.buildDir, '--recovery-key', wrongFile], x)).toBe(1);
    expect(x.errText).toHaveLength(1);
    expect(x.errText[0]).toMatch(/^restore refused \(recovery-key\): the recovery key does not open this bundle .*nothing was written\nhint: /);
    expect(existsSync(join(b, 'ws'))).toBe(false);
  });
});
