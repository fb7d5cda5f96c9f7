// Semantic invariants: what the schema's shape cannot say. Each finding names the field to fix.
import { cidrContains, cidrLast, cidrSize, cidrsOverlap, formatCidr, hostAt } from '../net/ipv4';
import type { Cidr } from '../net/ipv4';
import type { Diagnostic, PathSegment, Severity } from './diagnostic';
import { formatPath } from './diagnostic';
import type { Locator } from './parse';
import { AB_ESP_MIB, AB_MIN_DATA_MIB, AB_MIN_DISK_GIB, ROOT_MIB } from '../upgrade/ab-size';
import { compareArtifactVersions } from '../upgrade/version';
import type { ClusterSpec } from './schema';
import { ClusterSpecBody, DRILL_SCENARIOS, PLANE_NAMES } from './schema';
import {
  isPlaneName,
  lanCidr,
  lanHalves,
  lanHostOffset,
  mustIpv4,
  nodeColor,
  nodeVmid,
  parsePortRange,
  planeCidr,
  planeHostOffset,
  planeListenPort,
} from './resolve';

/** A section of spec.spec; the invariants that read a section run only when it parsed. */
export type SpecSection = keyof ClusterSpec['spec'];
const ALL_SECTIONS: ReadonlySet<SpecSection> = new Set(Object.keys(ClusterSpecBody.shape) as SpecSection[]);

/**
 * `available`: the sections that parsed (parse.ts passes fewer than all when the schema rejected
 * a section outright); a check that needs a missing section is skipped, every other one runs.
 */
export function checkInvariants(spec: ClusterSpec, locate: Locator, available: ReadonlySet<SpecSection> = ALL_SECTIONS): Diagnostic[] {
  const out: Diagnostic[] = [];
  const report = (code: string, severity: Severity, path: PathSegment[], message: string, where: 'key' | 'value' = 'value'): void => {
    const r = locate(path, where);
    out.push({ code: `invariant.${code}`, severity, message, path: formatPath(path), ...r });
  };
  const s = spec.spec;
  const has = (...sections: SpecSection[]): boolean => sections.every((x) => available.has(x));
  const inv = has('nodes') ? s.nodes.inventory : [];
  const invPath = (i: number, ...rest: PathSegment[]): PathSegment[] => ['spec', 'nodes', 'inventory', i, ...rest];

  // ---- substrate section matches its type
  if (has('substrate') && s.substrate.type === 'proxmox' && !s.substrate.proxmox) report('substrate-section', 'error', ['spec', 'substrate', 'type'], 'type is proxmox but the substrate.proxmox section is missing');
  if (has('substrate') && s.substrate.type === 'qemu' && !s.substrate.qemu) report('substrate-section', 'error', ['spec', 'substrate', 'type'], 'type is qemu but the substrate.qemu section is missing');
  const sub = !has('substrate') ? undefined : s.substrate.type === 'proxmox' ? s.substrate.proxmox : s.substrate.qemu;
  const pools = new Set(sub?.storagePools.map((p) => p.name) ?? []);
  const bridges = new Map(sub?.bridges.map((b) => [b.name, b]) ?? []);

  // ---- vmid range
  const range = has('nodes') ? s.nodes.vmidRange : { start: 0, end: 0 };
  const rangeValid = range.start <= range.end;
  if (has('nodes') && !rangeValid) report('vmid-range', 'error', ['spec', 'nodes', 'vmidRange'], `vmidRange.start (${range.start}) is after vmidRange.end (${range.end})`);

  // ---- names, vmids, domains, roles
  const domains = new Set<string>();
  (has('nodes') ? s.nodes.failureDomains : []).forEach((d, i) => {
    if (domains.has(d.name)) report('duplicate-domain', 'error', ['spec', 'nodes', 'failureDomains', i, 'name'], `failure domain "${d.name}" is declared twice`);
    domains.add(d.name);
  });
  const names = new Map<string, number>();
  const vmids = new Map<number, number>();
  const macs = new Map<string, string>();
  inv.forEach((node, i) => {
    const first = names.get(node.name);
    if (first !== undefined) report('duplicate-name', 'error', invPath(i, 'name'), `node name "${node.name}" is already used by inventory[${first}]; node names must be unique`);
    else names.set(node.name, i);

    const vmid = nodeVmid(spec, i);
    const vmidPath = node.vmid !== undefined ? invPath(i, 'vmid') : invPath(i, 'name');
    const other = vmids.get(vmid);
    if (other !== undefined) report('duplicate-vmid', 'error', vmidPath, `VMID ${vmid} is already used by ${inv[other]?.name ?? `inventory[${other}]`}; give each node its own vmid`);
    else vmids.set(vmid, i);
    if (rangeValid && (vmid < range.start || vmid > range.end)) {
      report('vmid-out-of-range', 'error', vmidPath, `VMID ${vmid} of ${node.name} is outside vmidRange ${range.start}-${range.end}; the foundry only owns VMIDs in that range`);
    }
    if (!domains.has(node.domain)) report('unknown-domain', 'error', invPath(i, 'domain'), `failure domain "${node.domain}" is not declared in nodes.failureDomains (${[...domains].join(', ')})`);

    node.disks.forEach((d, j) => {
      if (sub && !pools.has(d.pool)) report('unknown-pool', 'error', invPath(i, 'disks', j, 'pool'), `storage pool "${d.pool}" is not in substrate.${s.substrate.type}.storagePools (${[...pools].join(', ')})`);
    });
    node.nics.forEach((n, j) => {
      const b = bridges.get(n.bridge);
      if (sub && !b) {
        report('unknown-bridge', 'error', invPath(i, 'nics', j, 'bridge'), `bridge "${n.bridge}" is not in substrate.${s.substrate.type}.bridges (${[...bridges.keys()].join(', ')})`);
      } else if (b && n.vlan !== undefined) {
        if (!b.vlanAware) report('vlan-not-aware', 'error', invPath(i, 'nics', j, 'vlan'), `VLAN ${n.vlan} on bridge ${b.name}, which is not vlanAware`);
        else if (b.trunks.length > 0 && !b.trunks.includes(n.vlan)) report('vlan-not-trunked', 'error', invPath(i, 'nics', j, 'vlan'), `VLAN ${n.vlan} is not in the trunks of bridge ${b.name} (${b.trunks.join(', ')})`);
      }
      if (n.mac) {
        const owner = macs.get(n.mac);
        if (owner) report('duplicate-mac', 'error', invPath(i, 'nics', j, 'mac'), `MAC ${n.mac} is already used by ${owner}`);
        macs.set(n.mac, node.name);
        if ((parseInt(n.mac.slice(0, 2), 16) & 1) === 1) report('multicast-mac', 'error', invPath(i, 'nics', j, 'mac'), `MAC ${n.mac} is a multicast address; use a unicast one (even first octet)`);
      }
    });
  });

  // ---- an A/B disk (ESP, two root slots, data) must fit every node's first disk
  if (has('nodes') && s.upgrades?.diskLayout === 'ab') {
    inv.forEach((node, i) => {
      const gib = node.disks[0]?.sizeGiB;
      if (gib !== undefined && gib < AB_MIN_DISK_GIB) {
        report('ab-disk-size', 'error', invPath(i, 'disks', 0, 'sizeGiB'), `${node.name}'s first disk is ${gib} GiB; upgrades.diskLayout: ab needs at least ${AB_MIN_DISK_GIB} GiB (ESP ${AB_ESP_MIB} MiB, two root slots of ${ROOT_MIB} MiB, at least ${AB_MIN_DATA_MIB} MiB of data): give it ${AB_MIN_DISK_GIB} GiB or more, or keep the single layout`);
      }
    });
  }

  // ---- a stepping stone below the build's own version (else no cluster could ever take the build)
  const stone = s.upgrades?.requiresAtLeast;
  if (stone !== undefined && compareArtifactVersions(stone, spec.metadata.artifactVersion) >= 0) {
    report('stepping-stone-not-older', 'error', ['spec', 'upgrades', 'requiresAtLeast'], `upgrades.requiresAtLeast is ${stone}, not older than this build's metadata.artifactVersion ${spec.metadata.artifactVersion}: no cluster could upgrade to it. Name the last version a cluster must pass through first (e.g. the previous minor), or remove it`);
  }

  // ---- exactly one master (the hub)
  const masters = inv.map((n, i) => [n, i] as const).filter(([n]) => n.role === 'master');
  if (has('nodes') && masters.length === 0) report('no-master', 'error', ['spec', 'nodes', 'inventory'], 'no node has role master: exactly one master is needed, it is the hub of every plane');
  masters.slice(1).forEach(([n, i]) => report('many-masters', 'error', invPath(i, 'role'), `${n.name} is a second master; exactly one master (the hub) is allowed`));

  // ---- kubernetes HA and etcd
  const k = s.kubernetes;
  // etcd (Debian's etcd-server) runs on its nodes whether or not Kubernetes is enabled, so its
  // member count is checked whenever it has members.
  const cps = inv.filter((n) => n.role === 'control-plane');
  // Without the kubernetes section (a schema error) there is no etcd topology to check against.
  const etcdNodes = has('kubernetes') ? (k.ha.etcd === 'stacked' ? cps : inv.filter((n) => n.role === 'etcd')) : [];
  if (has('kubernetes', 'nodes') && !k.enabled && etcdNodes.length % 2 === 0 && etcdNodes.length > 0) {
    report('etcd-count', 'error', ['spec', 'kubernetes', 'ha', 'etcd'], `etcd is ${k.ha.etcd} with ${etcdNodes.length} members (${k.ha.etcd === 'stacked' ? 'control-plane' : 'etcd'} nodes); use an odd count so a quorum survives a split`);
  }
  if (has('kubernetes', 'nodes') && k.enabled) {
    if (cps.length !== k.ha.controlPlaneReplicas) {
      report('control-plane-count', 'error', ['spec', 'kubernetes', 'ha', 'controlPlaneReplicas'], `controlPlaneReplicas is ${k.ha.controlPlaneReplicas} but the inventory has ${cps.length} control-plane node(s)`);
    }
    const what = k.ha.etcd === 'stacked' ? 'control-plane' : 'etcd';
    if (etcdNodes.length === 0) {
      report('etcd-count', 'error', ['spec', 'kubernetes', 'ha', 'etcd'], `etcd is ${k.ha.etcd} but there are no ${what} nodes to run it`);
    } else if (etcdNodes.length % 2 === 0) {
      report('etcd-count', 'error', ['spec', 'kubernetes', 'ha', 'etcd'], `etcd is ${k.ha.etcd} with ${etcdNodes.length} members (${what} nodes); use an odd count so a quorum survives a split`);
    }
    if (k.ha.etcd === 'stacked') {
      inv.forEach((n, i) => {
        if (n.role === 'etcd') report('etcd-unused', 'warning', invPath(i, 'role'), `${n.name} has role etcd but etcd is stacked on the control planes; it will not run etcd`);
      });
    }
    if (k.ha.controlPlaneReplicas > 1 && !inv.some((n) => n.role === 'lb')) {
      report('no-lb', 'warning', ['spec', 'networking', 'apiVip'], 'several control planes but no lb node: the API VIP has nobody to hold it');
    }
    if (!isPlaneName(k.observability.plane)) report('unknown-plane', 'error', ['spec', 'kubernetes', 'observability', 'plane'], `"${k.observability.plane}" is not a plane (${PLANE_NAMES.join(', ')})`);
    if (k.cni.datapath === 'tunnel') report('overlay', 'info', ['spec', 'kubernetes', 'cni', 'datapath'], 'tunnel datapath is an overlay: chosen explicitly, recorded in the provenance (seed 003 §7.4)');
  }

  // ---- ZFS: the zfs role creates the first pool on the storage nodes' data disks (plan.ts)
  if (has('storage', 'nodes') && s.storage.zfs.enabled) {
    const zp: PathSegment[] = ['spec', 'storage', 'zfs', 'pools'];
    const dataNodes = inv.filter((n) => n.role === 'storage' && n.disks.length > 1);
    if (s.storage.zfs.pools.length === 0) report('zfs-no-pool', 'warning', zp, 'storage.zfs is enabled but pools is empty: no ZFS pool will be created; name one, e.g. pools: ["tank"]');
    else if (dataNodes.length === 0) report('zfs-no-disk', 'warning', zp, `storage.zfs is enabled but no storage node has a data disk (a second disk): pool ${s.storage.zfs.pools[0]} will not be created; add a disk to a storage node`);
    if (s.storage.zfs.pools.length > 1) report('zfs-many-pools', 'warning', [...zp, 1], `only the first pool (${s.storage.zfs.pools[0]}) is created, on all data disks of each storage node`);
  }

  // ---- LAN plan, API VIP
  // Without the nodes section the inventory is empty here: only the node-independent checks report.
  if (has('networking')) checkLanAndPlanes();
  function checkLanAndPlanes(): void {
    const lan = lanCidr(spec);
    if (lan.prefix > 23) {
      report('lan-too-small', 'error', ['spec', 'networking', 'lan', 'cidr'], `LAN ${formatCidr(lan)} cannot be split into blue and green halves; use a /20 (8×/24 blue + 8×/24 green)`);
    } else {
      if (lan.prefix !== 20) report('lan-not-20', 'info', ['spec', 'networking', 'lan', 'cidr'], `LAN is a /${lan.prefix}; the reference plan is a /20 (8×/24 blue + 8×/24 green)`);
      const halves = lanHalves(spec);
      const nodeIps = new Map<number, string>();
      inv.forEach((node, i) => {
        const vmid = nodeVmid(spec, i);
        const half = halves[nodeColor(spec, node)];
        const offset = lanHostOffset(spec, vmid);
        if (offset >= cidrSize(half) - 1) {
          report('lan-exhausted', 'error', invPath(i, 'name'), `${node.name} (VMID ${vmid}) gets LAN host offset ${offset}, past the ${nodeColor(spec, node)} half ${formatCidr(half)}; narrow vmidRange or lower lan.hostOffset`);
        } else {
          nodeIps.set(hostAt(half, offset), node.name);
        }
      });
      const vip = mustIpv4(s.networking.apiVip);
      if (!cidrContains(lan, vip)) report('vip-outside-lan', 'error', ['spec', 'networking', 'apiVip'], `API VIP ${s.networking.apiVip} is not inside the LAN ${formatCidr(lan)}`);
      else if (vip === lan.network || vip === cidrLast(lan)) report('vip-reserved', 'error', ['spec', 'networking', 'apiVip'], `API VIP ${s.networking.apiVip} is the LAN's network or broadcast address`);
      const holder = nodeIps.get(vip);
      if (holder) report('vip-taken', 'error', ['spec', 'networking', 'apiVip'], `API VIP ${s.networking.apiVip} is also the LAN address of ${holder}; pick an address below lan.hostOffset`);
      if (s.networking.lan.gateway !== undefined) {
        const gw = mustIpv4(s.networking.lan.gateway);
        if (!cidrContains(lan, gw)) report('gateway-outside-lan', 'error', ['spec', 'networking', 'lan', 'gateway'], `gateway ${s.networking.lan.gateway} is not inside the LAN ${formatCidr(lan)}`);
        if (gw === vip) report('vip-is-gateway', 'error', ['spec', 'networking', 'apiVip'], 'API VIP and gateway are the same address');
        const gwHolder = nodeIps.get(gw);
        if (gwHolder) report('gateway-taken', 'error', ['spec', 'networking', 'lan', 'gateway'], `gateway ${s.networking.lan.gateway} is also the LAN address of ${gwHolder}`);
      }
    }

    // ---- planes: disjoint, big enough, distinct ports
    const planes: { name: (typeof PLANE_NAMES)[number]; cidr: Cidr }[] = PLANE_NAMES.map((name) => ({ name, cidr: planeCidr(spec, name) }));
    planes.forEach((p, i) => {
      const path: PathSegment[] = ['spec', 'networking', 'planes', p.name, 'cidr'];
      if (cidrsOverlap(p.cidr, lan)) report('plane-overlaps-lan', 'error', path, `${p.name} ${formatCidr(p.cidr)} overlaps the LAN ${formatCidr(lan)}`);
      for (const q of planes.slice(0, i)) {
        if (cidrsOverlap(p.cidr, q.cidr)) report('plane-overlap', 'error', path, `${p.name} ${formatCidr(p.cidr)} overlaps ${q.name} ${formatCidr(q.cidr)}; planes must be disjoint`);
      }
      const usable = cidrSize(p.cidr) - 2;
      let needed = 0;
      inv.forEach((node, j) => {
        needed = Math.max(needed, planeHostOffset(spec, node, nodeVmid(spec, j)));
      });
      if (p.cidr.prefix > 30 || needed > usable) {
        report('plane-too-small', 'error', path, `${p.name} ${formatCidr(p.cidr)} has ${Math.max(0, usable)} host addresses but the nodes need up to offset ${needed} (hub .1, others 2 + VMID - vmidRange.start); use a larger plane`);
      }
    });
  }
  if (has('networking')) checkPortsAndPolicy();
  function checkPortsAndPolicy(): void {
    const ports = new Map<number, string>();
    for (const p of PLANE_NAMES) {
      const port = planeListenPort(spec, p);
      const other = ports.get(port);
      if (other) report('listen-port-clash', 'error', ['spec', 'networking', 'planes', p, 'listenPort'], `${p} listens on UDP ${port}, as ${other} does; each plane needs its own port`);
      ports.set(port, p);
    }
    const purposes = new Map<string, string>();
    for (const p of PLANE_NAMES) {
      const purpose = s.networking.planes[p].purpose;
      const other = purposes.get(purpose);
      if (other) report('plane-purpose', 'warning', ['spec', 'networking', 'planes', p, 'purpose'], `${p} and ${other} both have purpose ${purpose}`);
      purposes.set(purpose, p);
    }

    // ---- policy
    s.networking.policy.allow.forEach((rule, i) => {
      const base: PathSegment[] = ['spec', 'networking', 'policy', 'allow', i];
      for (const side of ['from', 'to'] as const) {
        if (!isPlaneName(rule[side])) report('unknown-plane', 'error', [...base, side], `"${rule[side]}" is not a plane (${PLANE_NAMES.join(', ')})`);
      }
      if (rule.from === rule.to) report('same-plane-rule', 'warning', base, `rule from ${rule.from} to itself: traffic inside one plane is always allowed`);
      rule.ports.forEach((p, j) => {
        if (!parsePortRange(p)) report('bad-port', 'error', [...base, 'ports', j], `"${p}" is not a valid port or range: ports are 1-65535 and a range runs low-high, e.g. "2379-2380/tcp"`);
      });
    });

  }

  // ---- storage
  const ceph = has('storage') ? s.storage.ceph : undefined;
  if (ceph?.enabled) {
    const base: PathSegment[] = ['spec', 'storage', 'ceph'];
    const missing = (['failureDomain', 'size', 'minSize', 'plane'] as const).filter((f) => ceph[f] === undefined);
    if (missing.length) report('ceph-incomplete', 'error', base, `ceph is enabled but ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set (seed 003 §8.2: failure domains, size/min_size and the plane are required)`);
    if (ceph.recovery === undefined) report('ceph-recovery', 'warning', base, 'ceph is enabled without recovery semantics; defaults apply (maxBackfills 1, rebuildOnReplace true)');
    if (ceph.size !== undefined && ceph.minSize !== undefined && ceph.minSize > ceph.size) report('ceph-min-size', 'error', [...base, 'minSize'], `minSize ${ceph.minSize} is larger than size ${ceph.size}`);
    if (ceph.plane !== undefined && !isPlaneName(ceph.plane)) report('unknown-plane', 'error', [...base, 'plane'], `"${ceph.plane}" is not a plane (${PLANE_NAMES.join(', ')})`);
    if (has('nodes') && ceph.failureDomain === 'domain' && ceph.size !== undefined && ceph.size > domains.size) {
      report('ceph-domains', 'error', [...base, 'size'], `size ${ceph.size} replicas across failure domains, but only ${domains.size} domain(s) exist`);
    }
  }

  // ---- acceptance drills
  (has('acceptance') ? s.acceptance.drills : []).forEach((d, i) => {
    const path: PathSegment[] = ['spec', 'acceptance', 'drills', i, 'name'];
    if (!(DRILL_SCENARIOS as readonly string[]).includes(d.name)) report('unknown-drill', 'error', path, `"${d.name}" is not a known drill scenario (${DRILL_SCENARIOS.join(', ')})`);
    if (d.expectRecoveryMinutes > s.acceptance.mttrTargetMinutes) report('drill-over-mttr', 'warning', ['spec', 'acceptance', 'drills', i, 'expectRecoveryMinutes'], `expects ${d.expectRecoveryMinutes} min, over the MTTR target of ${s.acceptance.mttrTargetMinutes} min`);
  });

  return out;
}

