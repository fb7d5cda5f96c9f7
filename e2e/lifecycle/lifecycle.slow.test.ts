// The cluster lifecycle, the long scenarios (npm run test:lifecycle; see the README for its time):
//  1. Through the strict Proxmox stand-in over real SSH: lab-3's three VMs created and started
//     (firmware only, no guest agent) next to a VM of another cluster inside lab-3's VMID range;
//     `kubedos stop` powers them off after the timeout, `kubedos start` starts them the hub first
//     and says their (absent) guest agents did not answer, `kubedos destroy` is refused without
//     --allow-destroy, destroys with it (the stand-in's VM configs, disks and run files of lab-3
//     gone, the other VM untouched; lab-3's uploaded images and an interrupted upload gone, the
//     image of lab-3 the other VM boots from and the image of a cluster named "lab" kept), a
//     rerun has nothing left to do, and with the host gone
//     (stand-in stopped) a destroy says it removed nothing.
//  2. On qemu-local: deploy lab-3 → destroy → nothing of lab-3 left → deploy the same spec again:
//     green, every stage ran (the journal started clean), etcd healthy.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plan } from '../../common/plan/index';
import type { Plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { imageFileName } from '../../common/plan/ownership';
import type { ArtifactFile } from '../../main/substrate/driver';
import type { ProxmoxSshDriver } from '../../main/substrate/proxmox-ssh';
import { ownershipTags } from '../../main/substrate/provision';
import { QemuLocalDriver } from '../../main/substrate/qemu-local';
import type { ProxmoxStandIn } from '../fixtures/proxmox/standin';
import { startProxmoxStandIn } from '../fixtures/proxmox/standin';
import { deployEnv, etcdctlOn, expectFreshDeploy, kubedosAsync, outcomes, REPO, requireRoot, standinSpecText, writeSpec } from '../deploy/env';
import { dropLabBulk } from '../lab-output';
import { standInDriver } from '../substrate/helpers';
import { processesMentioning } from '../processes';

const OUT = join(REPO, 'e2e/output/lifecycle-slow');
const STAGES = ['validate', 'plan', 'build', 'provision', 'firstboot', 'backplanes', 'enroll', 'converge', 'workload', 'seal'];


describe('lifecycle through the Proxmox stand-in (real SSH, blank VMs, a foreign VM in the range)', () => {
  const WS = join(OUT, 'standin-workspace');
  let standin: ProxmoxStandIn;
  let ours: ProxmoxSshDriver;
  let theirs: ProxmoxSshDriver;
  let p: Plan;
  let spec: string;
  let foreign: number;
  let images: { disk: string; iso: string; labs: string; part: string };
  const cli = () => ['--target', 'proxmox://pve-standin', '--ssh-config', standin.sshConfig, '--known-hosts', standin.knownHosts];
  const env = () => ({ ...process.env, KUBEDOS_WORKSPACE: WS, SSH_AUTH_SOCK: '' });
  const run = (args: string[], log: string, timeoutMs = 5 * 60_000) => kubedosAsync(args, { env: env(), cwd: OUT, logFile: join(OUT, log), timeoutMs });
  const conf = (vmid: number) => join(standin.root, `etc/pve/qemu-server/${vmid}.conf`);

  beforeAll(async () => {
    requireRoot();
    rmSync(WS, { recursive: true, force: true });
    standin = await startProxmoxStandIn();
    const text = standinSpecText(standin);
    p = plan(parseSpec(text).spec!);
    spec = writeSpec(OUT, 'lab-3-standin.yaml', text);
    ours = standInDriver(standin, p);
    theirs = standInDriver(standin, { ...p, cluster: { ...p.cluster, name: 'other' } });
    // A deployed cluster's workspace, as far as destroy cares: trust material to export.
    const ws = join(WS, 'clusters/lab-3');
    mkdirSync(join(ws, 'trust'), { recursive: true });
    writeFileSync(join(ws, 'trust/root-ca.crt'), 'a certificate\n');
    // Boot images on the stand-in's storage: one lab-3's VMs were imported from, one of lab-3's
    // that the foreign VM has in its CD-ROM drive, an interrupted upload of lab-3's, one of a
    // cluster named "lab" (a prefix of lab-3's name, not lab-3's).
    const file = (name: string, bytes: Buffer, kind: ArtifactFile['kind']): ArtifactFile => {
      const path = join(OUT, name);
      writeFileSync(path, bytes);
      return { path, sha256: createHash('sha256').update(bytes).digest('hex'), sizeBytes: bytes.length, kind, name };
    };
    const qcow = join(OUT, 'blank.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', qcow, '64M']);
    const blank = readFileSync(qcow);
    const sha = createHash('sha256').update(blank).digest('hex');
    const disk = file(imageFileName('lab-3', ['v1', 'worker'], sha, 'disk-image'), blank, 'disk-image');
    const iso = file(imageFileName('lab-3', ['v1'], sha, 'iso'), Buffer.alloc(64 * 1024), 'iso');
    const labs = file(imageFileName('lab', ['v1', 'worker'], sha, 'disk-image'), blank, 'disk-image');
    images = { disk: (await ours.upload(disk, 'local')).remotePath, iso: (await ours.upload(iso, 'local')).remotePath, labs: (await ours.upload(labs, 'local')).remotePath, part: '' };
    images.part = `${images.disk.replace(/_worker_/, '_master_')}.kubedos-part`;
    writeFileSync(images.part, 'half an upload');
    for (const n of p.nodes) {
      await ours.create({ ...n.vm, memoryMiB: 256, balloon: 0 }, { kind: 'disk-image', volid: `local:import/${disk.name}` });
      await ours.start(n.vmid);
    }
    foreign = p.substrate.vmidRange.end;
    const m = p.nodes[0]!.vm;
    await theirs.create({ ...m, vmid: foreign, name: 'stranger', memoryMiB: 256, balloon: 0, tags: ['cluster-other', 'kubedos'], nics: m.nics.map((x) => ({ ...x, mac: '52:54:00:AA:BB:01' })) }, { kind: 'iso', volid: `local:iso/${iso.name}` });
    await theirs.start(foreign);
  }, 10 * 60_000);

  afterAll(async () => {
    for (const n of p?.nodes ?? []) await ours?.destroy(n.vmid, { allowDestroy: true }).catch(() => undefined);
    await theirs?.destroy(foreign, { allowDestroy: true }).catch(() => undefined);
    await ours?.close().catch(() => undefined);
    await theirs?.close().catch(() => undefined);
    await standin?.stop().catch(() => undefined);
  });

  it('stop: no agent answers, so qm stop powers each VM off after the timeout; the foreign VM runs on', async () => {
    const r = await run(['stop', spec, ...cli(), '--timeout', '2'], 'standin-stop.log');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/w-1 \(VMID \d+\) powered off after the timeout/);
    for (const n of p.nodes) expect(await ours.status(n.vmid), n.name).toBe('stopped');
    expect(await theirs.status(foreign)).toBe('running');
  }, 6 * 60_000);

  it('start: qm start for every VM, the hub first; the blank VMs have no guest agent, so start says so and fails; the foreign VM runs on', async () => {
    const r = await run(['start', spec, ...cli(), '--timeout', '20'], 'standin-start.log');
    const out = r.stdout + r.stderr;
    expect(r.status, out).toBe(1);
    const order = [...out.matchAll(/(\S+) \(VMID \d+\) started/g)].map((m) => m[1]);
    expect(order[0], out).toBe(p.nodes.find((n) => n.hub)!.name);
    expect([...order].sort()).toEqual(p.nodes.map((n) => n.name).sort());
    expect(out).toMatch(/guest agent/);
    for (const n of p.nodes) expect(await ours.status(n.vmid), n.name).toBe('running');
    expect(await theirs.status(foreign)).toBe('running');
    const again = await run(['stop', spec, ...cli(), '--timeout', '2'], 'standin-stop-2.log');
    expect(again.status, again.stdout + again.stderr).toBe(0);
  }, 6 * 60_000);

  it('destroy: refused without --allow-destroy; with it the stand-in holds no VM or image of lab-3, the foreign VM and the image it uses untouched; a rerun has nothing to do', async () => {
    const refused = await run(['destroy', spec, ...cli()], 'standin-destroy-refused.log');
    expect(refused.status).toBe(1);
    expect(refused.stdout + refused.stderr).toMatch(/refusing to destroy lab-3 without --allow-destroy; nothing was removed/);
    expect(refused.stdout).toMatch(/images on the host's storage \(2\):\n\s+local:import\/kubedos_lab-3_v1_master_\w+\.qcow2 \(14 B, an interrupted upload\)\n\s+local:import\/kubedos_lab-3_v1_worker_\w+\.qcow2/);
    expect(refused.stdout).toMatch(new RegExp(`left on the host: image local:iso/kubedos_lab-3_v1_\\w+\\.iso, used by VM ${foreign} stranger`));
    for (const n of p.nodes) expect(existsSync(conf(n.vmid)), n.name).toBe(true);
    const r = await run(['destroy', spec, ...cli(), '--allow-destroy', '--verbose'], 'standin-destroy.log');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`left alone: VM ${foreign} "stranger"`));
    expect(r.stdout).toMatch(/\$ qm destroy \d+ --purge 1 --destroy-unreferenced-disks 1/);
    // Nothing of lab-3's VMIDs anywhere in the stand-in's tree (configs, disks, run files, TPM state).
    const all = readdirSync(standin.root, { recursive: true }).map(String);
    for (const n of p.nodes) {
      expect(existsSync(conf(n.vmid)), n.name).toBe(false);
      expect(all.filter((f) => new RegExp(`(^|[/-])${n.vmid}([./-]|$)`).test(f)), n.name).toEqual([]);
    }
    expect(all.some((f) => new RegExp(`(^|[/-])${foreign}([./-]|$)`).test(f) && !f.endsWith('.conf'))).toBe(true);
    const left = readdirSync(join(standin.root, 'etc/pve/qemu-server'));
    expect(left).toEqual([`${foreign}.conf`]);
    expect(await theirs.status(foreign)).toBe('running');
    expect(existsSync(join(WS, 'clusters/lab-3'))).toBe(false);
    // lab-3's images went (pvesm free; the interrupted upload as a file); the one the foreign VM uses and "lab"'s stayed.
    expect(r.stdout).toMatch(/\$ pvesm free local:import\/kubedos_lab-3_v1_worker_/);
    expect([existsSync(images.disk), existsSync(images.part), existsSync(images.iso), existsSync(images.labs)]).toEqual([false, false, true, true]);
    const again = await run(['destroy', spec, ...cli(), '--allow-destroy'], 'standin-destroy-again.log');
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/never deployed here \(or is already destroyed\)/);
  }, 6 * 60_000);

  it('with the host gone, destroy says it could not read the VMs and removed nothing', async () => {
    mkdirSync(join(WS, 'clusters/lab-3'), { recursive: true });
    await standin.stop();
    const r = await run(['destroy', spec, ...cli(), '--allow-destroy'], 'standin-destroy-unreachable.log', 3 * 60_000);
    expect(r.status).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/could not read the VMs on proxmox:\/\/pve-standin: .*nothing was removed/);
    expect(r.stdout + r.stderr).toMatch(/run kubedos destroy --allow-destroy again to finish|run the same command again/);
    expect(existsSync(join(WS, 'clusters/lab-3'))).toBe(true);
  }, 4 * 60_000);
});

describe('qemu-local: deploy → destroy → nothing left → deploy again green', () => {
  const WS = join(OUT, 'qemu-workspace');
  const p: Plan = plan(parseSpec(TEMPLATES['lab-3'].text).spec!);
  let spec: string;
  let driver: QemuLocalDriver;

  beforeAll(() => {
    requireRoot();
    rmSync(WS, { recursive: true, force: true });
    spec = writeSpec(OUT);
    driver = new QemuLocalDriver({ stateDir: join(WS, 'clusters/lab-3/vms'), ownership: { tags: ownershipTags(p), vmidRange: p.substrate.vmidRange } });
  });

  afterAll(async () => {
    for (const n of p.nodes) await driver?.destroy(n.vmid, { allowDestroy: true }).catch(() => undefined);
    dropLabBulk(WS, [join(WS, 'cache')]);
  });

  const deploy = async (log: string) => {
    const r = await kubedosAsync(['deploy', spec, '--target', 'qemu-local'], { env: deployEnv(WS), cwd: OUT, logFile: join(OUT, log), timeoutMs: 55 * 60_000 });
    expect(r.status, r.stderr + r.stdout.slice(-3000)).toBe(0);
    const o = outcomes(r.stdout);
    expect(Object.keys(o)).toEqual(STAGES);
    return { r, o };
  };

  it('deploys lab-3', async () => {
    const { r } = await deploy('deploy-1.log');
    console.log(`[bench] lifecycle slow: first deploy ${(r.ms / 1000).toFixed(0)} s`);
  }, 56 * 60_000);

  it('destroy leaves nothing of lab-3: no process, socket, run dir, file or workspace', async () => {
    const paths = [...p.nodes.flatMap((n) => driver.vmPaths(n.vmid)), ...new Set(p.nodes.flatMap((n) => n.vm.nics.map((x) => driver.hubSocket(x.bridge))))];
    const r = await kubedosAsync(['destroy', spec, '--allow-destroy'], { env: deployEnv(WS), cwd: OUT, logFile: join(OUT, 'destroy.log'), timeoutMs: 10 * 60_000 });
    console.log(`[bench] lifecycle slow: destroy ${(r.ms / 1000).toFixed(0)} s`);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    for (const x of paths) expect(existsSync(x), x).toBe(false);
    expect(existsSync(join(WS, 'clusters/lab-3'))).toBe(false);
    expect(processesMentioning(join(WS, 'clusters/lab-3'))).toEqual([]);
    for (const x of paths) expect(processesMentioning(x), x).toEqual([]);
  }, 11 * 60_000);

  it('the same spec deploys again green, from a clean journal (no stage skipped as unchanged)', async () => {
    const { r } = await deploy('deploy-2.log');
    console.log(`[bench] lifecycle slow: deploy after destroy ${(r.ms / 1000).toFixed(0)} s`);
    // "unchanged" in the summary also means a stage that ran and changed nothing (validate, firstboot): check the lines.
    expectFreshDeploy(r.stdout, STAGES);
    const cp = p.nodes.find((n) => n.name === 'cp-1')!;
    const health = await driver.guestExec(cp.vmid, [...etcdctlOn(cp), 'endpoint', 'health'], { timeoutS: 120 });
    expect(health.stdout + health.stderr).toMatch(/is healthy/);
  }, 56 * 60_000);
});
