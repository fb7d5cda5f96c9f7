// The apply loop's ReplaceOps for a deployed cluster (qemu-local or Proxmox, through the substrate
// driver): how a replace wave replaces a node (docs/upgrades.md, "Replace-based upgrades").
//
//  - exists: the substrate's inventory has the node's VMID;
//  - fence: the drill's fence (main/drills/fence.ts): its etcd member removed on a healthy peer
//    (under the one quorum rule), then revoked at the hub;
//  - destroy: the VM with its disks and TPM state (driver.destroy, allowDestroy: the apply loop
//    only gets here when destroying was allowed);
//  - provision: the revocation lifted, then a deploy run scoped to the node's plan slot (VMID, MAC,
//    addresses) from the kept artifact of `build` (main/deploy/start.ts, DeployStart.node:
//    provision, first boot, enroll with a fresh single-use token, planes; its own journal; no
//    other VM touched, no converge, no seal), then, for an etcd member, its member added again and
//    recorded on the master for the etcd role (right before the converge that starts it: an
//    added, unstarted member counts against quorum, so it is not added while the VM boots);
//  - gate: kubedos-health-gate on the new disk's active slot (one pass each time; --no-reboot),
//    asked again until it passes, fails for good (observe.ts gateFailedForGood: a unit systemd gave
//    up on, a failure the gate does not wait on; a gate that cannot run throws) or its window
//    ends; the gate's textfile as it left it.
//
// Which kept artifact: the one of the directories given (N+1: `--to DIR`; N for --rollback: the
// workspace's build/) whose signed manifest is `build`'s digest; none: refused, naming them.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256Hex } from '../../common/canonical';
import type { PipelineEvent } from '../../common/pipeline/events';
import type { Plan, PlanNode } from '../../common/plan/schema';
import type { BuildRef } from '../../common/upgrade/agent';
import { gateEvent, gateFailedForGood } from '../../common/upgrade/observe';
import { MANIFEST_FILE } from '../build/attest';
import { AB_SBIN } from '../build/image/ab';
import { pipelineFailure, stageSummary } from '../drills/cluster-target';
import { fenceEtcdMember, liftRevocation, peerAccessFor, rejoinEtcd, revokeAtHub } from '../drills/fence';
import type { EtcdAccess } from '../drills/etcd-member';
import type { NodeShell } from '../drills/shell';
import { guestShell, lastLines } from '../drills/shell';
import type { PipelineResult } from '../pipeline/runner';
import { runPipeline } from '../pipeline/runner';
import { prepareDeploy } from '../deploy/start';
import type { ClusterSpec } from '../../common/spec/index';
import type { SpecSource } from '../stages/validate';
import type { Target } from '../target';
import { clusterWorkspace, WORKSPACE_LAYOUT } from '../workspace';
import { sleep as abortableSleep } from '../pipeline/sleep';
import { etcdMembers } from '../stages/converge';
import type { SubstrateDriver } from '../substrate/driver';
import type { NodeOps, ReplaceOps } from './apply-run';

/** The stages of the scoped deploy run whose outcome provision reports. */
const NODE_DEPLOY_STAGES = ['build', 'provision', 'firstboot', 'backplanes', 'enroll'] as const;

/** How long gate() asks the active slot's gate again (the longest check window, node-ready's 240 s, and a margin). */
export const REPLACE_GATE_WINDOW_MS = 300_000;
export const REPLACE_GATE_INTERVAL_MS = 10_000;

export interface ClusterReplaceOpsOptions {
  plan: Plan;
  driver: SubstrateDriver;
  /** Kept build directories a replacement may boot from (N+1's `--to DIR`, N's workspace build/). */
  artifactDirs: readonly string[];
  /** One deploy run of the node's plan slot from `artifactDir`, whose signed manifest must be `build`'s (the CLI's: prepareDeploy({ node }) and runPipeline). */
  deployNode: (node: string, artifactDir: string, build: BuildRef, onEvent: (e: PipelineEvent) => void, signal?: AbortSignal) => Promise<PipelineResult>;
  /** Where the gate's textfile is read (VmNodeOps.metrics). */
  metrics: NodeOps['metrics'];
  /** Default: the nodes' guest agents (guestShell). */
  shell?: NodeShell;
  gateWindowMs?: number;
  gateIntervalMs?: number;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  log?: (line: string) => void;
}

export class ClusterReplaceOps implements ReplaceOps {
  private readonly sh: NodeShell;
  private readonly etcd: PlanNode[];
  private readonly hub: string;

  constructor(private readonly o: ClusterReplaceOpsOptions) {
    this.sh = o.shell ?? guestShell(o.plan, o.driver);
    this.etcd = etcdMembers(o.plan);
    const hub = o.plan.nodes.find((n) => n.hub);
    if (!hub) throw new Error(`${o.plan.cluster.name}: the plan has no hub`);
    this.hub = hub.name;
  }

  private node(name: string): PlanNode {
    const n = this.o.plan.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`there is no node "${name}" in ${this.o.plan.cluster.name}`);
    return n;
  }

  private isEtcdMember(node: string): boolean {
    return this.etcd.some((m) => m.name === node);
  }

  async exists(node: string, signal?: AbortSignal): Promise<boolean> {
    const vmid = this.node(node).vmid;
    return (await this.o.driver.inventory(signal ? { signal } : {})).vms.some((v) => v.vmid === vmid);
  }

  /** A healthy etcd member other than `node` whose guest agent answers now (fence.ts peerAccessFor). */
  private async healthyPeer(node: string): Promise<EtcdAccess> {
    const answering = new Set<string>();
    await Promise.all(this.etcd.map(async (m) => ((await this.o.driver.guestPing(m.vmid).catch(() => false)) ? answering.add(m.name) : undefined)));
    return peerAccessFor(this.sh, this.etcd, node, (m) => answering.has(m));
  }

  async fence(node: string): Promise<string> {
    const parts: string[] = [];
    // The etcd member first: a refusal (quorum) leaves the node as it was, not half fenced.
    if (this.isEtcdMember(node)) parts.push(await fenceEtcdMember(await this.healthyPeer(node), this.node(node)));
    parts.unshift(await revokeAtHub(this.sh, this.hub, node, 'upgrade: replaced by a new VM'));
    return parts.join('; ');
  }

  async destroy(node: string, signal?: AbortSignal): Promise<string> {
    const n = this.node(node);
    await this.o.driver.destroy(n.vmid, { allowDestroy: true, ...(signal ? { signal } : {}) });
    return `VM ${n.vmid} (${node}) destroyed with its disks and TPM state`;
  }

  /** The kept artifact whose signed manifest is `build`'s. */
  artifactDirFor(build: BuildRef): string {
    const seen: string[] = [];
    for (const dir of this.o.artifactDirs) {
      const path = join(dir, MANIFEST_FILE);
      if (!existsSync(path)) {
        seen.push(`${dir}: no ${MANIFEST_FILE}`);
        continue;
      }
      const digest = sha256Hex(readFileSync(path));
      if (digest === build.digest) return dir;
      seen.push(`${dir}: manifest ${digest.slice(0, 12)}`);
    }
    throw new Error(`no kept artifact of ${build.version} (manifest sha256 ${build.digest.slice(0, 12)}) to create replaced nodes from: ${seen.join('; ') || 'no build directory given'}. Give that build's directory (kubedos upgrade --to DIR); for --rollback, N's build must be the workspace's build/ (put N's artifact back there, e.g. from the directory it was built into); nothing was touched`);
  }

  cannotProvision(build: BuildRef): string | undefined {
    try {
      this.artifactDirFor(build);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }

  async provision(node: string, build: BuildRef, signal?: AbortSignal): Promise<string> {
    const n = this.node(node);
    const dir = this.artifactDirFor(build);
    const notes: string[] = [];
    // The revocation covered the old VM's identity; the replacement enrolls on purpose.
    const lifted = await liftRevocation(this.sh, this.hub, this.o.plan.cluster.name, node);
    if (lifted) notes.push(lifted);
    const events: PipelineEvent[] = [];
    const r = await this.o.deployNode(
      node,
      dir,
      build,
      (e) => {
        events.push(e);
        if (e.type === 'stage' && (e.state === 'success' || e.state === 'skipped' || e.state === 'failed')) this.o.log?.(`deploy ${node}: ${e.stage} ${e.state}`);
      },
      signal,
    );
    if (!r.ok) throw pipelineFailure(r, 'replace');
    notes.push(`deploy of ${node} from ${dir}: ${stageSummary(events, NODE_DEPLOY_STAGES)}`);
    // Its member right before the converge that starts its etcd.
    if (this.isEtcdMember(node)) notes.push(await rejoinEtcd(await this.healthyPeer(node), this.hub, n));
    return `VM ${n.vmid} (${node}) created from ${build.version}; ${notes.join('; ')}`;
  }

  async gate(node: string, signal?: AbortSignal): Promise<string | undefined> {
    const now = this.o.now ?? Date.now;
    const pause = this.o.sleep ?? abortableSleep;
    const until = now() + (this.o.gateWindowMs ?? REPLACE_GATE_WINDOW_MS);
    const vmid = this.node(node).vmid;
    for (;;) {
      const r = await this.o.driver.guestExec(vmid, [`${AB_SBIN}/kubedos-health-gate`, '--no-reboot'], { timeoutS: 120, ...(signal ? { signal } : {}) });
      const ev = gateEvent(r.stdout);
      if (r.exitCode === 0 && ev?.pass) break;
      // A failure waiting cannot mend: said at once (a gate that did not run throws: there is no verdict to read).
      const final = gateFailedForGood(r);
      if (final && !final.ran) throw new Error(`kubedos-health-gate (${AB_SBIN}/kubedos-health-gate) on its new disk: ${final.why}; its image has no usable gate: check the build's A/B payload (spec.upgrades.diskLayout: ab), then rerun or kubedos heal SPEC`);
      if (final) {
        this.o.log?.(`${node}: its gate failed for good (${final.check}): not asked again`);
        break;
      }
      if (now() >= until) {
        this.o.log?.(`${node}: its gate still fails at the end of its window: ${ev && !ev.pass ? ev.check : lastLines(r.stderr || r.stdout, 1) || `exit ${r.exitCode}`}`);
        break;
      }
      await pause(this.o.gateIntervalMs ?? REPLACE_GATE_INTERVAL_MS, signal);
    }
    return this.o.metrics(node, signal);
  }
}

export interface ClusterReplaceOpsRequest {
  spec: ClusterSpec;
  plan: Plan;
  driver: SubstrateDriver;
  target: Target;
  /** The spec the cluster was deployed from (the scoped deploy runs validate and plan it like a deploy). */
  source: SpecSource;
  specPath?: string;
  env: NodeJS.ProcessEnv;
  /** N+1's build directory (`--to DIR`); N's is the workspace's build/. */
  artifactDir?: string;
  metrics: NodeOps['metrics'];
  /** Who holds the deploy lock meanwhile ("kubedos upgrade lab.yaml"). */
  by: string;
  log?: (line: string) => void;
}

/**
 * The ReplaceOps of `kubedos upgrade` on a deployed cluster: a replacement's deploy run is
 * prepareDeploy with DeployStart.node (the deploy lock held for it, its own journal) and the
 * runner, as a deploy; its VM boots N+1 (`artifactDir`) or, rolling back, N (the workspace's build/).
 */
export function clusterReplaceOps(r: ClusterReplaceOpsRequest): ClusterReplaceOps {
  const cluster = r.spec.metadata.name;
  const workspace = clusterWorkspace(cluster, r.env);
  return new ClusterReplaceOps({
    plan: r.plan,
    driver: r.driver,
    artifactDirs: [...(r.artifactDir ? [r.artifactDir] : []), join(workspace, WORKSPACE_LAYOUT.build)],
    metrics: r.metrics,
    ...(r.log ? { log: r.log } : {}),
    async deployNode(node, artifactDir, build, onEvent, signal) {
      // The build stage verifies the directory and refuses it unless its signed manifest is still `build`'s.
      const prepared = prepareDeploy({ cluster, source: r.source, ...(r.specPath ? { specPath: r.specPath } : {}), target: r.target, env: r.env, allowDestroy: false, by: `${r.by} (replacing ${node})`, node: { name: node, artifactDir, manifestSha256: build.digest } });
      try {
        return await runPipeline(prepared.stages, { ...prepared.runOptions, onEvent, ...(signal ? { signal } : {}) });
      } finally {
        await prepared.close();
      }
    },
  });
}
