import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../../main/testing/temp-dir';
import { parse as parseYaml } from 'yaml';
import { parseSpec } from '../spec/parse';
import { TEMPLATES } from '../spec/templates/index';
import { syntheticSpec, templateObject, templateWithSources, toYaml } from '../testing/specs';
import { diffPlan } from './diff';
import { changesInPlace } from './in-place';
import { nodeConfig, NodeConfig } from './node-config';
import { hubOf, plan, planJson } from './plan';
import { Plan } from './schema';

afterAll(removeTempDirs);

function planOf(text: string) {
  const r = parseSpec(text);
  if (!r.spec) throw new Error(JSON.stringify(r.diagnostics));
  return plan(r.spec);
}
const ref = () => planOf(TEMPLATES['reference-16'].text);

describe('plan: addressing', () => {
  const p = ref();
  it('has 16 nodes with distinct VMIDs, LAN IPs, MACs and /32s on each plane', () => {
    expect(p.nodes).toHaveLength(16);
    type Node = Plan['nodes'][number];
    const getters: ((n: Node) => string | number)[] = [(n: Plan['nodes'][number]) => n.vmid, (n: Plan['nodes'][number]) => n.lan.address, (n: Plan['nodes'][number]) => n.lan.mac, (n: Plan['nodes'][number]) => n.planes.wg1.address, (n: Plan['nodes'][number]) => n.planes.wg2.address, (n: Plan['nodes'][number]) => n.planes.wg3.address];
    for (const get of getters) {
      expect(new Set(p.nodes.map(get)).size).toBe(16);
    }
    expect(Plan.safeParse(p).success).toBe(true);
  });
  it('hubOf names the master, and refuses a plan without one', () => {
    expect(hubOf(p).name).toBe(p.nodes.find((n) => n.role === 'master')!.name);
    expect(() => hubOf({ ...p, nodes: p.nodes.filter((n) => !n.hub) })).toThrow(/has no hub node: a cluster needs exactly one master/);
  });

  it('makes the master the hub at .1 of every plane', () => {
    const master = p.nodes.find((n) => n.role === 'master')!;
    expect(master.hub).toBe(true);
    expect([master.planes.wg1.address, master.planes.wg2.address, master.planes.wg3.address]).toEqual(['10.101.0.1/32', '10.102.0.1/32', '10.103.0.1/32']);
    expect(p.planes.every((pl) => pl.hub === 'master')).toBe(true);
  });
  it('derives plane host offsets from the VMID, so inserting a node does not renumber the others', () => {
    const cp1 = p.nodes.find((n) => n.name === 'cp-1')!;
    expect(cp1.planes.wg3.address).toBe(`10.103.0.${2 + (2007 - 2000)}/32`);
    const spec = templateObject('reference-16');
    spec.spec.nodes.inventory.splice(5, 0, { ...spec.spec.nodes.inventory[10], name: 'w-9', vmid: 2050 });
    const p2 = planOf(toYaml(spec));
    expect(p2.nodes.find((n) => n.name === 'cp-1')!.planes.wg3.address).toBe(cp1.planes.wg3.address);
  });
  it('puts nodes in the blue half by default and green when asked', () => {
    expect(p.lan).toMatchObject({ cidr: '10.100.0.0/20', blue: '10.100.0.0/21', green: '10.100.8.0/21', active: 'blue' });
    expect(p.nodes.find((n) => n.name === 'master')!.lan.address).toBe('10.100.0.16');
    const spec = templateObject('reference-16');
    spec.spec.nodes.inventory[10].color = 'green';
    const w1 = planOf(toYaml(spec)).nodes.find((n) => n.name === 'w-1')!;
    expect(w1).toMatchObject({ color: 'green', lan: { address: '10.100.8.26', prefix: 20 } });
  });
  it('gives locally administered unicast MACs', () => {
    for (const n of p.nodes) {
      const first = parseInt(n.lan.mac.slice(0, 2), 16);
      expect(first & 0b10).toBe(0b10);
      expect(first & 0b01).toBe(0);
      expect(n.vm.nics[0]!.mac).toBe(n.lan.mac);
    }
  });
  it('gives spokes one hub peer whose AllowedIPs cover the plane and the planes policy links to it', () => {
    const w1 = p.nodes.find((n) => n.name === 'w-1')!;
    expect(w1.planes.wg1.peers).toEqual([
      { node: 'master', publicKeyRef: 'enrollment://reference-16/master/wg1', endpoint: '10.100.0.16:51821', allowedIps: ['10.101.0.0/24', '10.103.0.0/24'], persistentKeepalive: 25 },
    ]);
    expect(w1.planes.wg3.peers[0]!.allowedIps).toEqual(['10.103.0.0/24', '10.101.0.0/24', '10.102.0.0/24']);
    expect(w1.planes.wg3.sourceRoutes.destinations).toEqual(w1.planes.wg3.peers[0]!.allowedIps);
    const hub = p.nodes.find((n) => n.hub)!;
    expect(hub.planes.wg2.peers).toHaveLength(15);
    expect(hub.planes.wg2.peers.every((peer) => peer.allowedIps.length === 1 && peer.allowedIps[0]!.endsWith('/32') && !peer.endpoint)).toBe(true);
  });
  it('builds the seed VM shape: q35, OVMF with Secure Boot keys, TPM 2.0, guest agent, ownership tags', () => {
    const vm = p.nodes.find((n) => n.name === 'lb-2')!.vm;
    expect(vm).toMatchObject({ machine: 'q35', bios: 'ovmf', efidisk: { efitype: '4m', preEnrolledKeys: true }, tpm: { version: 'v2.0' }, agent: { enabled: true } });
    expect(vm.tags).toEqual(['artifact-0.1.0', 'cluster-reference-16', 'kubedos', 'reference', 'role-lb']);
    expect(vm.nics[0]).toMatchObject({ model: 'virtio', bridge: 'vmbr0', vlan: 10 });
  });
  it('keeps secrets as references only', () => {
    const text = planJson(p);
    expect(text).not.toMatch(/PRIVATE KEY|privateKey"\s*:\s*"[A-Za-z0-9+/]{43}=/);
    expect(p.secretRefs.every((s) => /^[a-z-]+:\/\//.test(s.ref))).toBe(true);
  });
  it('writes an Ansible inventory grouped by role with wg1 addresses', () => {
    expect(p.ansibleInventory).toContain('role_control_plane:');
    expect(p.ansibleInventory).toContain('ansible_host: 10.101.0.9');
    expect(p.saltRoster).toContain('host: 10.101.0.1');
  });
  it('hands each node its own config', () => {
    const c = nodeConfig(p, 'w-2');
    expect(NodeConfig.safeParse(c).success).toBe(true);
    expect(c.node.name).toBe('w-2');
    expect(c.hub.lanAddress).toBe('10.100.0.16');
    expect(() => nodeConfig(p, 'nope')).toThrow(/not in the plan/);
  });
});

describe('plan: determinism', () => {
  it('gives byte-identical JSON for the same spec, whatever the key order of the input', () => {
    const a = planJson(ref());
    const obj = templateObject('reference-16');
    const reordered = Object.fromEntries(Object.entries(obj).reverse());
    reordered.spec = Object.fromEntries(Object.entries(obj.spec).reverse());
    expect(planJson(planOf(toYaml(reordered)))).toBe(a);
    expect(planJson(ref())).toBe(a);
  });
  it('gives the same bytes in a different process', () => {
    const dir = tempDir('kubedos-plan-');
    const spec = join(dir, 'r.yaml');
    // With sources declared: `kubedos plan` refuses reference-16 alone (completeness preflight).
    const text = toYaml(templateWithSources('reference-16'));
    writeFileSync(spec, text);
    const out = execFileSync(process.execPath, [join(process.cwd(), 'bin/kubedos.mjs'), 'plan', spec, '--json'], { encoding: 'utf8', env: { ...process.env, TZ: 'Pacific/Chatham', LANG: 'tr_TR.UTF-8' } });
    expect(out).toBe(planJson(planOf(text)));
  });
  it('scales to 1,000 nodes with unique addresses', () => {
    const p = planOf(toYaml(syntheticSpec(1000)));
    expect(p.nodes).toHaveLength(1000);
    expect(new Set(p.nodes.map((n) => n.lan.mac)).size).toBe(1000);
    expect(new Set(p.nodes.map((n) => n.planes.wg3.address)).size).toBe(1000);
  });
});

describe('diffPlan', () => {
  const before = ref();
  it('keeps everything when nothing changed', () => {
    const d = diffPlan(before, ref());
    expect(d.summary).toEqual({ create: 0, update: 0, replace: 0, keep: 16, destroy: 0 });
    expect(d.changes.every((c) => c.reasons.length === 0)).toBe(true);
  });
  it('says create, update (memory, cores: in place), replace (why), keep and destroy', () => {
    const spec = templateObject('reference-16');
    spec.spec.nodes.inventory[10].memoryMiB = 32768; // w-1 more memory -> qm set, in place
    spec.spec.nodes.inventory[11].cpu += 2; // w-2 more cores -> in place too
    spec.spec.nodes.inventory[12].disks[0].sizeGiB += 10; // w-3 disk -> re-created
    spec.spec.nodes.inventory.splice(15, 1); // lb-3 removed -> destroy
    spec.spec.nodes.inventory.push({ ...spec.spec.nodes.inventory[11], name: 'w-4', vmid: 2020 }); // created
    const d = diffPlan(before, planOf(toYaml(spec)));
    const by = Object.fromEntries(d.changes.map((c) => [c.node, c]));
    expect(by['w-1']).toMatchObject({ action: 'update', reasons: ['memory 16384 -> 32768 (in place, no re-create)'] });
    expect(by['w-2']).toMatchObject({ action: 'update', reasons: [expect.stringMatching(/^cores \d+ -> \d+ \(in place/)] });
    expect(by['w-3']).toMatchObject({ action: 'replace', reasons: [expect.stringMatching(/^disks /)] });
    expect(by['lb-3']!.action).toBe('destroy');
    expect(by['w-4']!.action).toBe('create');
    expect(by['cp-1']!.action).toBe('keep');
    expect(d.summary).toEqual({ create: 1, update: 2, replace: 1, keep: 12, destroy: 1 });
  });
  it('one rule for what changes in place: memory and cores yes, sockets and disks no', () => {
    expect(changesInPlace('memory')).toBe(true);
    expect(changesInPlace('cores')).toBe(true);
    expect(changesInPlace('sockets')).toBe(false);
    expect(changesInPlace('scsi0')).toBe(false);
  });
  it('keeps VMs but asks to re-converge when only the policy changes', () => {
    const spec = templateObject('reference-16');
    spec.spec.networking.policy.allow[0].ports.push('10250/tcp');
    const d = diffPlan(before, planOf(toYaml(spec)));
    expect(d.summary.replace).toBe(0);
    expect(d.changes.find((c) => c.node === 'master')!.reasons).toContain('re-converge: firewall rules changed');
    expect(d.cluster).toContain('inter-plane policy changed');
  });
});

describe('plan: Ansible inventory groups', () => {
  it('names the etcd members and the Prometheus host as groups (external etcd -> etcd nodes)', () => {
    const inv = ref().ansibleInventory;
    const groups = parseYaml(inv).all.children;
    expect(Object.keys(groups.etcd_members.hosts)).toEqual(['etcd-1', 'etcd-2', 'etcd-3']);
    expect(Object.keys(groups.prometheus_host.hosts)).toEqual(['prometheus']);
  });
  it('stacked etcd -> control planes; no prometheus node -> the master', () => {
    const groups = parseYaml(planOf(TEMPLATES['lab-3'].text).ansibleInventory).all.children;
    expect(Object.keys(groups.etcd_members.hosts)).toEqual(['cp-1']);
    expect(Object.keys(groups.prometheus_host.hosts)).toEqual(['master']);
  });
});
