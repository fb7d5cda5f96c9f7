// The live health an upgrade is planned against (live-health.ts): one look at a deployed cluster
// through its guest agents, with the drills' probes, against an in-memory substrate (five nodes,
// three etcd members: fence-testing's lab5), and what the waves make of it.
import { describe, expect, it } from 'vitest';
import type { GuestExecResult, SubstrateDriver } from '../substrate/driver';
import { answer, fakeEtcd, fakeHub, lab5Spec } from '../drills/fence-testing';
import { plan } from '../../common/plan/index';
import { excuseMidReplacement, midReplacement, observeUpgradeHealth } from './live-health';
import { upgradeWaves } from './preflight';

const spec = lab5Spec();
const p = plan(spec);
const byVmid = new Map(p.nodes.map((n) => [n.vmid, n]));

/** The five VMs: `agentDown` do not answer their guest agent; `etcdDown` answer it, their etcd does not serve. */
function cluster(o: { agentDown?: string[]; etcdDown?: string[]; noPeer?: string[] } = {}) {
  const hub = fakeHub(p);
  for (const n of o.noPeer ?? []) hub.peers.delete(n);
  const down = new Set([...(o.agentDown ?? []), ...(o.etcdDown ?? [])]);
  const etcd = fakeEtcd(p, { serving: (m) => !down.has(m.name) });
  const calls: string[] = [];
  const driver = {
    async guestPing(vmid: number) {
      return !(o.agentDown ?? []).includes(byVmid.get(vmid)!.name);
    },
    async guestExec(vmid: number, argv: readonly string[], x: { input?: string | Uint8Array } = {}): Promise<GuestExecResult> {
      const n = byVmid.get(vmid)!;
      calls.push(`${n.name}: ${argv[0]} ${argv.filter((a) => !a.startsWith('--')).slice(1, 3).join(' ')}`);
      if ((o.agentDown ?? []).includes(n.name)) throw new Error(`VM ${vmid} is not running`);
      if (argv[0] === 'etcdctl') return etcd.etcdctl(n.name, argv);
      return (n.hub ? hub.answer(argv, x.input) : undefined) ?? answer(127, '', `unexpected ${argv.join(' ')}`);
    },
  } as unknown as SubstrateDriver;
  return { driver, calls };
}

describe('the live health an upgrade is planned against', () => {
  it('a healthy cluster: observed, nobody unhealthy, one line of what was seen; read-only (wg show at the hub, etcd health and member list)', async () => {
    const c = cluster();
    const h = await observeUpgradeHealth({ spec, plan: p, driver: c.driver });
    expect(h).toEqual({ observed: true, unhealthy: [], note: '5 of 5 nodes healthy; etcd 3 of 3 members healthy (quorum 2) (guest agents, wg1 handshakes at the hub, etcd)' });
    expect(c.calls.sort()).toEqual(['cp-1: etcdctl endpoint health', 'cp-1: etcdctl member list', 'master: wg show wg1', 'master: wg show wg1']);
    const w = upgradeWaves(spec, p, h);
    expect(w.ok && w.warnings.join('\n')).not.toMatch(/not observed/);
  });

  it('an etcd member whose VM does not answer: that node unhealthy, and the quorum guard refuses (rebooting a healthy member would leave 1 of 3)', async () => {
    const h = await observeUpgradeHealth({ spec, plan: p, driver: cluster({ agentDown: ['cp-2'] }).driver });
    expect(h.unhealthy).toEqual([{ node: 'cp-2', detail: 'guest agent never answered' }]);
    expect(h.note).toMatch(/^4 of 5 nodes healthy; etcd 2 of 3 members healthy \(quorum 2\)/);
    const w = upgradeWaves(spec, p, h);
    expect(w).toMatchObject({ ok: false, code: 'quorum' });
    expect(!w.ok && w.message).toMatch(/^upgrading would break etcd quorum: 2 of 3 etcd members healthy \(unhealthy: cp-2: guest agent never answered\), quorum is 2/);
  });

  it('a member whose agent answers and whose etcd does not serve: "etcd member unhealthy" with etcd\'s error; a node the hub has no wg1 peer for: said so; the worker\'s refusal names it', async () => {
    const h = await observeUpgradeHealth({ spec, plan: p, driver: cluster({ etcdDown: ['cp-3'], noPeer: ['w-1'] }).driver });
    expect(h.unhealthy).toEqual([
      { node: 'cp-3', detail: 'etcd member unhealthy: context deadline exceeded' },
      { node: 'w-1', detail: 'no wg1 peer on the hub' },
    ]);
    const w = upgradeWaves(spec, p, { ...h, unhealthy: h.unhealthy.filter((u) => u.node === 'w-1') });
    expect(w).toMatchObject({ ok: false, code: 'unhealthy' });
    expect(!w.ok && w.message).toMatch(/^1 node is unhealthy before the upgrade: w-1 \(no wg1 peer on the hub\)\. .*nothing was touched: heal first/);
  });

  it('not observed: the waves say why in their warning', () => {
    const w = upgradeWaves(spec, p, { observed: false, unhealthy: [], note: 'looking at the cluster failed: ssh: connect to host pve1 port 22: Connection refused' });
    expect(w.ok && w.warnings).toContain('live health was not observed (looking at the cluster failed: ssh: connect to host pve1 port 22: Connection refused): the quorum guard assumed every etcd member healthy, as the last converged deploy left them');
  });

  it('a rerun of a stopped replace-based upgrade: the nodes that run left mid-replacement towards the same build are not held against it (said in the note); a finished one, or one towards another build, is', async () => {
    const N1 = { version: '0.1.1', digest: 'b'.repeat(64) };
    const other = { version: '0.1.2', digest: 'c'.repeat(64) };
    const record = { slots: {}, bad: [], replaced: { 'cp-1': { build: N1, state: 'done' as const }, 'cp-2': { build: N1, state: 'provisioning' as const }, 'w-1': { build: other, state: 'converged' as const } } };
    expect(midReplacement(record, N1)).toEqual(['cp-2']);
    expect(midReplacement({ slots: {}, bad: [] }, N1)).toEqual([]);
    // cp-2 destroyed by that run: its agent silent, its member removed by the fence.
    const h = await observeUpgradeHealth({ spec, plan: p, driver: cluster({ agentDown: ['cp-2'] }).driver });
    const excused = excuseMidReplacement(h, midReplacement(record, N1));
    expect(excused.unhealthy).toEqual([]);
    expect(excused.note).toMatch(/; not held against it: cp-2 \(guest agent never answered\): left in the middle of its replacement by the last run towards this build, which this run goes on with$/);
    expect(upgradeWaves(spec, p, excused).ok).toBe(true);
    expect(excuseMidReplacement(h, midReplacement(record, other))).toBe(h);
  });
});
