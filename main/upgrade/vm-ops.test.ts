// The upgrade service (vm-ops.ts) before and around the loop: the A/B check of every node (one
// refusal, nothing touched), the record kept in the workspace across runs, --rollback from it.
// The VM operations themselves (guest agent, stream) need a deployed A/B cluster: not here.
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import type { ClusterSpec } from '../../common/spec/index';
import { buildRef as build, lab3Waves } from '../../common/upgrade/testing';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import { readUpgradeRecord, upgradeRecordPath } from './apply-run';
import { SimCluster, writeArtifact, writeSealedBuild } from './testing';
import { deployedBuildDir, readBuildRef, runningBuildDir, UPGRADE_BUILDS_DIR } from './preflight';
import { generateKeyPairSync } from 'node:crypto';
import { sha256Hex } from '../../common/canonical';
import { keyidOf } from '../build/keys';
import { checkAbNodes, runUpgradeService, specNotAb, VmNodeOps } from './vm-ops';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { plan } from '../../common/plan/index';
import { initialAgentState, renderAgentState } from '../../common/upgrade/agent';
import type { SubstrateDriver } from '../substrate/driver';
import { BOOT_STALL_MS, FIRMWARE_STALL_MS } from '../substrate/boot-hang';
import { AGENT_DIR } from './node-agent';

afterAll(removeTempDirs);

function spec(layout?: 'ab'): ClusterSpec {
  const doc = parse(TEMPLATES['lab-3'].text) as { spec: Record<string, unknown> & { kubernetes: { ha: { upgradeStrategy: string } } } };
  if (layout) doc.spec.upgrades = { diskLayout: layout };
  doc.spec.kubernetes.ha.upgradeStrategy = 'rolling';
  const r = parseSpec(JSON.stringify(doc));
  if (!r.spec) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return r.spec;
}

const N = build('0.1.0');
const waves = lab3Waves();
const NAMES = ['cp-1', 'w-1', 'master'];

describe('the upgrade service', () => {
  it('a spec without the A/B layout is refused with how to get it', () => {
    expect(specNotAb(spec())).toMatch(/^lab-3 was deployed with one root partition \(spec\.upgrades\.diskLayout is single \(the default\)\): .*set spec\.upgrades\.diskLayout: ab in the spec, rebuild \(kubedos build\) and redeploy the cluster \(kubedos deploy SPEC\); nothing was touched$/);
    expect(specNotAb(spec('ab'))).toBeUndefined();
  });

  it('nodes without kubedos-boot, or booted without the A/B GRUB: one refusal naming them; none is written', async () => {
    const sim = new SimCluster(tempDir('kd18e-vmops-'), NAMES, N);
    const ops = { status: async (node: string): Promise<string> => (node === 'w-1' ? Promise.reject(new Error('/usr/local/sbin/kubedos-boot status exited 127 on w-1: sh: 1: /usr/local/sbin/kubedos-boot: not found')) : sim.status(node)) };
    const r = await checkAbNodes('lab-3', NAMES, ops);
    expect(r).toEqual({ ok: false, message: expect.stringMatching(/^lab-3 was deployed with one root partition \(1 node without an A\/B boot environment: w-1; w-1: \/usr\/local\/sbin\/kubedos-boot status exited 127/) });
    const noSlot = await checkAbNodes('lab-3', ['cp-1'], { status: async () => 'booted=\nactive=A\ntry=\ntries=\nfailed=\n' });
    expect(noSlot).toMatchObject({ ok: false, message: expect.stringMatching(/cp-1: booted without the A\/B GRUB configuration/) });
    const env = { KUBEDOS_WORKSPACE: tempDir('kd18e-vmops-ws-') };
    const end = await runUpgradeService({ spec: spec('ab'), waves, from: N, to: build('0.2.0'), ops: Object.assign(Object.create(sim) as SimCluster, ops), env });
    expect(end.kind).toBe('refuse');
    expect(sim.calls).toEqual([]);
  });

  it('a completed upgrade is what the cluster runs next (its signed files kept in the workspace); --rollback returns to the build the recorded upgrade started from and names it as what runs', async () => {
    const env = { KUBEDOS_WORKSPACE: tempDir('kd18e-vmops-ws-') };
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const key = { privateKey, publicKeyPem, keyid: keyidOf(publicKeyPem) };
    const fixture = (version: string) => ({ version, key, packages: { 'base-files': version }, payload: { 'payload/worker/version': `${version}\n` } });
    const refOf = (dir: string, version: string) => ({ version, digest: sha256Hex(readFileSync(join(dir, 'manifest.json'))) });
    const n0 = refOf(writeSealedBuild('lab-3', env, fixture('0.1.0')), '0.1.0');
    const sim = new SimCluster(tempDir('kd18e-vmops-'), NAMES, n0);
    let t = 0;
    const clock = { now: () => t, sleep: async (ms: number) => void (t += Math.max(ms, 1)) };
    const one = waves.filter((w) => w.nodes.includes('w-1'));
    const kept = (ref: { digest: string }): string => join(env.KUBEDOS_WORKSPACE, 'clusters/lab-3', UPGRADE_BUILDS_DIR, ref.digest);
    expect(runningBuildDir('lab-3', env)).toBe(deployedBuildDir('lab-3', env));
    // 0.1.0 → 0.2.0 completes: 0.2.0's signed files kept, it is what runs (N of the next upgrade, from any --to directory).
    const a1 = tempDir('kd18e-vmops-n1-');
    writeArtifact(a1, { cluster: 'lab-3', ...fixture('0.2.0') });
    const n1 = refOf(a1, '0.2.0');
    expect(await runUpgradeService({ spec: spec('ab'), waves: one, from: n0, to: n1, artifact: { dir: a1, keyid: key.keyid }, ops: sim, env, ...clock })).toMatchObject({ kind: 'done' });
    expect(runningBuildDir('lab-3', env)).toBe(kept(n1));
    expect(readFileSync(join(kept(n1), 'manifest.json'))).toEqual(readFileSync(join(a1, 'manifest.json')));
    expect(readUpgradeRecord(upgradeRecordPath('lab-3', env))).toMatchObject({ target: n1, from: n0 });
    // 0.2.0 → 0.3.0: N is 0.2.0 (the running build's manifest, which the preflight reads as N), and the record says so.
    const a2 = tempDir('kd18e-vmops-n2-');
    writeArtifact(a2, { cluster: 'lab-3', ...fixture('0.3.0') });
    const running = readBuildRef(runningBuildDir('lab-3', env));
    const refs = { from: { version: running.version, digest: running.digest }, to: refOf(a2, '0.3.0') };
    expect(refs).toEqual({ from: n1, to: refOf(a2, '0.3.0') });
    expect(await runUpgradeService({ spec: spec('ab'), waves: one, from: refs.from, to: refs.to, artifact: { dir: a2, keyid: key.keyid }, ops: sim, env, ...clock })).toMatchObject({ kind: 'done' });
    expect(runningBuildDir('lab-3', env)).toBe(kept(refs.to));
    expect(readUpgradeRecord(upgradeRecordPath('lab-3', env))).toMatchObject({ target: refs.to, from: n1, slots: { 'w-1': { A: refs.to, B: n1 } } });
    // --rollback (the CLI passes the sealed deploy's build): back to 0.2.0, the build 0.3.0 started from, which runs again.
    const rb = await runUpgradeService({ spec: spec('ab'), waves: one, from: n0, ops: sim, env, ...clock });
    expect(rb).toMatchObject({ kind: 'done', nodes: ['w-1'] });
    expect(rb.message).not.toContain('note:');
    expect(/^active=(.)$/m.exec(sim.peek('w-1'))![1]).toBe('B');
    expect(runningBuildDir('lab-3', env)).toBe(kept(n1));
  });

  it('upgrade then --rollback through the service: the record in the workspace carries the slots and the rolled-back build', async () => {
    const sim = new SimCluster(tempDir('kd18e-vmops-'), NAMES, N);
    const env = { KUBEDOS_WORKSPACE: tempDir('kd18e-vmops-ws-') };
    let t = 0;
    const clock = { now: () => t, sleep: async (ms: number) => void (t += Math.max(ms, 1)) };
    const N1 = build('0.2.0');
    // One wave of one node keeps it short: the loop's order over lab-3's three waves is apply-run.test.ts's.
    const one = waves.filter((w) => w.nodes.includes('w-1'));
    expect(await runUpgradeService({ spec: spec('ab'), waves: one, from: N, to: N1, ops: sim, env, ...clock })).toMatchObject({ kind: 'done' });
    const rec = readUpgradeRecord(upgradeRecordPath('lab-3', env));
    expect(rec).toMatchObject({ target: N1, slots: { 'w-1': { A: N, B: N1 } }, bad: [] });
    expect(await runUpgradeService({ spec: spec('ab'), waves: one, from: N, ops: sim, env, ...clock })).toMatchObject({ kind: 'done', nodes: ['w-1'] });
    expect(readUpgradeRecord(upgradeRecordPath('lab-3', env)).bad).toMatchObject([{ digest: N1.digest }]);
    expect(await runUpgradeService({ spec: spec('ab'), waves: one, from: N, to: N1, ops: sim, env, ...clock })).toMatchObject({ kind: 'refuse', message: expect.stringMatching(/^build 0\.2\.0 rolled back on w-1 \(rolled back by kubedos upgrade --rollback\)/) });
    // A refused build is not what a later --rollback returns from.
    const before = readUpgradeRecord(upgradeRecordPath('lab-3', env));
    expect(await runUpgradeService({ spec: spec('ab'), waves: one, from: N, to: N1, ops: sim, env, ...clock })).toMatchObject({ kind: 'refuse' });
    expect(readUpgradeRecord(upgradeRecordPath('lab-3', env))).toEqual(before);
  });
});

describe('the upgrade service: replace waves on deployed VMs', () => {
  it('replace operations given: the waves are taken; a build no kept artifact is of is refused before any node is touched (upgrade and rollback)', async () => {
    const env = { KUBEDOS_WORKSPACE: tempDir('kd-h21c-service-') };
    const replaceWaves = lab3Waves().map((w) => (w.nodes.includes('w-1') ? { ...w, action: 'replace' as const } : w));
    const asked: string[] = [];
    const ops = new Proxy({}, { get: (_t, k) => async () => void asked.push(String(k)) }) as unknown as SimCluster;
    const replace = {
      cannotProvision: (b: { version: string }) => `no kept artifact of ${b.version}`,
      exists: async () => true,
      fence: async () => 'fenced',
      destroy: async () => 'destroyed',
      provision: async () => 'provisioned',
      gate: async () => undefined,
    };
    const N1 = build('0.2.0');
    expect(await runUpgradeService({ spec: spec('ab'), waves: replaceWaves, from: N, to: N1, allowDestroy: true, ops, replace, env })).toEqual({ kind: 'refuse', message: 'no kept artifact of 0.2.0' });
    expect(asked).toEqual([]);
    // A rollback whose record says w-1 was replaced: N's artifact is needed.
    const path = upgradeRecordPath('lab-3', env);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, JSON.stringify({ slots: {}, bad: [], target: N1, replaced: { 'w-1': { build: N1, state: 'done' } } }));
    expect(readUpgradeRecord(path).replaced).toEqual({ 'w-1': { build: N1, state: 'done' } });
    expect(await runUpgradeService({ spec: spec('ab'), waves: replaceWaves, from: N, allowDestroy: true, ops, replace, env })).toEqual({ kind: 'refuse', message: 'no kept artifact of 0.1.0' });
    expect(asked).toEqual([]);
  });
});

describe('VmNodeOps: the update agent state through the guest agent', () => {
  it('reads and writes state.json and journal.jsonl with the node-side scripts (run here on a directory standing in for the data partition)', async () => {
    const s = spec('ab');
    const p = plan(s);
    const dir = join(tempDir('kd-h20a-vmops-agent-'), 'upgrade');
    const seen: { vmid: number; input?: string }[] = [];
    let failNext = false;
    // The guest as this machine: the node's directory swapped for the test's.
    const driver = {
      target: 'qemu-local',
      guestExec(vmid: number, argv: readonly string[], o: { input?: string } = {}) {
        seen.push({ vmid, ...(o.input !== undefined ? { input: o.input } : {}) });
        if (failNext) return Promise.resolve({ exitCode: 1, stdout: '', stderr: 'mv: cannot move: Read-only file system\n' });
        const r = spawnSync(argv[0]!, argv.slice(1).map((x) => (x === AGENT_DIR ? dir : x)), { encoding: 'utf8', input: o.input ?? '' });
        return Promise.resolve({ exitCode: r.status ?? -1, stdout: r.stdout, stderr: r.stderr });
      },
    } as unknown as SubstrateDriver;
    const ops = new VmNodeOps({ spec: s, plan: p, driver, env: {}, artifactDir: '', converge: async () => undefined });
    expect(await ops.readAgentState('w-1')).toEqual({ journalLines: 0 });
    const st = renderAgentState(initialAgentState(N));
    await ops.writeAgentState('w-1', st, ['{"seq":0}', '{"seq":1}']);
    await ops.writeAgentState('w-1', st, ['{"seq":2}']);
    expect(await ops.readAgentState('w-1')).toEqual({ state: st, journalLines: 3 });
    expect(readFileSync(join(dir, 'journal.jsonl'), 'utf8')).toBe('{"seq":0}\n{"seq":1}\n{"seq":2}\n');
    expect(statSync(join(dir, 'state.json')).mode & 0o777).toBe(0o644);
    expect(readdirSync(dir).sort()).toEqual(['journal.jsonl', 'state.json']);
    expect(new Set(seen.map((x) => x.vmid))).toEqual(new Set([p.nodes.find((n) => n.name === 'w-1')!.vmid]));
    failNext = true;
    await expect(ops.writeAgentState('w-1', st, [])).rejects.toThrow(/^writing \/var\/lib\/kubedos\/upgrade\/state\.json exited 1 on w-1: mv: cannot move: Read-only file system$/);
  });
});

describe('VmNodeOps: a node stalled in its firmware after a reboot', () => {
  const STALLED = readFileSync(join(import.meta.dirname, '../substrate/fixtures/console-firmware-stall-after-reboot.txt'), 'utf8');

  it('is powered off and on once its console has stayed at the kernel\'s restart for the stall time, and only then', async () => {
    const s = spec('ab');
    const p = plan(s);
    const w1 = p.nodes.find((n) => n.name === 'w-1')!.vmid;
    let console = STALLED;
    const calls: string[] = [];
    const driver = {
      target: 'qemu-local',
      // The last maxBytes, as the driver reads them.
      consoleTail: async (vmid: number, maxBytes: number) => (vmid === w1 ? console.slice(-maxBytes) : ''),
      stop: async (vmid: number) => void calls.push(`stop ${vmid}`),
      start: async (vmid: number) => void calls.push(`start ${vmid}`),
    } as unknown as SubstrateDriver;
    let t = 0;
    const ops = new VmNodeOps({ spec: s, plan: p, driver, env: {}, artifactDir: '', converge: async () => undefined, now: () => t, bootStallMs: 120_000 });
    expect(await ops.recoverStall('w-1')).toBeUndefined(); // first seen now
    t = 119_000;
    expect(await ops.recoverStall('w-1')).toBeUndefined();
    // GRUB printed: the watch starts again from the new end.
    console = `${STALLED}GNU GRUB  version 2.06\n`;
    t = 125_000;
    expect(await ops.recoverStall('w-1')).toBeUndefined();
    console = `${console}[    2.0] reboot: Restarting system\n[    2.1] reboot: machine restart\n`;
    t = 130_000;
    expect(await ops.recoverStall('w-1')).toBeUndefined();
    t = 249_000;
    expect(await ops.recoverStall('w-1')).toBeUndefined();
    expect(calls).toEqual([]);
    t = 251_000;
    expect(await ops.recoverStall('w-1')).toEqual({ detail: `its console stayed at "reboot: machine restart" for 121 s: its firmware never reached the boot loader after the reboot; powered it off and on (VM ${w1}; GRUB had not run, so the slot it was rebooting into is still the one it tries)` });
    expect(calls).toEqual([`stop ${w1}`, `start ${w1}`]);
    // A console that shows anything else is never power-cycled, however long.
    expect(await ops.recoverStall('cp-1')).toBeUndefined();
    t = 10_000_000;
    expect(await ops.recoverStall('cp-1')).toBeUndefined();
    // The initramfs stall (a real console: the kernel stopped after initramfs-tools' banner): the same watch, its own words.
    console = readFileSync(join(import.meta.dirname, '../substrate/fixtures/console-initramfs-stall-after-fallback.txt'), 'utf8');
    t = 300_000;
    expect(await ops.recoverStall('w-1')).toBeUndefined();
    t = 419_000;
    expect(await ops.recoverStall('w-1')).toBeUndefined();
    t = 421_000;
    // The slot that boot was started with (its command line, ~29 KB before the banner): its try was spent.
    expect(await ops.recoverStall('w-1')).toEqual({
      detail: `its console stayed at "Loading, please wait..." for 121 s: its boot of slot A stopped in the initramfs before udev started; powered it off and on (VM ${w1}; GRUB had counted that boot: the node boots the slot its boot counter says now)`,
      spent: 'A',
    });
    expect(calls).toEqual([`stop ${w1}`, `start ${w1}`, `stop ${w1}`, `start ${w1}`]);
    // udev's start after the banner: a slow boot, never power-cycled.
    console = `${console}Starting systemd-udevd version 252.39-1~deb12u2\n`;
    t = 500_000;
    expect(await ops.recoverStall('w-1')).toBeUndefined();
    t = 5_000_000;
    expect(await ops.recoverStall('w-1')).toBeUndefined();
    expect(calls).toHaveLength(4);
    // The defaults: a firmware stall is power-cycled after FIRMWARE_STALL_MS (no try spent there), an initramfs one only after BOOT_STALL_MS.
    const defaults = new VmNodeOps({ spec: s, plan: p, driver, env: {}, artifactDir: '', converge: async () => undefined, now: () => t });
    console = STALLED;
    t = 0;
    expect(await defaults.recoverStall('w-1')).toBeUndefined();
    t = FIRMWARE_STALL_MS - 1000;
    expect(await defaults.recoverStall('w-1')).toBeUndefined();
    t = FIRMWARE_STALL_MS;
    expect((await defaults.recoverStall('w-1'))?.detail).toMatch(/^its console stayed at "reboot: machine restart" for 45 s: its firmware never reached the boot loader/);
    console = readFileSync(join(import.meta.dirname, '../substrate/fixtures/console-initramfs-stall-after-fallback.txt'), 'utf8');
    t = 100_000;
    expect(await defaults.recoverStall('w-1')).toBeUndefined();
    t = 100_000 + FIRMWARE_STALL_MS;
    expect(await defaults.recoverStall('w-1')).toBeUndefined();
    t = 100_000 + BOOT_STALL_MS;
    expect((await defaults.recoverStall('w-1'))?.spent).toBe('A');
    expect(calls).toHaveLength(8);
    // A driver without a console log (Proxmox here) cannot tell.
    const blind = new VmNodeOps({ spec: s, plan: p, driver: { target: 'proxmox' } as unknown as SubstrateDriver, env: {}, artifactDir: '', converge: async () => undefined });
    expect(await blind.recoverStall('w-1')).toBeUndefined();
  });
});
