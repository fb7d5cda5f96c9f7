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
import { runDrill } from './engine';
import { evaluateHealth } from '../../common/drills/health';
import { HEALTH_WATCH_REPORT_PATH } from '../../common/drills/watcher';

const spec = parseSpec(TEMPLATES['lab-3'].text).spec!;
const p = plan(spec);
const byVmid = new Map(p.nodes.map((n) => [n.vmid, n]));
const KEY = (name: string) => `${name.padEnd(43, 'A').slice(0, 43)}=`;

/** Three VMs; the hub answers wg show with a fresh handshake for every peer it still has. */
function fakeCluster(opts: { report?: (nowSeconds: number) => string } = {}) {
  const alive = new Set(p.nodes.map((n) => n.name));
  const peers = new Set(p.nodes.filter((n) => !n.hub).map((n) => n.name));
  let revoked: string[] = [];
  const hubCalls: string[][] = [];
  const ok = (stdout: string): GuestExecResult => ({ exitCode: 0, stdout, stderr: '' });
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
      const now = Math.floor(Date.now() / 1000);
      if (n.hub) hubCalls.push([...argv]);
      if (argv[0] === 'wg' && argv[3] === 'latest-handshakes') return ok([...peers].map((x) => `${KEY(x)}\t${now}`).join('\n'));
      if (argv[0] === 'wg' && argv[3] === 'allowed-ips') return ok([...peers].map((x) => `${KEY(x)}\t${p.nodes.find((y) => y.name === x)!.planes.wg1.address}`).join('\n'));
      if (argv[0] === 'etcdctl' && argv.includes('health')) return ok(JSON.stringify([{ endpoint: 'https://10.113.0.3:2379', health: true }]));
      if (argv[0] === 'etcdctl' && argv.includes('list')) return ok(JSON.stringify({ members: [{ ID: 'a1', name: 'cp-1', peerURLs: ['https://10.113.0.3:2380'], clientURLs: ['https://10.113.0.3:2379'] }] }));
      if (argv[1] === 'revoke') {
        revoked.push(argv[2]!);
        peers.delete(argv[2]!);
        return ok(JSON.stringify({ revoked: argv[2], removed: [`${argv[2]}/wg1`, `${argv[2]}/wg2`, `${argv[2]}/wg3`] }));
      }
      if (argv[0] === 'cat' && argv[1] === HEALTH_WATCH_REPORT_PATH && n.hub && opts.report) return ok(opts.report(Date.now() / 1000));
      if (argv[0] === 'nft') return { exitCode: 1, stdout: '', stderr: 'Error: No such file or directory' };
      if (argv[0] === '/bin/sh' && argv[2]?.startsWith('cat "$1" 2>')) return ok(JSON.stringify({ cluster: 'lab-3', revoked: revoked.map((x) => ({ node: x, at: 1, reason: 'drill' })) }));
      if (argv[0] === '/bin/sh' && argv[2]?.includes('mv "$1.tmp"')) {
        revoked = (JSON.parse(String(o.input)) as { revoked: { node: string }[] }).revoked.map((r) => r.node);
        return ok('');
      }
      return { exitCode: 127, stdout: '', stderr: `unexpected ${argv.join(' ')}` };
    },
  } as unknown as SubstrateDriver;
  return { alive, peers, driver, hubCalls, revokedNow: () => revoked };
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
