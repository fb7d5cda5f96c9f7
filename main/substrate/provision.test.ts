import { describe, expect, it } from 'vitest';
import { plan as makePlan } from '../../common/plan/index';
import type { Plan, VmShape } from '../../common/plan/schema';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import type { ArtifactFile, GuestExecResult, Inventory, InventoryVm, PlannedStep, SubstrateDriver, UploadResult } from './driver';
import { SubstrateError } from './driver';
import { artifactVolid, decide, previewCommands, provision } from './provision';
import type { BootArtifact } from './qm';
import { QemuLocalDriver } from './qemu-local';

const parsed = parseSpec(TEMPLATES['lab-3'].text);
if (!parsed.spec) throw new Error('lab-3 does not parse');
const PLAN = makePlan(parsed.spec);
const plan = (): Plan => structuredClone(PLAN);

/** An in-memory substrate: records every call, keeps VMs as Proxmox-style configs. */
class FakeDriver implements SubstrateDriver {
  readonly kind = 'qemu' as const;
  readonly target = 'fake';
  readonly calls: string[] = [];
  readonly created = new Map<number, BootArtifact | undefined>();
  readonly stored = new Map<string, string>();
  vms: InventoryVm[] = [];

  async inventory(): Promise<Inventory> {
    this.calls.push('inventory');
    return { host: 'fake', node: 'fake', vms: structuredClone(this.vms), storages: [] };
  }
  async upload(a: ArtifactFile, storage: string): Promise<UploadResult> {
    this.calls.push(`upload ${a.name}`);
    const volid = artifactVolid(a, storage);
    const had = this.stored.get(volid) === a.sha256;
    this.stored.set(volid, a.sha256);
    return { volid, remotePath: `/fake/${a.name}`, action: had ? 'skipped' : 'uploaded', bytesSent: had ? 0 : a.sizeBytes };
  }
  async create(shape: VmShape, artifact: BootArtifact | undefined): Promise<void> {
    this.calls.push(`create ${shape.vmid} ${artifact?.volid ?? '-'}`);
    this.created.set(shape.vmid, artifact);
    this.vms.push({ vmid: shape.vmid, name: shape.name, tags: [...shape.tags].sort(), status: 'stopped', config: QemuLocalDriver.configOf(shape, artifact) });
  }
  async update(vmid: number): Promise<void> {
    this.calls.push(`update ${vmid}`);
  }
  async start(vmid: number): Promise<void> {
    this.calls.push(`start ${vmid}`);
    const vm = this.vms.find((v) => v.vmid === vmid);
    if (vm) vm.status = 'running';
  }
  async stop(vmid: number): Promise<void> {
    this.calls.push(`stop ${vmid}`);
  }
  async destroy(vmid: number): Promise<void> {
    this.calls.push(`destroy ${vmid}`);
    this.vms = this.vms.filter((v) => v.vmid !== vmid);
  }
  async status(): Promise<'running' | 'stopped' | 'absent'> {
    return 'absent';
  }
  async guestPing(): Promise<boolean> {
    return true;
  }
  async guestExec(): Promise<GuestExecResult> {
    return { exitCode: 0, stdout: '', stderr: '' };
  }
  async guestFileRead(): Promise<Buffer> {
    return Buffer.alloc(0);
  }
  async guestFileWrite(): Promise<void> {}
  preview(step: PlannedStep): string[] {
    if (step.kind === 'upload') return [`upload ${step.artifact.name}`];
    if (step.kind === 'create') return [`create ${step.shape.vmid} ${step.artifact?.volid ?? '-'}`];
    if (step.kind === 'start') return [`start ${step.vmid} ${step.artifact?.volid ?? '-'}`];
    return [step.kind];
  }
  async close(): Promise<void> {}
}

const art = (name: string, sha = name.padEnd(64, '0').replace(/[^0-9a-f]/g, 'a').slice(0, 64)): ArtifactFile => ({ path: `/build/${name}`, sha256: sha, sizeBytes: 100, kind: 'disk-image', name });
const byRole = (images: Record<string, ArtifactFile>) => (node: Plan['nodes'][number]): ArtifactFile | undefined => images[node.role];

describe('provision with per-role boot artifacts', () => {
  const p = plan();
  const roles = p.nodes.map((n) => n.role);

  it('lab-3 has three nodes in at least two roles (the premise of these tests)', () => {
    expect(p.nodes).toHaveLength(3);
    expect(new Set(roles).size).toBeGreaterThanOrEqual(2);
  });

  it('uploads each distinct artifact once and every VM boots its own role\'s image', async () => {
    const d = new FakeDriver();
    const images = Object.fromEntries([...new Set(roles)].map((r) => [r, art(`img-${r}.qcow2`)]));
    const result = await provision({ plan: p, driver: d, artifactFor: byRole(images), storage: 'local', allowDestroy: false });
    expect(d.calls.filter((c) => c.startsWith('upload')).sort()).toEqual([...new Set(roles)].map((r) => `upload img-${r}.qcow2`).sort());
    for (const n of p.nodes) expect(d.created.get(n.vmid)).toEqual({ kind: 'disk-image', volid: `local:import/img-${n.role}.qcow2` });
    expect(result.uploads).toHaveLength(new Set(roles).size);
    expect(result.upload).toEqual(result.uploads[0]);
    // uploads + creates + starts
    expect(result.changes).toBe(new Set(roles).size + 2 * p.nodes.length);
    // Uploads all come before any create.
    const lastUpload = Math.max(...d.calls.map((c, i) => (c.startsWith('upload') ? i : -1)));
    const firstCreate = d.calls.findIndex((c) => c.startsWith('create'));
    expect(lastUpload).toBeLessThan(firstCreate);
  });

  it('one artifact shared by every role is uploaded once', async () => {
    const d = new FakeDriver();
    const one = art('all.qcow2');
    await provision({ plan: p, driver: d, artifactFor: () => ({ ...one }), storage: 'local', allowDestroy: false });
    expect(d.calls.filter((c) => c.startsWith('upload'))).toEqual(['upload all.qcow2']);
    expect([...d.created.values()].every((b) => b?.volid === 'local:import/all.qcow2')).toBe(true);
  });

  it('artifact stays the fallback for nodes artifactFor has nothing for', async () => {
    const d = new FakeDriver();
    const first = p.nodes[0] as Plan['nodes'][number];
    await provision({ plan: p, driver: d, artifact: art('fallback.qcow2'), artifactFor: (n) => (n.name === first.name ? art('special.qcow2') : undefined), storage: 'local', allowDestroy: false });
    for (const n of p.nodes) expect(d.created.get(n.vmid)?.volid).toBe(n.name === first.name ? 'local:import/special.qcow2' : 'local:import/fallback.qcow2');
    expect(d.calls.filter((c) => c.startsWith('upload'))).toEqual(['upload special.qcow2', 'upload fallback.qcow2']);
  });

  it('a node that needs an artifact and has none: the error names node and role, nothing was uploaded or created', async () => {
    const d = new FakeDriver();
    const [first, ...rest] = p.nodes as [Plan['nodes'][number], ...Plan['nodes']];
    const err = await provision({ plan: p, driver: d, artifactFor: (n) => (n.name === first.name ? undefined : art(`img-${n.role}.qcow2`)), storage: 'local', allowDestroy: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SubstrateError);
    expect(err).toMatchObject({ code: 'no-artifact', node: first.name });
    expect((err as Error).message).toContain(`${first.name} (role ${first.role})`);
    for (const n of rest) expect((err as Error).message).not.toContain(`${n.name} (role`);
    expect(d.calls).toEqual(['inventory']);
  });

  it('two different files under one name are refused before anything changes', async () => {
    const d = new FakeDriver();
    const err = await provision({ plan: p, driver: d, artifactFor: (n) => art('same.qcow2', (n.name === p.nodes[0]?.name ? 'a' : 'b').repeat(64)), storage: 'local', allowDestroy: false }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'artifact-clash' });
    expect(d.calls).toEqual(['inventory']);
  });

  it('a converged substrate needs no artifact at all: artifactFor is not consulted, nothing uploaded', async () => {
    const d = new FakeDriver();
    const images = Object.fromEntries([...new Set(roles)].map((r) => [r, art(`img-${r}.qcow2`)]));
    await provision({ plan: p, driver: d, artifactFor: byRole(images), storage: 'local', allowDestroy: false });
    d.calls.length = 0;
    const again = await provision({ plan: p, driver: d, artifactFor: () => { throw new Error('not needed'); }, storage: 'local', allowDestroy: false });
    expect(again.changes).toBe(0);
    expect(again.uploads).toEqual([]);
    expect(again.upload).toBeUndefined();
    expect(d.calls).toEqual(['inventory']);
  });

  it('only the node being created needs (and gets) an artifact', async () => {
    const d = new FakeDriver();
    const images = Object.fromEntries([...new Set(roles)].map((r) => [r, art(`img-${r}.qcow2`)]));
    await provision({ plan: p, driver: d, artifactFor: byRole(images), storage: 'local', allowDestroy: false });
    const gone = p.nodes[2] as Plan['nodes'][number];
    d.vms = d.vms.filter((v) => v.vmid !== gone.vmid);
    d.calls.length = 0;
    const r = await provision({ plan: p, driver: d, artifactFor: (n) => (n.name === gone.name ? images[n.role] : undefined), storage: 'local', allowDestroy: false });
    expect(r.decisions.find((x) => x.node === gone.name)?.action).toBe('create');
    expect(d.calls).toEqual(['inventory', `upload img-${gone.role}.qcow2`, `create ${gone.vmid} local:import/img-${gone.role}.qcow2`, `start ${gone.vmid}`]);
    expect(r.uploads[0]?.action).toBe('skipped');
    expect(r.changes).toBe(2);
  });

  it('only: one node\'s plan slot is created from another image; the other VMs are neither compared, started nor destroyed', async () => {
    const d = new FakeDriver();
    const images = Object.fromEntries([...new Set(roles)].map((r) => [r, art(`img-${r}.qcow2`)]));
    await provision({ plan: p, driver: d, artifactFor: byRole(images), storage: 'local', allowDestroy: false });
    const [stopped, , gone] = p.nodes as [Plan['nodes'][number], Plan['nodes'][number], Plan['nodes'][number]];
    d.vms = d.vms.filter((v) => v.vmid !== gone.vmid);
    d.vms.find((v) => v.vmid === stopped.vmid)!.status = 'stopped';
    // An owned VM the plan no longer has: a full provision refuses (it would destroy it) without allowDestroy.
    d.vms.push({ ...structuredClone(d.vms[0]!), vmid: 9999, name: 'left-over' });
    d.calls.length = 0;
    const next = art(`next-${gone.role}.qcow2`);
    const r = await provision({ plan: p, driver: d, artifactFor: (n) => (n.role === gone.role ? next : undefined), storage: 'local', allowDestroy: false, only: [gone.name] });
    expect(r.decisions.map((x) => `${x.node} ${x.action}${x.start ? ' + start' : ''}`)).toEqual([`${gone.name} create + start`]);
    expect(d.calls).toEqual(['inventory', `upload next-${gone.role}.qcow2`, `create ${gone.vmid} local:import/next-${gone.role}.qcow2`, `start ${gone.vmid}`]);
    expect(d.vms.find((v) => v.vmid === stopped.vmid)?.status).toBe('stopped');
    expect(d.vms.some((v) => v.vmid === 9999)).toBe(true);
  });

  it('previewCommands: each distinct upload once, each node creating from its own volid', () => {
    const d = new FakeDriver();
    const images = Object.fromEntries([...new Set(roles)].map((r) => [r, art(`img-${r}.qcow2`)]));
    const decisions = decide(p, { host: 'fake', node: 'fake', vms: [], storages: [] }, { allowDestroy: false, start: true });
    const out = previewCommands(p, decisions, d, art('fallback.qcow2'), 'local', byRole(images));
    expect(out.get('(artifacts)')?.sort()).toEqual([...new Set(roles)].map((r) => `upload img-${r}.qcow2`).sort());
    for (const n of p.nodes) expect(out.get(`${n.name} (VMID ${n.vmid}): create + start`)).toEqual([`create ${n.vmid} local:import/img-${n.role}.qcow2`, `start ${n.vmid} local:import/img-${n.role}.qcow2`]);
    // Without artifactFor the single artifact is used for all, as before.
    const single = previewCommands(p, decisions, d, art('fallback.qcow2'), 'local');
    expect(single.get('(artifacts)')).toEqual(['upload fallback.qcow2']);
  });
});
