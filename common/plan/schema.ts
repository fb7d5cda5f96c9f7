// The Plan: everything later stages need, derived once from the spec. It is written to disk
// (`kubedos plan --json`), read back (`--against`), and crosses the IPC contract, so its shape
// is a zod schema like every other external shape.
import { z } from 'zod';
import { NodeRole, PlaneName, StageName } from '../spec/schema';

export const PLAN_KIND = 'Plan';

export const VmDisk = z.object({
  bus: z.literal('scsi'),
  index: z.number().int().min(0).max(30),
  pool: z.string(),
  sizeGiB: z.number().int(),
  discard: z.boolean(),
  iothread: z.boolean(),
});

export const VmNic = z.object({
  index: z.number().int().min(0).max(31),
  model: z.literal('virtio'),
  mac: z.string(),
  bridge: z.string(),
  vlan: z.number().int().optional(),
  firewall: z.boolean(),
});

/** The deterministic VM shape (seed 001): q35, OVMF with Secure Boot keys, TPM 2.0, guest agent, virtio. */
export const VmShape = z.object({
  vmid: z.number().int(),
  name: z.string(),
  machine: z.literal('q35'),
  bios: z.literal('ovmf'),
  efidisk: z.object({ pool: z.string(), efitype: z.literal('4m'), preEnrolledKeys: z.literal(true) }),
  tpm: z.object({ pool: z.string(), version: z.literal('v2.0') }),
  agent: z.object({ enabled: z.literal(true), fstrimClonedDisks: z.boolean() }),
  cpu: z.object({ sockets: z.literal(1), cores: z.number().int(), type: z.string() }),
  memoryMiB: z.number().int(),
  balloon: z.number().int(),
  scsihw: z.literal('virtio-scsi-single'),
  ostype: z.literal('l26'),
  serial0: z.literal('socket'),
  vga: z.literal('serial0'),
  rng: z.literal(true),
  onboot: z.boolean(),
  disks: z.array(VmDisk),
  nics: z.array(VmNic),
  tags: z.array(z.string()),
  bootOrder: z.array(z.string()),
});
export type VmShape = z.infer<typeof VmShape>;

export const WgPeer = z.object({
  node: z.string(),
  /** Where the key comes from: nodes generate their own keys; the hub learns them at enrollment. */
  publicKeyRef: z.string(),
  endpoint: z.string().optional(),
  allowedIps: z.array(z.string()),
  persistentKeepalive: z.number().int().optional(),
});

export const PlaneAddress = z.object({
  plane: PlaneName,
  interface: z.string(),
  address: z.string().describe('The node\'s /32 on the plane.'),
  listenPort: z.number().int(),
  mtu: z.number().int(),
  privateKeyRef: z.string(),
  peers: z.array(WgPeer),
  /** Policy routing so replies to cross-plane flows leave through the plane they came in on. */
  sourceRoutes: z.object({ table: z.number().int(), priority: z.number().int(), destinations: z.array(z.string()) }),
});
export type PlaneAddress = z.infer<typeof PlaneAddress>;

export const ServiceBinding = z.object({
  name: z.string(),
  /** Plane name, or "lan" for the underlay. */
  on: z.union([PlaneName, z.literal('lan')]),
  ports: z.array(z.string()),
  why: z.string(),
});
export type ServiceBinding = z.infer<typeof ServiceBinding>;

export const PlanNode = z.object({
  name: z.string(),
  hostname: z.string(),
  fqdn: z.string(),
  role: NodeRole,
  domain: z.string(),
  vmid: z.number().int(),
  color: z.enum(['blue', 'green']),
  hub: z.boolean(),
  lan: z.object({ address: z.string(), prefix: z.number().int(), gateway: z.string().optional(), dns: z.array(z.string()), mac: z.string() }),
  planes: z.object({ wg1: PlaneAddress, wg2: PlaneAddress, wg3: PlaneAddress }),
  services: z.array(ServiceBinding),
  vm: VmShape,
  nftables: z.string(),
});
export type PlanNode = z.infer<typeof PlanNode>;

export const PolicyFlow = z.object({
  from: PlaneName,
  to: PlaneName,
  protocol: z.enum(['tcp', 'udp']),
  ports: z.array(z.string()),
  description: z.string().optional(),
});
export type PolicyFlow = z.infer<typeof PolicyFlow>;

export const Plan = z.object({
  apiVersion: z.literal('kubedos.ca/v1alpha1'),
  kind: z.literal(PLAN_KIND),
  cluster: z.object({ name: z.string(), artifactVersion: z.string(), specSha256: z.string(), domain: z.string() }),
  substrate: z.object({
    type: z.enum(['proxmox', 'qemu']),
    clusterName: z.string().optional(),
    node: z.string().optional(),
    host: z.string().optional(),
    isoStorage: z.string().optional(),
    accel: z.string().optional(),
    vmidRange: z.object({ start: z.number().int(), end: z.number().int() }),
    ownershipTags: z.array(z.string()),
  }),
  lan: z.object({ cidr: z.string(), blue: z.string(), green: z.string(), active: z.enum(['blue', 'green']), gateway: z.string().optional(), apiVip: z.string() }),
  planes: z.array(
    z.object({ name: PlaneName, cidr: z.string(), purpose: z.string(), listenPort: z.number().int(), mtu: z.number().int(), hub: z.string(), hubAddress: z.string() }),
  ),
  policy: z.object({ defaultInterPlane: z.literal('deny'), flows: z.array(PolicyFlow) }),
  enrollment: z.object({ hub: z.string(), listen: z.string(), port: z.number().int(), windowMinutes: z.number().int(), tokenTtlMinutes: z.number().int() }),
  stages: z.record(StageName, z.object({ allowDestroy: z.boolean() })),
  nodes: z.array(PlanNode),
  ansibleInventory: z.string(),
  saltRoster: z.string(),
  secretRefs: z.array(z.object({ ref: z.string(), purpose: z.string(), lives: z.string() })),
});
export type Plan = z.infer<typeof Plan>;

export const NodeChange = z.object({
  node: z.string(),
  action: z.enum(['create', 'update', 'replace', 'keep', 'destroy']),
  reasons: z.array(z.string()),
});
export type NodeChange = z.infer<typeof NodeChange>;

export const PlanDiff = z.object({
  changes: z.array(NodeChange),
  summary: z.object({ create: z.number().int(), update: z.number().int(), replace: z.number().int(), keep: z.number().int(), destroy: z.number().int() }),
  cluster: z.array(z.string()).describe('Cluster-wide changes (planes, policy, VIP, LAN).'),
});
export type PlanDiff = z.infer<typeof PlanDiff>;
