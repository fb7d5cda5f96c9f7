// Cluster lifecycle on qemu-local with real processes, fast: lab-3's three VMs are created blank
// (firmware only, no OS: no guest agent answers) next to a foreign VM planted inside lab-3's VMID
// range with another cluster's tags, all running under QEMU + swtpm on the L2 hubs. The
// workspace path is long on purpose, so the VMs' run dirs and the hubs' sockets live in the
// private runtime dir, not under the workspace. Through the real CLI:
//  stop (no agent: powered off after the timeout) → status "stopped at" → destroy refused without
//  --allow-destroy, dry run → destroy --allow-destroy → nothing of lab-3 left (processes, sockets,
//  run dirs, files, workspace), the foreign VM still running → destroy again: nothing to do.
// The full sequence on a deployed cluster (graceful stop, start with planes and etcd back) is at
// the end of e2e/deploy/deploy.lab.test.ts.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plan } from '../../common/plan/index';
import type { Plan } from '../../common/plan/schema';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { ownershipTags } from '../../main/substrate/provision';
import { QemuLocalDriver } from '../../main/substrate/qemu-local';
import { processesMentioning } from '../processes';

const REPO = resolve(__dirname, '../..');
let root: string;
let ws: string;
let stateDir: string;
let specPath: string;
let p: Plan;
let ours: QemuLocalDriver;
let theirs: QemuLocalDriver;
let foreignVmid: number;
/** Paths and process markers of lab-3 that must be gone after destroy. */
let labPaths: string[] = [];

function kubedos(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [join(REPO, 'bin/kubedos.mjs'), ...args], { cwd: root, env: { ...process.env, KUBEDOS_WORKSPACE: ws }, encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}


function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => !d.isDirectory()).map((d) => join(d.parentPath, d.name));
}

describe('kubedos stop / destroy on qemu-local (blank VMs, a foreign VM in the range)', () => {
  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('the lifecycle lab needs root like the other QEMU labs');
    root = mkdtempSync(join(tmpdir(), 'kd-lifecycle-'));
    // Long enough that sockets cannot live under it (sun_path): they go to the private runtime dir.
    ws = join(root, 'a-workspace-path-long-enough-that-unix-sockets-move-to-the-private-runtime-dir');
    const text = TEMPLATES['lab-3'].text;
    p = plan(parseSpec(text).spec!);
    specPath = join(root, 'lab-3.yaml');
    writeFileSync(specPath, text);
    stateDir = join(ws, 'clusters/lab-3/vms');
    mkdirSync(join(ws, 'clusters/lab-3/trust'), { recursive: true });
    writeFileSync(join(ws, 'clusters/lab-3/trust/root-ca.crt'), 'a certificate\n');
    ours = new QemuLocalDriver({ stateDir, ownership: { tags: ownershipTags(p), vmidRange: p.substrate.vmidRange }, accel: 'tcg' });
    theirs = new QemuLocalDriver({ stateDir, ownership: { tags: ['kubedos', 'cluster-other'], vmidRange: p.substrate.vmidRange }, accel: 'tcg' });
    for (const n of p.nodes) {
      await ours.create({ ...n.vm, memoryMiB: 256, balloon: 0 }, undefined);
      await ours.start(n.vmid);
    }
    foreignVmid = p.substrate.vmidRange.end;
    const m = p.nodes[0]!.vm;
    await theirs.create({ ...m, vmid: foreignVmid, name: 'stranger', memoryMiB: 256, balloon: 0, tags: ['cluster-other', 'kubedos'], nics: m.nics.map((x) => ({ ...x, mac: '52:54:00:AA:BB:01' })) }, undefined);
    await theirs.start(foreignVmid);
    labPaths = [...p.nodes.flatMap((n) => ours.vmPaths(n.vmid)), ...new Set(p.nodes.flatMap((n) => n.vm.nics.map((x) => ours.hubSocket(x.bridge))))];
    expect(ours.runDir(p.nodes[0]!.vmid).startsWith(ws)).toBe(false);
  }, 300_000);

  afterAll(async () => {
    if (!stateDir) return;
    for (const vm of (await theirs.inventory().catch(() => ({ vms: [] }))).vms) {
      const d = vm.tags.includes('cluster-other') ? theirs : ours;
      await d.destroy(vm.vmid, { allowDestroy: true }).catch(() => undefined);
    }
    await theirs.stopNetworkIfIdle(p.nodes.flatMap((n) => n.vm.nics.map((x) => x.bridge))).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  });

  it('stop: no guest agent answers, so each VM is powered off after the timeout; the foreign VM keeps running', async () => {
    const r = kubedos(['stop', specPath, '--timeout', '2']);
    expect(r.out).toMatch(/w-1: the guest agent did not take the shutdown/);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/w-1 \(VMID \d+\) powered off after the timeout/);
    for (const n of p.nodes) expect(await ours.status(n.vmid), n.name).toBe('stopped');
    expect(await theirs.status(foreignVmid)).toBe('running');
    const st = kubedos(['status', specPath]);
    expect(st.out).toMatch(/cluster lab-3: stopped at \d{4}-\d\d-\d\dT/);
  }, 300_000);

  it('destroy without --allow-destroy is refused and lists what would go; --dry-run the same, exit 0', async () => {
    const r = kubedos(['destroy', specPath]);
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/refusing to destroy lab-3 without --allow-destroy; nothing was removed/);
    expect(r.out).toMatch(/VMs \(3\):/);
    expect(r.out).toMatch(new RegExp(`left alone: VM ${foreignVmid} "stranger"`));
    const d = kubedos(['destroy', specPath, '--dry-run']);
    expect(d.status, d.out).toBe(0);
    expect(d.out).toMatch(/dry run: nothing was removed/);
    for (const n of p.nodes) expect(await ours.status(n.vmid)).toBe('stopped');
  }, 120_000);

  it('destroy --allow-destroy: nothing of lab-3 is left, the foreign VM survives, a rerun has nothing to do', async () => {
    await ours.start(p.nodes[1]!.vmid); // one of them running again: destroy powers it off too
    const r = kubedos(['destroy', specPath, '--allow-destroy']);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/lab-3 destroyed on qemu-local; trust material exported to /);
    for (const n of p.nodes) {
      expect(await ours.status(n.vmid), n.name).toBe('absent');
      expect(processesMentioning(ours.vmDir(n.vmid)), n.name).toEqual([]);
    }
    for (const x of labPaths.filter((x) => !x.endsWith('.sock'))) expect(existsSync(x), x).toBe(false);
    // The foreign VM runs on, from its own folder; the L2 hubs it uses stay with it.
    expect(await theirs.status(foreignVmid)).toBe('running');
    const left = filesUnder(join(ws, 'clusters/lab-3'));
    expect(left.length).toBeGreaterThan(0);
    for (const f of left) expect(f.startsWith(join(stateDir, 'vms', String(foreignVmid))) || f.startsWith(join(stateDir, 'images')) || f.startsWith(join(stateDir, 'net')) || f === join(stateDir, 'accel-probe.json'), f).toBe(true);
    expect(readdirSync(join(ws, 'clusters/lab-3'))).toEqual(['vms']);
    expect(readdirSync(join(stateDir, 'vms'))).toEqual([String(foreignVmid)]);
    // The trust material went out first.
    const rec = join(ws, 'recovery/lab-3');
    const exported = readdirSync(rec).filter((f) => f.startsWith('exported-'));
    expect(exported).toHaveLength(1);
    expect(readFileSync(join(rec, exported[0]!, 'trust/root-ca.crt'), 'utf8')).toBe('a certificate\n');
    expect(kubedos(['status', specPath]).out).toMatch(/cluster lab-3: destroyed at \d{4}-/);

    const again = kubedos(['destroy', specPath, '--allow-destroy']);
    expect(again.status, again.out).toBe(0);
    expect(again.out).toMatch(/lab-3 destroyed on qemu-local/);
    expect(await theirs.status(foreignVmid)).toBe('running');

    // Once the foreign VM is gone too, nothing of either remains: no hub process, socket or run dir.
    await theirs.destroy(foreignVmid, { allowDestroy: true });
    for (const x of labPaths) expect(existsSync(x), x).toBe(false);
    expect(processesMentioning(ws)).toEqual([]);
    for (const x of labPaths) expect(processesMentioning(x)).toEqual([]);
  }, 300_000);
});
