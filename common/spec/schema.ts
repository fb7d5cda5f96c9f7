// The ClusterSpec: the one declarative input of the foundry (seed 003 §13).
// This zod schema is the single source of truth: the TypeScript types, the JSON Schema the
// editor uses and the validation the CLI runs all come from it. Every object is strict, so a
// misspelt field is an error and never silently ignored.
import { z } from 'zod';
import { parseCidr, parseIpv4 } from '../net/ipv4';
import { HOST_NAME } from '../net/host-name';

export const API_VERSION = 'kubedos.ca/v1alpha1';

/** The roles of the original 16-node system (seed 001). */
export const NODE_ROLES = ['master', 'prometheus', 'grafana', 'storage', 'etcd', 'control-plane', 'worker', 'lb'] as const;
export const NodeRole = z.enum(NODE_ROLES).describe('What the node is for. `master` is the hub of every plane and the orchestrator.');
export type NodeRole = z.infer<typeof NodeRole>;

export const PLANE_NAMES = ['wg1', 'wg2', 'wg3'] as const;
export const PlaneName = z.enum(PLANE_NAMES);
export type PlaneName = z.infer<typeof PlaneName>;

/** Stages of the convergence DAG (seed 003 §12), plus drills. */
export const STAGE_NAMES = ['validate', 'build', 'provision', 'firstboot', 'backplanes', 'enroll', 'converge', 'workload', 'seal', 'drill'] as const;
export const StageName = z.enum(STAGE_NAMES);
export type StageName = z.infer<typeof StageName>;

/** Drill scenarios the drill engine knows. */
export const DRILL_SCENARIOS = [
  'delete-worker-vm',
  'delete-control-plane-vm',
  'delete-etcd-vm',
  'delete-lb-vm',
  'delete-storage-vm',
  'stop-master-vm',
  'partition-plane-wg3',
  'rotate-wireguard-keys',
  'power-off-node',
  'partition-node',
  'kill-etcd-member',
] as const;
export const DrillScenario = z.enum(DRILL_SCENARIOS);

const dnsLabel = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a DNS label: lowercase letters, digits and "-", 1-63 characters, not starting or ending with "-"');

const ipv4 = z.string().refine((s) => parseIpv4(s) !== undefined, 'must be an IPv4 address like 10.100.0.1');
const cidr = z
  .string()
  .refine((s) => parseCidr(s) !== undefined, 'must be an IPv4 network like 10.101.0.0/24 with the host bits zero');

/** Proxmox tag syntax (pve-tag: starts with [a-z0-9_], then [a-z0-9_+.-]). */
export const PROXMOX_TAG = /^[a-z0-9_][a-z0-9_+.-]*$/;
const proxmoxTag = z
  .string()
  .max(128)
  .regex(PROXMOX_TAG, 'Proxmox tags may only hold a-z, 0-9, "_", "+", "." and "-" (write "artifact-0.1.0", not "artifact:0.1.0")');

/** Proxmox storage and bridge identifiers (pve-storage-id / pve-bridge-id). */
export const PROXMOX_ID = /^[a-z][a-z0-9\-_.]*[a-z0-9]$/i;
const storageId = z.string().max(64).regex(PROXMOX_ID, 'must be a Proxmox storage id: a letter, then letters, digits, "-", "_" or "."');
const bridgeId = z.string().max(15).regex(/^[a-zA-Z][a-zA-Z0-9_.]*$/, 'must be a Linux bridge name (max 15 characters, letters, digits, "_" and ".")');

const artifactVersion = z.string().regex(/^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$/, 'must be a semantic version like 0.1.0');
const vlanId = z.number().int().min(1).max(4094);
const port = z.number().int().min(1).max(65535);

// ---------------------------------------------------------------- metadata

export const Metadata = z
  .strictObject({
    name: dnsLabel.describe('Cluster name; part of VM tags, MACs and identities.'),
    artifactVersion: artifactVersion.describe('Version of the platform artifact this spec is built into.'),
    intent: z.string().max(200).optional().describe('Free text: why this cluster exists.'),
  })
  .describe('Identity of the cluster.');

// ---------------------------------------------------------------- substrate

export const StoragePool = z.strictObject({
  name: storageId,
  type: z.enum(['zfs', 'zfspool', 'lvmthin', 'lvm', 'dir', 'rbd', 'nfs']).describe('Proxmox storage type.'),
});

export const Bridge = z.strictObject({
  name: bridgeId,
  vlanAware: z.boolean().default(false),
  trunks: z.array(vlanId).default([]).describe('VLAN ids carried on the bridge.'),
});

export const ProxmoxSubstrate = z
  .strictObject({
    clusterName: dnsLabel.describe('Proxmox cluster name (informational; checked against the host).'),
    node: dnsLabel.optional().describe('Proxmox node name to place VMs on; defaults to the host\'s own node name.'),
    host: z
      .string()
      .regex(HOST_NAME, 'must be an ~/.ssh/config Host alias or a host name')
      .optional()
      .describe('SSH target (a Host alias from ~/.ssh/config); can be overridden by --target proxmox://HOST.'),
    storagePools: z.array(StoragePool).min(1),
    isoStorage: storageId.default('local').describe('Storage that holds ISO images (content type iso).'),
    bridges: z.array(Bridge).min(1),
    tags: z.array(proxmoxTag).default([]).describe('Extra tags put on every VM (kubedos, cluster-<name> and artifact-<version> are always added).'),
  })
  .describe('Proxmox VE over SSH.');

export const QemuSubstrate = z
  .strictObject({
    accel: z.enum(['auto', 'kvm', 'tcg']).default('auto').describe('auto probes KVM with a real short boot and falls back to TCG.'),
    stateDir: z
      .string()
      .min(1)
      .max(4000)
      // QEMU and swtpm split option strings on ","; control characters and ".." have no place in a path we own.
      // eslint-disable-next-line no-control-regex
      .regex(/^(?!.*(?:^|\/)\.\.(?:\/|$))[^,\u0000-\u001f\u007f]+$/, 'a directory path without ",", control characters or ".." segments')
      .optional()
      .describe('Where VM disks, firmware vars and sockets live; default: the workspace.'),
    storagePools: z.array(StoragePool).default([{ name: 'local', type: 'dir' }]),
    bridges: z.array(Bridge).default([{ name: 'kubedos0', vlanAware: false, trunks: [] }]),
  })
  .describe('Local QEMU; the cluster shares an isolated L2 network that reaches nothing outside this machine.');

export const Substrate = z
  .strictObject({
    type: z.enum(['proxmox', 'qemu']),
    proxmox: ProxmoxSubstrate.optional(),
    qemu: QemuSubstrate.optional(),
  })
  .describe('Where VMs are created. The section named by `type` must be present.');

// ---------------------------------------------------------------- nodes

export const Disk = z.strictObject({
  pool: storageId.describe('Storage pool the disk is allocated from.'),
  sizeGiB: z.number().int().min(4).max(65536),
});

export const Nic = z.strictObject({
  bridge: bridgeId,
  vlan: vlanId.optional(),
  mac: z
    .string()
    .regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/, 'must be a lowercase MAC like 02:4b:44:00:00:01')
    .optional()
    .describe('Override the deterministic locally administered MAC.'),
});

export const NodeSpec = z.strictObject({
  name: dnsLabel.describe('Hostname and VM name.'),
  role: NodeRole,
  domain: dnsLabel.describe('Failure domain (one of nodes.failureDomains).'),
  vmid: z.number().int().min(100).max(999999999).optional().describe('Proxmox VMID; default: vmidRange.start + position in the inventory.'),
  color: z.enum(['blue', 'green']).optional().describe('LAN half for this node; default: networking.lan.active.'),
  cpu: z.number().int().min(1).max(512),
  memoryMiB: z.number().int().min(512).max(4_194_304),
  disks: z.array(Disk).min(1),
  nics: z.array(Nic).min(1).describe('The first NIC carries the LAN (underlay of the planes).'),
});
export type NodeSpec = z.infer<typeof NodeSpec>;

export const Nodes = z.strictObject({
  vmidRange: z.strictObject({ start: z.number().int().min(100), end: z.number().int().max(999999999) }),
  failureDomains: z.array(z.strictObject({ name: dnsLabel, description: z.string().optional() })).min(1),
  inventory: z.array(NodeSpec).min(1),
});

// ---------------------------------------------------------------- networking

export const Lan = z
  .strictObject({
    cidr: cidr.describe('The LAN /20: first /21 (8×/24) is blue, second /21 (8×/24) is green.'),
    gateway: ipv4.optional().describe('Default gateway; omit on an isolated LAN.'),
    active: z.enum(['blue', 'green']).default('blue').describe('Half that nodes without an explicit color live in.'),
    hostOffset: z.number().int().min(2).max(255).default(16).describe('First host offset inside a half; node address = half + hostOffset + (vmid - vmidRange.start).'),
    dns: z.array(ipv4).default([]),
  })
  .describe('The LAN plan (seed 000): a /20 split into 8×/24 blue and 8×/24 green.');

export const Plane = z.strictObject({
  cidr: cidr,
  purpose: z.enum(['control', 'observability', 'kubernetes-backend']).describe('wg1 control, wg2 observability, wg3 kubernetes backend (seed 003 §7.2).'),
  listenPort: port.optional().describe('UDP port of the plane on every node; default 51821/51822/51823.'),
  mtu: z.number().int().min(1280).max(9000).default(1420),
});

export const PortRange = z
  .string()
  .regex(/^\d{1,5}(-\d{1,5})?\/(tcp|udp)$/, 'must look like "6443/tcp" or "2379-2380/tcp"');

export const PolicyRule = z.strictObject({
  from: z.string().describe('Source plane.'),
  to: z.string().describe('Destination plane.'),
  ports: z.array(PortRange).min(1),
  description: z.string().optional(),
});

export const Networking = z.strictObject({
  lan: Lan,
  apiVip: ipv4.describe('Kubernetes API virtual IP on the LAN, held by keepalived on the lb nodes.'),
  planes: z.strictObject({ wg1: Plane, wg2: Plane, wg3: Plane }),
  policy: z.strictObject({
    defaultInterPlane: z.literal('deny').describe('Inter-plane traffic is denied unless a rule allows it (seed 003 §7.3).'),
    allow: z.array(PolicyRule).default([]),
  }),
});

// ---------------------------------------------------------------- security

export const Security = z.strictObject({
  bootstrap: z.strictObject({
    model: z.enum(['offline-ca']).describe('Offline root CA + per-cluster intermediate (seed 003 §6.2).'),
    caFingerprint: z
      .string()
      .regex(/^sha256:([0-9a-f]{64}|REDACTED)$/, 'must be "sha256:" and 64 lowercase hex digits (or sha256:REDACTED before the CA exists)')
      .describe('Fingerprint of the offline root CA certificate.'),
  }),
  ssh: z.strictObject({
    allowUsers: z.array(z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'must be a Unix user name')).min(1),
    passwordAuth: z.literal(false).describe('Key-only SSH is a baseline requirement (seed 003 §6.5).'),
  }),
  keyRotation: z.strictObject({
    wireguardDays: z.number().int().min(1).max(365),
    kubeCertDays: z.number().int().min(1).max(365),
  }),
  enrollment: z
    .strictObject({
      windowMinutes: z.number().int().min(1).max(1440).default(30),
      port: port.default(8443),
      tokenTtlMinutes: z.number().int().min(1).max(10080).default(60),
    })
    .default({ windowMinutes: 30, port: 8443, tokenTtlMinutes: 60 })
    .describe('The master\'s enrollment window (seed 001: ENROLL_ENABLED).'),
});

// ---------------------------------------------------------------- storage

export const Storage = z.strictObject({
  zfs: z.strictObject({ enabled: z.boolean(), pools: z.array(z.string()).default([]) }),
  ceph: z.strictObject({
    enabled: z.boolean(),
    failureDomain: z.enum(['host', 'domain']).optional().describe('CRUSH failure domain: a host, or a failure domain of nodes.failureDomains.'),
    size: z.number().int().min(1).max(10).optional().describe('Replicas per object.'),
    minSize: z.number().int().min(1).max(10).optional().describe('Replicas needed to serve I/O.'),
    plane: z.string().optional().describe('Plane that carries Ceph traffic.'),
    recovery: z
      .strictObject({
        maxBackfills: z.number().int().min(1).max(64).default(1),
        rebuildOnReplace: z.boolean().default(true),
      })
      .optional()
      .describe('Recovery and rebuild semantics (seed 003 §8.2).'),
  }),
});

// ---------------------------------------------------------------- orchestration

export const Orchestration = z.strictObject({
  salt: z.strictObject({
    enabled: z.boolean(),
    enrollment: z.enum(['token+pin', 'token', 'offline-approval']).default('token+pin'),
  }),
  ansible: z.strictObject({
    enabled: z.boolean(),
    mode: z.enum(['converge', 'check']).default('converge'),
  }),
});

// ---------------------------------------------------------------- kubernetes

export const Kubernetes = z.strictObject({
  enabled: z.boolean(),
  version: z
    .string()
    .regex(/^v\d+\.\d+\.(\d+|x)$/, 'must look like v1.30.4 (or v1.30.x: the patch is pinned by the artifact manifest)'),
  ha: z.strictObject({
    controlPlaneReplicas: z.number().int().min(1).max(15),
    etcd: z.enum(['stacked', 'external']),
    upgradeStrategy: z
      .enum(['rolling', 'surge', 'replace'])
      .default('replace')
      .describe('How `kubedos upgrade` moves nodes to a new artifact: rolling (write the passive A/B root slot, reboot, health gate), surge (a replacement node first, then the old one goes) or replace (fence and replace, the drill machinery). docs/upgrades.md'),
    maxUnavailable: z
      .number()
      .int()
      .min(1)
      .max(64)
      .optional()
      .describe('Nodes an upgrade takes down at once, in one failure domain (default 1). The etcd quorum guard and the one-replica-stays rule can make a wave smaller.'),
  }),
  cni: z.strictObject({
    name: z.enum(['cilium']),
    hubble: z.boolean().default(true),
    datapath: z.enum(['native-routing', 'tunnel']).default('native-routing').describe('tunnel is an overlay and must be chosen explicitly (seed 003 §7.4).'),
    policyDefault: z.enum(['default-deny', 'allow']).default('default-deny'),
  }),
  observability: z.strictObject({
    prometheus: z.boolean(),
    grafana: z.boolean(),
    loki: z.boolean(),
    plane: z.string().default('wg2'),
  }),
});

// ---------------------------------------------------------------- upstream sources

// What Debian's main archive does not carry (Kubernetes, Cilium, Grafana, Loki, Salt, ZFS from
// contrib) enters the artifact only as a declared, pinned source: an apt repository signed by a
// key named by its fingerprint, an OCI image named by its digest, a file named by its sha256.
// Nothing else from outside Debian is ever fetched. See docs/sources.md.

const sourceUrl = z
  .string()
  .max(2000)
  .regex(/^(https?|file):\/\/?[^\s]+$/, 'must be an http://, https:// or file: URL without spaces');
const debianPackageName = z.string().regex(/^[a-z0-9][a-z0-9+.-]+$/, 'must be a Debian package name (lowercase letters, digits, "+", "-" and ".")');

export const AptSourceSpec = z
  .strictObject({
    name: dnsLabel.describe('Short name of the source, used in the lock, the SBOM and messages.'),
    url: sourceUrl.describe('Base URL of the apt repository (the folder that holds dists/).'),
    suite: z
      .string()
      .max(100)
      .regex(/^[A-Za-z0-9._~/+-]+$/, 'must be an apt suite like "stable" or, for a flat repository, a path ending in "/"')
      .describe('Suite (dists/<suite>/); a flat repository has a path ending in "/" and no components.'),
    components: z.array(z.string().regex(/^[A-Za-z0-9._/-]+$/, 'must be an apt component like "main"')).default([]),
    signedBy: z
      .string()
      .regex(/^[0-9A-F]{40}$/, 'must be the full OpenPGP fingerprint of the signing key: 40 uppercase hex digits, no spaces')
      .describe('Fingerprint of the key that must sign the repository\'s InRelease; anything else is refused.'),
    packages: z.array(debianPackageName).min(1).describe('Packages taken from this repository (their dependencies come from Debian or from this repository).'),
    key: sourceUrl
      .optional()
      .describe('URL of the public key the repository publishes (armored or binary OpenPGP); the build fetches it and accepts the InRelease only when signed by signedBy. Needed to fetch the packages.'),
    installOn: z
      .array(NodeRole)
      .min(1)
      .optional()
      .describe(
        'Roles whose nodes get this source\'s packages installed by the build: in the role\'s qcow2 image (each slot of an A/B disk) and by its installer ISO, like the role\'s Debian packages (e.g. a vendor agent every node runs). Absent: the packages only go into the darksite, for the converge roles that install them (Kubernetes, Grafana, Loki, Salt, ZFS).',
      ),
  })
  .describe('An extra apt repository.');

export const ImageSourceSpec = z
  .strictObject({
    name: dnsLabel.describe('Short name of the image, used in the lock, the SBOM and messages.'),
    reference: z
      .string()
      .max(500)
      .regex(/^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)+(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?$/, 'must be an image reference like host/project/name:tag (no "@digest": the digest goes in the digest field)')
      .describe('Where the image is pulled from when the foundry is online; the tag is informational, the digest decides.'),
    digest: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be "sha256:" and 64 lowercase hex digits').describe('Digest of the image manifest (or index) that is accepted.'),
  })
  .describe('A container image, pinned by digest.');

export const FileSourceSpec = z
  .strictObject({
    name: dnsLabel.describe('Short name of the file, used in the lock, the SBOM and messages.'),
    url: sourceUrl,
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits').describe('sha256 of the file; any other content is refused.'),
  })
  .describe('A plain file (a Helm chart, a CLI tarball), pinned by its sha256.');

export const Sources = z
  .strictObject({
    apt: z.array(AptSourceSpec).default([]),
    images: z.array(ImageSourceSpec).default([]),
    files: z.array(FileSourceSpec).default([]),
  })
  .describe('Upstream inputs beyond Debian main, fetched and verified by a foundry that is online (docs/sources.md).');
export type Sources = z.infer<typeof Sources>;

// ---------------------------------------------------------------- acceptance, self-healing, stages

export const Acceptance = z.strictObject({
  mttrTargetMinutes: z.number().int().min(1).max(1440),
  drills: z
    .array(z.strictObject({ name: z.string(), expectRecoveryMinutes: z.number().int().min(1).max(1440) }))
    .default([]),
});

export const SelfHealing = z
  .strictObject({
    detect: z
      .strictObject({
        heartbeatSeconds: z.number().int().min(1).max(600).default(10),
        missedHeartbeats: z.number().int().min(1).max(100).default(3),
        signals: z.array(z.enum(['guest-agent', 'wg-handshake', 'kubelet-ready', 'etcd-member', 'converge-drift'])).min(1).default(['guest-agent', 'wg-handshake']),
      })
      .default({ heartbeatSeconds: 10, missedHeartbeats: 3, signals: ['guest-agent', 'wg-handshake'] }),
    fence: z
      .strictObject({
        after: z.enum(['detect', 'manual']).default('detect'),
        actions: z.array(z.enum(['cordon', 'drain', 'remove-etcd-member', 'revoke-plane-peers', 'stop-vm'])).default(['cordon', 'drain', 'revoke-plane-peers', 'stop-vm']),
        drainTimeoutSeconds: z.number().int().min(0).max(3600).default(300),
      })
      .default({ after: 'detect', actions: ['cordon', 'drain', 'revoke-plane-peers', 'stop-vm'], drainTimeoutSeconds: 300 }),
    replace: z
      .strictObject({ automatic: z.boolean().default(false), maxConcurrent: z.number().int().min(1).max(16).default(1) })
      .default({ automatic: false, maxConcurrent: 1 }),
  })
  .describe('Detect / fence / replace thresholds (seed 003 §11.2).');

const StagePolicy = z.strictObject({
  allowDestroy: z.boolean().default(false).describe('Let this stage destroy or replace VMs it owns. Default: non-destructive.'),
});

export const Stages = z
  .partialRecord(StageName, StagePolicy)
  .describe('Per-stage policy. Destructive stages refuse to run without allowDestroy.');

// ---------------------------------------------------------------- the whole spec

/** Release channels, from the most to the least proven (common/upgrade/policy.ts: a cluster takes
 * builds of its channel or a more stable one). A closed list, not a free name: a misspelt channel
 * would match no build and silently refuse every upgrade; the schema says so at once instead. */
export const UPGRADE_CHANNELS = ['stable', 'candidate', 'edge'] as const;
export const UpgradeChannel = z.enum(UPGRADE_CHANNELS);
export type UpgradeChannel = z.infer<typeof UpgradeChannel>;
/** Days of the week, index = JavaScript's getUTCDay() (Sunday 0). */
export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
/** An IANA time zone name this runtime's Intl knows (Node and browsers both carry the zone data). */
export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}
export const MaintenanceWindow = z
  .strictObject({
    days: z
      .array(z.enum(WEEKDAYS))
      .min(1)
      .refine((d) => new Set(d).size === d.length, 'each day at most once')
      .describe('Days of the week the window opens on (sun, mon, tue, wed, thu, fri, sat), in its time zone.'),
    start: z
      .string()
      .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM on a 24-hour clock, like 02:00')
      .describe('When the window opens, HH:MM on a 24-hour clock, in its time zone (UTC unless timezone is set).'),
    durationMinutes: z
      .number()
      .int()
      .min(1)
      .max(1440)
      .describe('How long the window stays open, in minutes (at most 1440); it may run past midnight and past Saturday into Sunday.'),
    timezone: z
      .string()
      .max(64)
      .refine(isTimeZone, 'must be an IANA time zone like Europe/Paris or UTC')
      .optional()
      .describe('IANA time zone of days and start (default UTC). Across a daylight saving change: a start in the skipped hour opens that much later, a start in the repeated hour at its first occurrence; the duration is elapsed time.'),
  })
  .describe('A weekly window in which `kubedos upgrade` may start nodes on a new build.');
export type MaintenanceWindow = z.infer<typeof MaintenanceWindow>;
// The new fields are optional without zod defaults on purpose: the plan hashes the parsed spec
// (plan.cluster.specSha256), so a default would change that hash for every spec with an
// `upgrades` block and its sealed recovery bundle would no longer verify. common/upgrade/policy.ts
// (upgradePolicyOf) gives the defaults.
export const Upgrades = z
  .strictObject({
    diskLayout: z
      .enum(['single', 'ab'])
      .default('single')
      .describe('qcow2 images: single (ESP + one root, the default) or ab (ESP, root A, root B, a data partition, and the GRUB boot counter with the health gate). docs/upgrades.md'),
    channel: UpgradeChannel.optional().describe(
      'The release channel: a build records its spec\'s channel (default stable); `kubedos upgrade` takes builds of the channel the cluster follows (the channel of the build it runs) or a more stable one (stable < candidate < edge) and refuses the rest unless --channel is given. docs/upgrades.md',
    ),
    maintenanceWindows: z
      .array(MaintenanceWindow)
      .max(32)
      .optional()
      .describe('When `kubedos upgrade` may start a node on N+1; none or absent: any time. Outside every window the upgrade is refused (unless --outside-window), and a run stops before the next node once its window has closed. docs/upgrades.md'),
    requiresAtLeast: artifactVersion
      .optional()
      .describe('The stepping stone: the lowest artifact version a cluster must run to upgrade to this build (e.g. 0.2.0 for a 0.3.0 that changes the data layout); recorded in the signed build manifest, and an older cluster is refused naming the version to upgrade to first. docs/upgrades.md'),
  })
  .describe('How nodes are built for upgrades and when and from what they may be upgraded (docs/upgrades.md).');

export const ClusterSpecBody = z.strictObject({
  substrate: Substrate,
  nodes: Nodes,
  networking: Networking,
  security: Security,
  storage: Storage,
  orchestration: Orchestration,
  kubernetes: Kubernetes,
  sources: Sources.default({ apt: [], images: [], files: [] }),
  acceptance: Acceptance,
  selfHealing: SelfHealing.default({
    detect: { heartbeatSeconds: 10, missedHeartbeats: 3, signals: ['guest-agent', 'wg-handshake'] },
    fence: { after: 'detect', actions: ['cordon', 'drain', 'revoke-plane-peers', 'stop-vm'], drainTimeoutSeconds: 300 },
    replace: { automatic: false, maxConcurrent: 1 },
  }),
  stages: Stages.default({}),
  upgrades: Upgrades.optional(),
});

export const ClusterSpec = z
  .strictObject({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal('Cluster'),
    metadata: Metadata,
    spec: ClusterSpecBody,
  })
  .describe('Kube\'d\'OS ClusterSpec: everything the foundry needs to manufacture a cluster.');

export type ClusterSpec = z.infer<typeof ClusterSpec>;
export type ClusterSpecInput = z.input<typeof ClusterSpec>;
