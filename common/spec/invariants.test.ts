import { describe, expect, it } from 'vitest';
import { parseSpec } from './parse';
import { templateObject, toYaml } from '../testing/specs';
import type { TemplateName } from './templates/index';

type Spec = Record<string, any>;

const cases: { name: string; template?: TemplateName; code: string; path: string; mutate: (s: Spec) => void }[] = [
  { name: 'duplicate node names', code: 'invariant.duplicate-name', path: 'spec.nodes.inventory[8].name', mutate: (s) => (s.spec.nodes.inventory[8].name = 'cp-1') },
  { name: 'duplicate VMIDs', code: 'invariant.duplicate-vmid', path: 'spec.nodes.inventory[2].vmid', mutate: (s) => (s.spec.nodes.inventory[2].vmid = 2001) },
  { name: 'VMID outside vmidRange', code: 'invariant.vmid-out-of-range', path: 'spec.nodes.inventory[15].vmid', mutate: (s) => (s.spec.nodes.inventory[15].vmid = 2100) },
  { name: 'vmidRange reversed', code: 'invariant.vmid-range', path: 'spec.nodes.vmidRange', mutate: (s) => (s.spec.nodes.vmidRange = { start: 2099, end: 2000 }), },
  { name: 'overlapping planes', code: 'invariant.plane-overlap', path: 'spec.networking.planes.wg3.cidr', mutate: (s) => (s.spec.networking.planes.wg3.cidr = '10.102.0.0/25') },
  { name: 'plane overlapping the LAN', code: 'invariant.plane-overlaps-lan', path: 'spec.networking.planes.wg2.cidr', mutate: (s) => (s.spec.networking.planes.wg2.cidr = '10.100.4.0/24') },
  { name: 'plane too small', code: 'invariant.plane-too-small', path: 'spec.networking.planes.wg1.cidr', mutate: (s) => (s.spec.networking.planes.wg1.cidr = '10.101.0.0/28') },
  { name: 'even etcd count (external)', code: 'invariant.etcd-count', path: 'spec.kubernetes.ha.etcd', mutate: (s) => s.spec.nodes.inventory.splice(6, 1) },
  {
    name: 'even etcd count (stacked)',
    code: 'invariant.etcd-count',
    path: 'spec.kubernetes.ha.etcd',
    template: 'lab-3',
    mutate: (s) => {
      s.spec.nodes.inventory.push({ ...s.spec.nodes.inventory[1], name: 'cp-2', vmid: 3003 });
      s.spec.kubernetes.ha.controlPlaneReplicas = 2;
    },
  },
  { name: 'control-plane count differs from replicas', code: 'invariant.control-plane-count', path: 'spec.kubernetes.ha.controlPlaneReplicas', mutate: (s) => (s.spec.kubernetes.ha.controlPlaneReplicas = 5) },
  { name: 'unknown failure domain', code: 'invariant.unknown-domain', path: 'spec.nodes.inventory[3].domain', mutate: (s) => (s.spec.nodes.inventory[3].domain = 'rack-z') },
  { name: 'policy names an unknown plane', code: 'invariant.unknown-plane', path: 'spec.networking.policy.allow[0].to', mutate: (s) => (s.spec.networking.policy.allow[0].to = 'wg4') },
  { name: 'policy port range reversed', code: 'invariant.bad-port', path: 'spec.networking.policy.allow[0].ports[1]', mutate: (s) => (s.spec.networking.policy.allow[0].ports[1] = '2380-2379/tcp') },
  { name: 'policy port out of range', code: 'invariant.bad-port', path: 'spec.networking.policy.allow[1].ports[0]', mutate: (s) => (s.spec.networking.policy.allow[1].ports[0] = '70000/tcp') },
  { name: 'ceph enabled without its settings', code: 'invariant.ceph-incomplete', path: 'spec.storage.ceph', mutate: (s) => (s.spec.storage.ceph = { enabled: true, recovery: { maxBackfills: 1 } }) },
  { name: 'ceph min_size above size', code: 'invariant.ceph-min-size', path: 'spec.storage.ceph.minSize', mutate: (s) => (s.spec.storage.ceph = { enabled: true, failureDomain: 'domain', size: 2, minSize: 3, plane: 'wg3', recovery: {} }) },
  { name: 'unknown drill scenario', code: 'invariant.unknown-drill', path: 'spec.acceptance.drills[1].name', mutate: (s) => (s.spec.acceptance.drills[1].name = 'unplug-the-rack') },
  { name: 'API VIP outside the LAN', code: 'invariant.vip-outside-lan', path: 'spec.networking.apiVip', mutate: (s) => (s.spec.networking.apiVip = '192.168.1.10') },
  { name: 'API VIP assigned to a node', code: 'invariant.vip-taken', path: 'spec.networking.apiVip', mutate: (s) => (s.spec.networking.apiVip = '10.100.0.20') },
  { name: 'no master', code: 'invariant.no-master', path: 'spec.nodes.inventory', mutate: (s) => (s.spec.nodes.inventory[0].role = 'grafana') },
  { name: 'two masters', code: 'invariant.many-masters', path: 'spec.nodes.inventory[1].role', mutate: (s) => (s.spec.nodes.inventory[1].role = 'master') },
  {
    name: 'an A/B disk larger than a node\'s first disk',
    code: 'invariant.ab-disk-size',
    path: 'spec.nodes.inventory[2].disks[0].sizeGiB',
    template: 'lab-3',
    mutate: (s) => {
      s.spec.upgrades = { diskLayout: 'ab' };
      s.spec.nodes.inventory[2].disks[0].sizeGiB = 5;
    },
  },
  { name: 'disk on an unknown pool', code: 'invariant.unknown-pool', path: 'spec.nodes.inventory[4].disks[0].pool', mutate: (s) => (s.spec.nodes.inventory[4].disks[0].pool = 'slow-hdd') },
  { name: 'NIC on an unknown bridge', code: 'invariant.unknown-bridge', path: 'spec.nodes.inventory[4].nics[0].bridge', mutate: (s) => (s.spec.nodes.inventory[4].nics[0].bridge = 'vmbr9') },
  { name: 'VLAN not trunked', code: 'invariant.vlan-not-trunked', path: 'spec.nodes.inventory[4].nics[0].vlan', mutate: (s) => (s.spec.nodes.inventory[4].nics[0].vlan = 99) },
  { name: 'two planes on one port', code: 'invariant.listen-port-clash', path: 'spec.networking.planes.wg2.listenPort', mutate: (s) => (s.spec.networking.planes.wg2.listenPort = 51821) },
  { name: 'LAN cannot be halved', code: 'invariant.lan-too-small', path: 'spec.networking.lan.cidr', mutate: (s) => (s.spec.networking.lan.cidr = '10.100.0.0/24') },
  { name: 'substrate section missing', code: 'invariant.substrate-section', path: 'spec.substrate.type', mutate: (s) => (s.spec.substrate.type = 'qemu') },
];

describe('invariants: one failing case each', () => {
  it.each(cases)('$name -> $code', ({ template, code, path, mutate }) => {
    const spec = templateObject(template ?? 'reference-16');
    mutate(spec);
    const text = toYaml(spec);
    const r = parseSpec(text);
    const errors = r.diagnostics.filter((d) => d.severity === 'error');
    expect(r.spec).toBeUndefined();
    expect(errors.map((d) => `${d.code} @ ${d.path}`)).toEqual([`${code} @ ${path}`]);
    expect(errors[0]!.message.length).toBeGreaterThan(20);
    expect(errors[0]!.line).toBeGreaterThan(1);
  });
});
