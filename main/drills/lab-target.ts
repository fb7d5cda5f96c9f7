// The namespace lab as a drill target: the plan's nodes as network namespaces with the real
// backplane payload (planes, enrollment, revocation at the hub) and a real etcd cluster (Debian's
// etcd) with one member per planned etcd node, listening on its wg3 address (the plane the plan
// gives stacked/external etcd). Probes run on the hub, like the watcher of a deployed cluster.
//
// Lab-only simplifications, said plainly: etcd speaks plain HTTP inside the lab's private planes
// (a deployed cluster uses TLS), and there is no hypervisor, so the guest-agent signal is not
// observed and the "replace" of a VM is a fresh data directory / the same namespace.
import type { ChildProcess } from 'node:child_process';
import type { GuardNode, ScenarioName } from '../../common/drills/catalogue';
import { DRILL_NFT_TABLE, partitionCut } from '../../common/drills/catalogue';
import type { HealthFacts } from '../../common/drills/health';
import { etcdHealth, handshakesByNode, memberRemoval, parseAllowedIps, parseEndpointHealth, parseLatestHandshakes, parseMemberList } from '../../common/drills/health';
import type { Plan } from '../../common/plan/index';
import type { ClusterSpec } from '../../common/spec/schema';
import type { WatcherStatus } from '../../common/drills/watcher';
import { HEALTH_WATCH_CONFIG_PATH, healthWatchConfig, renderHealthWatchConfig } from '../../common/drills/watcher';
import { CommandError } from '../exec/runner';
import type { LabTrust } from '../lab/backplane';
import { bin, bringUp, makeTrust, openWindow, token } from '../lab/backplane';
import { PATHS } from '../trust/index';
import { Lab } from '../lab/harness';
import { etcdSnapshotRestoreArgv } from '../restore/etcd';
import { liftRevocation } from './fence';
import type { NodeShell } from './shell';
import { lastLines } from './shell';
import { readWatcherReport } from './watcher-report';
import type { DrillTarget, PhaseContext, ScenarioOps } from './target';

/** The scenarios the namespace lab can run (the others need a hypervisor). */
export const LAB_SCENARIOS: readonly ScenarioName[] = ['partition-node', 'kill-etcd-member'];

const ETCD_CLIENT_PORT = 2379;
const ETCD_PEER_PORT = 2380;

/** etcd members by plan: control planes for stacked etcd, etcd nodes for external (same rule as the Ansible inventory's etcd_members). */
export function etcdMembersOf(plan: Plan): string[] {
  const external = plan.nodes.some((n) => n.role === 'etcd');
  return plan.nodes.filter((n) => n.role === (external ? 'etcd' : 'control-plane')).map((n) => n.name);
}

/** The lab's nodes as a NodeShell (drills, the wiring check): argv inside the node's namespaces. */
export function labShell(lab: Lab): NodeShell {
  return {
    exec: (node, argv, o) =>
      o?.anyExit
        ? lab.try(node, argv, { ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}), ...(o.input !== undefined ? { input: o.input } : {}) })
        : lab.exec(node, argv, { ...(o?.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}), ...(o?.input !== undefined ? { input: o.input } : {}) }),
  };
}

const ip = (cidr: string): string => cidr.replace(/\/\d+$/, '');

export interface LabTargetOptions {
  log?: (line: string) => void;
  /** etcd's heartbeat and election timeout (ms); the lab uses etcd's defaults, 100 and 1000. */
  etcdHeartbeatMs?: number;
  etcdElectionMs?: number;
}

export class LabDrillTarget implements DrillTarget {
  readonly kind = 'lab' as const;
  readonly cluster: string;
  readonly nodes: GuardNode[];
  readonly hub: string;
  readonly shell: NodeShell;
  readonly allowDestroy = false;
  readonly etcdMembers: string[];
  /** Data-directory generation per member: a replacement gets a new one. */
  private readonly generation = new Map<string, number>();
  private readonly etcdProcs = new Map<string, ChildProcess>();

  private constructor(
    readonly lab: Lab,
    readonly trust: LabTrust,
    private readonly opts: LabTargetOptions,
  ) {
    this.cluster = lab.plan.cluster.name;
    this.etcdMembers = etcdMembersOf(lab.plan);
    this.nodes = lab.plan.nodes.map((n) => ({ name: n.name, role: n.role, hub: n.hub, etcd: this.etcdMembers.includes(n.name) }));
    this.hub = lab.hub.name;
    this.shell = labShell(lab);
  }

  /** Builds the lab: namespaces, planes, every spoke enrolled, etcd up on its members. */
  static async create(plan: Plan, opts: LabTargetOptions = {}): Promise<LabDrillTarget> {
    const lab = await Lab.create(plan, { sshd: false, ...(opts.log ? { log: opts.log } : {}) });
    try {
      const trust = await makeTrust(lab);
      const window = await bringUp(lab, trust, 120);
      window.process.kill('SIGTERM');
      await window.closed;
      const t = new LabDrillTarget(lab, trust, opts);
      await t.startEtcdCluster();
      return t;
    } catch (err) {
      lab.destroy();
      throw err;
    }
  }

  destroy(): void {
    this.lab.destroy();
  }

  /** Set once startHealthWatcher has the watcher writing its report in the hub (DrillTarget.readWatcher). */
  readWatcher?: (sh: NodeShell, nowSeconds: number) => Promise<WatcherStatus>;
  private watcherProc: ChildProcess | undefined;

  /**
   * Starts the hub's health watcher (payload/backplane/kubedos-health-watch, the program a
   * deployed master runs as kubedos-health-watch.service) as a daemon in the lab hub's
   * namespaces, with the configuration the foundry renders from `spec` and the lab's plan (the
   * lab's etcd speaks plain HTTP: no client certificate; no converge: no drift probe). Resolves
   * once the first report is readable; from then on drills detect through it.
   */
  async startHealthWatcher(spec: ClusterSpec, o: { timeoutMs?: number } = {}): Promise<WatcherStatus> {
    if (this.watcherProc) throw new Error(`the health watcher already runs in ${this.hub} (pid ${this.watcherProc.pid})`);
    const config = healthWatchConfig(spec, this.lab.plan);
    await this.lab.writeFile(this.hub, HEALTH_WATCH_CONFIG_PATH, renderHealthWatchConfig(config), 0o644);
    const proc = this.lab.spawnDaemon(this.hub, [bin('kubedos-health-watch'), 'run', '--config', HEALTH_WATCH_CONFIG_PATH], 'health-watch');
    this.watcherProc = proc;
    const read = (sh: NodeShell, nowSeconds: number) => readWatcherReport(sh, this.hub, { nowSeconds: () => nowSeconds, path: config.reportPath });
    const deadline = Date.now() + (o.timeoutMs ?? 30_000);
    let last: WatcherStatus | undefined;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) break;
      last = await read(this.shell, Date.now() / 1000);
      if (last.readable && !last.stale) {
        this.readWatcher = read;
        this.log(`health watcher in ${this.hub}: report #${last.report.sequence} written`);
        return last;
      }
      await new Promise((res) => setTimeout(res, 250));
    }
    const out = ((proc as unknown as { output?: () => string }).output?.() ?? '').trim().split('\n').slice(-3).join(' | ');
    throw new Error(`the health watcher in ${this.hub} wrote no fresh report within ${Math.round((o.timeoutMs ?? 30_000) / 1000)} s (${last && !last.readable ? last.reason : proc.exitCode !== null ? `it exited ${proc.exitCode}` : 'stale report'}${out ? `; its output: ${out.slice(0, 300)}` : ''})`);
  }

  /** Stops the watcher (SIGTERM by PID); its last report stays and turns stale. */
  async stopHealthWatcher(): Promise<void> {
    const proc = this.watcherProc;
    if (!proc) return;
    this.watcherProc = undefined;
    if (proc.exitCode === null && proc.signalCode === null) {
      const gone = new Promise((res) => proc.once('close', res));
      proc.kill('SIGTERM');
      await Promise.race([gone, new Promise((res) => setTimeout(res, 10_000))]);
    }
  }

  private log(line: string): void {
    this.opts.log?.(line);
  }

  wg3(node: string): string {
    return ip(this.lab.node(node).plan.planes.wg3.address);
  }

  clientUrl(node: string): string {
    return `http://${this.wg3(node)}:${ETCD_CLIENT_PORT}`;
  }

  peerUrl(node: string): string {
    return `http://${this.wg3(node)}:${ETCD_PEER_PORT}`;
  }

  endpoints(): string {
    return this.etcdMembers.map((m) => this.clientUrl(m)).join(',');
  }

  /** etcdctl argv against every planned member (short timeouts: a probe must not hang). */
  etcdctl(args: readonly string[]): string[] {
    return ['etcdctl', `--endpoints=${this.endpoints()}`, '--dial-timeout=1s', '--command-timeout=2s', ...args];
  }

  private dataDir(node: string): string {
    return `/var/lib/kubedos-etcd/${this.generation.get(node) ?? 1}`;
  }

  /** Starts the etcd member of `node` as a lab daemon. */
  startEtcd(node: string, initialCluster: string, state: 'new' | 'existing'): ChildProcess {
    const argv = [
      'etcd',
      `--name=${node}`,
      `--data-dir=${this.dataDir(node)}`,
      `--listen-peer-urls=${this.peerUrl(node)}`,
      `--initial-advertise-peer-urls=${this.peerUrl(node)}`,
      `--listen-client-urls=${this.clientUrl(node)},http://127.0.0.1:${ETCD_CLIENT_PORT}`,
      `--advertise-client-urls=${this.clientUrl(node)}`,
      `--initial-cluster=${initialCluster}`,
      `--initial-cluster-state=${state}`,
      `--initial-cluster-token=${this.etcdToken}`,
      `--heartbeat-interval=${this.opts.etcdHeartbeatMs ?? 100}`,
      `--election-timeout=${this.opts.etcdElectionMs ?? 1000}`,
      '--logger=zap',
      '--log-level=warn',
    ];
    const child = this.lab.spawnDaemon(node, argv, `etcd-${this.generation.get(node) ?? 1}`);
    this.etcdProcs.set(node, child);
    return child;
  }

  etcdPid(node: string): number | undefined {
    const c = this.etcdProcs.get(node);
    return c && c.exitCode === null && c.signalCode === null ? c.pid : undefined;
  }

  /** etcd's initial-cluster token in the lab (the same for a cluster restored from a snapshot). */
  get etcdToken(): string {
    return `kubedos-${this.cluster}`;
  }

  /**
   * Restores every member from one snapshot file already present in each member node at
   * `snapshotPath` (main/restore/etcd.ts): stops the members, restores fresh data directories,
   * starts them as a new cluster and waits until all are healthy.
   */
  async restoreEtcdFromSnapshot(snapshotPath: string): Promise<string> {
    const members = this.etcdMembers.map((name) => ({ name, peerUrl: this.peerUrl(name) }));
    for (const m of this.etcdMembers) {
      const pid = this.etcdPid(m);
      if (pid !== undefined) {
        const proc = this.etcdProcs.get(m)!;
        const gone = new Promise((res) => proc.once('close', res));
        await this.lab.try(m, ['kill', '-TERM', String(pid)]);
        await Promise.race([gone, new Promise((res) => setTimeout(res, 15_000))]);
      }
      this.generation.set(m, (this.generation.get(m) ?? 1) + 1);
      await this.lab.exec(m, etcdSnapshotRestoreArgv({ snapshot: snapshotPath, member: members.find((x) => x.name === m)!, members, token: this.etcdToken, dataDir: this.dataDir(m) }), { timeoutMs: 60_000 });
    }
    await this.startEtcdCluster();
    return `etcd restored from ${snapshotPath} on ${this.etcdMembers.join(', ')}`;
  }

  private async startEtcdCluster(): Promise<void> {
    if (this.etcdMembers.length === 0) return;
    const initial = this.etcdMembers.map((m) => `${m}=${this.peerUrl(m)}`).join(',');
    for (const m of this.etcdMembers) this.startEtcd(m, initial, 'new');
    const deadline = Date.now() + 30_000;
    let last = '';
    while (Date.now() < deadline) {
      const r = await this.lab.try(this.hub, this.etcdctl(['endpoint', 'health', '-w', 'json']));
      try {
        const eps = parseEndpointHealth(r.stdout);
        if (eps.length === this.etcdMembers.length && eps.every((e) => e.healthy)) {
          this.log(`etcd: ${this.etcdMembers.length} members healthy (${this.etcdMembers.join(', ')})`);
          return;
        }
      } catch {
        /* not up yet */
      }
      last = r.stderr.trim().split('\n').slice(-3).join(' | ');
      await new Promise((res) => setTimeout(res, 300));
    }
    const logs = this.etcdMembers.map((m) => `${m}: ${((this.etcdProcs.get(m) as unknown as { output?: () => string })?.output?.() ?? '').slice(-400)}`).join('\n');
    throw new Error(`etcd did not become healthy on ${this.etcdMembers.join(', ')} within 30 s (etcdctl endpoint health from ${this.hub}: ${last})\n${logs}`);
  }

  async gatherFacts(sh: NodeShell, now: number): Promise<HealthFacts> {
    const hub = this.hub;
    const [hs, allowed] = await Promise.all([sh.exec(hub, ['wg', 'show', 'wg1', 'latest-handshakes']), sh.exec(hub, ['wg', 'show', 'wg1', 'allowed-ips'])]);
    const wg1ByNode = Object.fromEntries(this.lab.plan.nodes.filter((n) => !n.hub).map((n) => [n.name, n.planes.wg1.address]));
    const wg1Handshakes = handshakesByNode(parseLatestHandshakes(hs.stdout), parseAllowedIps(allowed.stdout), wg1ByNode);
    let etcd: HealthFacts['etcd'];
    if (this.etcdMembers.length) {
      const [health, members] = await Promise.all([
        sh.exec(hub, this.etcdctl(['endpoint', 'health', '-w', 'json']), { anyExit: true, timeoutMs: 15_000 }),
        sh.exec(hub, this.etcdctl(['member', 'list', '-w', 'json', '--hex']), { anyExit: true, timeoutMs: 15_000 }),
      ]);
      let endpoints: NonNullable<HealthFacts['etcd']>['endpoints'];
      try {
        endpoints = parseEndpointHealth(health.stdout);
      } catch {
        endpoints = this.etcdMembers.map((m) => ({ endpoint: this.clientUrl(m), healthy: false, error: tail(health.stderr) || 'no answer' }));
      }
      if (members.exitCode === 0) etcd = { members: parseMemberList(members.stdout), endpoints };
      else etcd = { members: [], endpoints, error: tail(members.stderr) || `etcdctl member list exited ${members.exitCode}` };
    }
    return { now, nodes: this.nodes.map((n) => ({ name: n.name, hub: n.hub, etcd: n.etcd })), wg1Handshakes, ...(etcd ? { etcd } : {}) };
  }

  ops(scenario: ScenarioName): ScenarioOps | undefined {
    if (scenario === 'kill-etcd-member') return this.killEtcdMemberOps();
    if (scenario === 'partition-node') return this.partitionOps();
    return undefined;
  }

  // ------------------------------------------------------------ shared steps

  /** Removes the node's etcd member, only if the members left keep quorum. */
  private async removeMember(ctx: PhaseContext): Promise<string> {
    const facts = await this.gatherFacts(ctx.sh, Date.now() / 1000);
    const etcd = facts.etcd;
    if (!etcd || etcd.error) throw new Error(`cannot read the etcd membership from ${this.hub}: ${etcd?.error ?? 'no etcd'}`);
    const member = etcd.members.find((m) => m.name === ctx.node);
    if (!member) return `${ctx.node} is no etcd member any more`;
    // The one quorum rule (common/drills/health.ts), the guard's and the deployed cluster's fence's too.
    const removal = memberRemoval(etcdHealth(etcd), ctx.node);
    if (!removal.ok) throw new Error(`${removal.message} — membership left as is`);
    await ctx.sh.exec(this.hub, this.etcdctl(['member', 'remove', member.id]));
    return `etcd member ${member.id} (${ctx.node}) removed; ${removal.after} of ${removal.members - 1} members healthy`;
  }

  /** Stops whatever etcd the node still runs (by PID), fresh data dir, member add, start. */
  private async rejoinEtcd(ctx: PhaseContext, o: { freshDir: boolean }): Promise<string> {
    const pid = this.etcdPid(ctx.node);
    if (pid !== undefined) await ctx.sh.exec(ctx.node, ['kill', '-KILL', String(pid)], { anyExit: true });
    if (o.freshDir) this.generation.set(ctx.node, (this.generation.get(ctx.node) ?? 1) + 1);
    const added = await ctx.sh.exec(this.hub, this.etcdctl(['member', 'add', ctx.node, `--peer-urls=${this.peerUrl(ctx.node)}`]));
    const initial = /ETCD_INITIAL_CLUSTER="([^"]+)"/.exec(added.stdout)?.[1];
    if (!initial) throw new Error(`etcdctl member add printed no ETCD_INITIAL_CLUSTER: ${tail(added.stdout)}`);
    this.startEtcd(ctx.node, initial, 'existing');
    return `member ${ctx.node} added; fresh data dir ${this.dataDir(ctx.node)}; etcd started (cluster ${initial.split(',').length} members)`;
  }

  // ------------------------------------------------------------ kill-etcd-member

  private killEtcdMemberOps(): ScenarioOps {
    return {
      inject: async (ctx) => {
        const pid = this.etcdPid(ctx.node);
        if (pid === undefined) throw new Error(`${ctx.node} runs no etcd member in this lab`);
        await ctx.sh.exec(ctx.node, ['kill', '-KILL', String(pid)]);
        return `etcd (pid ${pid}) on ${ctx.node} killed with SIGKILL`;
      },
      fence: (ctx) => this.removeMember(ctx),
      replace: async (ctx) => {
        this.generation.set(ctx.node, (this.generation.get(ctx.node) ?? 1) + 1);
        await ctx.sh.exec(ctx.node, ['/bin/sh', '-c', 'rm -rf "$1" && mkdir -p -m 0700 "$1"', 'sh', this.dataDir(ctx.node)]);
        return `fresh data directory ${this.dataDir(ctx.node)} on ${ctx.node} (the old one is not reused)`;
      },
      reintegrate: (ctx) => this.rejoinEtcd(ctx, { freshDir: false }),
    };
  }

  // ------------------------------------------------------------ partition-node

  private partitionOps(): ScenarioOps {
    return {
      inject: async (ctx) => {
        const cut = partitionCut(ctx.node, this.lab.node(ctx.node).plan.lan.address);
        await ctx.sh.exec(this.hub, ['nft', '-f', '-'], { input: cut.rules });
        return cut.detail;
      },
      fence: async (ctx) => {
        const revoked = await ctx.sh.exec(this.hub, [bin('kubedos-enroll-hub'), 'revoke', ctx.node, '--reason', 'drill: partition-node fence']);
        const removed = (JSON.parse(revoked.stdout) as { removed: string[] }).removed;
        const etcd = this.etcdMembers.includes(ctx.node) ? `; ${await this.removeMember(ctx)}` : '';
        return `revoked at the hub, peers removed (${removed.join(', ') || 'none left'})${etcd}`;
      },
      replace: async (ctx) => {
        // The node itself is intact: the replacement is the same namespace once the cut is healed.
        const cut = await ctx.sh.exec(this.hub, ['nft', 'list', 'table', 'inet', DRILL_NFT_TABLE], { anyExit: true });
        if (cut.exitCode === 0) await ctx.sh.exec(this.hub, ['nft', 'delete', 'table', 'inet', DRILL_NFT_TABLE]);
        return `${cut.exitCode === 0 ? 'cut healed at the hub' : 'no drill cut at the hub'}; ${ctx.node} is its own replacement (no VM to rebuild in the namespace lab)`;
      },
      reintegrate: async (ctx) => {
        // Re-admit deliberately: drop it from the revocation list, a fresh single-use token, enroll.
        await liftRevocation(ctx.sh, this.hub, this.cluster, ctx.node);
        const window = await openWindow(this.lab, 30);
        try {
          // The token goes in a file (never in argv), as the image's first boot does.
          await this.lab.writeFile(ctx.node, PATHS.token, `${token(this.lab, this.trust, { node: ctx.node, ttlSeconds: 300 })}\n`, 0o600);
          const r = await ctx.sh.exec(ctx.node, [bin('kubedos-enroll-agent'), 'enroll'], { anyExit: true, timeoutMs: 60_000 });
          if (r.exitCode !== 0) throw new CommandError({ message: `re-enrollment of ${ctx.node} failed (exit ${r.exitCode})`, command: r.command, exitCode: r.exitCode, stderrTail: tail(r.stderr), reason: 'exit' });
        } finally {
          window.process.kill('SIGTERM');
          await window.closed;
        }
        const etcd = this.etcdMembers.includes(ctx.node) ? `; ${await this.rejoinEtcd(ctx, { freshDir: true })}` : '';
        return `un-revoked, re-enrolled with a fresh single-use token${etcd}`;
      },
    };
  }
}

function tail(s: string): string {
  return lastLines(s);
}
