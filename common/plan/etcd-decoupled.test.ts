// lab-3 turned Kubernetes off (it has no upstream sources). etcd must still be planned exactly as
// before: the files below were written from the plan of the templates BEFORE etcd membership was
// decoupled from kubernetes.enabled, and the only differences allowed are the Kubernetes ones.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { parseSpec } from '../spec/parse';
import { TEMPLATES } from '../spec/templates/index';
import { sha256Hex } from '../canonical';
import { plan } from './plan';
import type { Plan } from './schema';

interface Snapshot {
  ansibleInventory: string;
  saltRoster: string;
  nodes: Plan['nodes'];
}

const before = (name: string): Snapshot => JSON.parse(readFileSync(join(__dirname, 'fixtures', `${name}.before.json`), 'utf8')) as Snapshot;
const now = (name: keyof typeof TEMPLATES): Plan => plan(parseSpec(TEMPLATES[name].text).spec!);

/**
 * The inventory without the role groups no node has: since 2026-12-07 every role's group is
 * declared (empty where no node has it) so Ansible does not warn about its plays; the fixtures
 * were written before.
 */
function withoutEmptyRoleGroups(inventory: string): string {
  const doc = parse(inventory) as { all: { children: Record<string, { hosts: Record<string, unknown> }> } };
  for (const [name, g] of Object.entries(doc.all.children)) if (name.startsWith('role_') && Object.keys(g.hosts).length === 0) delete doc.all.children[name];
  return stringify(doc, { sortMapEntries: true, lineWidth: 0 });
}

describe('etcd does not depend on kubernetes.enabled', () => {
  it('lab-3: the Ansible inventory and its vars are identical but for the kubernetes-enabled flag', () => {
    const was = before('lab-3');
    const is = now('lab-3');
    expect(was.ansibleInventory).toContain('kubedos_kubernetes_enabled: true');
    expect(withoutEmptyRoleGroups(is.ansibleInventory)).toBe(was.ansibleInventory.replace('kubedos_kubernetes_enabled: true', 'kubedos_kubernetes_enabled: false'));
    // The roles lab-3 has no node for are declared empty (their plays skip without a warning).
    for (const g of ['role_etcd', 'role_grafana', 'role_lb', 'role_prometheus', 'role_storage']) expect(is.ansibleInventory, g).toMatch(new RegExp(`^ {4}${g}:\n {6}hosts: \\{\\}$`, 'm'));
    expect(is.ansibleInventory).toMatch(/etcd_members:\n\s+hosts:\n\s+cp-1: \{\}/);
    expect(is.saltRoster).toBe(was.saltRoster);
  });
  it('lab-3: every node is planned the same but for the Kubernetes services (API, kubelet, control plane, Cilium)', () => {
    const was = before('lab-3');
    const is = now('lab-3');
    const k8s = new Set(['kube-apiserver', 'kubelet', 'control-plane', 'cilium']);
    expect(is.nodes.map((n) => n.name)).toEqual(was.nodes.map((n) => n.name));
    is.nodes.forEach((n, i) => {
      const w = was.nodes[i]!;
      const { services: s1, nftables: f1, ...rest1 } = n;
      const { services: s0, nftables: f0, ...rest0 } = w;
      expect(rest1, n.name).toEqual(rest0);
      expect(s1, n.name).toEqual(s0.filter((x) => !k8s.has(x.name)));
      // wg3 services sit inside a plane (peers trusted): the rendered firewall does not change.
      expect(f1, n.name).toBe(f0);
      if (n.name === 'cp-1') expect(f1).toMatch(/2379-2380/);
    });
  });
  it('reference-16 (Kubernetes on) is planned byte for byte as before', () => {
    // Since then the template's storage node gained a data disk for its ZFS pool: take it away.
    const spec = parseSpec(TEMPLATES['reference-16'].text).spec!;
    const storage = spec.spec.nodes.inventory.find((n) => n.role === 'storage')!;
    expect(storage.disks).toHaveLength(2);
    storage.disks.pop();
    const r = plan(spec);
    // sha256 of the same JSON as the fixtures, taken before the change (the file itself is 110 KB).
    expect(sha256Hex(JSON.stringify({ ansibleInventory: r.ansibleInventory, saltRoster: r.saltRoster, nodes: r.nodes }, null, 1) + '\n')).toBe('c7a3f2e9c169de528399303a206eb21b20bc675a321daa602f86c372924b4856');
  });
  it('reference-16: the storage node gets its ZFS pool on its data disk', () => {
    const inv = now('reference-16').ansibleInventory;
    expect(inv).toMatch(/storage:\n(.*\n)*?\s+kubedos_zfs_pools:\n\s+- disks:\n\s+- \/dev\/disk\/by-id\/scsi-0QEMU_QEMU_HARDDISK_drive-scsi1\n\s+name: fast-zfs/);
    expect(inv.match(/kubedos_zfs_pools/g)).toHaveLength(1);
  });
  it('solo-1 is planned byte for byte as before', () => {
    const was = before('solo-1');
    const is = now('solo-1');
    expect({ ansibleInventory: withoutEmptyRoleGroups(is.ansibleInventory), saltRoster: is.saltRoster, nodes: is.nodes }).toEqual(was);
  });
});
