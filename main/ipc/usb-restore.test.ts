// usb.* and restore.run over the contract, without root: every USB refusal that comes before the
// device is opened (nothing to write, a mounted disk, a loop device the rule does not list, the
// cancel of nothing), and a restore run followed through pipeline.events to the same identity, or
// refused with the wrong recovery key before anything is written. Writing real devices is
// e2e/ui/usb-write.slow.test.ts's job (root, loop devices).
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventChannel, EventOf } from '../../common/contract/index';
import { decodeEnvelope } from '../../common/contract/index';
import { EMPTY_RUN, foldEvent } from '../../common/pipeline/fold';
import type { PipelineEvent } from '../../common/pipeline/events';
import { bundleFixture, recoveryFixture, recoveryInputOf, restoreRunFixture, writeFakeBuild } from '../bundle/testing';
import { writeBundle } from '../bundle/write';
import { certFingerprint } from '../trust/ca';
import type { LsblkDevice } from '../usb/devices';
import { dispatch } from './dispatch';
import { createWorkbench } from './workbench';

const root = mkdtempSync(join(tmpdir(), 'kd-h15-ipc-usb-'));
const ws = join(root, 'ws');
const events: PipelineEvent[] = [];
const disk = (o: Partial<LsblkDevice>): LsblkDevice => ({ name: 'sdz', path: '/dev/sdz', type: 'disk', size: 8e9, rm: true, ro: false, tran: 'usb', model: 'Stick', ...o });
const wb = () =>
  createWorkbench({
    transport: 'websocket',
    workspace: join(root, 'specs'),
    env: { ...process.env, KUBEDOS_WORKSPACE: ws },
    emit: <C extends EventChannel>(channel: C, payload: EventOf<C>) => {
      if (channel === 'pipeline.events') events.push(...(payload as PipelineEvent[]));
    },
    usbSource: async () => [disk({ mountpoints: ['/media/stick'] }), disk({ name: 'loop7', path: '/dev/loop7', type: 'loop', rm: false, tran: undefined, model: undefined }), disk({ name: 'sdy', path: '/dev/sdy', rm: false, tran: 'sata', model: 'Spare' })],
  });
let idFile: string;
let rootFingerprint: string;

beforeAll(async () => {
  const fx = await bundleFixture(ws);
  writeFakeBuild(fx.buildDir, fx.plan, fx.specText, fx.signingKey, true);
  idFile = join(root, 'offline-recovery.txt');
  await recoveryFixture(fx, idFile);
  rootFingerprint = certFingerprint(fx.trust.rootCaPem);
  writeBundle({ ...fx, recovery: await recoveryInputOf(fx) });
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const call = async (w: ReturnType<typeof wb>, channel: Parameters<typeof dispatch>[1], payload: unknown) => decodeEnvelope(await dispatch(w.handlers, channel, payload));

describe('usb over the contract', () => {
  it('refuses before touching a device: nothing to write, a mounted stick (even forced), a loop device; cancel of nothing', async () => {
    const w = wb();
    await expect(call(w, 'usb.write', { cluster: 'other', device: '/dev/sdz' })).rejects.toThrow(/other has neither a build .* nor a recovery bundle .*nothing was written/);
    for (const force of [false, true]) await expect(call(w, 'usb.write', { cluster: 'lab-3', device: '/dev/sdz', force })).rejects.toThrow(/refusing to write \/dev\/sdz \(Stick, 8\.0 GB\): it is mounted \(\/media\/stick\): unmount it first/);
    await expect(call(w, 'usb.write', { cluster: 'lab-3', device: '/dev/loop7', force: true })).rejects.toThrow(/it is a loop, not a whole disk/);
    await expect(call(w, 'usb.write', { cluster: 'lab-3', device: '/etc/passwd' })).rejects.toThrow(/a device path/);
    await expect(call(w, 'usb.write', { cluster: 'lab-3', device: '/dev/sdy' })).rejects.toThrow(/refusing to write \/dev\/sdy \(Spare, 8\.0 GB\): it is not a removable disk.*pass --force/);
    expect(await call(w, 'usb.cancel', {})).toEqual({ cancelled: false });
    const listed = (await call(w, 'usb.devices', {})) as { path: string; refusals: string[]; forceable?: boolean }[];
    expect(listed.map((d) => [d.path, d.forceable])).toEqual([
      ['/dev/loop7', false],
      ['/dev/sdy', true],
      ['/dev/sdz', false],
    ]);
    await w.dispose();
  });
});

describe('restore.run', () => {
  async function runToEnd(w: ReturnType<typeof wb>, payload: unknown, stages: string[] = ['verify', 'workspace', 'timeline']): Promise<ReturnType<typeof foldEvent>> {
    const started = (await call(w, 'restore.run', payload)) as { runId: string; stages: string[]; workspace: string };
    expect(started.stages).toEqual(stages);
    await expect.poll(() => events.some((e) => e.type === 'done' && e.runId === started.runId), { timeout: 30_000 }).toBe(true);
    return events.filter((e) => e.runId === started.runId).reduce((run, e) => foldEvent(run, e), EMPTY_RUN);
  }

  it('refuses the wrong recovery key in the verify stage, writing nothing', async () => {
    const other = join(root, 'other-key.txt');
    const fx2 = await bundleFixture(join(root, 'ws2'));
    await recoveryFixture(fx2, other);
    const into = join(root, 'wrong-key');
    const run = await runToEnd(wb(), { cluster: 'lab-3', recoveryKey: other, into });
    expect(run.status).toBe('failed');
    expect(run.failures[0]).toMatchObject({ stage: 'verify' });
    expect(run.failures[0]!.message).toMatch(/restore refused \(recovery-key\): the recovery key does not open this bundle.*nothing was written/);
    expect(existsSync(join(into, 'clusters/lab-3'))).toBe(false);
  });

  it('refuses a recovery key file that does not exist with the CLI\'s line and hint', async () => {
    const missing = join(root, 'no-such-key.txt');
    const err = (await call(wb(), 'restore.run', { cluster: 'lab-3', recoveryKey: missing, into: join(root, 'never') }).catch((x: unknown) => x)) as { message: string; hint?: string };
    expect(err.message).toContain(`restore refused (recovery-key): recovery identity ${missing} does not exist; nothing was written`);
    expect(JSON.stringify(err)).toContain('kubedos recovery-key --out');
    expect(existsSync(join(root, 'never'))).toBe(false);
  });

  it('restores into an empty workspace root with the same root CA, and says what it did not do', async () => {
    const into = join(root, 'restored');
    const run = await runToEnd(wb(), { cluster: 'lab-3', recoveryKey: idFile, into });
    expect(run.status).toBe('done');
    expect(certFingerprint(readFileSync(join(into, 'clusters/lab-3/trust/root-ca.crt'), 'utf8'))).toBe(rootFingerprint);
    expect(existsSync(join(into, 'clusters/lab-3/restore-timeline.json'))).toBe(true);
    const said = events.filter((e) => e.type === 'log' && e.stream === 'stdout').map((e) => (e as { line: string }).line);
    expect(said.join('\n')).toMatch(/workspace restored; deploy it with: kubedos deploy .*restored\/clusters\/lab-3\/spec\.yaml --target TARGET/);
    await expect(call(wb(), 'restore.run', { cluster: 'lab-3', recoveryKey: 'relative.txt', into })).rejects.toThrow(/not an absolute path/);
  });

  it('with a target: the same engine run as kubedos restore --target, its deploy followed inside the run, sealed again', async () => {
    const f = await restoreRunFixture(join(root, 'target-a'), mkdtempSync(join(root, 'target-stick-')));
    const w = createWorkbench({
      transport: 'websocket',
      workspace: join(root, 'specs'),
      env: { ...process.env, KUBEDOS_WORKSPACE: join(root, 'target-ws') },
      emit: <C extends EventChannel>(channel: C, payload: EventOf<C>) => {
        if (channel === 'pipeline.events') events.push(...(payload as PipelineEvent[]));
      },
      pipelines: { deploy: f.pipelineFor },
      restoreEtcd: f.etcd,
    });
    const into = join(root, 'restored-target');
    const payload = { cluster: 'lab-3', recoveryKey: f.identityFile, into, bundle: f.bundleDir, artifact: f.artifactDir, target: { kind: 'qemu-local' }, expectKey: 'restore-proof' };
    const run = await runToEnd(w, payload, ['verify', 'workspace', 'deploy', 'etcd', 'seal', 'timeline']);
    expect(run.failures).toEqual([]);
    expect(run.status).toBe('done');
    expect(f.calls).toEqual(['deploy:provision', 'deploy:seal', 'etcd', 'deploy:provision', 'deploy:seal']);
    const lines = events.filter((e) => e.type === 'log' && e.runId === run.runId).map((e) => (e as { line: string }).line);
    expect(lines.some((l) => l.startsWith('deploy: seal success'))).toBe(true); // the deploy's stages, live inside the run
    expect(lines.some((l) => l.startsWith('seal: seal success'))).toBe(true); // and its second pass, the seal again
    expect(lines.join('\n')).toMatch(/^identity: etcd on cp-1 at revision 43 \(snapshot 42\), key restore-proof readable/m);
    expect(f.bundleSha(join(into, 'clusters/lab-3/bundle'))).toBe(f.restoredBundleSha);
    // An expected key without a target is refused before anything runs.
    await expect(call(w, 'restore.run', { cluster: 'lab-3', recoveryKey: f.identityFile, into: join(root, 'nowhere'), expectKey: 'k' })).rejects.toThrow(/an expected etcd key needs a target/);
    await w.dispose();
  });
});
