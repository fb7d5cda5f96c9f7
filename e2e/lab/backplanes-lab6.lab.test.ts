// A 6-node variant of lab-3 (3 control planes with stacked etcd, 2 workers): role-bound tokens,
// a duplicate key refused, the flow matrix, and a 3-member etcd on the wg3 addresses.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWiringChecks, renderWiringReport } from '../../main/wiring/check';
import { wiringChecks } from '../../main/wiring/matrix';
import type { LabTrust } from '../../main/lab/backplane';
import { bin, enroll, installContracts, makeTrust, openWindow, planesUp, token } from '../../main/lab/backplane';
import type { EnrollmentWindow } from '../../main/lab/backplane';
import { hubPeerIps, planeReachability } from './checks';
import { Lab } from '../../main/lab/harness';
import { lab6Plan } from './specs';
import { labWiringTarget } from '../../main/wiring/lab-target';

describe('lab-6 backplanes (derived from lab-3)', () => {
  let lab: Lab;
  let trust: LabTrust;
  let window: EnrollmentWindow;
  const started = Date.now();

  beforeAll(async () => {
    lab = await Lab.create(lab6Plan(), { log: (l) => console.log(l) });
    trust = await makeTrust(lab);
    await installContracts(lab, trust);
    await planesUp(lab);
    window = await openWindow(lab, 120, ['--confirm-seconds', '6']);
  });
  afterAll(() => {
    window?.process.kill('SIGTERM');
    lab?.destroy();
    console.log(`lab-6 suite: ${Math.round((Date.now() - started) / 1000)} s`);
  });

  it('enrolls control planes with node-bound tokens and workers with role-bound tokens; refuses a role mismatch and a duplicate key', async () => {
    const wrongRole = await enroll(lab, 'cp-2', token(lab, trust, { role: 'worker' }));
    expect(wrongRole.exitCode, wrongRole.stderr).toBe(2);
    expect(wrongRole.stderr).toMatch(/bound to role 'worker', but cp-2 is a control-plane/);

    const first = ['cp-1', 'cp-2', 'cp-3', 'w-1'];
    const results = await Promise.all(first.map((n) => enroll(lab, n, token(lab, trust, n.startsWith('w-') ? { role: 'worker' } : { node: n }))));
    results.forEach((r, i) => expect(r.exitCode, `${first[i]}: ${r.stderr}`).toBe(0));

    // w-2 presents w-1's wg1 key: the hub refuses it and adds w-2 nowhere.
    const w1Key = await lab.readFile('w-1', '/etc/wireguard/wg1.key');
    await lab.writeFile('w-2', '/etc/wireguard/wg1.key', w1Key, 0o600);
    await lab.exec('w-2', ['wg', 'set', 'wg1', 'private-key', '/etc/wireguard/wg1.key']);
    const dup = await enroll(lab, 'w-2', token(lab, trust, { role: 'worker' }));
    expect(dup.exitCode, dup.stderr).toBe(2);
    expect(dup.stderr).toMatch(/already the key of w-1/);
    const w2 = lab.node('w-2').plan.planes;
    const peers = await hubPeerIps(lab);
    for (const p of ['wg1', 'wg2', 'wg3'] as const) expect(peers[p]).not.toContain(w2[p].address);

    await lab.exec('w-2', ['/bin/sh', '-c', 'umask 077; wg genkey > /etc/wireguard/wg1.key && wg set wg1 private-key /etc/wireguard/wg1.key']);
    const fixed = await enroll(lab, 'w-2', token(lab, trust, { role: 'worker' }));
    expect(fixed.exitCode, fixed.stderr).toBe(0);
    const all = await hubPeerIps(lab);
    for (const p of ['wg1', 'wg2', 'wg3'] as const) expect(all[p]).toEqual(lab.spokes.map((s) => s.plan.planes[p].address).sort());
  });

  it('rotates a node\'s own keys by re-enrolling: the hub replaces its old peer, nothing stale stays', async () => {
    const before = (await lab.exec('w-1', ['wg', 'show', 'wg1', 'public-key'])).stdout.trim();
    await lab.exec('w-1', ['/bin/sh', '-c', 'rm -f /etc/wireguard/wg1.key /etc/wireguard/wg2.key /etc/wireguard/wg3.key']);
    await lab.exec('w-1', [bin('kubedos-planes'), 'up']);
    const after = (await lab.exec('w-1', ['wg', 'show', 'wg1', 'public-key'])).stdout.trim();
    expect(after).not.toBe(before);
    const rules = (await lab.exec('w-1', ['ip', '-4', 'rule', 'show'])).stdout.split('\n').filter((l) => /^100[1-3]:/.test(l));
    expect(rules, 'planes up is rerunnable: one source rule per plane').toHaveLength(3);
    const r = await enroll(lab, 'w-1', token(lab, trust, { node: 'w-1' }));
    expect(r.exitCode, r.stderr).toBe(0);
    const hubWg1 = (await lab.exec(lab.hub.name, ['wg', 'show', 'wg1', 'allowed-ips'])).stdout;
    expect(hubWg1).toContain(after);
    expect(hubWg1).not.toContain(before);
    const reach = await planeReachability(lab, ['w-1']);
    expect(reach.filter((x) => !x.ok)).toEqual([]);
  });

  it('removes a node again from every plane when it enrolls but never completes a handshake', async () => {
    const port = lab.plan.planes.find((p) => p.name === 'wg2')?.listenPort;
    // w-2 cannot reach the hub's wg2 port: the hub adds it, but it never shakes hands on wg2.
    await lab.exec('w-2', ['nft', 'add table inet kdtest; add chain inet kdtest out { type filter hook output priority 0; }; add rule inet kdtest out udp dport ' + String(port) + ' drop']);
    await lab.exec('w-2', ['/bin/sh', '-c', 'rm -f /etc/wireguard/wg1.key /etc/wireguard/wg2.key /etc/wireguard/wg3.key']);
    await lab.exec('w-2', [bin('kubedos-planes'), 'up']);
    const r = await enroll(lab, 'w-2', token(lab, trust, { node: 'w-2' }), ['--verify-seconds', '3']);
    expect(r.exitCode, r.stderr).toBe(5);
    expect(r.stderr).toMatch(/no WireGuard handshake with the hub on wg2/);
    const w2 = lab.node('w-2').plan.planes;
    const gone = async (): Promise<boolean> => {
      const peers = await hubPeerIps(lab);
      return (['wg1', 'wg2', 'wg3'] as const).every((p) => !peers[p].includes(w2[p].address));
    };
    const t0 = Date.now();
    while (!(await gone()) && Date.now() - t0 < 20_000) await new Promise((res) => setTimeout(res, 250));
    expect(await gone(), window.output()).toBe(true);
    expect(window.output()).toMatch(/enrollment of w-2 NOT confirmed: no handshake on wg2/);
    await lab.exec('w-2', ['nft', 'delete', 'table', 'inet', 'kdtest']);
    const again = await enroll(lab, 'w-2', token(lab, trust, { node: 'w-2' }));
    expect(again.exitCode, again.stderr).toBe(0);
  });

  it('holds the declared policy between every pair of nodes (deny samples on a ring)', async () => {
    const report = await runWiringChecks(labWiringTarget(lab), [...lab.nodes.keys()], wiringChecks(lab.plan, { denyPairs: 'ring' }));
    console.log(`lab-6 verified flow matrix:\n${renderWiringReport(report)}`);
    expect(report.results.filter((r) => !r.ok)).toEqual([]);
    expect(report.counters.after.default_deny_inter_plane ?? 0).toBeGreaterThan(report.counters.before.default_deny_inter_plane ?? 0);
    expect(report.counters.after.default_deny_input ?? 0).toBeGreaterThan(report.counters.before.default_deny_input ?? 0);
  });

  it('runs a healthy 3-member etcd on the wg3 addresses that replicates a key', async () => {
    const members = ['cp-1', 'cp-2', 'cp-3'];
    const wg3 = (n: string) => lab.node(n).plan.planes.wg3.address.replace('/32', '');
    const initial = members.map((m) => `${m}=http://${wg3(m)}:2380`).join(',');
    for (const m of members) {
      lab.spawnDaemon(
        m,
        [
          'etcd', '--name', m, '--data-dir', '/var/lib/etcd-lab',
          '--listen-peer-urls', `http://${wg3(m)}:2380`, '--initial-advertise-peer-urls', `http://${wg3(m)}:2380`,
          '--listen-client-urls', `http://${wg3(m)}:2379`, '--advertise-client-urls', `http://${wg3(m)}:2379`,
          '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', lab.id,
        ],
        'etcd',
      );
    }
    const endpoints = members.map((m) => `http://${wg3(m)}:2379`).join(',');
    const t0 = Date.now();
    let health = '';
    while (Date.now() - t0 < 30_000) {
      const r = await lab.try('cp-1', ['etcdctl', `--endpoints=${endpoints}`, '--dial-timeout=2s', 'endpoint', 'health']);
      health = r.stdout + r.stderr;
      if (r.exitCode === 0 && (health.match(/is healthy/g) ?? []).length === 3) break;
      await new Promise((res) => setTimeout(res, 500));
    }
    console.log(`etcd healthy after ${Date.now() - t0} ms:\n${health.trim()}`);
    expect((health.match(/is healthy/g) ?? []).length, health).toBe(3);
    await lab.exec('cp-1', ['etcdctl', `--endpoints=http://${wg3('cp-1')}:2379`, 'put', '/kubedos/lab', lab.id]);
    const got = await lab.exec('cp-3', ['etcdctl', `--endpoints=http://${wg3('cp-3')}:2379`, 'get', '--print-value-only', '/kubedos/lab']);
    expect(got.stdout.trim()).toBe(lab.id);
    const list = await lab.exec('cp-2', ['etcdctl', `--endpoints=http://${wg3('cp-2')}:2379`, 'member', 'list']);
    expect(list.stdout.trim().split('\n')).toHaveLength(3);
  });
});
