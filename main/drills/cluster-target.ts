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
import type { GuardNode, ScenarioName } from '../../common/drills/catalogue';
import { DRILL_NFT_TABLE, partitionCut } from '../../common/drills/catalogue';
import type { HealthFacts } from '../../common/drills/health';
import { handshakesByNode, parseAllowedIps, parseEndpointHealth, parseLatestHandshakes, parseMemberList } from '../../common/drills/health';
import type { WatcherStatus } from '../../common/drills/watcher';
import type { PipelineEvent } from '../../common/pipeline/events';
import type { Plan, PlanNode } from '../../common/plan/schema';
import { CommandError } from '../exec/runner';
import type { PipelineResult } from '../pipeline/runner';
import { etcdClientUrl, etcdctlArgv, etcdMembers } from '../stages/converge';
import type { SubstrateDriver } from '../substrate/driver';
import type { NodeShell } from './shell';
import { guestShell } from './shell';
import { readWatcherReport } from './watcher-report';
import type { DrillTarget, PhaseContext, ScenarioOps } from './target';

/** The scenarios a deployed cluster runs today. */
export const CLUSTER_SCENARIOS: readonly ScenarioName[] = ['delete-worker-vm', 'power-off-node', 'partition-node'];

const HUB_BIN = '/usr/lib/kubedos/backplane/kubedos-enroll-hub';
const REVOKED_PATH = '/etc/kubedos/enroll/revoked.json';

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

/** Pure: etcdctl on a member against every planned member, with the drill probes' short timeouts. */
export function drillEtcdctlArgv(members: readonly Pick<PlanNode, 'planes'>[], args: readonly string[]): string[] {
  return etcdctlArgv(members.map((m) => m.planes.wg3.address), args, { dial: '2s', command: '4s' });
}

const tail = (s: string, lines = 3): string => s.trim().split('\n').slice(-lines).join(' | ').slice(0, 600);

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
  private inflight: { done: Promise<PipelineResult>; events: PipelineEvent[] } | undefined;

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

  private async pingAll(now: number): Promise<void> {
    await Promise.all(
      this.o.plan.nodes.map(async (n) => {
        const ok = await this.o.driver.guestPing(n.vmid).catch(() => false);
        if (ok) this.seenAt.set(n.name, now);
      }),
    );
  }

  /** etcdctl on `from` (a member with its TLS client material) against every planned member. */
  private etcdctl(args: readonly string[]): string[] {
    return drillEtcdctlArgv(this.etcd, args);
  }

  async gatherFacts(sh: NodeShell, now: number): Promise<HealthFacts> {
    await this.pingAll(now);
    const guestAgentSeenAt = Object.fromEntries([...this.seenAt.entries()].sort(([a], [b]) => a.localeCompare(b)));
    let wg1Handshakes: HealthFacts['wg1Handshakes'];
    if (this.seenAt.get(this.hub) === now) {
      const [hs, allowed] = await Promise.all([sh.exec(this.hub, ['wg', 'show', 'wg1', 'latest-handshakes']), sh.exec(this.hub, ['wg', 'show', 'wg1', 'allowed-ips'])]);
      const wg1ByNode = Object.fromEntries(this.o.plan.nodes.filter((n) => !n.hub).map((n) => [n.name, n.planes.wg1.address]));
      wg1Handshakes = handshakesByNode(parseLatestHandshakes(hs.stdout), parseAllowedIps(allowed.stdout), wg1ByNode);
    }
    let etcd: HealthFacts['etcd'];
    if (this.etcd.length) {
      // Ask from a member whose guest agent answers now; the others' endpoints are probed from it.
      const from = this.etcd.find((m) => this.seenAt.get(m.name) === now);
      if (!from) etcd = { members: [], endpoints: this.etcd.map((m) => ({ endpoint: etcdClientUrl(m.planes.wg3.address), healthy: false, error: 'no etcd member answers through its guest agent' })), error: 'no etcd member reachable' };
      else {
        const [health, members] = await Promise.all([
          sh.exec(from.name, this.etcdctl(['endpoint', 'health', '-w', 'json']), { anyExit: true, timeoutMs: 20_000 }),
          sh.exec(from.name, this.etcdctl(['member', 'list', '-w', 'json', '--hex']), { anyExit: true, timeoutMs: 20_000 }),
        ]);
        let endpoints: NonNullable<HealthFacts['etcd']>['endpoints'];
        try {
          endpoints = parseEndpointHealth(health.stdout);
        } catch {
          endpoints = this.etcd.map((m) => ({ endpoint: etcdClientUrl(m.planes.wg3.address), healthy: false, error: tail(health.stderr) || 'no answer' }));
        }
        etcd = members.exitCode === 0 ? { members: parseMemberList(members.stdout), endpoints } : { members: [], endpoints, error: tail(members.stderr) || `etcdctl member list exited ${members.exitCode}` };
      }
    }
    return {
      now,
      nodes: this.nodes.map((n) => ({ name: n.name, hub: n.hub, etcd: n.etcd })),
      guestAgentSeenAt,
      ...(wg1Handshakes ? { wg1Handshakes } : {}),
      ...(etcd ? { etcd } : {}),
    };
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
      fence: (ctx) => this.fence(ctx),
      replace: (ctx) => this.replace(ctx),
      reintegrate: (ctx) => this.reintegrate(ctx),
    };
  }

  private async inject(scenario: ScenarioName, ctx: PhaseContext): Promise<string> {
    const n = this.node(ctx.node);
    if (scenario === 'delete-worker-vm') {
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

  private async fence(ctx: PhaseContext): Promise<string> {
    if (this.etcd.some((m) => m.name === ctx.node)) throw new Error(`${ctx.node} is an etcd member: replacing an etcd member of a deployed cluster is not supported yet (its member would have to be removed and added again); nothing was fenced`);
    const r = await ctx.sh.exec(this.hub, [HUB_BIN, 'revoke', ctx.node, '--reason', 'drill: fenced after detection']);
    let removed: string[] = [];
    try {
      removed = (JSON.parse(r.stdout) as { removed?: string[] }).removed ?? [];
    } catch {
      /* older hub: says nothing */
    }
    return `revoked at the hub; plane peers removed: ${removed.join(', ') || 'none left'}`;
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
    const list = await ctx.sh.exec(this.hub, ['/bin/sh', '-c', 'cat "$1" 2>/dev/null || echo "{}"', 'sh', REVOKED_PATH]);
    const raw = JSON.parse(list.stdout || '{}') as { cluster?: string; revoked?: { node: string }[] };
    const kept = { cluster: raw.cluster ?? this.cluster, revoked: (raw.revoked ?? []).filter((x) => x.node !== ctx.node) };
    if ((raw.revoked ?? []).length !== kept.revoked.length) {
      await ctx.sh.exec(this.hub, ['/bin/sh', '-c', 'umask 022; cat > "$1.tmp" && mv "$1.tmp" "$1"', 'sh', REVOKED_PATH], { input: `${JSON.stringify(kept, null, 2)}\n` });
      notes.push(`${ctx.node} taken off the revocation list for its replacement`);
    }
    const events: PipelineEvent[] = [];
    const run = this.o.repair();
    let firstbootDone: () => void = () => undefined;
    const firstboot = new Promise<void>((res) => (firstbootDone = res));
    const done = run.run((e) => {
      events.push(e);
      if (e.type !== 'stage') return;
      if (e.stage === 'firstboot' && (e.state === 'success' || e.state === 'skipped')) firstbootDone();
      if (e.state === 'success' || e.state === 'skipped' || e.state === 'failed') this.log(`deploy: ${e.stage} ${stageWord(e)}`);
    }, ctx.signal);
    this.inflight = { done, events };
    const first = await Promise.race([firstboot.then(() => 'firstboot' as const), done]);
    if (first !== 'firstboot') throw pipelineFailure(first, 'replace');
    notes.push(`deploy run ${runIdOf(events) ?? '(no id)'}: ${stageSummary(events, ['provision', 'firstboot'])}`);
    return notes.join('; ');
  }

  private async reintegrate(_ctx: PhaseContext): Promise<string> {
    const inflight = this.inflight;
    if (!inflight) throw new Error('no replacement run to follow');
    this.inflight = undefined;
    const r = await inflight.done;
    if (!r.ok) throw pipelineFailure(r, 'reintegrate');
    return stageSummary(inflight.events, ['backplanes', 'enroll', 'converge', 'workload', 'seal']);
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

function pipelineFailure(r: PipelineResult, phase: string): Error {
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
