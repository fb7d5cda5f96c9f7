// Provision = make the substrate hold exactly the plan's VMs, in the plan's shape. It reads the
// inventory once, decides per node (create / keep / update / replace / start / destroy), checks
// EVERY safety rule before changing anything (a VMID owned by someone else stops the whole
// run; destroy and replace need allowDestroy), then acts through the driver. Rerunning on a
// converged substrate changes nothing.
import type { Plan } from '../../common/plan/schema';
import { ownershipOf, ownershipTags, owns } from '../../common/plan/ownership';
import type { ArtifactFile, Inventory, OpOptions, PlannedStep, SubstrateDriver, UploadResult } from './driver';
import { SubstrateError } from './driver';
import type { BootArtifact, ConfigDifference } from './qm';
import { checkShape, compareConfig, SETTABLE } from './qm';
import { plural } from '../../common/text/plural';
import { bootHang } from './boot-hang';

export interface NodeDecision {
  node: string;
  vmid: number;
  action: 'create' | 'keep' | 'update' | 'replace' | 'destroy';
  start: boolean;
  reasons: string[];
  changes?: Record<string, string>;
}

export interface ProvisionOptions extends OpOptions {
  plan: Plan;
  driver: SubstrateDriver;
  /** What new VMs boot from when `artifactFor` gives nothing for their node. */
  artifact?: ArtifactFile;
  /**
   * Per-node boot artifact (e.g. one golden image per role). Each distinct artifact a create or
   * replace needs is uploaded once; every created VM boots its own node's artifact.
   */
  artifactFor?: (node: Plan['nodes'][number]) => ArtifactFile | undefined;
  /** Storage for uploads (Proxmox: isoStorage). */
  storage: string;
  allowDestroy: boolean;
  /** Start VMs that are stopped (default true). */
  start?: boolean;
  /**
   * Only these planned nodes (by name): the other planned VMs and the cluster's unplanned VMs are
   * left as they are, not even compared (a replace-based upgrade provisions one node from N+1
   * while the others still run N).
   */
  only?: readonly string[];
}

export interface ProvisionResult {
  decisions: NodeDecision[];
  /** The first upload (of `uploads`), kept for callers that use one artifact. */
  upload?: UploadResult;
  /** One per distinct artifact the creates/replaces needed, in first-use order. */
  uploads: UploadResult[];
  /** Number of changes made (0 = already converged). */
  changes: number;
}

/** The tags that make a VM ours (common/plan/ownership.ts; re-exported for the drivers' callers). */
export { ownershipTags };

function settableValue(plan: Plan, diff: ConfigDifference, node: Plan['nodes'][number]): [string, string] {
  const vm = node.vm;
  switch (diff.key) {
    case 'memory':
      return ['memory', String(vm.memoryMiB)];
    case 'cores':
      return ['cores', String(vm.cpu.cores)];
    case 'tags':
      return ['tags', [...vm.tags].sort().join(';')];
    case 'onboot':
      return ['onboot', vm.onboot ? '1' : '0'];
    case 'balloon':
      return ['balloon', String(vm.balloon)];
    case 'cpu':
      return ['cpu', vm.cpu.type];
    case 'name':
      return ['name', vm.name];
    case 'agent':
      return ['agent', `enabled=1,fstrim_cloned_disks=${vm.agent.fstrimClonedDisks ? 1 : 0}`];
    default:
      if (/^net\d+$/.test(diff.key)) return [diff.key, diff.expected];
      throw new Error(`not settable in place: ${diff.key} (${plan.cluster.name})`);
  }
}

/** Decide, without changing anything. Throws on a safety violation. */
/** A decision as the review shows it: blocked when the VMID is held by a VM this cluster does not own. */
export interface ReviewedDecision extends NodeDecision {
  /** Why nothing may happen to this node (no checkbox can allow it). */
  blocked?: string;
  /** The VM that holds the node's VMID when blocked. */
  heldBy?: { name: string; tags: readonly string[] };
}

/** Why the decisions cannot be carried out as they are (empty: they can). */
export interface DecisionProblem {
  code: 'vmid-taken' | 'destroy-refused';
  message: string;
}

/**
 * Pure: what provisioning would do to each node, including what it may not do. A planned VMID
 * held by a VM this cluster does not own is a blocked decision (never touched); a replace or
 * destroy without allowDestroy is a problem. decide() refuses both; the review shows both.
 */
export function reviewDecisions(plan: Plan, inventory: Inventory, opts: { allowDestroy: boolean; start: boolean; only?: readonly string[] | undefined }): { decisions: ReviewedDecision[]; problems: DecisionProblem[] } {
  const nodes = opts.only ? plan.nodes.filter((n) => opts.only!.includes(n.name)) : plan.nodes;
  for (const n of nodes) checkShape(n.vm);
  const own = ownershipOf(plan);
  const byVmid = new Map(inventory.vms.map((v) => [v.vmid, v]));
  const decisions: ReviewedDecision[] = [];
  const problems: DecisionProblem[] = [];
  for (const n of nodes) {
    const vm = byVmid.get(n.vmid);
    if (!vm) {
      decisions.push({ node: n.name, vmid: n.vmid, action: 'create', start: opts.start, reasons: ['absent'] });
      continue;
    }
    if (!owns(vm, own)) {
      const why = `VMID ${n.vmid} (wanted for ${n.name}) is taken by VM "${vm.name}" with tags [${vm.tags.join(', ') || 'none'}], which this cluster does not own`;
      problems.push({ code: 'vmid-taken', message: why });
      decisions.push({ node: n.name, vmid: n.vmid, action: 'create', start: false, reasons: [`BLOCKED: ${why}`], blocked: why, heldBy: { name: vm.name, tags: vm.tags } });
      continue;
    }
    const diffs = vm.config ? compareConfig(n.vm, vm.config) : [];
    const start = opts.start && vm.status !== 'running';
    if (diffs.length === 0) {
      decisions.push({ node: n.name, vmid: n.vmid, action: 'keep', start, reasons: start ? ['in shape, stopped'] : ['in shape'] });
    } else if (diffs.every((d) => d.settable)) {
      const changes = Object.fromEntries(diffs.map((d) => settableValue(plan, d, n)).filter(([k]) => SETTABLE.has(k) || /^net\d+$/.test(k)));
      decisions.push({ node: n.name, vmid: n.vmid, action: 'update', start, reasons: diffs.map((d) => `${d.key}: ${d.actual} -> ${d.expected}`), changes });
    } else {
      const reasons = diffs.map((d) => `${d.key}: ${d.actual} -> ${d.expected}`);
      if (!opts.allowDestroy) problems.push({ code: 'destroy-refused', message: `${n.name} (VMID ${n.vmid}) must be re-created to match the plan (${reasons.join('; ')}), which destroys it` });
      decisions.push({ node: n.name, vmid: n.vmid, action: 'replace', start: opts.start, reasons });
    }
  }
  const planned = new Set(plan.nodes.map((n) => n.vmid));
  // Scoped to some nodes: the cluster's other VMs are not this run's business.
  for (const vm of opts.only ? [] : inventory.vms) {
    if (planned.has(vm.vmid) || !owns(vm, own)) continue;
    if (!opts.allowDestroy) problems.push({ code: 'destroy-refused', message: `VM ${vm.vmid} "${vm.name}" belongs to cluster ${plan.cluster.name} but is not in the plan any more; it would be destroyed` });
    decisions.push({ node: vm.name, vmid: vm.vmid, action: 'destroy', start: false, reasons: ['not in the plan'] });
  }
  return { decisions, problems };
}

export function decide(plan: Plan, inventory: Inventory, opts: { allowDestroy: boolean; start: boolean; only?: readonly string[] | undefined }): NodeDecision[] {
  const { decisions, problems } = reviewDecisions(plan, inventory, opts);
  if (problems.length) {
    const taken = problems.some((p) => p.code === 'vmid-taken');
    throw new SubstrateError(taken ? 'vmid-taken' : 'destroy-refused', `nothing was changed:\n  - ${problems.map((p) => p.message).join('\n  - ')}`, {
      hint: taken
        ? 'kubedos never touches VMs it does not own: move the cluster\'s vmidRange / node vmids to free numbers, or free those VMIDs'
        : 'rerun with --allow-destroy (or stages.provision.allowDestroy: true) if destroying is intended',
    });
  }
  return decisions.map(({ blocked: _blocked, heldBy: _heldBy, ...d }) => d);
}

export function artifactVolid(artifact: ArtifactFile, storage: string): string {
  return `${storage}:${artifact.kind === 'iso' ? 'iso' : 'import'}/${artifact.name}`;
}

type PlanNode = Plan['nodes'][number];
type ArtifactChoice = Pick<ProvisionOptions, 'artifact' | 'artifactFor'>;

/** The artifact a node boots: artifactFor(node), else the shared fallback. */
export function nodeArtifact(node: PlanNode, choice: ArtifactChoice): ArtifactFile | undefined {
  return choice.artifactFor?.(node) ?? choice.artifact;
}

function needsBoot(d: NodeDecision): boolean {
  return d.action === 'create' || d.action === 'replace';
}

/**
 * The distinct artifacts the creates/replaces need (by volid, first-use order) and each
 * node's volid. Throws, before anything changes, when a node needs one and has none, or when
 * two different files would land on the same volume name.
 */
export function artifactsNeeded(plan: Plan, decisions: readonly NodeDecision[], choice: ArtifactChoice, storage: string): { artifacts: Map<string, ArtifactFile>; volidOf: Map<string, string> } {
  const artifacts = new Map<string, ArtifactFile>();
  const volidOf = new Map<string, string>();
  const missing: string[] = [];
  const clashes: string[] = [];
  for (const d of decisions.filter(needsBoot)) {
    const node = plan.nodes.find((n) => n.vmid === d.vmid);
    if (!node) continue;
    const artifact = nodeArtifact(node, choice);
    if (!artifact) {
      missing.push(`${node.name} (role ${node.role})`);
      continue;
    }
    const volid = artifactVolid(artifact, storage);
    const seen = artifacts.get(volid);
    if (seen && (seen.sha256 !== artifact.sha256 || seen.kind !== artifact.kind)) clashes.push(`${volid}: ${seen.path} (sha256 ${seen.sha256.slice(0, 12)}…) and ${artifact.path} (sha256 ${artifact.sha256.slice(0, 12)}…)`);
    if (!seen) artifacts.set(volid, artifact);
    volidOf.set(node.name, volid);
  }
  if (missing.length) {
    throw new SubstrateError('no-artifact', `${missing.join(', ')} must be created but no boot artifact was given for ${missing.length === 1 ? 'it' : 'them'}; nothing was changed`, {
      ...(missing.length === 1 ? { node: missing[0]?.split(' ')[0] as string } : {}),
      hint: 'build the role images (kubedos build) and pass them, or one image for all nodes with --image FILE.qcow2 / --iso FILE.iso',
    });
  }
  if (clashes.length) {
    throw new SubstrateError('artifact-clash', `two different files would be uploaded under the same name; nothing was changed:\n  - ${clashes.join('\n  - ')}`, {
      hint: 'artifact names must differ when their content differs (put the sha256 or the role into the name)',
    });
  }
  return { artifacts, volidOf };
}

/** Every command the decisions would run, grouped by node (for --dry-run). */
export function previewCommands(plan: Plan, decisions: readonly NodeDecision[], driver: SubstrateDriver, artifact: ArtifactFile | undefined, storage: string, artifactFor?: ArtifactChoice['artifactFor']): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const choice: ArtifactChoice = { ...(artifact ? { artifact } : {}), ...(artifactFor ? { artifactFor } : {}) };
  // A node without an artifact is previewed without one (provision() would refuse it).
  const uploads = new Map<string, ArtifactFile>();
  for (const d of decisions.filter(needsBoot)) {
    const node = plan.nodes.find((n) => n.vmid === d.vmid);
    const a = node ? nodeArtifact(node, choice) : undefined;
    if (a && !uploads.has(artifactVolid(a, storage))) uploads.set(artifactVolid(a, storage), a);
  }
  if (uploads.size) out.set('(artifacts)', [...uploads.values()].flatMap((a) => driver.preview({ kind: 'upload', artifact: a, storage })));
  for (const d of decisions) {
    const node = plan.nodes.find((n) => n.vmid === d.vmid);
    const a = node ? nodeArtifact(node, choice) : undefined;
    const boot: BootArtifact | undefined = a ? { kind: a.kind, volid: artifactVolid(a, storage) } : undefined;
    const steps: PlannedStep[] = [];
    if (d.action === 'destroy' || d.action === 'replace') steps.push({ kind: 'destroy', vmid: d.vmid });
    if ((d.action === 'create' || d.action === 'replace') && node) steps.push({ kind: 'create', shape: node.vm, artifact: boot });
    if (d.action === 'update' && d.changes) steps.push({ kind: 'update', vmid: d.vmid, changes: d.changes });
    if (d.start) steps.push({ kind: 'start', vmid: d.vmid, ...(node ? { shape: node.vm, artifact: boot } : {}) });
    out.set(`${d.node} (VMID ${d.vmid}): ${d.action}${d.start ? ' + start' : ''}`, steps.flatMap((s) => driver.preview(s)));
  }
  return out;
}

export async function provision(options: ProvisionOptions): Promise<ProvisionResult> {
  const { plan, driver } = options;
  const op: OpOptions = { ...(options.signal ? { signal: options.signal } : {}), ...(options.onEvent ? { onEvent: options.onEvent } : {}) };
  const inventory = await driver.inventory(op);
  const decisions = decide(plan, inventory, { allowDestroy: options.allowDestroy, start: options.start ?? true, only: options.only });
  const { artifacts, volidOf } = artifactsNeeded(plan, decisions, options, options.storage);
  const uploads: UploadResult[] = [];
  const bootByVolid = new Map<string, BootArtifact>();
  for (const [volid, artifact] of artifacts) {
    const up = await driver.upload(artifact, options.storage, op);
    uploads.push(up);
    bootByVolid.set(volid, { kind: artifact.kind, volid: up.volid });
  }
  const bootOf = (nodeName: string): BootArtifact | undefined => {
    const volid = volidOf.get(nodeName);
    return volid ? bootByVolid.get(volid) : undefined;
  };
  let changes = uploads.filter((u) => u.action !== 'skipped').length;
  // Destroys first (they free VMIDs and space), then everything else per node in parallel:
  // the driver multiplexes the commands over its one connection.
  for (const d of decisions.filter((x) => x.action === 'destroy')) {
    await driver.destroy(d.vmid, { ...op, allowDestroy: options.allowDestroy });
    changes++;
  }
  // allSettled: when one node fails the others still finish (or fail) before we report, so
  // nothing is left running in the background and every failure is reported.
  const settled = await Promise.allSettled(
    decisions
      .filter((d) => d.action !== 'destroy')
      .map(async (d) => {
        const node = plan.nodes.find((n) => n.vmid === d.vmid);
        if (!node) return;
        if (d.action === 'replace') {
          await driver.destroy(d.vmid, { ...op, allowDestroy: options.allowDestroy });
          changes++;
        }
        if (d.action === 'create' || d.action === 'replace') {
          await driver.create(node.vm, bootOf(node.name), op);
          changes++;
        }
        if (d.action === 'update' && d.changes) {
          await driver.update(d.vmid, d.changes, op);
          changes++;
        }
        if (d.start) {
          try {
            await driver.start(d.vmid, op);
          } catch (err) {
            const e = err as SubstrateError;
            throw new SubstrateError('start-failed', `${d.node} (VMID ${d.vmid}) exists but did not start: ${e.message}`, {
              node: d.node,
              leftBehind: d.vmid,
              ...(e.command ? { command: e.command } : {}),
              ...(e.stderrTail ? { stderrTail: e.stderrTail } : {}),
              hint: `fix the cause and rerun (the VM is kept and started), or remove it: kubedos provision … --allow-destroy / qm destroy ${d.vmid} --purge 1`,
            });
          }
          changes++;
        }
      }),
  );
  const failures = settled.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as Error);
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) {
    const first = failures[0] as SubstrateError;
    throw new SubstrateError(first.code ?? 'provision', `${plural(failures.length, 'node')} failed:\n  - ${failures.map((f) => f.message).join('\n  - ')}`, {
      ...(first.hint ? { hint: first.hint } : {}),
      ...(first.stderrTail ? { stderrTail: first.stderrTail } : {}),
      ...(first.leftBehind !== undefined ? { leftBehind: first.leftBehind } : {}),
    });
  }
  return { decisions, ...(uploads[0] ? { upload: uploads[0] } : {}), uploads, changes };
}

/** How long a VM's agent may be silent before its console is read for a hung kernel. */
export const HANG_CHECK_AFTER_MS = 90_000;

export interface AgentWaitOptions extends OpOptions {
  timeoutMs: number;
  intervalMs?: number;
  /**
   * Reset a VM once when its console shows the kernel hung before init (./boot-hang.ts) and the
   * driver can read consoles and reset; its wait starts again from the reset. Default true.
   */
  resetHung?: boolean;
  /** Told of each reset: the VM and why. */
  onReset?: (vmid: number, why: string) => void;
  /** Default HANG_CHECK_AFTER_MS. */
  hangCheckAfterMs?: number;
}

/**
 * Waits until the guest agent answers in every VM (or the timeout passes). The map holds, per VM,
 * the milliseconds from the start of the wait to its agent's first answer.
 */
export async function waitForAgents(driver: SubstrateDriver, vmids: readonly number[], options: AgentWaitOptions): Promise<Map<number, number>> {
  const started = Date.now();
  const answered = new Map<number, number>();
  const canReset = (options.resetHung ?? true) && driver.consoleTail !== undefined && driver.reset !== undefined;
  await Promise.all(
    vmids.map(async (vmid) => {
      let since = started;
      let reset: string | undefined;
      while (Date.now() - since < options.timeoutMs) {
        if (options.signal?.aborted) throw new SubstrateError('aborted', 'aborted while waiting for guest agents');
        const ok = await driver.guestPing(vmid, options).catch((err: unknown) => {
          // A dropped connection is retried; anything else (VM gone, agent not configured) is final.
          if (err instanceof SubstrateError && err.code === 'connection-lost') return false;
          throw err;
        });
        if (ok) {
          answered.set(vmid, Date.now() - started);
          return;
        }
        if (canReset && reset === undefined && Date.now() - since >= (options.hangCheckAfterMs ?? HANG_CHECK_AFTER_MS)) {
          const hang = bootHang(await driver.consoleTail!(vmid, 64 * 1024, options).catch(() => ''));
          if (hang) {
            await driver.reset!(vmid, options);
            reset = hang.why;
            since = Date.now();
            options.onReset?.(vmid, hang.why);
          }
        }
        await new Promise((r) => setTimeout(r, options.intervalMs ?? 2000));
      }
      throw new SubstrateError('agent-timeout', `the guest agent of VM ${vmid} did not answer within ${Math.round(options.timeoutMs / 1000)} s${reset ? ` of a reset (its kernel had hung before init: ${reset})` : ''}`, {
        hint: 'read the VM\'s serial console; is qemu-guest-agent installed and enabled in the image?',
      });
    }),
  );
  return answered;
}
