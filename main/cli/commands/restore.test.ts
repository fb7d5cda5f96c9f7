import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { BundleFixture, RestoreRunFixture } from '../../bundle/testing';
import { bundleFixture, recoveryFixture, recoveryInputOf, restoreRunFixture, writeFakeBuild } from '../../bundle/testing';
import { writeBundle } from '../../bundle/write';
import { createRecoveryKey, recoveryIdentityFileText } from '../../trust/recovery';
import type { CliIo } from '../command';
import { UsageError } from '../command';
import type * as RestoreRunModule from '../../restore/run';
import { restoreCommand } from './restore';
import { certFingerprint } from '../../trust/ca';

// With --target, the restore run's deploy DAG and etcd restore are the fixture's fakes (no VMs).
const fakes: { run?: RestoreRunFixture } = {};
vi.mock('../../restore/run', async (importOriginal) => {
  const real = await importOriginal<typeof RestoreRunModule>();
  return {
    ...real,
    restoreRunStages: (req: Parameters<typeof real.restoreRunStages>[0], out?: Parameters<typeof real.restoreRunStages>[1]) =>
      real.restoreRunStages(fakes.run ? { ...req, deployStart: { pipelineFor: fakes.run.pipelineFor }, etcd: fakes.run.etcd } : req, out),
  };
});

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

  it('refuses a recovery key file open to others with the same line as the workbench, before reading the bundle', async () => {
    const loose = join(b, 'loose.txt');
    writeFileSync(loose, readFileSync(idFile, 'utf8'), { mode: 0o644 });
    chmodSync(loose, 0o644);
    const env = { KUBEDOS_WORKSPACE: join(b, 'ws-loose') };
    const x = io(env);
    expect(await restoreCommand.run([join(b, 'no-such-bundle'), '--artifact', fx.buildDir, '--recovery-key', loose], x)).toBe(1);
    expect(x.errText).toEqual([`restore refused (recovery-key): recovery identity ${loose} has mode 644; chmod 600 it (and consider who may have copied it); nothing was written\nhint: give the file holding the recovery identity (AGE-SECRET-KEY-1…), e.g. the one kubedos recovery-key --out wrote`]);
    expect(existsSync(join(b, 'ws-loose'))).toBe(false);
  });

  describe('with --target (the fixture\'s fake deploy and etcd)', () => {
    let f: RestoreRunFixture;
    beforeEach(async () => {
      f = await restoreRunFixture(join(a, 'target'), b);
      fakes.run = f;
    });
    afterEach(() => {
      fakes.run = undefined;
    });
    const args = () => [f.bundleDir, '--artifact', f.artifactDir, '--recovery-key', f.identityFile, '--cluster', 'lab-3', '--target', 'qemu-local', '--expect-key', 'restore-proof'];

    it('prints every phase, the deploy as a deploy prints, the identity, the re-seal and the timeline', async () => {
      const env = { KUBEDOS_WORKSPACE: join(b, 'ws-target') };
      const x = io(env);
      expect(await restoreCommand.run(args(), x)).toBe(0);
      expect(x.errText).toEqual([]);
      const out = x.outText.join('\n');
      for (const re of [
        /^verify: bundle, recovery key and artifact of lab-3 check out offline .*\(\d+\.\d s\)$/m,
        /^workspace: .*same root CA/m,
        /^run [0-9a-f]{8} \(deploy\): provision → seal$/m, // the deploy's own display
        /^✓ seal success/m,
        /^deploy: deploy converged/m,
        /^etcd: restored from the bundle's snapshot: 1 member, revision 43/m,
        /^identity: etcd on cp-1 at revision 43 \(snapshot 42\), key restore-proof readable/m,
        /^seal: sealed again after etcd was put back: .*etcd snapshot of \d+ bytes from cp-1/m,
        /^timeline: .*restore-timeline\.json \(\d+\.\d s in all\)$/m,
      ])
        expect(out).toMatch(re);
      expect(out).toContain(`identity: root CA ${certFingerprint(f.fx.trust.rootCaPem)} (the bundle's)`);
      expect(out).not.toMatch(/move .* away and run kubedos deploy/); // the old note: sealing again is done now
      expect(out.match(/^run [0-9a-f]{8} \(deploy\): provision → seal$/gm)).toHaveLength(2); // the restore's deploy, then the one that seals again
      const timeline = JSON.parse(readFileSync(join(b, 'ws-target/clusters/lab-3/restore-timeline.json'), 'utf8')) as { phases: { name: string }[]; proof?: { etcd: { expectKey?: { key: string } } } };
      expect(timeline.phases.map((p) => p.name)).toEqual(['verify', 'workspace', 'deploy', 'etcd', 'seal']);
      expect(timeline.proof?.etcd.expectKey?.key).toBe('restore-proof');
    });

    it('a failed etcd restore: exit 1, one message with the command, its stderr and what to do next', async () => {
      f.failEtcd = true;
      const x = io({ KUBEDOS_WORKSPACE: join(b, 'ws-etcd') });
      expect(await restoreCommand.run(args(), x)).toBe(1);
      expect(x.errText).toEqual(['etcd restore failed (health on cp-1): fake etcd on cp-1 did not come up\ncommand: etcdctl endpoint health\nstderr: context deadline exceeded\nhint: see journalctl -u etcd on cp-1']);
      await expect(restoreCommand.run([f.bundleDir, '--artifact', f.artifactDir, '--recovery-key', f.identityFile, '--target', 'vmware://x'], io({}))).rejects.toBeInstanceOf(UsageError);
    });
  });
});
