// Restore a DEPLOYED cluster from its recovery bundle (issue "Rebuild the world", must-show), on
// qemu-local as root: lab-3 deployed with a recovery key named first; a key written to etcd; the
// cluster sealed again (its bundle moved away, so the redeploy's seal takes a new snapshot with
// the key); the kept artifact copied away ("the stick"); `kubedos destroy --allow-destroy` (it
// exports the bundle to the recovery folder first: that copy is the one restored). Then
// `kubedos restore BUNDLE --artifact DIR --recovery-key FILE --target qemu-local --expect-key K`
// into a FRESH workspace root (no shared build inputs), run inside a network namespace with no
// route and an nftables counter on every non-loopback packet: the VMs are rebuilt from the
// artifact, etcd is put back from the snapshot on cp-1 through the guest agent, the command
// proves the identity, then seals the restored cluster again (the bundle its deploy sealed before
// etcd was back moved aside, the deploy's seal run again). Asserts: same root CA fingerprint,
// same plan hash, the key readable (through the CLI's proof and independently through the guest
// agent), the restored workspace's own bundle holding an etcd snapshot with the key (a second
// loss restores the data too), 0 packets out; the restore's timeline printed (verify, workspace,
// deploy, etcd, seal). Slow (three deploys under TCG): `npm run test:restore:vm`.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../common/canonical';
import { plan } from '../../common/plan/index';
import type { Plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { openRecovery } from '../../main/bundle/restorable';
import { BUNDLE_PATHS } from '../../main/bundle/schema';
import { BUNDLE_BEFORE_RESEAL } from '../../main/restore/run';
import { ownershipTags } from '../../main/substrate/provision';
import { QemuLocalDriver } from '../../main/substrate/qemu-local';
import { certFingerprint } from '../../main/trust/ca';
import { readIdentityFile } from '../../main/trust/recovery';
import { clusterWorkspace } from '../../main/workspace';
import { dropLabBulk } from '../lab-output';
import { DEPLOY_LAB, deployEnv, etcdctlOn, kubedosAsync, outcomes, requireRoot, writeSpec } from '../deploy/env';

const NETNS = `h15v-restore-${process.pid}`;
const NFT_TABLE = 'h15vrestore';
const p: Plan = plan(parseSpec(TEMPLATES['lab-3'].text).spec!);
const cp = p.nodes.find((n) => n.name === 'cp-1')!;
const KEY = `h15v-restore-proof-${process.pid}`;
const VALUE = `written before the seal by pid ${process.pid}`;

function sh(argv: string[], input?: string): { code: number | null; out: string; err: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 120_000, ...(input !== undefined ? { input } : {}) });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const driverFor = (root: string): QemuLocalDriver => new QemuLocalDriver({ stateDir: join(clusterWorkspace('lab-3', { KUBEDOS_WORKSPACE: root }), 'vms'), ownership: { tags: ownershipTags(p), vmidRange: p.substrate.vmidRange } });

describe('restore a deployed lab-3 from its bundle (qemu-local, TCG, offline)', () => {
  let tmp: string;
  let wsA: string; // machine A's workspace root
  let wsB: string; // the fresh machine's workspace root
  let spec: string;
  let idFile: string;
  let stick: string;
  let driverA: QemuLocalDriver;
  let driverB: QemuLocalDriver;
  let rootFingerprint: string;
  let planSha256: string;
  const started = Date.now();
  const timeline: string[] = [];
  const mark = (what: string): void => void timeline.push(`${((Date.now() - started) / 1000).toFixed(0)} s  ${what}`);

  beforeAll(() => {
    requireRoot();
    mkdirSync(DEPLOY_LAB, { recursive: true });
    tmp = mkdtempSync(join(DEPLOY_LAB, 'h15v-restore-'));
    wsA = join(tmp, 'machine-a');
    wsB = join(tmp, 'machine-b');
    stick = join(tmp, 'stick');
    idFile = join(tmp, 'printed-recovery-identity.txt');
    spec = writeSpec(DEPLOY_LAB);
    driverA = driverFor(wsA);
    driverB = driverFor(wsB);
  });

  afterAll(async () => {
    for (const d of [driverA, driverB]) for (const n of p.nodes) await d?.destroy(n.vmid, { allowDestroy: true }).catch(() => undefined);
    sh(['ip', 'netns', 'delete', NETNS]);
    if (tmp) dropLabBulk(tmp, [join(tmp, 'stick'), join(wsA, 'cache'), join(wsB, 'cache')]);
    console.log(`restore (VMs) timeline:\n${timeline.join('\n')}`);
  });

  it('deploys lab-3 with its recovery key named first (kept off the workspace)', async () => {
    const key = await kubedosAsync(['recovery-key', spec, '--out', idFile], { env: deployEnv(wsA), cwd: DEPLOY_LAB, logFile: join(DEPLOY_LAB, 'h15v-recovery-key.log'), timeoutMs: 60_000 });
    expect(key.status, key.stderr).toBe(0);
    const r = await kubedosAsync(['deploy', spec, '--target', 'qemu-local'], { env: deployEnv(wsA), cwd: DEPLOY_LAB, logFile: join(DEPLOY_LAB, 'h15v-restore-deploy.log'), timeoutMs: 55 * 60_000 });
    expect(r.status, r.stderr + r.stdout.slice(-3000)).toBe(0);
    mark(`lab-3 deployed (${(r.ms / 1000).toFixed(0)} s)`);
  }, 56 * 60_000);

  it('writes a key to etcd and seals again: the bundle\'s snapshot holds it', async () => {
    const put = await driverA.guestExec(cp.vmid, [...etcdctlOn(cp), 'put', KEY, VALUE], { timeoutS: 60 });
    expect(put.exitCode, put.stderr).toBe(0);
    // The seal is skipped while the bundle in place is the one it wrote: move it away, redeploy.
    const ws = clusterWorkspace('lab-3', { KUBEDOS_WORKSPACE: wsA });
    rmSync(join(ws, 'bundle'), { recursive: true, force: true });
    const r = await kubedosAsync(['deploy', spec, '--target', 'qemu-local'], { env: { ...deployEnv(wsA), KUBEDOS_RECOVERY_IDENTITY_FILE: idFile }, cwd: DEPLOY_LAB, logFile: join(DEPLOY_LAB, 'h15v-restore-seal.log'), timeoutMs: 30 * 60_000 });
    expect(r.status, r.stderr + r.stdout.slice(-3000)).toBe(0);
    expect(outcomes(r.stdout).seal).not.toMatch(/unchanged|failed|skipped/);
    const opened = await openRecovery(join(ws, 'bundle'), readIdentityFile(idFile));
    expect(opened.etcdSnapshot?.node).toBe('cp-1');
    expect(opened.etcdSnapshot!.data.includes(Buffer.from(KEY))).toBe(true);
    rootFingerprint = certFingerprint(readFileSync(join(ws, 'bundle', BUNDLE_PATHS.rootCa), 'utf8'));
    planSha256 = sha256Hex(readFileSync(join(ws, 'plan.json')));
    mark(`key written, sealed again with an etcd snapshot of ${opened.etcdSnapshot!.data.length} bytes (${(r.ms / 1000).toFixed(0)} s)`);
  }, 31 * 60_000);

  it('keeps the artifact on the stick, then destroys the VMs and the workspace (the bundle exported first)', async () => {
    const ws = clusterWorkspace('lab-3', { KUBEDOS_WORKSPACE: wsA });
    cpSync(join(ws, 'build'), join(stick, 'artifact'), { recursive: true });
    const r = await kubedosAsync(['destroy', spec, '--allow-destroy'], { env: deployEnv(wsA), cwd: DEPLOY_LAB, logFile: join(DEPLOY_LAB, 'h15v-restore-destroy.log'), timeoutMs: 10 * 60_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(existsSync(ws)).toBe(false);
    const recovery = join(wsA, 'recovery', 'lab-3');
    const exported = readdirSync(recovery).filter((n) => n.startsWith('exported-')).sort();
    expect(exported.length).toBeGreaterThan(0);
    cpSync(join(recovery, exported.at(-1)!, 'bundle'), join(stick, 'bundle'), { recursive: true });
    for (const n of p.nodes) expect(await driverA.guestPing(n.vmid).catch(() => false)).toBe(false);
    mark(`VMs and workspace destroyed; bundle from ${exported.at(-1)} and the artifact on the stick (${(r.ms / 1000).toFixed(0)} s)`);
  }, 11 * 60_000);

  it('restores in a fresh workspace inside a namespace with no route out: same CA, same plan, key readable, 0 packets out', async () => {
    expect(sh(['ip', 'netns', 'add', NETNS]).code).toBe(0);
    expect(sh(['ip', 'netns', 'exec', NETNS, 'ip', 'link', 'set', 'lo', 'up']).code).toBe(0);
    const nft = sh(['ip', 'netns', 'exec', NETNS, 'nft', '-f', '-'], `table inet ${NFT_TABLE} {\n  chain out {\n    type filter hook output priority 0; policy accept;\n    oifname != "lo" counter\n  }\n}\n`);
    expect(nft.code, nft.err).toBe(0);
    expect(sh(['ip', 'netns', 'exec', NETNS, 'ip', 'route', 'show']).out.trim()).toBe('');
    // A fresh machine: its own workspace root and cache, nothing shared with machine A.
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: tmp, KUBEDOS_WORKSPACE: wsB, KUBEDOS_CACHE: join(wsB, 'cache'), KUBEDOS_BOOT_TIMEOUT_S: '1500' };
    const r = await kubedosAsync(['restore', join(stick, 'bundle'), '--artifact', join(stick, 'artifact'), '--recovery-key', idFile, '--cluster', 'lab-3', '--target', 'qemu-local', '--expect-key', KEY], {
      env,
      cwd: tmp,
      logFile: join(DEPLOY_LAB, 'h15v-restore-restore.log'),
      timeoutMs: 60 * 60_000,
      prefix: ['ip', 'netns', 'exec', NETNS],
    });
    console.log(r.stdout.split('\n').filter((l) => /^(verify|workspace|deploy|etcd|identity|seal|timeline)/.test(l)).join('\n'));
    expect(r.status, r.stderr + r.stdout.slice(-3000)).toBe(0);
    mark(`kubedos restore --target qemu-local (${(r.ms / 1000).toFixed(0)} s)`);
    const counters = sh(['ip', 'netns', 'exec', NETNS, 'nft', 'list', 'table', 'inet', NFT_TABLE]).out;
    const packetsOut = Number(/counter packets (\d+)/.exec(counters)?.[1] ?? NaN);
    expect(packetsOut).toBe(0);
    mark(`${packetsOut} packets out of the restore's namespace`);

    // The CLI's proof: same root CA, same plan, the key read back after etcd's restore.
    expect(r.stdout).toContain(`identity: root CA ${rootFingerprint} (the bundle's)`);
    expect(r.stdout).toContain(`identity: plan ${planSha256} (the bundle's)`);
    expect(r.stdout).toMatch(new RegExp(`identity: etcd on cp-1 at revision \\d+ \\(snapshot \\d+\\), key ${KEY} readable`));
    // ... and independently: the fresh workspace's root CA, and the key through cp-1's guest agent.
    const wsRestored = clusterWorkspace('lab-3', { KUBEDOS_WORKSPACE: wsB });
    expect(certFingerprint(readFileSync(join(wsRestored, 'trust/root-ca.crt'), 'utf8'))).toBe(rootFingerprint);
    expect(sha256Hex(readFileSync(join(wsRestored, 'plan.json')))).toBe(planSha256);
    const got = await driverB.guestExec(cp.vmid, [...etcdctlOn(cp), 'get', KEY, '--print-value-only'], { timeoutS: 60 });
    expect(got.stdout.trim()).toBe(VALUE);
    const t = JSON.parse(readFileSync(join(wsRestored, 'restore-timeline.json'), 'utf8')) as { phases: { name: string; durationMs: number; detail: string }[]; proof?: { rootCaFingerprint: string; planSha256: string; etcd: { expectKey?: { key: string } } } };
    expect(t.phases.map((x) => x.name)).toEqual(['verify', 'workspace', 'deploy', 'etcd', 'seal']);
    // Sealed again after etcd was back: the restored workspace's own bundle holds the key.
    expect(r.stdout).toMatch(/^seal: sealed again after etcd was put back: .*etcd snapshot of \d+ bytes from cp-1/m);
    expect(existsSync(join(wsRestored, BUNDLE_BEFORE_RESEAL))).toBe(false);
    const resealed = await openRecovery(join(wsRestored, 'bundle'), readIdentityFile(idFile));
    expect(resealed.etcdSnapshot?.node).toBe('cp-1');
    expect(resealed.etcdSnapshot!.data.includes(Buffer.from(KEY))).toBe(true);
    expect(t.proof).toMatchObject({ rootCaFingerprint: rootFingerprint, planSha256, etcd: { expectKey: { key: KEY } } });
    for (const ph of t.phases) mark(`restore phase ${ph.name}: ${(ph.durationMs / 1000).toFixed(0)} s — ${ph.detail}`);
  }, 61 * 60_000);
});
