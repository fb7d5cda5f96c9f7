// Restore from the recovery bundle in the namespace lab (root): lab-3's nodes as network
// namespaces with the real backplane and a real etcd. Machine A: a key written to etcd, an etcd
// snapshot, the cluster's trust made by clusterTrust (root CA key offline, encrypted to the
// recovery recipient only), a bundle sealed with the snapshot. Then the lab AND workspace A are
// destroyed. Machine B: `kubedos restore` run inside a network namespace with no route out (an
// nftables counter on every non-loopback packet it sends), then etcd restored from the bundle's
// snapshot on a fresh lab. Asserts the same CA fingerprint, the key readable, 0 packets out.
//
// Said plainly: the artifact is a signed stand-in build (no VM boots here; the QEMU version is
// e2e/restore/restore.slow.test.ts's job), and the etcd restore drives the lab's members
// directly (LabDrillTarget.restoreEtcdFromSnapshot) with the argv main/restore/etcd.ts makes.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TEMPLATES } from '../../common/spec/index';
import { recoveryInput } from '../../main/bundle/recovery-input';
import { stagesRecord } from '../../main/bundle/stages';
import { DEPLOY_STAGES, factsFixture, journalFixture, writeFakeBuild } from '../../main/bundle/testing';
import { checkRestorable, openRecovery } from '../../main/bundle/restorable';
import { verifyBundle } from '../../main/bundle/verify';
import { writeBundle } from '../../main/bundle/write';
import { buildSigningKey } from '../../main/build/keys';
import { LabDrillTarget } from '../../main/drills/lab-target';
import { clusterTrust } from '../../main/stages/trust';
import { certFingerprint } from '../../main/trust/ca';
import { ageIdentity } from '../../main/trust/identity';
import { createRecoveryKey, recoveryIdentityFileText, writeRecoveryRecipient } from '../../main/trust/recovery';
import { openSecretStore } from '../../main/trust/secret-store';
import { clusterWorkspace } from '../../main/workspace';
import { lab3Plan } from '../lab/specs';

const NETNS = `h15-restore-${process.pid}`;
const NFT_TABLE = 'h15restore';

function sh(argv: string[], input?: string): { code: number | null; out: string; err: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 120_000, ...(input !== undefined ? { input } : {}) });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('restore from the recovery bundle (namespace lab, lab-3 with etcd)', () => {
  const started = Date.now();
  const tmp = mkdtempSync(join(tmpdir(), 'kd-h15-restore-lab-'));
  const labs: LabDrillTarget[] = [];
  const timeline: string[] = [];
  const mark = (what: string): void => void timeline.push(`${((Date.now() - started) / 1000).toFixed(1)} s  ${what}`);

  afterAll(() => {
    for (const l of labs) l.destroy();
    sh(['ip', 'netns', 'delete', NETNS]);
    rmSync(tmp, { recursive: true, force: true });
    console.log(`restore lab timeline:\n${timeline.join('\n')}`);
  });

  it('seal with a key in etcd; destroy lab and workspace; restore offline in a fresh workspace: same CA, key readable, 0 packets out', async () => {
    const plan = lab3Plan();
    const specText = TEMPLATES['lab-3'].text;
    const cluster = plan.cluster.name;
    const key = `restore-proof-${process.pid}`;
    const value = `written before the seal at ${new Date().toISOString()}`;

    // ---- machine A: the cluster, its workspace, the seal
    const a = join(tmp, 'machine-a');
    const envA = { ...process.env, KUBEDOS_WORKSPACE: a };
    let target = await LabDrillTarget.create(plan, { log: (l) => console.log(l) });
    labs.push(target);
    mark('lab A up (namespaces, planes, enrollment, etcd)');
    const member = target.etcdMembers[0]!;
    await target.lab.exec(target.hub, target.etcdctl(['put', key, value]));
    await target.lab.exec(target.hub, ['etcdctl', `--endpoints=${target.clientUrl(member)}`, 'snapshot', 'save', '/root/h15-seal-snapshot.db'], { timeoutMs: 60_000 });
    const snapshot = Buffer.from((await target.lab.exec(target.hub, ['base64', '-w0', '/root/h15-seal-snapshot.db'])).stdout.trim(), 'base64');
    expect(snapshot.length).toBeGreaterThan(1000);

    const wsA = clusterWorkspace(cluster, envA);
    const rec = await createRecoveryKey();
    writeRecoveryRecipient(wsA, rec.recipient);
    const trust = await clusterTrust(wsA, plan, envA);
    const signingKey = await buildSigningKey(cluster, envA);
    const buildDir = join(wsA, 'build');
    writeFakeBuild(buildDir, plan, specText, signingKey, true);
    const facts = factsFixture(plan);
    const store = await openSecretStore(join(wsA, 'secrets'), await ageIdentity(envA));
    const recovery = await recoveryInput({ workspace: wsA, cluster, env: envA, store, etcdSnapshot: { node: member, data: snapshot } });
    const runId = '00000000-0000-4000-8000-000000000a15';
    const written = writeBundle({
      workspace: wsA,
      specText,
      plan,
      buildDir,
      trust: { rootCaPem: trust.root.certPem, clusterCaPem: trust.intermediate.certPem, hubCertPem: trust.hubTls.certPem },
      hub: facts.hub,
      nodes: facts.nodes,
      stages: stagesRecord(journalFixture(runId, DEPLOY_STAGES), runId, {}),
      signingKey,
      recovery: recovery.input,
    });
    expect((await verifyBundle(written.dir)).ok).toBe(true);
    expect((await checkRestorable(written.dir, { identity: rec.identity })).level).toBe('decrypted');
    mark('sealed: bundle with root key, secrets and etcd snapshot, encrypted to the recovery recipient');

    // What the user carries away: the bundle and the artifact on the stick, the identity printed.
    const stick = join(tmp, 'stick');
    cpSync(written.dir, join(stick, 'bundle'), { recursive: true });
    cpSync(buildDir, join(stick, 'artifact'), { recursive: true });
    const idFile = join(tmp, 'printed-recovery-identity.txt');
    writeFileSync(idFile, recoveryIdentityFileText(cluster, rec.identity, rec.recipient), { mode: 0o600 });

    // ---- destroy: every namespace of the cluster and workspace A
    target.destroy();
    labs.splice(0);
    rmSync(a, { recursive: true, force: true });
    mark('lab A and workspace A destroyed');

    // ---- machine B: kubedos restore in a namespace with no route out, every packet out counted
    expect(sh(['ip', 'netns', 'add', NETNS]).code).toBe(0);
    sh(['ip', 'netns', 'exec', NETNS, 'ip', 'link', 'set', 'lo', 'up']);
    const nft = sh(['ip', 'netns', 'exec', NETNS, 'nft', '-f', '-'], `table inet ${NFT_TABLE} {\n  chain out {\n    type filter hook output priority 0; policy accept;\n    oifname != "lo" counter\n  }\n}\n`);
    expect(nft.code, nft.err).toBe(0);
    expect(sh(['ip', 'netns', 'exec', NETNS, 'ip', 'route', 'show']).out.trim()).toBe('');
    const b = join(tmp, 'machine-b');
    const t0 = Date.now();
    const restore = spawnSync(
      'ip',
      ['netns', 'exec', NETNS, process.execPath, join(process.cwd(), 'bin/kubedos.mjs'), 'restore', join(stick, 'bundle'), '--artifact', join(stick, 'artifact'), '--recovery-key', idFile, '--cluster', cluster],
      { encoding: 'utf8', timeout: 120_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmp, KUBEDOS_WORKSPACE: b } },
    );
    console.log(restore.stdout, restore.stderr);
    expect(restore.status, restore.stderr).toBe(0);
    mark(`kubedos restore (verify + fresh workspace) in ${((Date.now() - t0) / 1000).toFixed(1)} s, offline`);
    const counters = sh(['ip', 'netns', 'exec', NETNS, 'nft', 'list', 'table', 'inet', NFT_TABLE]).out;
    const packetsOut = Number(/counter packets (\d+)/.exec(counters)?.[1] ?? NaN);
    expect(packetsOut).toBe(0);
    mark(`${packetsOut} packets out of the restore's namespace`);

    // Same cluster identity in the fresh workspace.
    const wsB = clusterWorkspace(cluster, { KUBEDOS_WORKSPACE: b });
    expect(certFingerprint(readFileSync(join(wsB, 'trust/root-ca.crt'), 'utf8'))).toBe(trust.root.fingerprint);
    const envB = { ...process.env, KUBEDOS_WORKSPACE: b };
    const again = await clusterTrust(wsB, plan, envB);
    expect(again.created).toEqual([]);
    expect(again.root.fingerprint).toBe(trust.root.fingerprint);
    expect(again.hubTls.fingerprint).toBe(trust.hubTls.fingerprint);
    const timelineFile = JSON.parse(readFileSync(join(wsB, 'restore-timeline.json'), 'utf8')) as { phases: { name: string; durationMs: number }[] };
    expect(timelineFile.phases.map((p) => p.name)).toEqual(['verify', 'workspace']);

    // ---- etcd back from the bundle's snapshot on a fresh lab
    target = await LabDrillTarget.create(plan, { log: (l) => console.log(l) });
    labs.push(target);
    mark('lab B up (fresh namespaces, empty etcd)');
    const empty = await target.lab.exec(target.hub, target.etcdctl(['get', key, '--print-value-only']));
    expect(empty.stdout.trim()).toBe('');
    const opened = await openRecovery(join(stick, 'bundle'), rec.identity);
    expect(opened.etcdSnapshot?.data.equals(snapshot)).toBe(true);
    for (const m of target.etcdMembers) await target.lab.writeFile(m, '/root/h15-restore.db', opened.etcdSnapshot!.data, 0o600);
    console.log(await target.restoreEtcdFromSnapshot('/root/h15-restore.db'));
    const got = await target.lab.exec(target.hub, target.etcdctl(['get', key, '--print-value-only']));
    expect(got.stdout.trim()).toBe(value);
    mark('etcd restored from the snapshot: the key written before the seal reads back');
    expect(Date.now() - started).toBeLessThan(120_000);
  });
});
