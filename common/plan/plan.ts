// ClusterSpec -> Plan. Pure and deterministic: no clock, no randomness, no I/O; the same spec
// gives byte-identical canonical JSON. Every later stage reads addresses from here.
import { stringify } from 'yaml';
import { canonicalJson, sha256Hex } from '../canonical';
import { formatCidr, formatIpv4, hostAt } from '../net/ipv4';
import type { ClusterSpec, NodeSpec, PlaneName } from '../spec/schema';
import { API_VERSION, NODE_ROLES, PLANE_NAMES, STAGE_NAMES } from '../spec/schema';
import {
  lanCidr,
  lanHalves,
  lanHostOffset,
  nodeColor,
  nodeVmid,
  parsePortRange,
  planeCidr,
  planeHostOffset,
  planeListenPort,
} from '../spec/resolve';
import { deterministicMacs } from './mac';
import { renderNftables } from './nftables';
import type { Plan, PlanNode, PlaneAddress, PolicyFlow, VmShape } from './schema';
import { PLAN_KIND } from './schema';
import { etcdHostRole, observabilityHost, roleServices } from './services';
import { ownershipTags } from './ownership';

export const PERSISTENT_KEEPALIVE = 25;
const ROUTE_TABLE_BASE = 101;
const ROUTE_RULE_PRIORITY_BASE = 1001;

export function plan(spec: ClusterSpec): Plan {
  const s = spec.spec;
  const cluster = spec.metadata.name;
  const domain = `${cluster}.kubedos.internal`;
  const halves = lanHalves(spec);
  const lan = lanCidr(spec);
  const flows = policyFlows(spec);
  const connected = connectedPlanes(flows);
  const planes = PLANE_NAMES.map((name) => ({
    name,
    cidr: formatCidr(planeCidr(spec, name)),
    purpose: s.networking.planes[name].purpose,
    listenPort: planeListenPort(spec, name),
    mtu: s.networking.planes[name].mtu,
  }));

  const indexed = s.nodes.inventory.map((node, index) => ({ node, index, vmid: nodeVmid(spec, index) }));
  indexed.sort((a, b) => a.vmid - b.vmid || a.node.name.localeCompare(b.node.name));
  const master = indexed.find((n) => n.node.role === 'master');
  if (!master) throw new Error('plan: the spec has no master (validate it first)');
  const lanAddressOf = (node: NodeSpec, vmid: number): number => hostAt(halves[nodeColor(spec, node)], lanHostOffset(spec, vmid));
  const planeAddressOf = (plane: PlaneName, node: NodeSpec, vmid: number): string =>
    formatIpv4(hostAt(planeCidr(spec, plane), planeHostOffset(spec, node, vmid)));
  const hubLan = formatIpv4(lanAddressOf(master.node, master.vmid));
  const macs = deterministicMacs(cluster, indexed.map(({ node }) => ({ node: node.name, nics: node.nics.map((n) => n.mac) })));
  const obsHost = observabilityHost(spec);
  const ownershipTags = vmTags(spec);

  const nodes: PlanNode[] = indexed.map(({ node, vmid }) => {
    const hub = node.role === 'master';
    const nodeMacs = macs.get(node.name) ?? [];
    const planeAddrs = {} as Record<PlaneName, PlaneAddress>;
    PLANE_NAMES.forEach((p, i) => {
      const cidr = planeCidr(spec, p);
      const reach = [formatCidr(cidr), ...[...(connected.get(p) ?? [])].sort().map((q) => formatCidr(planeCidr(spec, q)))];
      const peers = hub
        ? indexed
            .filter((o) => o.node.role !== 'master')
            .map((o) => ({
              node: o.node.name,
              publicKeyRef: `enrollment://${cluster}/${o.node.name}/${p}`,
              allowedIps: [`${planeAddressOf(p, o.node, o.vmid)}/32`],
            }))
        : [
            {
              node: master.node.name,
              publicKeyRef: `enrollment://${cluster}/${master.node.name}/${p}`,
              endpoint: `${hubLan}:${planeListenPort(spec, p)}`,
              allowedIps: reach,
              persistentKeepalive: PERSISTENT_KEEPALIVE,
            },
          ];
      planeAddrs[p] = {
        plane: p,
        interface: p,
        address: `${planeAddressOf(p, node, vmid)}/32`,
        listenPort: planeListenPort(spec, p),
        mtu: s.networking.planes[p].mtu,
        privateKeyRef: `node-local://${node.name}/etc/wireguard/${p}.key`,
        peers,
        sourceRoutes: { table: ROUTE_TABLE_BASE + i, priority: ROUTE_RULE_PRIORITY_BASE + i, destinations: hub ? [] : reach },
      };
    });
    const services = roleServices(spec, node.role, node.name === obsHost);
    const vm = vmShape(spec, node, vmid, nodeMacs, ownershipTags);
    const planeList = planes.map((p) => ({ name: p.name, cidr: p.cidr, listenPort: p.listenPort }));
    return {
      name: node.name,
      hostname: node.name,
      fqdn: `${node.name}.${domain}`,
      role: node.role,
      domain: node.domain,
      vmid,
      color: nodeColor(spec, node),
      hub,
      lan: {
        address: formatIpv4(lanAddressOf(node, vmid)),
        prefix: lan.prefix,
        ...(s.networking.lan.gateway !== undefined ? { gateway: s.networking.lan.gateway } : {}),
        dns: s.networking.lan.dns,
        mac: nodeMacs[0] ?? '',
      },
      planes: planeAddrs,
      services,
      vm,
      nftables: renderNftables({ cluster, node: node.name, role: node.role, hub, planes: planeList, flows, services }),
    };
  });

  const stages = Object.fromEntries(STAGE_NAMES.map((st) => [st, { allowDestroy: s.stages[st]?.allowDestroy ?? false }])) as Plan['stages'];
  const sub = s.substrate;
  const result: Plan = {
    apiVersion: API_VERSION,
    kind: PLAN_KIND,
    cluster: { name: cluster, artifactVersion: spec.metadata.artifactVersion, specSha256: sha256Hex(canonicalJson(spec)), domain },
    substrate: {
      type: sub.type,
      ...(sub.type === 'proxmox' && sub.proxmox
        ? {
            clusterName: sub.proxmox.clusterName,
            ...(sub.proxmox.node !== undefined ? { node: sub.proxmox.node } : {}),
            ...(sub.proxmox.host !== undefined ? { host: sub.proxmox.host } : {}),
            isoStorage: sub.proxmox.isoStorage,
          }
        : {}),
      ...(sub.type === 'qemu' && sub.qemu ? { accel: sub.qemu.accel } : {}),
      vmidRange: s.nodes.vmidRange,
      ownershipTags,
    },
    lan: {
      cidr: formatCidr(lan),
      blue: formatCidr(halves.blue),
      green: formatCidr(halves.green),
      active: s.networking.lan.active,
      ...(s.networking.lan.gateway !== undefined ? { gateway: s.networking.lan.gateway } : {}),
      apiVip: s.networking.apiVip,
    },
    planes: planes.map((p) => ({ ...p, hub: master.node.name, hubAddress: planeAddressOf(p.name, master.node, master.vmid) })),
    policy: { defaultInterPlane: 'deny', flows },
    enrollment: {
      hub: master.node.name,
      listen: hubLan,
      port: s.security.enrollment.port,
      windowMinutes: s.security.enrollment.windowMinutes,
      tokenTtlMinutes: s.security.enrollment.tokenTtlMinutes,
    },
    stages,
    nodes,
    ansibleInventory: ansibleInventory(spec, nodes),
    saltRoster: saltRoster(nodes, s.security.ssh.allowUsers[0] ?? 'ops'),
    secretRefs: secretRefs(cluster, nodes),
  };
  return result;
}

/** Stable JSON text of a plan: the form that is hashed, diffed and written to disk. */
export function planJson(p: Plan): string {
  return `${canonicalJson(p, 2)}\n`;
}

export function policyFlows(spec: ClusterSpec): PolicyFlow[] {
  const flows: PolicyFlow[] = [];
  for (const rule of spec.spec.networking.policy.allow) {
    const byProto = new Map<'tcp' | 'udp', string[]>();
    for (const p of rule.ports) {
      const r = parsePortRange(p);
      if (!r) continue;
      byProto.set(r.protocol, [...(byProto.get(r.protocol) ?? []), r.from === r.to ? `${r.from}/${r.protocol}` : `${r.from}-${r.to}/${r.protocol}`]);
    }
    for (const [protocol, ports] of [...byProto.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      flows.push({
        from: rule.from as PlaneName,
        to: rule.to as PlaneName,
        protocol,
        ports,
        ...(rule.description !== undefined ? { description: rule.description } : {}),
      });
    }
  }
  return flows;
}

function connectedPlanes(flows: readonly PolicyFlow[]): Map<PlaneName, Set<PlaneName>> {
  const m = new Map<PlaneName, Set<PlaneName>>();
  for (const f of flows) {
    if (f.from === f.to) continue;
    m.set(f.from, (m.get(f.from) ?? new Set()).add(f.to));
    m.set(f.to, (m.get(f.to) ?? new Set()).add(f.from));
  }
  return m;
}

/**
 * The tags every VM carries (plan.substrate.ownershipTags): the tags that make it ours
 * (common/plan/ownership.ts), plus artifact-<version> and the site's extra tags, which do not.
 */
export function vmTags(spec: ClusterSpec): string[] {
  const extra = spec.spec.substrate.type === 'proxmox' ? (spec.spec.substrate.proxmox?.tags ?? []) : [];
  const tags = new Set([...ownershipTags({ cluster: { name: spec.metadata.name } }), `artifact-${spec.metadata.artifactVersion.toLowerCase().replace(/[^a-z0-9_+.-]/g, '-')}`, ...extra]);
  return [...tags].sort();
}

function vmShape(spec: ClusterSpec, node: NodeSpec, vmid: number, macs: readonly string[], tags: readonly string[]): VmShape {
  const firstPool = node.disks[0]?.pool ?? 'local';
  return {
    vmid,
    name: node.name,
    machine: 'q35',
    bios: 'ovmf',
    efidisk: { pool: firstPool, efitype: '4m', preEnrolledKeys: true },
    tpm: { pool: firstPool, version: 'v2.0' },
    agent: { enabled: true, fstrimClonedDisks: true },
    cpu: { sockets: 1, cores: node.cpu, type: 'x86-64-v2-AES' },
    memoryMiB: node.memoryMiB,
    balloon: 0,
    scsihw: 'virtio-scsi-single',
    ostype: 'l26',
    serial0: 'socket',
    vga: 'serial0',
    rng: true,
    onboot: true,
    disks: node.disks.map((d, i) => ({ bus: 'scsi', index: i, pool: d.pool, sizeGiB: d.sizeGiB, discard: true, iothread: true })),
    nics: node.nics.map((n, i) => ({
      index: i,
      model: 'virtio',
      mac: macs[i] ?? '',
      bridge: n.bridge,
      ...(n.vlan !== undefined ? { vlan: n.vlan } : {}),
      firewall: false,
    })),
    tags: [...tags, `role-${node.role}`].sort(),
    bootOrder: ['scsi0', 'ide2'],
  };
}

function ansibleInventory(spec: ClusterSpec, nodes: readonly PlanNode[]): string {
  const user = spec.spec.security.ssh.allowUsers[0] ?? 'ops';
  const children: Record<string, { hosts: Record<string, Record<string, unknown>> }> = {};
  // Every role's group, empty where no node has the role: a play for it then skips without
  // Ansible's "Could not match supplied host pattern" warning on every converge.
  for (const role of NODE_ROLES) {
    const members = nodes.filter((n) => n.role === role);
    children[`role_${role.replace(/-/g, '_')}`] = {
      hosts: Object.fromEntries(
        members.map((n) => [
          n.name,
          {
            ansible_host: n.planes.wg1.address.replace('/32', ''),
            kubedos_vmid: n.vmid,
            kubedos_domain: n.domain,
            kubedos_lan_address: n.lan.address,
            kubedos_wg1: n.planes.wg1.address.replace('/32', ''),
            kubedos_wg2: n.planes.wg2.address.replace('/32', ''),
            kubedos_wg3: n.planes.wg3.address.replace('/32', ''),
            ...zfsPoolsOf(spec, n),
          },
        ]),
      ),
    };
  }
  const k = spec.spec.kubernetes;
  // Functional groups, so plays select hosts without templating `hosts:` from inventory vars
  // (Ansible resolves a play's hosts before inventory variables exist).
  const hostRef = (names: readonly string[]) => ({ hosts: Object.fromEntries(names.map((n) => [n, {}])) });
  // etcd is Debian's etcd-server and runs whether or not Kubernetes does (a cluster without
  // upstream sources still keeps its state in etcd): membership follows the topology only.
  children.etcd_members = hostRef(nodes.filter((n) => n.role === etcdHostRole(spec)).map((n) => n.name));
  const obs = observabilityHost(spec);
  children.prometheus_host = hostRef(obs && k.observability.prometheus ? [obs] : []);
  const inventory = {
    all: {
      vars: {
        ansible_user: user,
        ansible_become: true,
        kubedos_cluster: spec.metadata.name,
        kubedos_artifact_version: spec.metadata.artifactVersion,
        kubedos_api_vip: spec.spec.networking.apiVip,
        kubedos_kubernetes_enabled: k.enabled,
        kubedos_kubernetes_version: k.version,
        kubedos_etcd_topology: k.ha.etcd,
        kubedos_observability_plane: k.observability.plane,
        kubedos_observability_host: observabilityHost(spec) ?? '',
      },
      children,
    },
  };
  return stringify(inventory, { sortMapEntries: true, lineWidth: 0 });
}

/** The in-guest device of a VM disk: QEMU's scsi-hd names it after its drive id (Proxmox and qemu-local alike). */
export function guestDiskPath(index: number): string {
  return `/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_drive-scsi${index}`;
}

/**
 * ZFS on a storage node, when storage.zfs is enabled: the first pool of storage.zfs.pools is
 * created on the node's data disks (every disk after the root disk, scsi1…). Nothing is emitted
 * otherwise, so other specs' inventories stay as they were; invariants warn when there is no disk.
 */
function zfsPoolsOf(spec: ClusterSpec, n: PlanNode): { kubedos_zfs_pools?: { name: string; disks: string[] }[] } {
  const zfs = spec.spec.storage.zfs;
  const name = zfs.pools[0];
  if (!zfs.enabled || n.role !== 'storage' || !name) return {};
  const disks = n.vm.disks.filter((d) => d.index > 0).map((d) => guestDiskPath(d.index));
  return disks.length ? { kubedos_zfs_pools: [{ name, disks }] } : {};
}

function saltRoster(nodes: readonly PlanNode[], user: string): string {
  const roster = Object.fromEntries(nodes.map((n) => [n.name, { host: n.planes.wg1.address.replace('/32', ''), user, sudo: true, minion_opts: { grains: { kubedos_role: n.role, kubedos_domain: n.domain } } }]));
  return stringify(roster, { sortMapEntries: true, lineWidth: 0 });
}

function secretRefs(cluster: string, nodes: readonly PlanNode[]): Plan['secretRefs'] {
  const refs: Plan['secretRefs'] = [
    { ref: `offline-ca://${cluster}/root`, purpose: 'offline root CA private key', lives: 'out of band (USB / safe); never on the workbench disk unencrypted' },
    { ref: `workspace://${cluster}/intermediate-ca`, purpose: 'cluster intermediate CA private key', lives: 'workspace, age-encrypted at rest' },
    { ref: `workspace://${cluster}/enrollment-hmac`, purpose: 'enrollment token HMAC key', lives: 'workspace (age-encrypted) and the master' },
    { ref: `workspace://${cluster}/repo-signing-key`, purpose: 'darksite repository signing key', lives: 'workspace, age-encrypted at rest' },
    { ref: `workspace://${cluster}/artifact-signing-key`, purpose: 'ed25519 artifact/DSSE signing key', lives: 'workspace, age-encrypted at rest' },
  ];
  for (const n of nodes) {
    for (const p of PLANE_NAMES) refs.push({ ref: n.planes[p].privateKeyRef, purpose: `${n.name} ${p} WireGuard private key`, lives: 'generated on the node; never leaves it' });
  }
  return refs;
}

/** The enrollment hub (the master): every plane's hub and where converge runs. */
export function hubOf(p: Plan): PlanNode {
  const hub = p.nodes.find((n) => n.hub);
  if (!hub) throw new Error(`plan of ${p.cluster.name} has no hub node: a cluster needs exactly one master`);
  return hub;
}
