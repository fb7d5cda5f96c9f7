// The apply loop's NodeOps for a deployed cluster (docs/upgrades.md, "Applying an upgrade"):
// `kubedos-boot` and the reboot through the guest agent of the substrate driver the deploy uses,
// the gate's metrics read as a file through it, the slot write streamed over wg1 (stream.ts; on
// qemu-local, where this machine has no route to wg1, through a virtio-serial port: channel-transport.ts) with
// the slot image cut from N+1's A/B qcow2 of the node's role (slot-image.ts, once per role and
// slot, in this run's private folder of the workspace: slot-scratch.ts), the converge of a node whose gate passed (vmConverge). And the service `kubedos upgrade` calls: the A/B check of every node before any is
// touched, then runApply / runRollback with the record kept in the cluster's workspace.
import { existsSync } from 'node:fs';
import { join, posix } from 'node:path';
import { bootStall, BOOT_STALL_MS, FIRMWARE_STALL_MS } from '../substrate/boot-hang';
import type { Plan } from '../../common/plan/index';
import type { ClusterSpec } from '../../common/spec/index';
import type { BuildRef, Slot } from '../../common/upgrade/agent';
import { parseBootStatus } from '../../common/upgrade/observe';
import type { Wave } from '../../common/upgrade/waves';
import { plural } from '../../common/text/plural';
import { firstFew } from '../../common/text/first-few';
import { MANIFEST_FILE } from '../build/attest';
import { AB_DATA_MOUNT } from '../build/image/ab';
import type { WindowState } from '../../common/upgrade/policy';
import { readOpsPrivateKey } from '../build/keys';
import { convergeNodes } from '../stages/converge';
import type { SubstrateDriver } from '../substrate/driver';
import { terminalRoute } from '../terminal/pins';
import { clusterWorkspace } from '../workspace';
import type { ApplyEvent, ApplyOutcome, NodeOps, PowerCycle, ReplaceOps } from './apply-run';
import type { SlotWriteProgress } from '../../common/upgrade/progress';
import { readUpgradeRecord, replaceNodesOf, replaceRefusal, runApply, runRollback, upgradeLivePath, upgradeRecordPath, writeUpgradeRecord } from './apply-run';
import type { SlotImage } from './slot-image';
import { cutSlotImage, removeSlotImage } from './slot-image';
import { buildDirOf, keepVerifiedBuild, keptOutput, returnToBuild } from './preflight';
import { resealForRunningBuild } from './reseal';
import type { SealSnapshot } from '../bundle/seal';
import type { SlotScratch } from './slot-scratch';
import { openSlotScratch } from './slot-scratch';
import { streamSlotImage } from './stream';
import { SLOT_CHANNEL, writeSlotThroughChannel } from './channel-transport';
import type { AgentFiles } from './node-agent';
import { agentReadArgv, agentWriteArgv, agentWriteInput, AGENT_DIR, parseAgentRead } from './node-agent';
import { errText } from '../../common/text/error-text';

const BOOT = '/usr/local/sbin/kubedos-boot';
/** The control plane's admin kubeconfig (kubeadm init writes it; payload/ansible/roles/kubedos_kubeadm). */
const ADMIN_KUBECONFIG = '/etc/kubernetes/admin.conf';
/** `kubectl drain --timeout`: pods that do not move within it stop the upgrade before the reboot. */
export const DRAIN_TIMEOUT_S = 300;
/** Where kubedos-health-gate writes kubedos.prom (node-exporter's textfile collector). */
export const GATE_METRICS_FILE = '/var/lib/prometheus/node-exporter/kubedos.prom';
/** Where the gate leaves the last pass of a tried slot that failed (on data: both slots see it). */
export const triedGateMetricsFile = (slot: Slot): string => posix.join(AB_DATA_MOUNT, 'upgrade', `gate-${slot}.prom`);

export function notAbMessage(cluster: string, detail: string): string {
  return `${cluster} was deployed with one root partition (${detail}): an upgrade writes N+1 into a second root slot, which these nodes do not have. To get A/B nodes, set spec.upgrades.diskLayout: ab in the spec, rebuild (kubedos build) and redeploy the cluster (kubedos deploy SPEC); nothing was touched`;
}

/** Pure: why this spec's nodes cannot take a slot write, or undefined when they were built A/B. */
export function specNotAb(spec: ClusterSpec): string | undefined {
  const layout = spec.spec.upgrades?.diskLayout;
  return layout === 'ab' ? undefined : notAbMessage(spec.metadata.name, `spec.upgrades.diskLayout is ${layout ?? 'single (the default)'}`);
}

export interface VmNodeOpsOptions {
  spec: ClusterSpec;
  plan: Plan;
  driver: SubstrateDriver;
  env: NodeJS.ProcessEnv;
  /** N+1's build directory (its images/<cluster>-<role>.qcow2). */
  artifactDir: string;
  /** Parent of the private directories the slot images are cut into (default: this run's folder in the cluster's workspace, slot-scratch.ts). */
  tmpParent?: string;
  /** Converges one node on the build it runs (NodeOps.converge): the CLI's is main/stages/converge.ts convergeNodes. */
  converge: (node: string, signal?: AbortSignal) => Promise<void>;
  /** The clock of recoverStall's silence (default Date.now). */
  now?: () => number;
  /** How long a console may stay at a bootStall place (the kernel's restart, the initramfs banner) before the node is power-cycled (default FIRMWARE_STALL_MS at the restart, BOOT_STALL_MS in the initramfs). */
  bootStallMs?: number;
}

/**
 * VmNodeOps' converge for a deployed cluster: main/stages/converge.ts convergeNodes on the one node,
 * from the hub, as the deploy's converge stage does it (not a deploy run: the sealed bundle, which
 * the preflight reads as N, and the journal stay as the deploy left them).
 */
export function vmConverge(o: { spec: ClusterSpec; plan: Plan; driver: SubstrateDriver; env: NodeJS.ProcessEnv; log?: (line: string) => void }): VmNodeOpsOptions['converge'] {
  const workspace = clusterWorkspace(o.spec.metadata.name, o.env);
  return async (node, signal) => {
    await convergeNodes({ spec: o.spec, plan: o.plan, driver: o.driver, workspace, env: o.env, nodes: [node], ...(signal ? { signal } : {}), ...(o.log ? { log: o.log } : {}) });
  };
}

export class VmNodeOps implements NodeOps {
  private readonly images = new Map<string, Promise<SlotImage>>();
  private key: Promise<string> | undefined;
  private scratch: SlotScratch | undefined;
  /** Per node: the console tail that ended at the kernel's restart, and since when the foundry has seen it unchanged. */
  private readonly quiet = new Map<string, { tail: string; since: number }>();

  constructor(private readonly o: VmNodeOpsOptions) {}

  private vmid(node: string): number {
    const n = this.o.plan.nodes.find((x) => x.name === node);
    if (!n) throw new Error(`no node ${node} in the plan of ${this.o.plan.cluster.name}`);
    return n.vmid;
  }

  private async guest(node: string, argv: string[], signal?: AbortSignal, timeoutS = 60): Promise<string> {
    const r = await this.o.driver.guestExec(this.vmid(node), argv, { timeoutS, ...(signal ? { signal } : {}) });
    if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} exited ${r.exitCode} on ${node}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ') || 'no output'}`);
    return r.stdout;
  }

  status(node: string, signal?: AbortSignal): Promise<string> {
    return this.guest(node, [BOOT, 'status'], signal);
  }

  /** The substrate's agent ping (5 s on qemu-local): a false for an agent that does not answer, an error for one that cannot be asked. */
  answers(node: string, signal?: AbortSignal): Promise<boolean> {
    return this.o.driver.guestPing(this.vmid(node), signal ? { signal } : {});
  }

  metrics(node: string, signal?: AbortSignal): Promise<string | undefined> {
    return this.readFile(node, GATE_METRICS_FILE, signal);
  }

  triedMetrics(node: string, slot: Slot, signal?: AbortSignal): Promise<string | undefined> {
    return this.readFile(node, triedGateMetricsFile(slot), signal);
  }

  /** The update agent's state file and journal length, on the node's data partition (node-agent.ts). */
  async readAgentState(node: string, signal?: AbortSignal): Promise<AgentFiles> {
    return parseAgentRead(await this.guest(node, agentReadArgv(AGENT_DIR), signal));
  }

  /** Appends the journal lines, then replaces the state file (a temporary file in its directory, fsync, rename, 0644 root). */
  async writeAgentState(node: string, state: string, journal: readonly string[], signal?: AbortSignal): Promise<void> {
    const r = await this.o.driver.guestExec(this.vmid(node), agentWriteArgv(AGENT_DIR, journal.length), { timeoutS: 60, input: agentWriteInput(state, journal), ...(signal ? { signal } : {}) });
    if (r.exitCode !== 0) throw new Error(`writing ${AGENT_DIR}/state.json exited ${r.exitCode} on ${node}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ') || 'no output'}`);
  }

  private async readFile(node: string, path: string, signal?: AbortSignal): Promise<string | undefined> {
    try {
      return (await this.o.driver.guestFileRead(this.vmid(node), path, signal ? { signal } : {})).toString('utf8');
    } catch {
      return undefined;
    }
  }

  private image(role: string, slot: Slot, target: BuildRef, signal?: AbortSignal): Promise<SlotImage> {
    const k = `${target.digest}/${role}/${slot}`;
    let p = this.images.get(k);
    if (!p) {
      const path = posix.join('images', `${this.o.plan.cluster.name}-${role}.qcow2`);
      // The qcow2 is read from N+1's build directory, checked against the size and sha256 its signed
      // manifest gives it — the workspace's copy, kept when the preflight's verification was checked (keepVerifiedBuild).
      p = Promise.resolve().then(() => {
        const expected = keptOutput(this.o.spec.metadata.name, this.o.env, target, path);
        this.scratch ??= this.o.tmpParent ? undefined : openSlotScratch(clusterWorkspace(this.o.spec.metadata.name, this.o.env));
        const tmpParent = this.o.tmpParent ?? this.scratch!.dir;
        return cutSlotImage({ qcow2: join(this.o.artifactDir, path), expected, slot, tmpParent, ...(signal ? { signal } : {}) });
      });
      p.catch(() => this.images.delete(k));
      this.images.set(k, p);
    }
    return p;
  }

  async writeSlot(node: string, slot: Slot, target: BuildRef, o: { signal?: AbortSignal; onProgress?: (p: SlotWriteProgress) => void }): Promise<void> {
    const role = this.o.plan.nodes.find((x) => x.name === node)?.role;
    if (!role) throw new Error(`no node ${node} in the plan`);
    const image = await this.image(role, slot, target, o.signal);
    if (this.o.spec.spec.substrate.type === 'qemu') {
      // qemu-local: this machine is not on the VMs' network (their L2 is a userspace switch), so
      // there is no route to the hub's wg1: the image goes through a virtio-serial port instead.
      const vmid = this.vmid(node);
      const driver = this.o.driver;
      const guestChannel = driver.guestChannel?.bind(driver);
      if (!guestChannel) throw new Error(`${node}: ${driver.target} cannot open a channel into the VM and this machine has no route to wg1 on qemu-local; nothing was written`);
      await writeSlotThroughChannel({
        node,
        open: () => guestChannel(vmid, SLOT_CHANNEL, o.signal ? { signal: o.signal } : {}),
        exec: (argv, opts) => driver.guestExec(vmid, argv, opts),
        image,
        ...(o.signal ? { signal: o.signal } : {}),
        onProgress: (p) => o.onProgress?.({ bytes: p.bytes, total: p.total, rate: p.rate, via: 'a virtio-serial port' }),
      });
      return;
    }
    this.key ??= readOpsPrivateKey(this.o.spec.metadata.name, this.o.env);
    const workspace = clusterWorkspace(this.o.spec.metadata.name, this.o.env);
    await streamSlotImage({
      route: terminalRoute(workspace, this.o.plan, node),
      user: this.o.spec.spec.security.ssh.allowUsers[0]!,
      privateKey: await this.key,
      image,
      ...(o.signal ? { signal: o.signal } : {}),
      onProgress: (p) => o.onProgress?.({ bytes: p.bytes, total: p.total, rate: p.rate }),
    });
  }

  /** The last 64 KiB of the node's serial console, where the driver keeps one (qemu-local); '' elsewhere. */
  async console(node: string, signal?: AbortSignal): Promise<string> {
    return this.o.driver.consoleTail ? this.o.driver.consoleTail(this.vmid(node), 64 * 1024, signal ? { signal } : {}) : '';
  }

  /**
   * NodeOps.recoverStall where the driver keeps a console (qemu-local): the console's end unchanged
   * at one of bootStall's places (the kernel's restart line; the initramfs banner) for
   * bootStallMs of this object's observations → the VM stopped (QEMU and its swtpm) and started
   * again. Elsewhere (Proxmox: no console log here) undefined. The last 64 KiB are read: the
   * stalled boot's command line (which slot it booted) is ~30 KiB before the initramfs banner.
   */
  async recoverStall(node: string, signal?: AbortSignal): Promise<PowerCycle | undefined> {
    const d = this.o.driver;
    if (!d.consoleTail) return undefined;
    const vmid = this.vmid(node);
    const op = signal ? { signal } : {};
    const tail = await d.consoleTail(vmid, 64 * 1024, op).catch(() => '');
    const stall = bootStall(tail);
    const now = (this.o.now ?? Date.now)();
    const seen = this.quiet.get(node);
    if (!stall) {
      this.quiet.delete(node);
      return undefined;
    }
    if (!seen || seen.tail !== tail) {
      this.quiet.set(node, { tail, since: now });
      return undefined;
    }
    const quietMs = now - seen.since;
    if (quietMs < (this.o.bootStallMs ?? (stall.at === 'firmware' ? FIRMWARE_STALL_MS : BOOT_STALL_MS))) return undefined;
    this.quiet.delete(node);
    await d.stop(vmid, op);
    await d.start(vmid, op);
    const s = Math.round(quietMs / 1000);
    if (stall.at === 'firmware') return { detail: `its console stayed at "${stall.line}" for ${s} s: its firmware never reached the boot loader after the reboot; powered it off and on (VM ${vmid}; GRUB had not run, so the slot it was rebooting into is still the one it tries)` };
    const booted = stall.slot ? `its boot of slot ${stall.slot}` : 'its kernel';
    return {
      detail: `its console stayed at "${stall.line}" for ${s} s: ${booted} stopped in the initramfs before udev started; powered it off and on (VM ${vmid}; GRUB had counted that boot: the node boots the slot its boot counter says now)`,
      ...(stall.slot ? { spent: stall.slot } : {}),
    };
  }

  async reboot(node: string, signal?: AbortSignal): Promise<void> {
    await this.guest(node, ['systemctl', 'reboot'], signal);
  }

  async tryOnce(node: string, slot: Slot, signal?: AbortSignal): Promise<void> {
    await this.guest(node, [BOOT, 'try', slot, '1'], signal);
  }

  async cancel(node: string, slot: Slot, signal?: AbortSignal): Promise<void> {
    await this.guest(node, [BOOT, 'cancel', slot], signal);
  }

  /**
   * kubectl on a control-plane node through its guest agent, as the deploy's stages reach nodes:
   * another control-plane node than `node` where there is one (`node` is about to reboot or just did).
   */
  private kubectl(node: string, args: string[], signal?: AbortSignal, timeoutS = 60): Promise<string> {
    const cps = this.o.plan.nodes.filter((x) => x.role === 'control-plane');
    const on = cps.find((x) => x.name !== node) ?? cps[0];
    if (!on) throw new Error(`no control-plane node in the plan of ${this.o.plan.cluster.name} to run kubectl on`);
    return this.guest(on.name, ['kubectl', '--kubeconfig', ADMIN_KUBECONFIG, ...args], signal, timeoutS);
  }

  /** The node's name in Kubernetes: its hostname (kubeadm registers the kubelet under it). */
  private k8sName(node: string): string {
    const n = this.o.plan.nodes.find((x) => x.name === node);
    if (!n) throw new Error(`no node ${node} in the plan of ${this.o.plan.cluster.name}`);
    return n.hostname;
  }

  async drain(node: string, signal?: AbortSignal): Promise<void> {
    await this.kubectl(node, ['drain', this.k8sName(node), '--ignore-daemonsets', '--delete-emptydir-data', `--timeout=${DRAIN_TIMEOUT_S}s`], signal, DRAIN_TIMEOUT_S + 60);
  }

  async uncordon(node: string, signal?: AbortSignal): Promise<void> {
    await this.kubectl(node, ['uncordon', this.k8sName(node)], signal);
  }

  converge(node: string, signal?: AbortSignal): Promise<void> {
    return this.o.converge(node, signal);
  }

  /** Removes the slot images cut so far (and this run's folder of them). */
  async close(): Promise<void> {
    for (const p of this.images.values()) await p.then(removeSlotImage, () => undefined);
    this.images.clear();
    this.scratch?.close();
    this.scratch = undefined;
  }
}

/**
 * Every node of the waves answers `kubedos-boot status` with a booted A/B slot. A node without the
 * command, or booted without the A/B GRUB configuration, means the cluster was deployed with one
 * root partition; a node that cannot be asked at all is said as that. One message either way.
 */
export async function checkAbNodes(cluster: string, nodes: readonly string[], ops: Pick<NodeOps, 'status'>, signal?: AbortSignal): Promise<{ ok: true } | { ok: false; message: string }> {
  const single: string[] = [];
  const unreachable: string[] = [];
  let firstSingle = '';
  let firstUnreachable = '';
  for (const node of nodes) {
    let text: string;
    try {
      text = await ops.status(node, signal);
    } catch (err) {
      const m = errText(err);
      if (/exited 127|No such file|not found/.test(m)) {
        single.push(node);
        firstSingle ||= `${node}: ${m}`;
      } else {
        unreachable.push(node);
        firstUnreachable ||= `${node}: ${m}`;
      }
      continue;
    }
    const st = parseBootStatus(text);
    const why = !st.ok ? st.message : st.value.booted === '' ? 'booted without the A/B GRUB configuration (no kubedos.slot= on its kernel command line)' : undefined;
    if (why) {
      single.push(node);
      firstSingle ||= `${node}: ${why}`;
    }
  }
  if (single.length) return { ok: false, message: notAbMessage(cluster, `${plural(single.length, 'node')} without an A/B boot environment: ${firstFew(single)}; ${firstSingle}`) };
  if (unreachable.length) return { ok: false, message: `cannot read the boot status of ${plural(unreachable.length, 'node')} of ${cluster} (${firstFew(unreachable)}; ${firstUnreachable}): an upgrade needs every node answering; check that the cluster runs (kubedos status SPEC, kubedos start SPEC). Nothing was touched` };
  return { ok: true };
}

export interface UpgradeRunRequest {
  spec: ClusterSpec;
  waves: readonly Wave[];
  from: BuildRef;
  /** N+1 for an upgrade; undefined for --rollback (the record's last target). */
  to?: BuildRef;
  /**
   * N+1's build directory and the key its preflight verified it with (PreflightPassed.to.keyid): its
   * signed files are kept, and checked against that verification, before any node is touched, and
   * named as the build the cluster runs once the upgrade completes (keepVerifiedBuild, returnToBuild).
   */
  artifact?: { dir: string; keyid: string };
  /** The spec as read (N+1's for an upgrade): kept beside N+1's signed files, and sealed into the recovery bundle with them. */
  specText?: string;
  /**
   * Seal the recovery bundle again once a run completes (main/upgrade/reseal.ts), with this etcd
   * snapshot of the cluster: for the build every node then runs. Absent: the bundle is left as it is.
   */
  reseal?: { snapshot: (plan: Plan) => Promise<SealSnapshot>; log?: (line: string) => void };
  /** `--allow-downgrade`: the nodes' agents stage an older N+1 too. */
  allowDowngrade?: boolean;
  /** `--allow-destroy` (the spec's stages.drill.allowDestroy counts too): replace waves destroy VMs. */
  allowDestroy?: boolean;
  ops: NodeOps;
  /** How replace waves replace a node; none: they are refused before any node is touched. */
  replace?: ReplaceOps;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  onEvent?: (e: ApplyEvent) => void;
  pollMs?: number;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** The spec's maintenance windows, asked before each node's first action (runApply). */
  maintenanceWindow?: (now: number) => WindowState;
}

/** The engine service of `kubedos upgrade` (and `--rollback`) once the preflight passed. */
export async function runUpgradeService(r: UpgradeRunRequest): Promise<ApplyOutcome> {
  const cluster = r.spec.metadata.name;
  const notAb = specNotAb(r.spec);
  if (notAb) return { kind: 'refuse', message: notAb };
  // Replace waves are refused before any node is touched unless they can run (allowDestroy, replace operations):
  // the A/B check is of the slot-switched nodes (a replaced node's VM may be gone mid-replacement).
  const allowDestroy = r.allowDestroy === true || r.spec.spec.stages.drill?.allowDestroy === true;
  // An upgrade; a rollback refuses by itself, only when a node it must replace again is in the record.
  if (r.to) {
    const refusal = replaceRefusal(r.waves, { allowDestroy, ...(r.replace ? { replace: r.replace } : {}) });
    if (refusal) return { kind: 'refuse', message: refusal };
  }
  const path = upgradeRecordPath(cluster, r.env);
  const record = readUpgradeRecord(path);
  // The nodes replaced: an upgrade's replace waves; a rollback's nodes the record says were replaced.
  const replacing = new Set(r.to ? replaceNodesOf(r.waves) : Object.keys(record.replaced ?? {}));
  // Their artifact (N+1; N for a rollback that replaces them again), checked before any node is touched.
  const missing = replacing.size ? r.replace?.cannotProvision?.(r.to ?? r.from) : undefined;
  if (missing) return { kind: 'refuse', message: missing };
  const nodes = r.waves.flatMap((w) => w.nodes).filter((n) => !replacing.has(n));
  const ab = await checkAbNodes(cluster, nodes, r.ops, r.signal);
  if (!ab.ok) return { kind: 'refuse', message: ab.message };
  // --rollback returns to the build the cluster ran when the recorded upgrade started (records before it: r.from, the sealed deploy's).
  const from = r.to ? r.from : (record.from ?? r.from);
  // A completed run, upgrade or rollback: every node runs `ref`. The workspace names it first (what the
  // next upgrade takes as N, even when the reseal then fails), then the bundle is sealed again for it.
  const runsNow =
    (ref: BuildRef) =>
    async (end: ApplyOutcome & { kind: 'done' }, emit: (e: ApplyEvent) => void): Promise<ApplyOutcome> => {
      const note = returnToBuild(cluster, r.env, ref);
      const sealed = await withReseal(end, r, buildDirOf(cluster, r.env, ref), ref.version, emit);
      return note ? { ...sealed, message: `${sealed.message}\nnote: ${note}` } : sealed;
    };
  const common = { waves: r.waves, from, ops: r.ops, record, ...(allowDestroy ? { allowDestroy: true } : {}), ...(r.replace ? { replace: r.replace } : {}), kubernetes: r.spec.spec.kubernetes.enabled, saveRecord: (x: typeof record) => writeUpgradeRecord(path, x), livePath: upgradeLivePath(cluster, r.env), ...(r.onEvent ? { onEvent: r.onEvent } : {}), ...(r.signal ? { signal: r.signal } : {}), ...(r.pollMs ? { pollMs: r.pollMs } : {}), ...(r.now ? { now: r.now } : {}), ...(r.sleep ? { sleep: r.sleep } : {}) };
  if (r.to) {
    const { artifact } = r;
    const to = r.to;
    // N+1's signed files, kept and checked against what the preflight verified before any node is
    // touched: the slot images are checked against the kept manifest, not the build directory's.
    if (artifact) {
      const changed = keepVerifiedBuild(cluster, r.env, artifact.dir, { ...to, keyid: artifact.keyid }, r.specText);
      if (changed) return { kind: 'refuse', message: changed };
    }
    // Every node runs N+1: it is N for the next upgrade's checks and diff, and what --rollback leaves.
    return runApply({ ...common, target: to, ...(artifact ? { afterDone: runsNow(to) } : {}), ...(r.allowDowngrade ? { allowDowngrade: true } : {}), ...(r.maintenanceWindow ? { maintenanceWindow: r.maintenanceWindow } : {}) });
  }
  if (!record.target) return { kind: 'refuse', message: `no upgrade of ${cluster} is recorded (${path}): nothing to roll back from` };
  return runRollback({
    ...common,
    target: record.target,
    afterDone: runsNow(from),
  });
}

/**
 * A completed run's message with what became of the recovery bundle (resealForRunningBuild), when
 * the caller asked for a reseal; `seal` events say when it starts, what the seal does and how it ended
 * (the CLI's lines, the Pipeline view's: the run is not over until the bundle says what every node runs).
 */
async function withReseal(end: ApplyOutcome & { kind: 'done' }, r: UpgradeRunRequest, buildDir: string, version: string, emit: (e: ApplyEvent) => void): Promise<ApplyOutcome> {
  if (!r.reseal) return end;
  const said = (line: string): ApplyOutcome => {
    emit({ step: 'seal', detail: line });
    return { ...end, message: `${end.message}\n${line}` };
  };
  if (!existsSync(join(buildDir, MANIFEST_FILE))) return said(`note: the recovery bundle was not sealed again: the workspace does not keep ${version}'s signed build files (${buildDir})`);
  emit({ step: 'seal', detail: `the recovery bundle again for ${version}, the build every node runs: an etcd snapshot first; verified and proven restorable before it replaces the one in place` });
  const log = (line: string): void => {
    r.reseal?.log?.(line);
    emit({ step: 'seal', detail: line });
  };
  const res = await resealForRunningBuild({ cluster: r.spec.metadata.name, env: r.env, buildDir, version, ...(r.specText !== undefined && r.to ? { specText: r.specText } : {}), snapshot: r.reseal.snapshot, log });
  return said(`${res.kind === 'failed' ? 'note: ' : ''}${res.line}`);
}
