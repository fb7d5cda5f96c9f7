// The deploy service, used by the workbench (main/ipc binds it) and by `kubedos deploy --review`:
// check a target (Proxmox: SSH connection, host key against known_hosts, inventory; qemu-local:
// capacity against the plan), trust a host key the user compared, and review what a deploy
// would change (provision's pure reviewDecisions() on the driver's inventory, blocked VMIDs
// included). Nothing here creates, changes or destroys a VM.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CheckItem, DeployReview, DeployTarget, InventorySummary, ProblemDetail, TargetCheck } from '../../common/contract/index';
import { diffPlan, inVmidRange, ownershipOf, owns, plan as makePlan } from '../../common/plan/index';
import type { Plan } from '../../common/plan/schema';
import { Plan as PlanSchema } from '../../common/plan/schema';
import type { ClusterSpec } from '../../common/spec/index';
import { parseSpec } from '../../common/spec/index';
import { formatGiB } from '../build/files';
import type { Inventory } from '../substrate/driver';
import { SubstrateError } from '../substrate/driver';
import { substrateFor } from '../substrate/factory';
import { reviewDecisions } from '../substrate/provision';
import { ProxmoxSshDriver } from '../substrate/proxmox-ssh';
import type { QemuLocalDriver } from '../substrate/qemu-local';
import type { HostKeyPrompt } from '../substrate/ssh-session';
import { formatTarget } from '../target';
import { clusterWorkspace, WORKSPACE_LAYOUT, workspaceRoot } from '../workspace';
import type { AccelFacts, HostFacts } from './host-capacity';
import { cachedAccelProbe, capacityChecks, planTotals, readHostFacts } from './host-capacity';

export interface DeployEnvironment {
  home: string;
  sshConfigPath: string;
  knownHostsPath: string;
  env: NodeJS.ProcessEnv;
  /** SSH handshake timeout of a check (default 10 s). */
  readyTimeoutMs?: number;
  /** Host facts for qemu-local (tests inject their own numbers). */
  hostFacts?: (workspace: string) => HostFacts;
}

/** A request the engine cannot act on, with what to do instead. */
export class DeployRequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'DeployRequestError';
  }
}

export interface AnalysedSpec {
  spec: ClusterSpec;
  plan: Plan;
}

/** Parses and plans; throws an actionable error naming the first problems. */
/** The spec and its plan, or a DeployRequestError naming the first errors. `completeness: false` for what does not build (the trust operations). */
export function analyse(text: string, o: { completeness?: boolean } = {}): AnalysedSpec {
  const parsed = parseSpec(text, { completeness: o.completeness ?? true });
  if (!parsed.spec) {
    const errors = parsed.diagnostics.filter((d) => d.severity === 'error');
    const first = errors.slice(0, 3).map((d) => `line ${d.line}:${d.column}: ${d.message}`);
    throw new DeployRequestError('spec.invalid', `the spec has ${errors.length} error(s): ${first.join('; ')}${errors.length > 3 ? '; …' : ''}`, 'fix them in the Spec view (the problems list jumps to each line), then come back');
  }
  return { spec: parsed.spec, plan: makePlan(parsed.spec) };
}

function tryAnalyse(text: string | undefined): AnalysedSpec | undefined {
  if (text === undefined) return undefined;
  try {
    return analyse(text);
  } catch {
    return undefined;
  }
}

export function problemOf(err: unknown): ProblemDetail {
  const e = err as Error & { code?: unknown; hint?: unknown };
  return { code: typeof e?.code === 'string' ? e.code : 'error', message: e?.message ?? String(err), ...(typeof e?.hint === 'string' ? { hint: e.hint } : {}) };
}

/** The deploy stages' own qemu-local driver (main/substrate/factory.ts): same state directory, same accel. */
function qemuDriver(a: AnalysedSpec, de: DeployEnvironment): QemuLocalDriver {
  const { driver } = substrateFor({ spec: a.spec, plan: a.plan, target: { kind: 'qemu-local' }, workspace: clusterWorkspace(a.plan.cluster.name, de.env), env: de.env });
  return driver as QemuLocalDriver;
}

/**
 * The check's own Proxmox driver: like the factory's, but it reports the host key it is shown
 * (the factory only trusts a fingerprint given up front), with one attempt and a short timeout.
 */
function proxmoxDriver(host: string, a: AnalysedSpec | undefined, de: DeployEnvironment, confirmHostKey: (p: HostKeyPrompt) => Promise<boolean>): ProxmoxSshDriver {
  const node = a?.plan.substrate.type === 'proxmox' ? a.plan.substrate.node : undefined;
  return new ProxmoxSshDriver({
    target: `proxmox://${host}`,
    ownership: ownershipOf(a?.plan),
    sshConfigPath: de.sshConfigPath,
    knownHostsPath: de.knownHostsPath,
    home: de.home,
    agentSocket: de.env.SSH_AUTH_SOCK,
    ...(node ? { node } : {}),
    // A check answers within seconds: one attempt, a bounded handshake.
    reconnect: { attempts: 0, backoffMs: 0 },
    readyTimeoutMs: de.readyTimeoutMs ?? 10_000,
    confirmHostKey,
    passphrase: async () => de.env.KUBEDOS_SSH_PASSPHRASE,
  });
}

function summarise(inv: Inventory, p: Plan | undefined): InventorySummary {
  const own = ownershipOf(p);
  return {
    node: inv.node,
    vms: inv.vms.map((vm) => {
      return { vmid: vm.vmid, name: vm.name, status: vm.status, tags: vm.tags, inRange: inVmidRange(vm.vmid, own), owned: owns(vm, own) };
    }),
    storages: inv.storages.map((s) => ({ ...s, availableBytes: Math.min(s.availableBytes, Number.MAX_SAFE_INTEGER), totalBytes: Math.min(s.totalBytes, Number.MAX_SAFE_INTEGER) })),
  };
}


/** The plan's storage pools and ISO storage against the host's storages. */
export function storageChecks(inv: Inventory, p: Plan): CheckItem[] {
  const byPool = new Map<string, { nodes: Set<string>; bytes: number }>();
  const use = (pool: string, node: string, bytes: number): void => {
    const e = byPool.get(pool) ?? { nodes: new Set<string>(), bytes: 0 };
    e.nodes.add(node);
    e.bytes += bytes;
    byPool.set(pool, e);
  };
  for (const n of p.nodes) {
    for (const d of n.vm.disks) use(d.pool, n.name, d.sizeGiB * 1024 ** 3);
    use(n.vm.efidisk.pool, n.name, 0);
    use(n.vm.tpm.pool, n.name, 0);
  }
  const checks: CheckItem[] = [];
  for (const [pool, u] of [...byPool].sort(([a], [b]) => a.localeCompare(b))) {
    const s = inv.storages.find((x) => x.name === pool);
    const users = [...u.nodes].slice(0, 4).join(', ') + (u.nodes.size > 4 ? ', …' : '');
    if (!s) {
      checks.push({ id: `storage:${pool}`, label: `storage ${pool}`, status: 'error', detail: `storage "${pool}" (disks of ${users}) does not exist on node ${inv.node}; the host has ${inv.storages.map((x) => x.name).join(', ') || 'none'}`, hint: `create it on the host (Datacenter > Storage) or change the node disks' pool in the spec`, scope: 'plan' });
    } else if (s.availableBytes < u.bytes) {
      checks.push({ id: `storage:${pool}`, label: `storage ${pool}`, status: 'warn', detail: `${formatGiB(s.availableBytes)} free of ${formatGiB(s.totalBytes)}; the plan's disks on it add up to ${formatGiB(u.bytes)} (thin volumes use less)`, scope: 'plan' });
    } else {
      checks.push({ id: `storage:${pool}`, label: `storage ${pool}`, status: 'ok', detail: `${s.type}, ${formatGiB(s.availableBytes)} free of ${formatGiB(s.totalBytes)}; plan disks ${formatGiB(u.bytes)}`, scope: 'plan' });
    }
  }
  const iso = p.substrate.isoStorage;
  if (iso && !inv.storages.some((s) => s.name === iso)) {
    checks.push({ id: `storage:${iso}:iso`, label: `storage ${iso}`, status: 'error', detail: `isoStorage "${iso}" does not exist on node ${inv.node}`, hint: 'change substrate.proxmox.isoStorage in the spec or create the storage', scope: 'plan' });
  }
  return checks;
}

function ready(checks: readonly CheckItem[], scope: 'target' | 'all'): boolean {
  return !checks.some((c) => c.status === 'error' && (scope === 'all' || c.scope === 'target'));
}

export class DeployService {
  constructor(private readonly de: DeployEnvironment) {}

  private facts(workspace: string): HostFacts {
    return this.de.hostFacts ? this.de.hostFacts(workspace) : readHostFacts(workspace, this.de.env);
  }

  async checkTarget(target: DeployTarget, text: string | undefined, options: { accept?: string; probeAccel?: boolean; signal?: AbortSignal } = {}): Promise<TargetCheck> {
    const a = tryAnalyse(text);
    return target.kind === 'qemu-local' ? this.checkQemu(a, options) : this.checkProxmox(target.host, a, options);
  }

  private async checkQemu(a: AnalysedSpec | undefined, options: { probeAccel?: boolean; signal?: AbortSignal }): Promise<TargetCheck> {
    const env = this.de.env;
    const workspace = a ? clusterWorkspace(a.plan.cluster.name, env) : workspaceRoot(env);
    const facts = this.facts(workspace);
    const accel: AccelFacts = { want: a?.spec.spec.substrate.qemu?.accel ?? 'auto' };
    let inventory: InventorySummary | undefined;
    if (a) {
      const driver = qemuDriver(a, this.de);
      if (options.probeAccel && facts.kvmDevice && accel.want !== 'tcg') {
        try {
          accel.probed = (await driver.accel(options.signal ? { signal: options.signal } : {})).startsWith('kvm') ? 'kvm' : 'tcg';
        } catch (err) {
          accel.probeError = (err as Error).message;
        }
      } else {
        const cached = cachedAccelProbe(driver.options.stateDir);
        if (cached) accel.probed = cached;
      }
      try {
        inventory = summarise(await driver.inventory(options.signal ? { signal: options.signal } : {}), a.plan);
      } finally {
        await driver.close();
      }
    }
    const checks = capacityChecks(facts, accel, a ? planTotals(a.plan) : undefined);
    return { target: 'qemu-local', kind: 'qemu-local', ready: ready(checks, 'target'), checks, ...(inventory ? { inventory } : {}), ...(a ? { plan: planTotals(a.plan) } : {}) };
  }

  private async checkProxmox(host: string, a: AnalysedSpec | undefined, options: { accept?: string; signal?: AbortSignal }): Promise<TargetCheck> {
    const target = formatTarget({ kind: 'proxmox', host });
    const checks: CheckItem[] = [];
    let prompt: HostKeyPrompt | undefined;
    let driver: ProxmoxSshDriver;
    try {
      driver = proxmoxDriver(host, a, this.de, async (p) => {
        prompt = p;
        return options.accept !== undefined && p.fingerprint === options.accept;
      });
    } catch (err) {
      const problem = problemOf(err);
      checks.push({ id: 'ssh-config', label: 'SSH target', status: 'error', detail: problem.message, ...(problem.hint ? { hint: problem.hint } : {}), scope: 'target' });
      return { target, kind: 'proxmox', ready: false, checks, error: problem };
    }
    const t = driver.sshTarget;
    const ssh = { alias: t.alias, hostName: t.hostName, port: t.port, user: t.user, jumps: t.jumps.map((j) => `${j.user}@${j.hostName}:${j.port}`) };
    const fromConfig = t.alias !== t.hostName || existsSync(this.de.sshConfigPath);
    checks.push({
      id: 'ssh-config',
      label: 'SSH target',
      status: 'ok',
      detail: `${t.user}@${t.hostName}:${t.port}${ssh.jumps.length ? ` via ${ssh.jumps.join(' → ')}` : ''}${fromConfig ? ` (resolved with ${this.de.sshConfigPath})` : ''}`,
      scope: 'target',
    });
    const keyFiles = t.identityFiles.filter((f) => existsSync(f));
    if (!this.de.env.SSH_AUTH_SOCK && keyFiles.length === 0) {
      checks.push({ id: 'ssh-keys', label: 'SSH keys', status: 'warn', detail: `no ssh-agent and none of ${t.identityFiles.join(', ')} exists`, hint: `create a key (ssh-keygen -t ed25519) and add it to ${t.user}'s authorized_keys on the host, or set IdentityFile for "${t.alias}"`, scope: 'target' });
    }
    const hostKeyBase = { host: t.hostName, port: t.port, knownHostsPath: this.de.knownHostsPath };
    try {
      const inv = await driver.inventory(options.signal ? { signal: options.signal } : {});
      checks.push({ id: 'connection', label: 'connection', status: 'ok', detail: `logged in as ${t.user}; Proxmox node "${inv.node}"`, scope: 'target' });
      const hostKey = prompt ? { ...hostKeyBase, status: 'accepted' as const, keyType: prompt.keyType, fingerprint: prompt.fingerprint } : { ...hostKeyBase, status: 'known' as const };
      checks.push({ id: 'host-key', label: 'host key', status: 'ok', detail: prompt ? `${prompt.keyType} ${prompt.fingerprint} trusted and added to ${this.de.knownHostsPath}` : `matches ${this.de.knownHostsPath}`, scope: 'target' });
      const inventory = summarise(inv, a?.plan);
      const inRange = inventory.vms.filter((v) => v.inRange);
      checks.push({ id: 'inventory', label: 'inventory', status: 'info', detail: `${inv.vms.length} VM(s) on ${inv.node}${a ? `, ${inRange.length} in ${a.plan.cluster.name}'s VMID range ${a.plan.substrate.vmidRange.start}-${a.plan.substrate.vmidRange.end} (${inRange.filter((v) => v.owned).length} ours)` : ''}; storages: ${inv.storages.map((s) => s.name).join(', ') || 'none'}`, scope: 'target' });
      if (a) checks.push(...storageChecks(inv, a.plan));
      return { target, kind: 'proxmox', ready: ready(checks, 'target'), checks, ssh, hostKey, inventory, ...(a ? { plan: planTotals(a.plan) } : {}) };
    } catch (err) {
      const code = err instanceof SubstrateError ? err.code : '';
      if (code === 'host-key-unknown' && prompt) {
        const mismatch = options.accept !== undefined && options.accept !== prompt.fingerprint;
        checks.push({
          id: 'host-key',
          label: 'host key',
          status: mismatch ? 'error' : 'warn',
          detail: mismatch ? `${prompt.host}:${prompt.port} presents ${prompt.keyType} ${prompt.fingerprint}, not the ${options.accept} you accepted; nothing was written` : `first connection to ${prompt.host}:${prompt.port}: ${prompt.keyType} ${prompt.fingerprint} is not in ${this.de.knownHostsPath}`,
          hint: `compare it with the host's own (on the host: ssh-keygen -lf /etc/ssh/ssh_host_${prompt.keyType.replace(/^ssh-|-.*$/g, '')}_key.pub), then trust it`,
          scope: 'target',
        });
        return {
          target,
          kind: 'proxmox',
          ready: false,
          checks,
          ssh,
          hostKey: { host: prompt.host, port: prompt.port, status: 'unknown', keyType: prompt.keyType, fingerprint: prompt.fingerprint, knownHostsPath: this.de.knownHostsPath },
          ...(mismatch ? { error: { code: 'host-key-mismatch', message: `the host key changed between the check and the accept: ${prompt.fingerprint}, not ${options.accept}`, hint: 'check the connection again and compare the new fingerprint with the host' } } : {}),
        };
      }
      const problem = problemOf(err);
      const keyProblem = code === 'host-key-changed' || code === 'host-key-revoked';
      checks.push({ id: keyProblem ? 'host-key' : 'connection', label: keyProblem ? 'host key' : 'connection', status: 'error', detail: problem.message, ...(problem.hint ? { hint: problem.hint } : {}), scope: 'target' });
      return {
        target,
        kind: 'proxmox',
        ready: false,
        checks,
        ssh,
        ...(keyProblem ? { hostKey: { ...hostKeyBase, status: code === 'host-key-changed' ? ('changed' as const) : ('revoked' as const) } } : {}),
        error: problem,
      };
    } finally {
      await driver.close();
    }
  }

  async review(target: DeployTarget, text: string, signal?: AbortSignal): Promise<DeployReview> {
    const a = analyse(text);
    const p = a.plan;
    const env = this.de.env;
    const workspace = clusterWorkspace(p.cluster.name, env);
    // The deploy's own driver (never trusts a new host key; one attempt, short timeout).
    const { driver } = substrateFor({
      spec: a.spec,
      plan: p,
      target,
      workspace,
      env,
      sshConfigPath: this.de.sshConfigPath,
      knownHostsPath: this.de.knownHostsPath,
      dryRun: true,
    });
    let inv: Inventory;
    try {
      inv = await driver.inventory(signal ? { signal } : {});
    } catch (err) {
      if (err instanceof SubstrateError && err.code === 'host-key-unknown') {
        throw new DeployRequestError('host-key-unknown', `the host key of ${formatTarget(target)} is not trusted yet`, 'go back to the Target step, check the connection and trust the host key after comparing its fingerprint');
      }
      throw err;
    } finally {
      await driver.close();
    }
    // One pure decision per node, a VMID held by someone else's VM included (blocked: no
    // checkbox can allow that); the review shows every decision, provision refuses the blocked.
    const reviewed = reviewDecisions(p, inv, { allowDestroy: true, start: true });
    const decisions = reviewed.decisions.map((d) => ({
      node: d.node,
      vmid: d.vmid,
      action: d.action,
      start: d.start,
      destructive: d.action === 'replace' || d.action === 'destroy',
      blocked: d.blocked !== undefined,
      reasons: d.reasons,
      ...(d.changes ? { changes: d.changes } : {}),
    }));
    const summary = { create: 0, keep: 0, update: 0, replace: 0, destroy: 0 };
    for (const d of decisions) summary[d.action]++;
    const taken = reviewed.decisions.filter((d) => d.blocked);
    const blocked: ProblemDetail | undefined = taken.length
      ? {
          code: 'vmid-taken',
          message: `${taken.length} VMID(s) the plan needs are taken by VMs this cluster does not own: ${taken.slice(0, 5).map((d) => `${d.vmid} "${d.heldBy?.name ?? '?'}"`).join(', ')}${taken.length > 5 ? ', …' : ''}`,
          hint: "kubedos never touches VMs it does not own: move the cluster's vmidRange / node vmids to free numbers in the spec, or free those VMIDs on the host",
        }
      : undefined;
    let previousPlan = false;
    const planChanges: string[] = [];
    const planPath = join(workspace, WORKSPACE_LAYOUT.plan);
    if (existsSync(planPath)) {
      try {
        const prev = PlanSchema.parse(JSON.parse(readFileSync(planPath, 'utf8')));
        previousPlan = true;
        const diff = diffPlan(prev, p);
        planChanges.push(...diff.cluster);
        for (const c of diff.changes) if (c.action !== 'keep') planChanges.push(`${c.node}: ${c.action}${c.reasons.length ? ` (${c.reasons.join('; ')})` : ''}`);
      } catch (err) {
        planChanges.push(`the previous plan ${planPath} could not be read (${(err as Error).message.split('\n')[0]}); compared with the target only`);
      }
    }
    let checks: CheckItem[];
    if (target.kind === 'qemu-local') {
      const facts = this.facts(workspace);
      const accel: AccelFacts = { want: a.spec.spec.substrate.qemu?.accel ?? 'auto' };
      const cached = cachedAccelProbe((driver as QemuLocalDriver).options.stateDir);
      if (cached) accel.probed = cached;
      checks = capacityChecks(facts, accel, planTotals(p));
    } else {
      checks = storageChecks(inv, p);
    }
    return {
      target: formatTarget(target),
      cluster: p.cluster.name,
      workspace,
      node: inv.node,
      decisions,
      summary,
      needsAllowDestroy: decisions.some((d) => d.destructive),
      ...(blocked ? { blocked } : {}),
      previousPlan,
      planChanges,
      checks,
    };
  }
}
