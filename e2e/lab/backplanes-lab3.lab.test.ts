// lab-3 in network namespaces, with the real payload: enrollment window and its refusals,
// the reachability/policy matrix, Ansible over wg1, hub key rotation, revocation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWiringChecks, renderWiringReport } from '../../main/wiring/check';
import { wiringChecks } from '../../main/wiring/matrix';
import { createRootCa, generateHmacKey } from '../../main/trust/index';
import { prepareAnsible, runAnsible } from './ansible';
import type { LabTrust } from '../../main/lab/backplane';
import { bin, enroll, installContracts, openWindow, planesUp, token } from '../../main/lab/backplane';
import { Lab } from '../../main/lab/harness';
import { hubPeerIps, planeReachability } from './checks';
import { lab3Plan } from './specs';
import { labWiringTargetViaMaster } from '../../main/wiring/lab-target';
import { makeTrust } from '../../main/lab/backplane';

describe('lab-3 backplanes (network namespaces, wireguard-go, nftables)', () => {
  let lab: Lab;
  let trust: LabTrust;
  const started = Date.now();

  beforeAll(async () => {
    lab = await Lab.create(lab3Plan(), { log: (l) => console.log(l) });
    trust = await makeTrust(lab);
    await installContracts(lab, trust);
    await planesUp(lab);
  });
  afterAll(() => {
    lab?.destroy();
    console.log(`lab-3 suite: ${Math.round((Date.now() - started) / 1000)} s`);
  });

  it('admits nodes only through an open window with a valid, unused, bound token and the pinned hub', async () => {
    const window = await openWindow(lab, 15);
    const hubLan = lab.hub.plan.lan.address;
    const port = lab.plan.enrollment.port;
    const listening = (await lab.exec(lab.hub.name, ['ss', '-Htln'])).stdout;
    expect(listening).toContain(`${hubLan}:${port}`);
    expect(listening, 'the window listens on the LAN address only').not.toMatch(new RegExp(`(0\\.0\\.0\\.0|\\*|\\[::\\]):${port}\\b`));
    const now = Math.floor(Date.now() / 1000);
    const forged = await enroll(lab, 'cp-1', token(lab, trust, { node: 'cp-1', key: generateHmacKey() }));
    expect(forged.exitCode, forged.stderr).toBe(2);
    expect(forged.stderr).toMatch(/forged/);
    const expired = await enroll(lab, 'cp-1', token(lab, trust, { node: 'cp-1', now: now - 3600, ttlSeconds: 60 }));
    expect(expired.exitCode, expired.stderr).toBe(2);
    expect(expired.stderr).toMatch(/expired at/);
    const otherNode = await enroll(lab, 'cp-1', token(lab, trust, { node: 'w-1' }));
    expect(otherNode.exitCode, otherNode.stderr).toBe(2);
    expect(otherNode.stderr).toMatch(/bound to node 'w-1'/);
    expect(await hubPeerIps(lab), 'no refused node may be left as a peer').toEqual({ wg1: [], wg2: [], wg3: [] });

    const good = token(lab, trust, { node: 'cp-1' });
    const wrongPin = await enroll(lab, 'cp-1', good, ['--pin', `sha256:${'0'.repeat(64)}`]);
    expect(wrongPin.exitCode, wrongPin.stderr).toBe(3);
    expect(wrongPin.stderr).toMatch(/does not match the pinned/);
    const foreignCa = await createRootCa({ name: 'someone-else', now: new Date() });
    await lab.writeFile('cp-1', '/tmp/foreign-ca.crt', foreignCa.certPem);
    const wrongCa = await enroll(lab, 'cp-1', good, ['--ca-file', '/tmp/foreign-ca.crt']);
    expect(wrongCa.exitCode, wrongCa.stderr).toBe(3);
    expect(wrongCa.stderr).toMatch(/does not chain to the cluster CA/);
    const ok = await enroll(lab, 'cp-1', good); // pin and chain are checked before the token is sent
    expect(ok.exitCode, ok.stderr).toBe(0);
    // The same node, token and keys again (its first answer was lost to a read timeout): the
    // hub answers again and changes nothing.
    const again = await enroll(lab, 'cp-1', good);
    expect(again.exitCode, again.stderr + window.output()).toBe(0);
    expect(window.output()).toMatch(/answered cp-1 again: same token and keys/);
    // The same token with other keys (someone who copied the token): single use.
    const keyFile = '/etc/wireguard/wg1.key';
    const original = (await lab.exec('cp-1', ['cat', keyFile])).stdout;
    await lab.writeFile('cp-1', keyFile, (await lab.exec('cp-1', ['wg', 'genkey'])).stdout, 0o600);
    const reused = await enroll(lab, 'cp-1', good);
    await lab.writeFile('cp-1', keyFile, original, 0o600);
    expect(reused.exitCode, reused.stderr).toBe(2);
    expect(reused.stderr).toMatch(/single use/);

    expect(await window.closed, window.output()).toBe(0);
    expect(window.output()).toMatch(/enrollment window closed/);
    expect((await lab.exec(lab.hub.name, ['ss', '-Htln'])).stdout).not.toContain(`:${port} `);
    const late = await enroll(lab, 'w-1', token(lab, trust, { node: 'w-1' }));
    expect(late.exitCode, late.stderr).toBe(4);
    expect(late.stderr).toMatch(/unreachable/);
    const cp1 = lab.node('cp-1').plan.planes;
    expect(await hubPeerIps(lab)).toEqual({ wg1: [cp1.wg1.address], wg2: [cp1.wg2.address], wg3: [cp1.wg3.address] });

    const second = await openWindow(lab, 6);
    const w1 = await enroll(lab, 'w-1', token(lab, trust, { node: 'w-1' }));
    expect(w1.exitCode, w1.stderr + second.output()).toBe(0);
    expect(await second.closed).toBe(0);
  });

  it('every node reaches every other on each plane, declared flows connect and undeclared ones time out', async () => {
    // Through the master over wg1, the way `kubedos wiring check` reaches a cluster.
    await lab.installOperatorKey();
    const report = await runWiringChecks(labWiringTargetViaMaster(lab), [...lab.nodes.keys()], wiringChecks(lab.plan));
    console.log(`lab-3 verified flow matrix (probes driven from ${lab.hub.name} over wg1):\n${renderWiringReport(report)}`);
    expect(report.results.filter((r) => !r.ok)).toEqual([]);
    expect(report.results.filter((r) => r.kind === 'declared').length).toBeGreaterThan(0);
    expect(report.results.filter((r) => r.kind === 'undeclared').length).toBeGreaterThan(0);
    const { before, after } = report.counters;
    expect(after.default_deny_inter_plane ?? 0).toBeGreaterThan(before.default_deny_inter_plane ?? 0);
    expect(after.default_deny_input ?? 0).toBeGreaterThan(before.default_deny_input ?? 0);
  });

  it('ansible-core converges a role over wg1 on every node, and a second run changes nothing', async () => {
    await prepareAnsible(lab);
    const first = await runAnsible(lab);
    expect(Object.keys(first.recap).sort()).toEqual([...lab.nodes.keys()].sort());
    for (const [host, r] of Object.entries(first.recap)) {
      expect(r.failed + r.unreachable, `${host}\n${first.output.slice(-2000)}`).toBe(0);
      expect(r.changed, host).toBeGreaterThan(0);
    }
    const second = await runAnsible(lab);
    for (const [host, r] of Object.entries(second.recap)) expect(r.changed, `${host}\n${second.output.slice(-2000)}`).toBe(0);
    const identity = await lab.readFile('w-1', '/etc/kubedos-lab/converged/identity');
    expect(identity).toContain(`wg1=${lab.node('w-1').plan.planes.wg1.address.replace('/32', '')}`);
    expect(identity).toContain('hostname=w-1');
  });

  it('rotating the hub keys keeps every node connected on every plane', async () => {
    const hub = lab.hub.name;
    const before = await hubKeys(lab);
    const staged = JSON.parse((await lab.exec(hub, [bin('kubedos-enroll-hub'), 'rotate-keys', 'stage'])).stdout) as { staged: Record<string, string> };
    const at = Date.now() / 1000 + 2;
    // A ping every 0.1 s across the hub (cp-1 -> w-1 on wg1) while the keys change.
    const src = lab.node('cp-1').plan.planes.wg1.address.replace('/32', '');
    const dst = lab.node('w-1').plan.planes.wg1.address.replace('/32', '');
    const pinger = lab.try('cp-1', ['ping', '-n', '-i', '0.1', '-W', '1', '-w', '5', '-I', src, dst]);
    const [applied] = await Promise.all([
      lab.exec(hub, [bin('kubedos-enroll-hub'), 'rotate-keys', 'apply', '--at', at.toFixed(3)]),
      ...lab.spokes.map((s) => lab.exec(s.name, [bin('kubedos-enroll-agent'), 'rotate-hub', '--keys', JSON.stringify(staged), '--at', (at + 0.3).toFixed(3)])),
    ]);
    const ping = (await pinger).stdout;
    console.log(`during hub key rotation: ${/\d+ packets transmitted.*/.exec(ping)?.[0] ?? ping}`);
    expect(ping).toMatch(/ [1-9]\d* received/);
    const after = await hubKeys(lab);
    for (const s of lab.spokes) {
      const state = JSON.parse((await lab.exec(s.name, [bin('kubedos-enroll-agent'), 'status'])).stdout) as { planes: Record<string, { publicKey: string }> };
      for (const p of ['wg1', 'wg2', 'wg3']) expect(state.planes[p]?.publicKey, `${s.name} ${p}`).toBe(staged.staged[p]);
    }
    expect(JSON.parse(applied.stdout).applied).toEqual(staged.staged);
    for (const p of ['wg1', 'wg2', 'wg3']) expect(after[p]).not.toBe(before[p]);
    const t0 = Date.now();
    const reach = await planeReachability(lab, [...lab.nodes.keys()]);
    console.log(`after hub key rotation: ${reach.filter((r) => r.ok).length}/${reach.length} same-plane paths connected (${Date.now() - t0} ms)`);
    expect(reach.filter((r) => !r.ok)).toEqual([]);
  });

  it('revoking a node cuts it off every plane within seconds and keeps it out', async () => {
    const t0 = Date.now();
    await lab.exec(lab.hub.name, [bin('kubedos-enroll-hub'), 'revoke', 'w-1', '--reason', 'lab: compromised']);
    const cutMs = Date.now() - t0;
    const w1 = lab.node('w-1').plan.planes;
    const peers = await hubPeerIps(lab);
    for (const p of ['wg1', 'wg2', 'wg3'] as const) expect(peers[p]).not.toContain(w1[p].address);
    const fromRevoked = await planeReachability(lab, ['w-1'], { timeout: 1.5 });
    expect(fromRevoked.filter((r) => r.ok), 'w-1 still reaches something').toEqual([]);
    const toRevoked = (await planeReachability(lab, ['cp-1', 'master'], { timeout: 1.5 })).filter((r) => r.to === 'w-1');
    expect(toRevoked.length).toBe(6);
    expect(toRevoked.filter((r) => r.ok), 'something still reaches w-1').toEqual([]);
    const others = (await planeReachability(lab, ['cp-1', 'master'])).filter((r) => r.to !== 'w-1');
    expect(others.filter((r) => !r.ok)).toEqual([]);
    console.log(`revocation of w-1 applied in ${cutMs} ms; w-1 unreachable on wg1/wg2/wg3`);

    const window = await openWindow(lab, 5);
    const again = await enroll(lab, 'w-1', token(lab, trust, { node: 'w-1' }));
    expect(again.exitCode, again.stderr).toBe(2);
    expect(again.stderr).toMatch(/revoked/);
    expect(await window.closed).toBe(0);
  });
});

async function hubKeys(lab: Lab): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const p of ['wg1', 'wg2', 'wg3']) out[p] = (await lab.exec(lab.hub.name, ['wg', 'show', p, 'public-key'])).stdout.trim();
  return out;
}
