// The deployed-cluster drill target against an in-memory substrate: a delete-worker-vm drill goes
// through every phase (the guest agent's silence detects it, the hub revokes the node, the
// replacement's deploy run ends the replace phase at first boot and reintegrate at its end), and a
// replacement whose deploy fails ends the drill in that phase with the stage's command and stderr.
import { describe, expect, it } from 'vitest';
import type { PipelineEvent } from '../../common/pipeline/events';
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import type { DrillRecord } from '../../common/drills/timeline';
import type { PipelineResult } from '../pipeline/runner';
import type { GuestExecResult, SubstrateDriver } from '../substrate/driver';
import { ClusterDrillTarget, stageSummary } from './cluster-target';
import type { RepairRun } from './cluster-target';
import { runDrill, runHeal } from './engine';
import { clusterCannotRun } from './service';
import { etcdMembers, etcdPeerUrl } from '../stages/converge';
import { answer, fakeEtcd, fakeHub } from './fence-testing';
import { templateObject, toYaml } from '../../common/testing/specs';
import { evaluateHealth } from '../../common/drills/health';
import { HEALTH_WATCH_REPORT_PATH } from '../../common/drills/watcher';

const spec = parseSpec(TEMPLATES['lab-3'].text).spec!;
const p = plan(spec);
const byVmid = new Map(p.nodes.map((n) => [n.vmid, n]));
/** Three VMs; the hub answers wg show with a fresh handshake for every peer it still has. */
function fakeCluster(opts: { report?: (nowSeconds: number) => string } = {}) {
  const alive = new Set(p.nodes.map((n) => n.name));
  const hub = fakeHub(p);
  const etcd = fakeEtcd(p, { serving: (m) => alive.has(m.name) });
  const hubCalls: string[][] = [];
  const driver = {
    async guestPing(vmid: number) {
      return alive.has(byVmid.get(vmid)!.name);
    },
    async destroy(vmid: number, o: { allowDestroy: boolean }) {
      if (!o.allowDestroy) throw new Error('refused');
      alive.delete(byVmid.get(vmid)!.name);
    },
    async stop(vmid: number) {
      alive.delete(byVmid.get(vmid)!.name);
    },
    async guestExec(vmid: number, argv: readonly string[], o: { input?: string | Uint8Array } = {}): Promise<GuestExecResult> {
      const n = byVmid.get(vmid)!;
      if (!alive.has(n.name)) throw new Error(`VM ${vmid} is not running`);
      if (n.hub) hubCalls.push([...argv]);
      if (argv[0] === 'etcdctl') return etcd.etcdctl(n.name, argv);
      const fromHub = n.hub ? hub.answer(argv, o.input) : undefined;
      if (fromHub) return fromHub;
      if (argv[0] === 'cat' && argv[1] === HEALTH_WATCH_REPORT_PATH && n.hub && opts.report) return answer(0, opts.report(Date.now() / 1000));
      return answer(127, '', `unexpected ${argv.join(' ')}`);
    },
  } as unknown as SubstrateDriver;
  return { alive, peers: hub.peers, driver, hubCalls, revokedNow: hub.revoked };
}

const stageEvent = (stage: string, state: 'running' | 'success' | 'failed', changes?: number): PipelineEvent => ({ runId: 'run-1', seq: 0, time: '2026-12-02T00:00:00Z', type: 'stage', stage, state, rerun: 'safe-rerun', attempt: 1, ...(changes !== undefined ? { changes } : {}) });

/** A replacement run: provision brings the VM back, firstboot, then enroll re-adds its peers. */
function repairOf(c: ReturnType<typeof fakeCluster>, o: { failAt?: string; seen: string[] }): () => RepairRun {
  return () => ({
    async run(onEvent): Promise<PipelineResult> {
      for (const stage of ['validate', 'plan', 'build', 'provision', 'firstboot', 'backplanes', 'enroll', 'converge', 'workload', 'seal']) {
        onEvent(stageEvent(stage, 'running'));
        await new Promise((r) => setTimeout(r, 5));
        o.seen.push(stage);
        if (stage === o.failAt) {
          onEvent(stageEvent(stage, 'failed'));
          return { runId: 'run-1', ok: false, states: {}, failures: [{ stage, node: 'w-1', message: 'w-1: kubedos-enroll-agent enroll exited 2', command: ['kubedos-enroll-agent', 'enroll'], exitCode: 2, stderrTail: 'refused: revoked' }], durationMs: 1, outputs: {} };
        }
        if (stage === 'provision') c.alive.add('w-1');
        if (stage === 'enroll') {
          if (c.revokedNow().includes('w-1')) throw new Error('enrolled a revoked node');
          c.peers.add('w-1');
        }
        onEvent(stageEvent(stage, 'success', ['provision', 'firstboot', 'enroll', 'converge'].includes(stage) ? 1 : 0));
      }
      return { runId: 'run-1', ok: true, states: {}, failures: [], durationMs: 1, outputs: {} };
    },
  });
}

const fastSpec = { ...spec, spec: { ...spec.spec, selfHealing: { ...spec.spec.selfHealing, detect: { heartbeatSeconds: 1, missedHeartbeats: 2, signals: ['guest-agent' as const, 'wg-handshake' as const] } } } };
const thresholds = { heartbeatSeconds: 1, silenceSeconds: 2, handshakeMaxAgeSeconds: 122, signals: ['guest-agent' as const, 'wg-handshake' as const, 'etcd-member' as const] };

async function drill(target: ClusterDrillTarget, scenario = 'delete-worker-vm'): Promise<DrillRecord> {
  let last: DrillRecord | undefined;
  return runDrill({ target, spec: fastSpec, scenario, node: 'w-1', thresholds, thresholdsSource: 'test', id: 't', store: (r) => (last = structuredClone(r)), nextOnInterrupt: 'kubedos heal lab-3.yaml', phaseTimeoutMs: 20_000 }).then((r) => r ?? last!);
}

describe('stageSummary (where a replace/reintegrate phase\'s time went)', () => {
  it('names each stage\'s last state with its duration when it took a second or more', () => {
    const ev = (stage: string, state: 'running' | 'success' | 'skipped', changes?: number, durationMs?: number): PipelineEvent => ({ runId: 'run-1', seq: 0, time: '2026-12-02T00:00:00Z', type: 'stage', stage, state, rerun: 'safe-rerun', attempt: 1, ...(changes !== undefined ? { changes } : {}), ...(durationMs !== undefined ? { durationMs } : {}) });
    const events = [ev('enroll', 'running'), ev('enroll', 'success', 4, 61_400), ev('converge', 'running'), ev('converge', 'success', 21, 352_600), ev('workload', 'skipped', undefined, 12), ev('seal', 'success', 3, 999)];
    expect(stageSummary(events, ['backplanes', 'enroll', 'converge', 'workload', 'seal'])).toBe('enroll 4 changes (61 s), converge 21 changes (353 s), workload unchanged, seal 3 changes');
  });
});

describe('ClusterDrillTarget (a deployed cluster through its substrate driver)', () => {
  it('delete-worker-vm: detected by the guest agent\'s silence, revoked at the hub, replaced by a deploy run (replace ends at first boot), healthy', async () => {
    const c = fakeCluster();
    const seen: string[] = [];
    const t = new ClusterDrillTarget({ plan: p, driver: c.driver, allowDestroy: true, repair: repairOf(c, { seen }) });
    const r = await drill(t);
    expect(r.status, JSON.stringify(r.error)).toBe('passed');
    const phase = (n: string) => r.phases.find((x) => x.name === n)!;
    expect(phase('inject').detail).toBe('VM 3002 (w-1) destroyed with its disks and TPM state');
    expect(phase('detect').detail).toMatch(/^guest-agent: guest agent silent for \d+ s \(limit 2 s\) \(1 probe in a row, every 1 s; hub watcher unreadable: no report at \/var\/lib\/kubedos\/health\/report\.json on master \(unexpected cat .*\): the health watcher has not written one .*, engine probes used\)$/);
    expect(r.detectedBy).toBe('engine-probes');
    expect(phase('fence').detail).toBe('revoked at the hub; plane peers removed: w-1/wg1, w-1/wg2, w-1/wg3');
    expect(phase('replace').detail).toBe('w-1 taken off the revocation list for its replacement; deploy run run-1: provision 1 change, firstboot 1 change');
    expect(phase('reintegrate').detail).toBe('backplanes unchanged, enroll 1 change, converge 1 change, workload unchanged, seal unchanged');
    expect(phase('healthy').detail).toMatch(/^every node healthy; etcd 1\/1 members healthy/);
    expect(seen.at(-1)).toBe('seal');
    expect(c.revokedNow()).toEqual([]);
    // The revocation ran on the hub, before the replacement's enrollment.
    expect(c.hubCalls.findIndex((a) => a[1] === 'revoke')).toBeGreaterThanOrEqual(0);
    // The commands that ran are recorded in their phase.
    expect(phase('fence').commands.map((x) => x.argv[1])).toContain('revoke');
  });

  it('refuses to destroy without allowDestroy, before anything is touched', async () => {
    const c = fakeCluster();
    const t = new ClusterDrillTarget({ plan: p, driver: c.driver, allowDestroy: false, repair: repairOf(c, { seen: [] }) });
    const r = await drill(t);
    expect(r.status).toBe('refused');
    expect(r.guard.reasons.map((x) => x.code)).toEqual(['not-destroyable']);
    expect(c.alive.has('w-1')).toBe(true);
  });

  it('a replacement whose deploy fails: the drill fails in that phase with the stage\'s command and stderr, and says how to finish', async () => {
    const c = fakeCluster();
    const t = new ClusterDrillTarget({ plan: p, driver: c.driver, allowDestroy: true, repair: repairOf(c, { seen: [], failAt: 'enroll' }) });
    const r = await drill(t, 'power-off-node');
    expect(r.status).toBe('failed');
    expect(r.error).toMatchObject({ phase: 'reintegrate', node: 'w-1', command: ['kubedos-enroll-agent', 'enroll'], stderrTail: 'refused: revoked' });
    expect(r.error?.message).toBe('the deploy run that reintegrates the node failed at enroll on w-1: w-1: kubedos-enroll-agent enroll exited 2');
    expect(r.next).toBe('kubedos heal lab-3.yaml (w-1 is fenced and not yet replaced)');
  });

  it('with the watcher running on the master, its fresh report is the detection (read through the hub\'s guest agent)', async () => {
    // The watcher's report: w-1 has no wg1 peer any more, seen on 3 probes (detected).
    const t = { ...thresholds, signals: ['wg-handshake' as const] };
    const report = (now: number): string => {
      const facts = { now, nodes: p.nodes.map((n) => ({ name: n.name, hub: n.hub, etcd: false })), wg1Handshakes: Object.fromEntries(p.nodes.filter((n) => !n.hub && n.name !== 'w-1').map((n) => [n.name, Math.floor(now)])) };
      const verdict = evaluateHealth(facts, t);
      return JSON.stringify({ schema: 'kubedos.health-watch/v1', cluster: p.cluster.name, hub: 'master', at: now, startedAt: now - 60, sequence: 60, probeMs: 40, thresholds: t, detectAfterProbes: 2, facts, verdict, findings: verdict.findings.map((f) => ({ ...f, since: now - 2, probes: 3 })), detected: ['w-1'], errors: [] });
    };
    const c = fakeCluster({ report });
    const t0 = new ClusterDrillTarget({ plan: p, driver: c.driver, allowDestroy: true, repair: repairOf(c, { seen: [] }) });
    const r = await drill(t0);
    expect(r.status, JSON.stringify(r.error)).toBe('passed');
    const detect = r.phases.find((x) => x.name === 'detect')!;
    expect(r.detectedBy, detect.detail).toBe('hub-watcher');
    expect(detect.detail).toMatch(/^hub watcher: wg-handshake since \d\d:\d\d:\d\d\.\dZ \(no wg1 peer on the hub; 3 probes in a row\), already flagged \d+\.\d s before the fault; report 0\.0 s old$/);
    expect(detect.commands[0]).toMatchObject({ node: 'master', argv: ['cat', HEALTH_WATCH_REPORT_PATH], exitCode: 0 });
  });
});

// ---------------------------------------------------------------- etcd members (issue 14)

/** lab-3 with three stacked control planes: cp-1, cp-2, cp-3 are the etcd members. */
function threeControlPlanes() {
  const s = templateObject('lab-3');
  const inv = s.spec.nodes.inventory;
  const cp = inv.find((n: { name: string }) => n.name === 'cp-1');
  inv.push({ ...cp, name: 'cp-2', vmid: 3003 }, { ...cp, name: 'cp-3', vmid: 3004 });
  s.spec.kubernetes.ha.controlPlaneReplicas = 3;
  const r = parseSpec(toYaml(s));
  if (!r.spec) throw new Error(`test spec invalid: ${JSON.stringify(r.diagnostics)}`);
  return { spec: r.spec, plan: plan(r.spec) };
}

/**
 * A deployed cluster with a 3-member etcd behind the nodes' guest agents: etcdctl answers from the
 * members' state (quorum needed for list/add/remove), `systemctl` stops a node's etcd, the master
 * keeps the files written to it, and the repair's converge starts a node's etcd only as etcd would:
 * into a member that was added for it, with the role's variables saying "existing".
 */
function fakeEtcdCluster(px: ReturnType<typeof plan>, o: { removeFails?: string; addRefusals?: number } = {}) {
  const byVm = new Map(px.nodes.map((n) => [n.vmid, n]));
  const etcdNodes = etcdMembers(px);
  const running = new Set(etcdNodes.map((n) => n.name));
  const alive = new Set(px.nodes.map((n) => n.name));
  const log: string[] = [];
  const hub = fakeHub(px, { log: (l) => log.push(l) });
  const etcd = fakeEtcd(px, { ...o, serving: (m) => running.has(m.name) && alive.has(m.name), log: (l) => log.push(l) });
  const { members, kv } = etcd;
  const files = hub.files;
  const driver = {
    async guestPing(vmid: number) {
      return alive.has(byVm.get(vmid)!.name);
    },
    async destroy(vmid: number, d: { allowDestroy: boolean }) {
      if (!d.allowDestroy) throw new Error('refused');
      const name = byVm.get(vmid)!.name;
      log.push(`destroy ${name}`);
      alive.delete(name);
      running.delete(name);
    },
    async stop(vmid: number) {
      alive.delete(byVm.get(vmid)!.name);
    },
    async guestExec(vmid: number, argv: readonly string[], g: { input?: string | Uint8Array } = {}): Promise<GuestExecResult> {
      const n = byVm.get(vmid)!;
      if (!alive.has(n.name)) throw new Error(`VM ${vmid} is not running`);
      if (argv[0] === 'etcdctl') return etcd.etcdctl(n.name, argv);
      const fromHub = n.hub ? hub.answer(argv, g.input) : undefined;
      if (fromHub) return fromHub;
      if (argv[0] === 'systemctl' && argv[1] === 'stop' && argv[2] === 'etcd.service') {
        log.push(`stop etcd on ${n.name}`);
        running.delete(n.name);
        return answer(0, '');
      }
      if (argv[0] === '/bin/sh' && argv[2]?.startsWith('systemctl kill --signal=SIGKILL etcd.service')) {
        log.push(`kill etcd on ${n.name}, rm ${argv[4]}`);
        running.delete(n.name);
        return answer(0, '');
      }
      return answer(127, '', `unexpected ${argv.join(' ')}`);
    },
  } as unknown as SubstrateDriver;

  /** The deploy run: provision puts a missing VM back, enroll re-adds its peers, converge starts etcd as the role would. */
  const repair = (): RepairRun => ({
    async run(onEvent): Promise<PipelineResult> {
      log.push('deploy run');
      for (const stage of ['validate', 'plan', 'build', 'provision', 'firstboot', 'backplanes', 'enroll', 'converge', 'workload', 'seal']) {
        onEvent(stageEvent(stage, 'running'));
        await new Promise((r) => setTimeout(r, 2));
        if (stage === 'provision') for (const n of px.nodes) alive.add(n.name);
        if (stage === 'enroll') for (const n of px.nodes.filter((x) => !x.hub)) if (!hub.revoked().includes(n.name)) hub.peers.add(n.name);
        if (stage === 'converge') {
          for (const n of etcdNodes.filter((x) => !running.has(x.name))) {
            log.push(`converge ${n.name}`);
            const vars = files.get(`/etc/kubedos/ansible/host_vars/${n.name}/kubedos-etcd-member.yml`) ?? '';
            const id = /kubedos_etcd_member_id: "([0-9a-f]+)"/.exec(vars)?.[1];
            const m = id ? members.get(id) : undefined;
            if (!vars.includes('kubedos_etcd_initial_cluster_state: existing') || !m || m.peerUrl !== etcdPeerUrl(n.planes.wg3.address)) {
              onEvent(stageEvent(stage, 'failed'));
              return { runId: 'run-1', ok: false, states: {}, failures: [{ stage, node: n.name, message: `${n.name}: converge task "Etcd is enabled and running" failed: etcd: member not found in the cluster`, command: ['ansible-playbook'], exitCode: 2, stderrTail: 'etcdmain: error validating peerURLs' }], durationMs: 1, outputs: {} };
            }
            m.started = true;
            running.add(n.name);
          }
        }
        onEvent(stageEvent(stage, 'success', stage === 'converge' ? 3 : 0));
      }
      return { runId: 'run-1', ok: true, states: {}, failures: [], durationMs: 1, outputs: {} };
    },
  });
  return { driver, repair, members, running, alive, kv, files, log };
}

const etcdThresholds = { heartbeatSeconds: 0.2, silenceSeconds: 0.4, handshakeMaxAgeSeconds: 122, signals: ['guest-agent' as const, 'wg-handshake' as const, 'etcd-member' as const] };

function etcdDrill(t: ClusterDrillTarget, sp: typeof spec, scenario: string, node: string, extra: Partial<Parameters<typeof runDrill>[0]> = {}): Promise<DrillRecord> {
  return runDrill({ target: t, spec: sp, scenario, node, thresholds: etcdThresholds, thresholdsSource: 'test', id: `t-${scenario}`, store: () => undefined, nextOnInterrupt: 'kubedos heal lab-3.yaml', phaseTimeoutMs: 20_000, ...extra });
}

describe('ClusterDrillTarget on etcd members (three stacked control planes)', () => {
  const three = threeControlPlanes();

  /** What follows the member add in both scenarios: the role's variables, the deploy run whose converge starts etcd, the read back. */
  const REJOINED = ['write /etc/kubedos/ansible/host_vars/cp-3/kubedos-etcd-member.yml on master', 'deploy run', 'converge cp-3', 'get kubedos/drill/cp-3 from cp-3 alone', 'del kubedos/drill/cp-3'];

  /**
   * A drill on cp-3 stopped by Ctrl-C when phase `at` ended, then `kubedos heal`'s engine on the same
   * target after `laterMs`: the fake cluster, the drill's record, the heal's result and first record.
   */
  async function interruptedThenHealed(scenario: string, at: string, laterMs = 0) {
    const c = fakeEtcdCluster(three.plan);
    const t = new ClusterDrillTarget({ plan: three.plan, driver: c.driver, allowDestroy: scenario === 'delete-control-plane-vm', repair: c.repair });
    const ac = new AbortController();
    const r = await etcdDrill(t, three.spec, scenario, 'cp-3', { signal: ac.signal, onPhaseEnd: (ph) => (ph === at ? ac.abort() : undefined) });
    const before = { members: [...c.members.values()].map((m) => ({ ...m })), alive: c.alive.has('cp-3') };
    await new Promise((res) => setTimeout(res, laterMs));
    const healed = await runHeal({ target: t, spec: three.spec, thresholds: etcdThresholds, thresholdsSource: 'test', store: () => undefined, nextOnInterrupt: 'kubedos heal lab-3.yaml', phaseTimeoutMs: 20_000, idFor: (s, n) => `h-${s}-${n}`, confirmAfterMs: 10 });
    const h = healed.records[0]!;
    return { c, r, before, healed, h, phase: (n: string) => h.phases.find((x) => x.name === n)!.detail };
  }

  /** A drill on cp-3 that must pass: the fake cluster, the record, each phase's detail. */
  async function passedOnCp3(scenario: string, o: Parameters<typeof fakeEtcdCluster>[1] = {}) {
    const c = fakeEtcdCluster(three.plan, o);
    const t = new ClusterDrillTarget({ plan: three.plan, driver: c.driver, allowDestroy: scenario === 'delete-control-plane-vm', repair: c.repair });
    const r = await etcdDrill(t, three.spec, scenario, 'cp-3');
    expect(r.status, JSON.stringify(r.error)).toBe('passed');
    return { c, r, phase: (n: string) => r.phases.find((x) => x.name === n)!.detail };
  }

  it('clusterCannotRun: lab-3\'s single etcd member is refused from the plan (no quorum without it); with three members kill-etcd-member and delete-control-plane-vm run, the others are refused on members', () => {
    expect(clusterCannotRun(p, 'kill-etcd-member', 'cp-1')).toBe("cp-1 is an etcd member of lab-3 and taking cp-1's etcd member out would leave 0 of 1 members healthy; quorum needs 1 (cp-1 is the only member): an etcd member is drilled only when the others keep quorum without it (3 or more members); nothing was touched");
    expect(clusterCannotRun(p, 'delete-control-plane-vm', 'cp-1')).toMatch(/^cp-1 is an etcd member of lab-3 and taking cp-1's etcd member out would leave 0 of 1/);
    expect(clusterCannotRun(three.plan, 'kill-etcd-member', 'cp-3')).toBeUndefined();
    expect(clusterCannotRun(three.plan, 'delete-control-plane-vm', 'cp-3')).toBeUndefined();
    expect(clusterCannotRun(three.plan, 'power-off-node', 'cp-3')).toBe('cp-3 is an etcd member: on a deployed cluster power-off-node is not run on etcd members yet (kill-etcd-member and delete-control-plane-vm are); drill a node without etcd, or use --lab');
    expect(clusterCannotRun(three.plan, 'delete-worker-vm', 'w-1')).toBeUndefined();
  });

  it('the guard refuses kill-etcd-member on lab-3\'s single member before anything is touched', async () => {
    const c = fakeEtcdCluster(p);
    const t = new ClusterDrillTarget({ plan: p, driver: c.driver, allowDestroy: true, repair: c.repair });
    const r = await etcdDrill(t, spec, 'kill-etcd-member', 'cp-1');
    expect(r.status).toBe('refused');
    expect(r.guard.reasons).toEqual([{ code: 'quorum', message: "taking cp-1's etcd member out would leave 0 of 1 members healthy; quorum needs 1 (cp-1 is the only member)" }]);
    expect(c.log).toEqual([]);
    expect(c.running.has('cp-1')).toBe(true);
  });

  it('kill-etcd-member: member removed on a healthy member, added again before the deploy run converges the node, the key from before read back from it alone', async () => {
    const { c, r, phase } = await passedOnCp3('kill-etcd-member');
    expect(phase('inject')).toBe('etcd on cp-3 killed (SIGKILL) and kept stopped; its data directory /var/lib/etcd/kubedos removed; key kubedos/drill/cp-3 written on cp-1 first');
    expect(phase('fence')).toBe('etcd member a3 (cp-3) removed on cp-1; 2 of 2 members healthy');
    expect(phase('replace')).toBe('etcd on cp-3 stopped; etcd member d0 (cp-3, https://10.113.0.6:2380) added on cp-1; recorded on master for the etcd role (initial-cluster-state existing, member d0, data directory emptied once)');
    expect(phase('reintegrate')).toBe('provision unchanged, firstboot unchanged, backplanes unchanged, enroll unchanged, converge 3 changes, workload unchanged, seal unchanged; kubedos/drill/cp-3 (written before the fault) read back from cp-3\'s own member, then deleted');
    expect(phase('healthy')).toMatch(/^every node healthy; etcd 3\/3 members healthy/);
    // remove → add → the role's variables → the deploy run (whose converge starts etcd) → read back.
    expect(c.log).toEqual([
      'put kubedos/drill/cp-3 on cp-1',
      'kill etcd on cp-3, rm /var/lib/etcd/kubedos',
      'member remove a3 on cp-1',
      'stop etcd on cp-3',
      'member add cp-3 on cp-1',
      ...REJOINED,
    ]);
    expect(c.files.get('/etc/kubedos/ansible/host_vars/cp-3/kubedos-etcd-member.yml')).toMatch(/^kubedos_etcd_initial_cluster_state: existing\nkubedos_etcd_member_id: "d0"\n$/m);
    expect([...c.members.values()].map((m) => `${m.id} ${m.name} ${m.started}`).sort()).toEqual(['a1 cp-1 true', 'a2 cp-2 true', 'd0 cp-3 true']);
    expect(c.kv.size).toBe(0);
    // The commands are in their phase's record, run on the other member over wg3 with TLS.
    const add = r.phases.find((x) => x.name === 'replace')!.commands.find((x) => x.argv.includes('add'))!;
    expect(add.node).toBe('cp-1');
    expect(add.argv).toEqual(expect.arrayContaining(['--cacert=/etc/kubedos/pki/etcd/ca.crt', 'member', 'add', 'cp-3', '--peer-urls=https://10.113.0.6:2380']));
  });

  it('delete-control-plane-vm: revoked and its member removed in fence, the member added before the deploy run starts (asked again while etcd says "unhealthy cluster"), the new VM joins at its converge', async () => {
    const { c, phase } = await passedOnCp3('delete-control-plane-vm', { addRefusals: 1 });
    expect(phase('inject')).toBe('VM 3004 (cp-3) destroyed with its disks and TPM state; key kubedos/drill/cp-3 written on cp-1 first');
    expect(phase('fence')).toBe('revoked at the hub; plane peers removed: cp-3/wg1, cp-3/wg2, cp-3/wg3; etcd member a3 (cp-3) removed on cp-1; 2 of 2 members healthy');
    expect(phase('replace')).toMatch(/^cp-3 taken off the revocation list for its replacement; etcd member d0 \(cp-3, https:\/\/10\.113\.0\.6:2380\) added on cp-1; recorded on master .*; deploy run run-1: provision unchanged, firstboot unchanged$/);
    expect(c.log).toEqual([
      'put kubedos/drill/cp-3 on cp-1',
      'destroy cp-3',
      'member remove a3 on cp-1',
      'revoke cp-3',
      'member add cp-3 on cp-1',
      'member add cp-3 on cp-1',
      ...REJOINED,
    ]);
  });

  it('Ctrl-C after the member was added: the heal finds cp-3 (its added member not started), keeps that member, does not add it twice, and the deploy run joins it', async () => {
    const { c, r, before, healed, h, phase } = await interruptedThenHealed('kill-etcd-member', 'replace');
    expect(r.status).toBe('interrupted');
    expect(r.error?.phase).toBe('reintegrate');
    expect(r.next).toBe('kubedos heal lab-3.yaml (cp-3 is fenced and not yet replaced)');
    expect(before.members.filter((m) => !m.started).map((m) => m.id)).toEqual(['d0']);
    // The added member is given its node's name by its peer URL: the finding is cp-3's, not an unplanned id's.
    expect(healed.before.findings.map((f) => `${f.node} ${f.signal} ${f.detail}`)).toEqual(['cp-3 etcd-member etcd member unhealthy']);
    expect(healed.cannot).toEqual([]);
    expect(`${h.kind} ${h.scenario} ${h.node} ${h.status}`, JSON.stringify(h.error)).toBe('heal kill-etcd-member cp-3 passed');
    expect(phase('fence')).toBe('etcd member d0 was added for cp-3 and never started: kept, the replacement joins as it');
    expect(phase('replace')).toBe('etcd on cp-3 stopped; etcd member d0 for cp-3 is already listed (added earlier, not started yet): not added again; already recorded on master for the etcd role (initial-cluster-state existing, member d0, data directory emptied once)');
    expect(c.log.filter((l) => l.startsWith('member add'))).toEqual(['member add cp-3 on cp-1']);
    expect([...c.members.values()].map((m) => `${m.id} ${m.name} ${m.started}`).sort()).toEqual(['a1 cp-1 true', 'a2 cp-2 true', 'd0 cp-3 true']);
  });

  it('Ctrl-C after delete-control-plane-vm\'s fence: the heal finds the VM gone, repairs it as a stopped machine with the same etcd steps (no member to remove, one added), healthy', async () => {
    // The heal comes later: cp-3's agent silent past the 0.4 s limit (the drill detected it by etcd first).
    const { c, r, before, h, phase } = await interruptedThenHealed('delete-control-plane-vm', 'fence', 600);
    expect(r.status).toBe('interrupted');
    expect(before.alive).toBe(false);
    expect(`${h.kind} ${h.scenario} ${h.node} ${h.status}`, JSON.stringify(h.error)).toBe('heal power-off-node cp-3 passed');
    expect(phase('fence')).toBe('revoked at the hub; plane peers removed: cp-3/wg1, cp-3/wg2, cp-3/wg3; cp-3 has no etcd member (already removed)');
    expect(c.log.filter((l) => l.startsWith('member '))).toEqual(['member remove a3 on cp-1', 'member add cp-3 on cp-1']);
    expect([...c.members.values()].map((m) => `${m.name} ${m.started}`).sort()).toEqual(['cp-1 true', 'cp-2 true', 'cp-3 true']);
  });

  it('a member remove etcd refuses: the fence fails naming the node it ran on, the etcdctl command and the stderr tail, bounded; nothing added', async () => {
    const c = fakeEtcdCluster(three.plan, { removeFails: `${'{"level":"warn","msg":"retrying"}\n'.repeat(50)}Error: etcdserver: unhealthy cluster` });
    const t = new ClusterDrillTarget({ plan: three.plan, driver: c.driver, allowDestroy: false, repair: c.repair });
    const r = await etcdDrill(t, three.spec, 'kill-etcd-member', 'cp-3');
    expect(r.status).toBe('failed');
    expect(r.error?.phase).toBe('fence');
    expect(r.error?.message).toBe('cp-1: etcdctl member remove a3 (remove cp-3\'s member) exited 1: Error: etcdserver: unhealthy cluster');
    expect(r.error?.command).toEqual(expect.arrayContaining(['etcdctl', 'member', 'remove', 'a3']));
    expect(r.error!.stderrTail!.length).toBeLessThanOrEqual(600);
    expect(r.error?.stderrTail).toMatch(/Error: etcdserver: unhealthy cluster$/);
    expect(c.log.filter((l) => l.startsWith('member add'))).toEqual([]);
  });

  it('the fence looks again: with cp-2 down since the guard (no quorum), cp-3\'s member is not removed and the drill says why', async () => {
    const c = fakeEtcdCluster(three.plan);
    const t = new ClusterDrillTarget({ plan: three.plan, driver: c.driver, allowDestroy: false, repair: c.repair });
    const r = await etcdDrill(t, three.spec, 'kill-etcd-member', 'cp-3', { onPhaseEnd: (ph) => (ph === 'detect' ? void c.running.delete('cp-2') : undefined) });
    expect(r.status).toBe('failed');
    expect(r.error?.phase).toBe('fence');
    expect(r.error?.message).toBe('no etcd member other than cp-3 is healthy and answers through its guest agent (cp-1 unhealthy, cp-2 unhealthy, cp-3 unhealthy): etcd may have lost quorum; its membership is left as is — heal the other members first (kubedos heal)');
    expect(c.log.filter((l) => l.startsWith('member '))).toEqual([]);
  });
});
