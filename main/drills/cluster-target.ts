// A deployed cluster as a drill target (qemu-local or Proxmox, through the substrate driver).
// Commands run in the nodes through their guest agents, like the deploy stages do: no SSH and no
// route into the cluster's network is needed, and a node whose planes are cut is still reachable.
//
// The probes: every node's guest agent is pinged (the guest-agent signal), the hub's wg1
// handshakes are read (the wg-handshake signal), and etcd is asked from a healthy member over wg3
// with that member's TLS client material (the hub carries no etcd certificates).
//
// The repair is the deploy itself: a replacement is the same plan slot (VMID, MAC, addresses)
// provisioned from the same artifact by the deploy pipeline, whose stages skip what is converged
// and redo what the fault took away (provision creates the missing VM or starts the stopped one,
// first boot, enrollment with a fresh single-use token, planes, a converge of the node that lost
// its fingerprint). The replace phase ends when the pipeline's first boot stage succeeded;
// reintegrate is the rest of that same run.
//
// A node with an etcd member (etcd-member.ts): the fence removes its member on a healthy other
// member (only when the one quorum rule allows it); the replace phase adds it again before the
// deploy run starts and records on the master what the etcd role renders for that node
// (initial-cluster-state "existing", the member id: the role empties the data directory once for
// it); the converge of that node starts etcd into the running cluster; reintegrate reads back,
// from that member alone, a key written before the fault. kill-etcd-member keeps the VM: its
// replace is the membership step, its reintegrate the whole deploy run (the node's converge
// fingerprint moved with its stopped etcd).
import type { GuardNode, ScenarioName } from '../../common/drills/catalogue';
import { DRILL_NFT_TABLE, partitionCut, SCENARIOS } from '../../common/drills/catalogue';
import type { HealthFacts } from '../../common/drills/health';
import { handshakesByNode, parseAllowedIps, parseLatestHandshakes } from '../../common/drills/health';
import type { WatcherStatus } from '../../common/drills/watcher';
import type { PipelineEvent } from '../../common/pipeline/events';
import type { Plan, PlanNode } from '../../common/plan/schema';
import { CommandError } from '../exec/runner';
import type { PipelineResult } from '../pipeline/runner';
import { etcdMembers } from '../stages/converge';
import type { SubstrateDriver } from '../substrate/driver';
import type { NodeShell } from './shell';
import { guestShell } from './shell';
import { readWatcherReport } from './watcher-report';
import type { EtcdAccess } from './etcd-member';
import { deleteKey, ETCD_DATA_DIR, putKey, readBackFrom } from './etcd-member';
import { drillEtcdctlArgv, etcdAccess, etcdFacts, fenceEtcdMember, liftRevocation, peerAccessFor, rejoinEtcd, revokeAtHub } from './fence';
import type { DrillTarget, PhaseContext, ScenarioOps } from './target';

/** The scenarios a deployed cluster runs today (on an etcd member: see clusterCannotRun, service.ts). */
export const CLUSTER_SCENARIOS: readonly ScenarioName[] = ['delete-worker-vm', 'delete-control-plane-vm', 'power-off-node', 'partition-node', 'kill-etcd-member'];

/** Where a drill writes the key its rejoined etcd member must read back (deleted at the end). */
export const DRILL_KEY_PREFIX = 'kubedos/drill/';


/** A deploy run the drill starts to replace and reintegrate a node (the deploy service's pipeline). */
export interface RepairRun {
  /** Resolves with the run's result; events stream to onEvent meanwhile. */
  run(onEvent: (e: PipelineEvent) => void, signal?: AbortSignal): Promise<PipelineResult>;
}

export interface ClusterTargetOptions {
  plan: Plan;
  driver: SubstrateDriver;
  /** The spec (or the command line) lets drills destroy VMs the cluster owns. */
  allowDestroy: boolean;
  /** A fresh deploy run of the same spec and target. */
  repair: () => RepairRun;
  log?: (line: string) => void;
}


/** Every node's guest agent pinged at once; `seenAt` takes `now` for each that answered. */
async function pingNodes(plan: Plan, driver: SubstrateDriver, now: number, seenAt: Map<string, number>): Promise<void> {
  await Promise.all(
    plan.nodes.map(async (n) => {
      if (await driver.guestPing(n.vmid).catch(() => false)) seenAt.set(n.name, now);
    }),
  );
}

/**
 * A deployed cluster's health facts through its guest agents: every node's agent pinged (`seenAt`
 * keeps when each last answered: the drill target's, across its polls; a fresh map for one look),
 * the hub's wg1 handshakes when it answers, etcd asked from a member that answers (fence.ts
 * etcdFacts). The drills' probes, and the live health an upgrade is planned against.
 */
export async function clusterHealthFacts(o: { plan: Plan; driver: SubstrateDriver; sh: NodeShell; now: number; seenAt?: Map<string, number> }): Promise<HealthFacts> {
  const { plan: p, sh, now } = o;
  const seenAt = o.seenAt ?? new Map<string, number>();
  await pingNodes(p, o.driver, now, seenAt);
  const hub = p.nodes.find((n) => n.hub);
  const etcdNodes = etcdMembers(p);
  const etcdNames = new Set(etcdNodes.map((n) => n.name));
  const guestAgentSeenAt = Object.fromEntries([...seenAt.entries()].sort(([a], [b]) => a.localeCompare(b)));
  let wg1Handshakes: HealthFacts['wg1Handshakes'];
  if (hub && seenAt.get(hub.name) === now) {
    const [hs, allowed] = await Promise.all([sh.exec(hub.name, ['wg', 'show', 'wg1', 'latest-handshakes']), sh.exec(hub.name, ['wg', 'show', 'wg1', 'allowed-ips'])]);
    const wg1ByNode = Object.fromEntries(p.nodes.filter((n) => !n.hub).map((n) => [n.name, n.planes.wg1.address]));
    wg1Handshakes = handshakesByNode(parseLatestHandshakes(hs.stdout), parseAllowedIps(allowed.stdout), wg1ByNode);
  }
  // Asked from a member whose guest agent answers now; the others' endpoints are probed from it.
  const etcd = etcdNodes.length ? await etcdFacts(sh, etcdNodes, (m) => seenAt.get(m) === now) : undefined;
  return {
    now,
    nodes: p.nodes.map((n) => ({ name: n.name, hub: n.hub, etcd: etcdNames.has(n.name) })),
    guestAgentSeenAt,
    ...(wg1Handshakes ? { wg1Handshakes } : {}),
    ...(etcd ? { etcd } : {}),
  };
}

export class ClusterDrillTarget implements DrillTarget {
  readonly kind = 'cluster' as const;
  readonly cluster: string;
  readonly nodes: GuardNode[];
  readonly hub: string;
  readonly shell: NodeShell;
  readonly allowDestroy: boolean;
  readonly etcd: PlanNode[];
  /** Last time each node's guest agent answered (epoch s), as observed by this target. */
  private readonly seenAt = new Map<string, number>();
  /** The repair run in flight (replace starts it, reintegrate awaits its end). */
  private inflight: { done: Promise<PipelineResult>; events: PipelineEvent[]; stages: readonly string[] } | undefined;
  /** The key written before the fault (inject), read back from the rejoined member (reintegrate). */
  private canary: { key: string; value: string } | undefined;

  constructor(private readonly o: ClusterTargetOptions) {
    const p = o.plan;
    this.cluster = p.cluster.name;
    this.etcd = etcdMembers(p);
    const etcdNames = new Set(this.etcd.map((n) => n.name));
    this.nodes = p.nodes.map((n) => ({ name: n.name, role: n.role, hub: n.hub, etcd: etcdNames.has(n.name) }));
    const hub = p.nodes.find((n) => n.hub);
    if (!hub) throw new Error(`${this.cluster}: the plan has no hub`);
    this.hub = hub.name;
    this.allowDestroy = o.allowDestroy;
    this.shell = guestShell(p, o.driver);
  }

  private node(name: string): PlanNode {
    const n = this.o.plan.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`there is no node "${name}" in ${this.cluster}`);
    return n;
  }

  private log(line: string): void {
    this.o.log?.(line);
  }

  // ------------------------------------------------------------ probes

  private pingAll(now: number): Promise<void> {
    return pingNodes(this.o.plan, this.o.driver, now, this.seenAt);
  }

  gatherFacts(sh: NodeShell, now: number): Promise<HealthFacts> {
    return clusterHealthFacts({ plan: this.o.plan, driver: this.o.driver, sh, now, seenAt: this.seenAt });
  }

  private isEtcdMember(node: string): boolean {
    return this.etcd.some((m) => m.name === node);
  }

  /** etcdctl on `from` against every planned member (drillEtcdctlArgv: the member's TLS client material). */
  private etcdAccess(sh: NodeShell, from: string): EtcdAccess {
    return etcdAccess(sh, this.etcd, from);
  }

  /** A member other than `node` whose agent answers and whose endpoint is healthy now: where membership changes are asked. */
  private async healthyPeer(sh: NodeShell, node: string): Promise<EtcdAccess> {
    const now = Date.now() / 1000;
    await this.pingAll(now);
    return peerAccessFor(sh, this.etcd, node, (m) => this.seenAt.get(m) === now);
  }

  // ------------------------------------------------------------ scenarios

  /** The watcher's report on the master (kubedos-health-watch.service), read through the guest agent like every probe. */
  readWatcher(sh: NodeShell, nowSeconds: number): Promise<WatcherStatus> {
    return readWatcherReport(sh, this.hub, { nowSeconds: () => nowSeconds });
  }

  ops(scenario: ScenarioName): ScenarioOps | undefined {
    if (!CLUSTER_SCENARIOS.includes(scenario)) return undefined;
    return {
      inject: (ctx) => this.inject(scenario, ctx),
      fence: (ctx) => this.fence(scenario, ctx),
      replace: (ctx) => (scenario === 'kill-etcd-member' ? this.freshMember(ctx) : this.replace(ctx)),
      reintegrate: (ctx) => this.reintegrate(ctx),
    };
  }

  private async inject(scenario: ScenarioName, ctx: PhaseContext): Promise<string> {
    // A key written before the fault, which the rejoined member must serve at the end.
    const canary = SCENARIOS[scenario].takesEtcdMember && this.isEtcdMember(ctx.node) ? await this.writeCanary(ctx) : '';
    return `${await this.fault(scenario, ctx)}${canary}`;
  }

  private async writeCanary(ctx: PhaseContext): Promise<string> {
    const a = await this.healthyPeer(ctx.sh, ctx.node);
    const c = { key: `${DRILL_KEY_PREFIX}${ctx.node}`, value: `written before the drill on ${ctx.node} at ${new Date().toISOString()}` };
    await putKey(a, c.key, c.value);
    this.canary = c;
    return `; key ${c.key} written on ${a.from} first`;
  }

  private async fault(scenario: ScenarioName, ctx: PhaseContext): Promise<string> {
    const n = this.node(ctx.node);
    if (scenario === 'kill-etcd-member') {
      // SIGKILL, then stop: etcd.service restarts on an unclean signal (Restart=on-abnormal); then the data is lost.
      await ctx.sh.exec(n.name, ['/bin/sh', '-c', 'systemctl kill --signal=SIGKILL etcd.service; systemctl stop etcd.service && rm -rf -- "$1"', 'sh', ETCD_DATA_DIR]);
      return `etcd on ${n.name} killed (SIGKILL) and kept stopped; its data directory ${ETCD_DATA_DIR} removed`;
    }
    if (scenario === 'delete-worker-vm' || scenario === 'delete-control-plane-vm') {
      if (!this.allowDestroy) throw new Error(`${scenario} destroys ${n.name}'s VM and destroying was not allowed`);
      await this.o.driver.destroy(n.vmid, { allowDestroy: true, ...(ctx.signal ? { signal: ctx.signal } : {}) });
      return `VM ${n.vmid} (${n.name}) destroyed with its disks and TPM state`;
    }
    if (scenario === 'power-off-node') {
      await this.o.driver.stop(n.vmid, ctx.signal ? { signal: ctx.signal } : {});
      return `VM ${n.vmid} (${n.name}) powered off (no shutdown)`;
    }
    const cut = partitionCut(n.name, n.lan.address);
    await ctx.sh.exec(this.hub, ['nft', '-f', '-'], { input: cut.rules });
    return cut.detail;
  }

  private async fence(scenario: ScenarioName, ctx: PhaseContext): Promise<string> {
    const parts: string[] = [];
    // The etcd member first: a refusal (quorum) leaves the node as it was, not half fenced.
    if (this.isEtcdMember(ctx.node)) parts.push(await fenceEtcdMember(await this.healthyPeer(ctx.sh, ctx.node), this.node(ctx.node)));
    // kill-etcd-member leaves the machine and its planes alone: only its member is out.
    if (scenario !== 'kill-etcd-member') parts.unshift(await revokeAtHub(ctx.sh, this.hub, ctx.node, 'drill: fenced after detection'));
    return parts.join('; ');
  }

  /**
   * kill-etcd-member's replace: the VM stays; its etcd is kept stopped (a heal may find one still
   * running, unhealthy) so that the node's converge fingerprint moves and the deploy run converges
   * it, and its member is added again.
   */
  private async freshMember(ctx: PhaseContext): Promise<string> {
    await ctx.sh.exec(ctx.node, ['systemctl', 'stop', 'etcd.service']);
    return `etcd on ${ctx.node} stopped; ${await this.rejoinEtcd(ctx)}`;
  }

  /**
   * The node's member added again (once) on a healthy member before its etcd starts, and the etcd
   * role's variables for it recorded on the master: the node's next converge empties its data
   * directory for that member id and starts etcd with initial-cluster-state "existing".
   */
  private async rejoinEtcd(ctx: PhaseContext): Promise<string> {
    return rejoinEtcd(await this.healthyPeer(ctx.sh, ctx.node), this.hub, this.node(ctx.node));
  }

  private async replace(ctx: PhaseContext): Promise<string> {
    const notes: string[] = [];
    // A partition is healed at the hub first: the node itself is intact.
    const cut = await ctx.sh.exec(this.hub, ['nft', 'list', 'table', 'inet', DRILL_NFT_TABLE], { anyExit: true });
    if (cut.exitCode === 0) {
      await ctx.sh.exec(this.hub, ['nft', 'delete', 'table', 'inet', DRILL_NFT_TABLE]);
      notes.push('cut healed at the hub');
    }
    // The revocation covered the identity that failed; its replacement is admitted on purpose
    // with new keys and a fresh single-use token (the enroll stage refuses revoked nodes).
    const lifted = await liftRevocation(ctx.sh, this.hub, this.cluster, ctx.node);
    if (lifted) notes.push(lifted);
    // The member first: it must be listed before the replacement's converge starts its etcd.
    if (this.isEtcdMember(ctx.node)) notes.push(await this.rejoinEtcd(ctx));
    let firstbootDone: () => void = () => undefined;
    const firstboot = new Promise<void>((res) => (firstbootDone = res));
    const { done, events } = (this.inflight = this.startRepair(ctx, ['backplanes', 'enroll', 'converge', 'workload', 'seal'], (e) => {
      if (e.type === 'stage' && e.stage === 'firstboot' && (e.state === 'success' || e.state === 'skipped')) firstbootDone();
    }));
    const first = await Promise.race([firstboot.then(() => 'firstboot' as const), done]);
    if (first !== 'firstboot') throw pipelineFailure(first, 'replace');
    notes.push(`deploy run ${runIdOf(events) ?? '(no id)'}: ${stageSummary(events, ['provision', 'firstboot'])}`);
    return notes.join('; ');
  }

  private async reintegrate(ctx: PhaseContext): Promise<string> {
    // kill-etcd-member: the VM stayed; the whole deploy run converges the node whose etcd stopped.
    const inflight = this.inflight ?? (this.isEtcdMember(ctx.node) ? this.startRepair(ctx, ['provision', 'firstboot', 'backplanes', 'enroll', 'converge', 'workload', 'seal']) : undefined);
    if (!inflight) throw new Error('no replacement run to follow');
    this.inflight = undefined;
    const r = await inflight.done;
    if (!r.ok) throw pipelineFailure(r, 'reintegrate');
    return `${stageSummary(inflight.events, inflight.stages)}${await this.checkCanary(ctx)}`;
  }

  /**
   * A deploy run of the same spec (replace starts it and waits for first boot; reintegrate starts it
   * itself for kill-etcd-member, whose VM stayed). `stages`: what reintegrate's summary names.
   */
  private startRepair(ctx: PhaseContext, stages: readonly string[], onEvent: (e: PipelineEvent) => void = () => undefined): NonNullable<ClusterDrillTarget['inflight']> {
    const events: PipelineEvent[] = [];
    const done = this.o.repair().run((e) => {
      events.push(e);
      onEvent(e);
      if (e.type === 'stage' && (e.state === 'success' || e.state === 'skipped' || e.state === 'failed')) this.log(`deploy: ${e.stage} ${stageWord(e)}`);
    }, ctx.signal);
    return { done, events, stages };
  }

  /** The key written before the fault, read from the rejoined member alone (its own endpoint, its own store), then deleted. */
  private async checkCanary(ctx: PhaseContext): Promise<string> {
    const c = this.canary;
    if (!c || !this.isEtcdMember(ctx.node)) return '';
    this.canary = undefined;
    const own = this.node(ctx.node);
    await readBackFrom({ sh: ctx.sh, from: own.name, etcdctl: (args) => drillEtcdctlArgv([own], args) }, c.key, c.value);
    await deleteKey(this.etcdAccess(ctx.sh, own.name), c.key);
    return `; ${c.key} (written before the fault) read back from ${own.name}'s own member, then deleted`;
  }
}

type StageEvent = Extract<PipelineEvent, { type: 'stage' }>;

/** "unchanged", "1 change", "failed" for a stage's last event. */
function stageWord(e: StageEvent): string {
  if (e.state === 'skipped') return 'unchanged';
  if (e.state === 'success') return e.changes === undefined ? 'done' : e.changes === 0 ? 'unchanged' : `${e.changes} change${e.changes === 1 ? '' : 's'}`;
  return e.state;
}

/** "provision 1 change (71 s), firstboot unchanged" from the stages' last events: a stage's duration when it took a second or more (where a phase's time went). */
export function stageSummary(events: readonly PipelineEvent[], stages: readonly string[]): string {
  const last = new Map<string, StageEvent>();
  for (const e of events) if (e.type === 'stage' && e.state !== 'queued' && e.state !== 'pending') last.set(e.stage, e);
  return stages
    .filter((s) => last.has(s))
    .map((s) => {
      const e = last.get(s)!;
      const took = e.durationMs !== undefined && e.durationMs >= 1000 ? ` (${Math.round(e.durationMs / 1000)} s)` : '';
      return `${s} ${stageWord(e)}${took}`;
    })
    .join(', ');
}

function runIdOf(events: readonly PipelineEvent[]): string | undefined {
  return events[0]?.runId;
}

/** The deploy run that replaces (or reintegrates) a node failed: its first failure as a CommandError (stage, node, command, stderr tail, hint). */
export function pipelineFailure(r: PipelineResult, phase: string): Error {
  const f = r.failures[0];
  const err = new CommandError({
    message: `the deploy run that ${phase === 'replace' ? 'replaces' : 'reintegrates'} the node failed${f ? ` at ${f.stage}${f.node ? ` on ${f.node}` : ''}: ${f.message}` : ''}`,
    command: f?.command ?? ['kubedos', 'deploy'],
    exitCode: f?.exitCode ?? null,
    stderrTail: f?.stderrTail ?? '',
    reason: 'exit',
    ...(f?.hint ? { hint: f.hint } : {}),
  });
  return err;
}
