// Renders one role's payload from the plan. Pure: templates and static files come in as
// values, files come out as values; the loader (load.ts) does the reading and the ISO and
// image builders do the writing. Same inputs → same bytes.
import { canonicalJson, sha256Hex } from '../../../common/canonical';
import { nodeConfig } from '../../../common/plan/node-config';
import type { Plan } from '../../../common/plan/schema';
import type { NodeRole } from '../../../common/spec/schema';

export interface PayloadFile {
  /** POSIX path inside the payload tree (installed by install-payload.sh). */
  path: string;
  data: Uint8Array;
  mode: number;
}

export interface PayloadSources {
  /** payload/preseed/base.cfg */
  preseedBase: string;
  /** payload/preseed/roles/<role>.cfg, by role */
  preseedRoles: Partial<Record<NodeRole, string>>;
  /** payload/firstboot/* and payload/backplane/* (path relative to payload/), with modes. */
  files: readonly PayloadFile[];
  /** payload/ansible/** (paths "ansible/…"): baked into the hub's payload only. */
  ansible?: readonly PayloadFile[];
}

export interface RenderInput {
  plan: Plan;
  role: NodeRole;
  sources: PayloadSources;
  sshAllowUsers: readonly string[];
  opsAuthorizedKey: string;
  repoKeyring: Uint8Array;
  /** Package names the installer adds (pkgsel/include): base + role pins. */
  packages: readonly string[];
  /** Where the installer reaches the darksite over HTTP. */
  mirror: { host: string; directory: string };
  /** Power off when the install finishes (lab and bench); Proxmox VMs reboot into the disk. */
  poweroff: boolean;
  /** The hub's health-watcher configuration (hubHealthWatchConfigText, main/stages/converge.ts); baked into the hub's payload only. */
  healthWatch?: string;
}

export interface RenderedPayload {
  role: NodeRole;
  preseed: string;
  files: PayloadFile[];
  nodes: string[];
}

const enc = new TextEncoder();

export function renderTemplate(template: string, values: Record<string, string>, where: string): string {
  const out = template.replace(/\{\{([A-Z_]+)\}\}/g, (_m, key: string) => {
    const v = values[key];
    if (v === undefined) throw new Error(`${where}: unknown placeholder {{${key}}}`);
    if (/[\n\r]/.test(v)) throw new Error(`${where}: value for {{${key}}} contains a newline`);
    return v;
  });
  return out;
}

export function rolesOf(plan: Plan): NodeRole[] {
  return [...new Set(plan.nodes.map((n) => n.role))].sort();
}

export function renderPreseed(input: RenderInput): string {
  const roleFragment = input.sources.preseedRoles[input.role];
  if (roleFragment === undefined) throw new Error(`payload: no preseed template for role ${input.role} (payload/preseed/roles/${input.role}.cfg)`);
  const opsUser = input.sshAllowUsers[0];
  if (!opsUser) throw new Error('payload: security.ssh.allowUsers is empty; the first user is the operator account');
  const values: Record<string, string> = {
    CLUSTER: input.plan.cluster.name,
    ROLE: input.role,
    HOSTNAME: `${input.role}-install`,
    DOMAIN: input.plan.cluster.domain,
    MIRROR_HOST: input.mirror.host,
    MIRROR_DIR: input.mirror.directory,
    OPS_USER: opsUser,
    PACKAGES: [...new Set(input.packages)].sort().join(' '),
    POWEROFF: input.poweroff ? 'true' : 'false',
  };
  return renderTemplate(`${input.sources.preseedBase.trimEnd()}\n\n${roleFragment.trimEnd()}\n`, values, `preseed ${input.role}`);
}

/** Pure: sha256 over every payload file (path, mode and bytes, in path order). */
export function payloadDigest(files: readonly PayloadFile[]): string {
  const lines = [...files]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((f) => `${f.path}\0${f.mode.toString(8)}\0${sha256Hex(f.data)}`);
  return sha256Hex(lines.join('\n'));
}

export function renderPayload(input: RenderInput): RenderedPayload {
  const nodes = input.plan.nodes.filter((n) => n.role === input.role).map((n) => n.name).sort();
  if (!nodes.length) throw new Error(`payload: the plan has no ${input.role} node`);
  const files: PayloadFile[] = input.sources.files.map((f) => ({ ...f }));
  // The hub converges the cluster from its own baked copy of the Ansible content (seed 003 §12:
  // the workbench only triggers and watches), with the plan's inventory beside it.
  const isHub = input.plan.nodes.some((n) => n.hub && n.role === input.role);
  if (isHub && input.sources.ansible?.length) {
    files.push(...input.sources.ansible.map((f) => ({ ...f })));
    files.push({ path: 'ansible-inventory.yml', data: enc.encode(input.plan.ansibleInventory), mode: 0o644 });
  }
  if (isHub && input.healthWatch !== undefined) files.push({ path: 'health-watch.json', data: enc.encode(input.healthWatch), mode: 0o644 });
  for (const name of nodes) files.push({ path: `nodes/${name}.json`, data: enc.encode(canonicalJson(nodeConfig(input.plan, name), 2) + '\n'), mode: 0o644 });
  const opsUser = input.sshAllowUsers[0] ?? 'ops';
  files.push({ path: 'ops-user', data: enc.encode(`${opsUser}\n`), mode: 0o644 });
  files.push({ path: 'ops.authorized_keys', data: enc.encode(input.opsAuthorizedKey.trim() + '\n'), mode: 0o644 });
  files.push({ path: 'kubedos-archive-keyring.gpg', data: input.repoKeyring, mode: 0o644 });
  const preseed = renderPreseed(input);
  files.push({ path: 'preseed.cfg', data: enc.encode(preseed), mode: 0o644 });
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const manifest = {
    apiVersion: 'kubedos.ca/v1alpha1',
    kind: 'Payload',
    cluster: input.plan.cluster.name,
    artifactVersion: input.plan.cluster.artifactVersion,
    specSha256: input.plan.cluster.specSha256,
    role: input.role,
    nodes,
    opsUser,
    sshAllowUsers: [...input.sshAllowUsers],
    // Identifies exactly what the node was installed with: the deploy compares it with the
    // current build to tell when a node runs an older payload than the artifact it would get.
    payloadSha256: payloadDigest(files),
  };
  files.push({ path: 'payload.json', data: enc.encode(canonicalJson(manifest, 2) + '\n'), mode: 0o644 });
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const seen = new Set<string>();
  for (const f of files) {
    if (seen.has(f.path)) throw new Error(`payload: two files at ${f.path}`);
    seen.add(f.path);
  }
  return { role: input.role, preseed, files, nodes };
}
