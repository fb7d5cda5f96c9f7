// The lifecycle's pure decisions (order, what a destroy may touch) and the destroy service's
// behaviour on bad input, against an in-memory substrate: refused without allowDestroy, a
// foreign VM inside the range never touched, an interruption halfway reported and finished by a
// rerun, the trust material exported before the workspace goes, the journal record status reads.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import type { Inventory, InventoryVm, StoredImage, SubstrateDriver } from '../substrate/driver';
import { SubstrateError } from '../substrate/driver';
import { readJournal } from '../pipeline/journal';
import { imageFileName, imagePrefix, ownsImageFile } from '../../common/plan/ownership';
import { decideDestroy, decideImages, startOrder, stopOrder } from './decide';
import { describeLifecycle, lastLifecycle, recoveryDir } from './record';
import { destroyCluster, startCluster, stopCluster } from './service';

const text = TEMPLATES['lab-3'].text;
const p = plan(parseSpec(text).spec!);
const tags = ['kubedos', 'cluster-lab-3', 'artifact-x'];
const vm = (vmid: number, name: string, t = tags, status: InventoryVm['status'] = 'running'): InventoryVm => ({ vmid, name, tags: [...t].sort(), status });

describe('lifecycle order', () => {
  it('starts the hub first and stops it last', () => {
    expect(startOrder(p).map((n) => n.name)).toEqual(['master', 'cp-1', 'w-1']);
    expect(stopOrder(p).map((n) => n.name)).toEqual(['w-1', 'cp-1', 'master']);
  });
});

describe('decideDestroy', () => {
  const [m, c, w] = p.nodes.map((n) => n.vmid) as [number, number, number];
  const end = p.substrate.vmidRange.end;
  it('destroys the owned VMs in stop order, an owned VM the plan no longer names first', () => {
    const d = decideDestroy(p, { vms: [vm(m, 'master'), vm(c, 'cp-1'), vm(w, 'w-1'), vm(end, 'old-node')] });
    expect(d.destroy.map((x) => [x.vmid, x.inPlan])).toEqual([[end, false], [w, true], [c, true], [m, true]]);
    expect(d.foreign).toEqual([]);
    expect(d.absent).toEqual([]);
  });
  it('never touches a VM inside the range without the cluster tags, even one named like a node', () => {
    const d = decideDestroy(p, { vms: [vm(m, 'master'), vm(w, 'w-1', ['kubedos', 'cluster-other']), vm(end - 1, 'someone', []), vm(end + 1, 'outside')] });
    expect(d.destroy.map((x) => x.vmid)).toEqual([m]);
    expect(d.foreign.map((x) => x.vmid)).toEqual([w, end - 1]);
    expect(d.foreign[0]!.reason).toMatch(/without the tag cluster-lab-3: not this cluster's/);
    expect(d.absent).toEqual(['cp-1']);
  });
  it('nothing to destroy on an empty target', () => {
    expect(decideDestroy(p, { vms: [] })).toEqual({ destroy: [], foreign: [], absent: ['w-1', 'cp-1', 'master'] });
  });
});

describe('the images a destroy removes', () => {
  const sha = 'ab'.repeat(32);
  const img = (name: string, usedBy: StoredImage['usedBy'] = [], partial = false): StoredImage => ({ volid: `local:import/${name}`, path: `/var/lib/vz/import/${name}${partial ? '.kubedos-part' : ''}`, sizeBytes: 10, partial, usedBy });
  it('names an image after its cluster so that no other cluster\'s prefix claims it', () => {
    const name = imageFileName('lab-3', ['2026.12.0', 'worker'], sha, 'disk-image');
    expect(name).toBe('kubedos_lab-3_2026.12.0_worker_abababababab.qcow2');
    expect(ownsImageFile(name, 'lab-3')).toBe(true);
    expect(ownsImageFile(name, 'lab')).toBe(false);
    expect(imageFileName('lab', ['v 1/2'], sha, 'iso')).toBe('kubedos_lab_v-1-2_abababababab.iso');
    expect(imagePrefix('lab')).toBe('kubedos_lab_');
  });
  it('removes ours (and interrupted uploads) unless a VM that stays uses it; never another cluster\'s', () => {
    const d = decideImages(
      'lab-3',
      [img('kubedos_lab-3_v1_worker_aaaaaaaaaaaa.qcow2', [{ vmid: 3002, name: 'w-1' }]), img('kubedos_lab-3_v1_master_bbbbbbbbbbbb.qcow2', [], true), img('kubedos_lab-3_v1_aaaaaaaaaaaa.iso', [{ vmid: 3099, name: 'stranger' }, { vmid: 3000, name: 'master' }]), img('kubedos_lab_v1_worker_aaaaaaaaaaaa.qcow2'), img('kubedos-lab-3-v1-worker-aaaaaaaaaaaa.qcow2')],
      new Set([3000, 3001, 3002]),
    );
    expect(d.remove.map((i) => [i.volid, i.partial])).toEqual([
      ['local:import/kubedos_lab-3_v1_worker_aaaaaaaaaaaa.qcow2', false],
      ['local:import/kubedos_lab-3_v1_master_bbbbbbbbbbbb.qcow2', true],
    ]);
    expect(d.keep).toEqual([{ volid: 'local:import/kubedos_lab-3_v1_aaaaaaaaaaaa.iso', usedBy: ['3099 stranger'] }]);
  });
});

/** An in-memory substrate: enough of the driver for stop and destroy, with a failure to inject. */
class FakeDriver {
  readonly kind = 'proxmox' as const;
  readonly target = 'proxmox://fake';
  vms = new Map<number, InventoryVm>();
  unreachable = false;
  failDestroyOf: number | undefined;
  destroyed: number[] = [];
  async inventory(): Promise<Inventory> {
    if (this.unreachable) throw new SubstrateError('connect', 'connect ECONNREFUSED 10.0.0.1:22', { hint: 'is the host up?' });
    return { host: this.target, node: 'pve', vms: [...this.vms.values()].sort((a, b) => a.vmid - b.vmid), storages: [] };
  }
  async status(vmid: number) {
    return this.vms.get(vmid)?.status === 'running' ? 'running' : this.vms.has(vmid) ? 'stopped' : 'absent';
  }
  async guestPing() {
    return true;
  }
  async guestExec(vmid: number) {
    const v = this.vms.get(vmid)!;
    v.status = 'stopped';
    return { exitCode: 0, stdout: '', stderr: '' };
  }
  async stop(vmid: number) {
    const v = this.vms.get(vmid);
    if (v) v.status = 'stopped';
  }
  async destroy(vmid: number, o: { allowDestroy: boolean }) {
    if (!o.allowDestroy) throw new Error('not allowed');
    if (vmid === this.failDestroyOf) throw new SubstrateError('remote-command', `qm destroy ${vmid} failed: connection lost`);
    this.vms.delete(vmid);
    this.destroyed.push(vmid);
  }
  images: StoredImage[] = [];
  failImageRemoval = false;
  async storedImages(storage: string, prefix: string) {
    if (this.unreachable) throw new SubstrateError('connect', 'connect ECONNREFUSED 10.0.0.1:22');
    return this.images.filter((i) => i.volid.startsWith(`${storage}:`) && i.volid.slice(i.volid.indexOf('/') + 1).startsWith(prefix)).map((i) => ({ ...i, usedBy: i.usedBy.filter((u) => this.vms.has(u.vmid)) }));
  }
  async removeImage(i: StoredImage) {
    if (this.failImageRemoval) throw new SubstrateError('remote-command', `pvesm free ${i.volid} failed: connection lost`);
    this.images = this.images.filter((x) => x.volid !== i.volid);
  }
  async close() {}
}

describe('destroy and stop (in-memory substrate)', () => {
  let root: string;
  let fake: FakeDriver;
  const ws = () => join(root, 'clusters/lab-3');
  const req = () => ({ specText: text, target: { kind: 'proxmox' as const, host: 'fake' }, env: { KUBEDOS_WORKSPACE: root }, by: 'test', driver: fake as unknown as SubstrateDriver });
  const foreignVmid = p.substrate.vmidRange.end;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'kd-lifecycle-'));
    mkdirSync(join(ws(), 'trust'), { recursive: true });
    mkdirSync(join(ws(), 'secrets'), { recursive: true });
    writeFileSync(join(ws(), 'trust/root-ca.crt'), 'CERT');
    writeFileSync(join(ws(), 'secrets/ca.age'), 'SECRET');
    writeFileSync(join(ws(), 'journal.jsonl'), `${JSON.stringify({ type: 'run', state: 'started', stages: ['provision'], pipeline: 'deploy', runId: 'd1', seq: 0, time: '2026-12-01T10:00:00.000Z' })}\n`);
    fake = new FakeDriver();
    for (const n of p.nodes) fake.vms.set(n.vmid, vm(n.vmid, n.name));
    fake.vms.set(foreignVmid, vm(foreignVmid, 'not-ours', ['kubedos', 'cluster-other']));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('without allowDestroy: refused, nothing removed, says what would go', async () => {
    const o = await destroyCluster({ ...req(), allowDestroy: false, keepWorkspace: false, dryRun: false });
    expect(o.ok).toBe(false);
    expect(o.error?.message).toMatch(/refusing to destroy lab-3 without --allow-destroy; nothing was removed/);
    expect(o.notDone).toEqual(expect.arrayContaining([`VM ${p.nodes[0]!.vmid} master (running)`, ws()]));
    expect(o.preview.foreign.map((f) => f.vmid)).toEqual([foreignVmid]);
    expect(fake.destroyed).toEqual([]);
    expect(existsSync(join(ws(), 'trust/root-ca.crt'))).toBe(true);
  });

  it('dry run: lists the same, changes nothing', async () => {
    const o = await destroyCluster({ ...req(), allowDestroy: true, keepWorkspace: false, dryRun: true });
    expect(o.ok).toBe(true);
    expect(o.preview.vms.map((v) => v.name)).toEqual(['w-1', 'cp-1', 'master']);
    expect(fake.destroyed).toEqual([]);
    expect(existsSync(ws())).toBe(true);
  });

  it('hypervisor unreachable: nothing removed, the workspace kept, a rerun is the way on', async () => {
    fake.unreachable = true;
    const o = await destroyCluster({ ...req(), allowDestroy: true, keepWorkspace: false, dryRun: false });
    expect(o.ok).toBe(false);
    expect(o.error?.message).toMatch(/could not read the VMs on proxmox:\/\/fake: connect ECONNREFUSED .*nothing was removed/);
    expect(existsSync(join(ws(), 'trust/root-ca.crt'))).toBe(true);
  });

  it('interrupted halfway: says what went and what is left; a rerun finishes; the foreign VM survives; status reads "destroyed at"', async () => {
    const [m, c, w] = p.nodes.map((n) => n.vmid) as [number, number, number];
    fake.failDestroyOf = c;
    const first = await destroyCluster({ ...req(), allowDestroy: true, keepWorkspace: false, dryRun: false });
    expect(first.ok).toBe(false);
    expect(first.did).toEqual(expect.arrayContaining([`VM ${w} w-1 with its disks and TPM state`]));
    expect(first.notDone).toEqual([`VM ${c} cp-1`, `VM ${m} master`, `workspace ${ws()}`]);
    expect(first.error?.message).toMatch(/removed 2: exported .*VM \d+ w-1.*still there 3/);
    expect(first.error?.hint).toMatch(/run kubedos destroy --allow-destroy again to finish/);
    expect(existsSync(ws())).toBe(true);
    // The trust material went out first and stays out.
    const rdir = recoveryDir('lab-3', { KUBEDOS_WORKSPACE: root });
    const exported = readdirSync(rdir).filter((f) => f.startsWith('exported-'));
    expect(exported).toHaveLength(1);
    expect(readFileSync(join(rdir, exported[0]!, 'secrets/ca.age'), 'utf8')).toBe('SECRET');

    fake.failDestroyOf = undefined;
    const second = await destroyCluster({ ...req(), allowDestroy: true, keepWorkspace: false, dryRun: false });
    expect(second.ok).toBe(true);
    expect(fake.destroyed).toEqual([w, c, m]);
    expect([...fake.vms.keys()]).toEqual([foreignVmid]);
    expect(existsSync(ws())).toBe(false);
    const rec = lastLifecycle(readJournal(join(rdir, 'journal.jsonl')));
    expect(rec).toMatchObject({ action: 'destroy', ok: true });
    expect(describeLifecycle(rec!)).toMatch(/^destroyed at \d{4}-/);
    // The deploy history moved along with it.
    expect(readJournal(join(rdir, 'journal.jsonl')).some((e) => e.type === 'run' && e.pipeline === 'deploy')).toBe(true);

    // And again: nothing left to do, said so.
    const third = await destroyCluster({ ...req(), allowDestroy: true, keepWorkspace: false, dryRun: false });
    expect(third.ok).toBe(true);
    expect(third.preview.neverDeployed).toBe(true);
    expect(third.error?.message).toMatch(/never deployed here \(or is already destroyed\)/);
  });

  it('removes the images it uploaded, keeps one another VM uses, and finishes an interrupted removal on a rerun', async () => {
    const ours = (name: string, usedBy: StoredImage['usedBy'] = []): StoredImage => ({ volid: `local:import/${name}`, path: `/x/${name}`, sizeBytes: 2048, partial: false, usedBy });
    fake.images = [
      ours('kubedos_lab-3_v1_worker_aaaaaaaaaaaa.qcow2', [{ vmid: p.nodes[2]!.vmid, name: 'w-1' }]),
      ours('kubedos_lab-3_v1_aaaaaaaaaaaa.iso', [{ vmid: foreignVmid, name: 'not-ours' }]),
      ours('kubedos_lab_v1_worker_aaaaaaaaaaaa.qcow2'),
    ];
    const dry = await destroyCluster({ ...req(), allowDestroy: true, keepWorkspace: false, dryRun: true });
    expect(dry.preview.images.map((i) => i.volid)).toEqual(['local:import/kubedos_lab-3_v1_worker_aaaaaaaaaaaa.qcow2']);
    expect(dry.preview.keptImages).toEqual([{ volid: 'local:import/kubedos_lab-3_v1_aaaaaaaaaaaa.iso', usedBy: [`${foreignVmid} not-ours`] }]);
    expect(dry.notDone).toContain('image local:import/kubedos_lab-3_v1_worker_aaaaaaaaaaaa.qcow2');

    fake.failImageRemoval = true;
    const first = await destroyCluster({ ...req(), allowDestroy: true, keepWorkspace: false, dryRun: false });
    expect(first.ok).toBe(false);
    expect(first.error?.message).toMatch(/destroy: image local:import\/kubedos_lab-3_v1_worker_aaaaaaaaaaaa.qcow2: pvesm free .* failed/);
    expect(first.notDone).toEqual(['image local:import/kubedos_lab-3_v1_worker_aaaaaaaaaaaa.qcow2', `workspace ${ws()}`]);
    expect([...fake.vms.keys()]).toEqual([foreignVmid]);
    expect(existsSync(ws())).toBe(true);

    fake.failImageRemoval = false;
    const second = await destroyCluster({ ...req(), allowDestroy: true, keepWorkspace: false, dryRun: false });
    expect(second.ok).toBe(true);
    expect(second.did).toContain('image local:import/kubedos_lab-3_v1_worker_aaaaaaaaaaaa.qcow2');
    expect(fake.images.map((i) => i.volid)).toEqual(['local:import/kubedos_lab-3_v1_aaaaaaaaaaaa.iso', 'local:import/kubedos_lab_v1_worker_aaaaaaaaaaaa.qcow2']);
    expect(existsSync(ws())).toBe(false);
  });

  it('--keep-workspace keeps the workspace but starts its journal over', async () => {
    const o = await destroyCluster({ ...req(), allowDestroy: true, keepWorkspace: true, dryRun: false });
    expect(o.ok).toBe(true);
    expect(existsSync(join(ws(), 'trust/root-ca.crt'))).toBe(true);
    const events = readJournal(join(ws(), 'journal.jsonl'));
    expect(events.some((e) => e.type === 'run' && e.pipeline === 'deploy')).toBe(false);
    expect(lastLifecycle(events)).toMatchObject({ action: 'destroy', ok: true });
    expect(readdirSync(ws()).some((f) => f.startsWith('journal.before-destroy-'))).toBe(true);
  });

  it('stop: spokes first, the hub last, journaled as "stopped at"', async () => {
    const order: number[] = [];
    const exec = fake.guestExec.bind(fake);
    fake.guestExec = async (vmid: number) => (order.push(vmid), exec(vmid));
    const o = await stopCluster({ ...req(), timeoutS: 5 });
    expect(o.ok).toBe(true);
    expect(order).toEqual(stopOrder(p).map((n) => n.vmid));
    expect(fake.vms.get(foreignVmid)!.status).toBe('running');
    expect(describeLifecycle(lastLifecycle(readJournal(join(ws(), 'journal.jsonl')))!)).toMatch(/^stopped at /);
  });

  it('stop of a cluster never deployed says so', async () => {
    rmSync(ws(), { recursive: true, force: true });
    const o = await stopCluster(req());
    expect(o.ok).toBe(false);
    expect(o.error?.message).toMatch(/lab-3 was never deployed here: no workspace at/);
  });
});

describe('start (in-memory substrate)', () => {
  it('a node fenced at the hub (revoked: a drill or a replace-based upgrade interrupted before destroying it) is started but not waited for: neither its planes nor its etcd', async () => {
    const root = mkdtempSync(join(tmpdir(), 'kd-lifecycle-start-'));
    try {
      const ws = join(root, 'clusters/lab-3');
      mkdirSync(ws, { recursive: true });
      writeFileSync(join(ws, 'journal.jsonl'), `${JSON.stringify({ type: 'run', state: 'started', stages: ['provision'], pipeline: 'deploy', runId: 'd1', seq: 0, time: '2026-12-01T10:00:00.000Z' })}\n`);
      const hub = p.nodes.find((n) => n.hub)!;
      const vmidOf = (name: string): number => p.nodes.find((n) => n.name === name)!.vmid;
      const nowS = 1_800_000_000;
      const asked: string[] = [];
      const vms = new Map(p.nodes.map((n) => [n.vmid, vm(n.vmid, n.name, tags, 'stopped')]));
      // The hub: cp-1 revoked (fenced), so its plane peers are gone; w-1's are fresh.
      const peer = { publicKey: 'k', endpoint: '192.0.2.1:51820', allowedIps: [], latestHandshake: nowS - 5 };
      const planes = Object.fromEntries((['wg1', 'wg2', 'wg3'] as const).map((pl) => [pl, { up: true, publicKey: 'hubkey', address: hub.planes[pl].address, peers: [peer] }]));
      const driver = {
        kind: 'proxmox' as const,
        target: 'proxmox://fake',
        inventory: async (): Promise<Inventory> => ({ host: 'proxmox://fake', node: 'pve', vms: [...vms.values()], storages: [] }),
        status: async (vmid: number) => vms.get(vmid)!.status,
        start: async (vmid: number) => void (vms.get(vmid)!.status = 'running'),
        guestPing: async () => true,
        guestExec: async (vmid: number, argv: readonly string[]) => {
          const name = p.nodes.find((n) => n.vmid === vmid)!.name;
          asked.push(`${name}: ${argv.join(' ')}`);
          const out = (stdout: string) => ({ exitCode: 0, stdout, stderr: '' });
          if (argv[0]!.endsWith('kubedos-enroll-hub')) return out(JSON.stringify({ enrolled: ['cp-1', 'w-1'], revoked: ['cp-1'], window: null }));
          if (argv[0]!.endsWith('kubedos-planes')) return out(JSON.stringify({ node: hub.name, hub: true, nftables: true, planes }));
          if (argv[0] === 'date') return out(`${nowS}\n`);
          return { exitCode: 1, stdout: '', stderr: `not expected here: ${argv.join(' ')}` };
        },
        close: async () => undefined,
      };
      const o = await startCluster({ specText: text, target: { kind: 'proxmox', host: 'fake' }, env: { KUBEDOS_WORKSPACE: root }, by: 'test', driver: driver as unknown as SubstrateDriver, timeoutS: 5 });
      expect(o.error?.message, o.error?.hint).toBeUndefined();
      expect(o.ok).toBe(true);
      expect([...vms.values()].every((v) => v.status === 'running')).toBe(true);
      expect(o.did).toContainEqual(expect.stringMatching(/^fenced at the hub, not waited for: cp-1 \(its planes and etcd are out on purpose/));
      expect(o.did).toContainEqual('planes back: every peer not fenced has a fresh handshake with the hub on wg1, wg2, wg3');
      // cp-1 is lab-3's etcd member: not asked for its health.
      expect(asked.filter((a) => a.startsWith('cp-1:'))).toEqual([]);
      expect(vmidOf('cp-1')).toBeGreaterThan(0);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
