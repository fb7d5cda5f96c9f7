import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { sha256Hex } from '../../common/canonical';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plan as makePlan } from '../../common/plan/plan';
import { parseSpec } from '../../common/spec/index';
import type { ClusterSpec } from '../../common/spec/schema';
import { templateObject, toYaml } from '../../common/testing/specs';
import { keyidOf } from '../build/keys';
import { buildSigningKey } from '../build/keys';
import { signWithPolicy } from '../testing/artifact-policy';
import { BUNDLE_PATHS } from '../bundle/schema';
import { clusterWorkspace, WORKSPACE_LAYOUT } from '../workspace';
import type { PreflightInput, PreflightResult } from './preflight';
import { keepVerifiedBuild, keptOutput, returnToBuild, RUNNING_BUILD_FILE, UPGRADE_BUILDS_DIR, upgradePreflight } from './preflight';
import type { SigningKey } from './testing';
import { writeArtifact, writeDeployJournal, writeSealedBuild } from './testing';

let root: string;
let env: NodeJS.ProcessEnv;
let key: SigningKey;
let spec: ClusterSpec;

const N = { packages: { 'base-files': '12.4+deb12u1', openssh: '1:9.2p1-2+deb12u5', tzdata: '2024a-0+deb12u1' }, payload: { 'payload/master/firstboot/firstboot.sh': 'echo N\n', 'payload/master/nodes/master.json': '{}\n' } };
const N1 = { packages: { 'base-files': '12.4+deb12u1', openssh: '1:9.2p1-2+deb12u7', wireguard: '1.0.20210914-1' }, payload: { 'payload/master/firstboot/firstboot.sh': 'echo N+1\n', 'payload/master/nodes/master.json': '{}\n', 'payload/master/upgrade/mark-good.sh': 'true\n' } };

let dirs = 0;
const artifactDir = (): string => join(root, `n1-${dirs++}`);

/** lab-3 upgraded slot by slot (rolling): under the default replace its single etcd member cp-1 is refused (a test below). */
function specOf(mutate: (s: Record<string, any>) => void = () => {}, strategy: 'rolling' | 'replace' = 'rolling'): ClusterSpec {
  const obj = templateObject('lab-3');
  obj.spec.kubernetes.ha.upgradeStrategy = strategy;
  mutate(obj);
  const r = parseSpec(toYaml(obj));
  if (!r.spec) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return r.spec;
}

async function preflight(o: Partial<PreflightInput> & { artifactDir: string }): Promise<PreflightResult> {
  const s = o.spec ?? spec;
  return upgradePreflight({ spec: s, plan: makePlan(s), env, ...o });
}

function refusal(r: PreflightResult): { code: string; message: string } {
  if (r.ok) throw new Error(`expected a refusal, the preflight passed: ${r.checks.join('; ')}`);
  return { code: r.code, message: r.message };
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'h18-upgrade-'));
  env = { KUBEDOS_WORKSPACE: join(root, 'ws'), KUBEDOS_AGE_IDENTITY_FILE: undefined };
  spec = specOf();
  // The cluster's real build signing key, from its age-encrypted SecretStore.
  key = await buildSigningKey(spec.metadata.name, env, { log: () => {} });
  writeSealedBuild(spec.metadata.name, env, { version: '0.1.0', key, ...N });
  writeDeployJournal(spec.metadata.name, env);
}, 60_000);

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('upgradePreflight', () => {
  it('passes a signed N+1 of this cluster and reports the package and payload diff and the waves', async () => {
    const dir = artifactDir();
    writeArtifact(dir, { cluster: spec.metadata.name, version: '0.2.0', key, ...N1 });
    const r = await preflight({ artifactDir: dir });
    if (!r.ok) throw new Error(r.message);
    expect(r.from.version).toBe('0.1.0');
    expect(r.to.version).toBe('0.2.0');
    expect(r.to.keyid).toBe(key.keyid);
    expect(r.diff.packages).toEqual({
      added: [{ name: 'wireguard', architecture: 'amd64', version: '1.0.20210914-1' }],
      removed: [{ name: 'tzdata', architecture: 'amd64', version: '2024a-0+deb12u1' }],
      changed: [{ name: 'openssh', architecture: 'amd64', from: '1:9.2p1-2+deb12u5', to: '1:9.2p1-2+deb12u7' }],
    });
    // The bundle's SBOM of N lists no payload outputs (writeSealedBuild), so every N+1 payload file is new.
    expect(r.diff.payload.added).toEqual(['payload/master/firstboot/firstboot.sh', 'payload/master/nodes/master.json', 'payload/master/upgrade/mark-good.sh']);
    expect(r.waves.map((w) => w.nodes.join('+'))).toEqual(['cp-1', 'w-1', 'master']);
    expect(r.waves.map((w) => w.action)).toEqual(['slot-switch', 'slot-switch', 'slot-switch']);
    expect(r.warnings.join('\n')).toMatch(/live health was not observed/);
    // A manifest without "upgrade" (as every build before the policy gates): channel stable, no stepping stone; no window: any time.
    expect(r.checks.slice(4, 6)).toEqual(['channel: N+1 is on stable, lab-3 follows stable (the channel of 0.1.0, the build it runs)', 'stepping stone: none (N+1 installs over any older version)']);
    expect(r.checks.at(-1)).toBe('window: no maintenance window set: any time');
    expect(r.checks).toHaveLength(9);
  });

  it('the live health: looked at only once the files passed; observed, its line among the checks; unhealthy, refused; the look failing, a warning saying why', async () => {
    const dir = artifactDir();
    writeArtifact(dir, { cluster: spec.metadata.name, version: '0.2.0', key, ...N1 });
    let looks = 0;
    const observed = await preflight({ artifactDir: dir, observeHealth: async () => (looks++, { observed: true, unhealthy: [], note: '3 of 3 nodes healthy; etcd 1 of 1 members healthy (quorum 1)' }) });
    if (!observed.ok) throw new Error(observed.message);
    expect(observed.checks).toContain('live health: 3 of 3 nodes healthy; etcd 1 of 1 members healthy (quorum 1)');
    expect(observed.checks.indexOf('live health: 3 of 3 nodes healthy; etcd 1 of 1 members healthy (quorum 1)')).toBe(observed.checks.findIndex((c) => c.startsWith('waves:')) - 1);
    expect(observed.warnings.join('\n')).not.toMatch(/not observed/);
    const down = refusal(await preflight({ artifactDir: dir, observeHealth: async () => (looks++, { observed: true, unhealthy: [{ node: 'w-1', detail: 'guest agent never answered' }] }) }));
    expect(down).toMatchObject({ code: 'unhealthy' });
    expect(down.message).toMatch(/^1 node is unhealthy before the upgrade: w-1 \(guest agent never answered\)/);
    const failed = await preflight({ artifactDir: dir, observeHealth: () => Promise.reject(new Error('cannot reach pve1: Connection refused\nmore')) });
    if (!failed.ok) throw new Error(failed.message);
    expect(failed.warnings).toContain('live health was not observed (looking at the cluster failed: cannot reach pve1: Connection refused): the quorum guard assumed every etcd member healthy, as the last converged deploy left them');
    expect(looks).toBe(2);
    // An unsigned N+1 is refused on its files: the cluster is not looked at.
    const unsigned = artifactDir();
    writeArtifact(unsigned, { cluster: spec.metadata.name, version: '0.2.0', key, ...N1 });
    rmSync(join(unsigned, 'signatures'), { recursive: true, force: true });
    expect(refusal(await preflight({ artifactDir: unsigned, observeHealth: async () => (looks++, { observed: true, unhealthy: [] }) })).code).toBe('unsigned');
    expect(looks).toBe(2);
  });

  it('N and N+1 are what it verified: the digests of the signed manifests it read, handed to the live-health look; a manifest swapped on disk after the check changes neither', async () => {
    const dir = artifactDir();
    writeArtifact(dir, { cluster: spec.metadata.name, version: '0.2.0', key, ...N1 });
    const verifiedBytes = readFileSync(join(dir, 'manifest.json'));
    const deployed = readFileSync(join(clusterWorkspace(spec.metadata.name, env), WORKSPACE_LAYOUT.bundle, BUNDLE_PATHS.buildDir, 'manifest.json'));
    const seen: unknown[] = [];
    const r = await preflight({
      artifactDir: dir,
      // Runs after the files passed: what a copy finishing late (or someone else) would do to the directory.
      observeHealth: async (n1) => {
        seen.push(n1);
        writeFileSync(join(dir, 'manifest.json'), verifiedBytes.toString('utf8').replace('"0.2.0"', '"9.9.9"'));
        writeFileSync(join(dir, 'sbom.cdx.json'), '{"not": "an sbom"}');
        return { observed: true, unhealthy: [], note: 'healthy' };
      },
    });
    if (!r.ok) throw new Error(r.message);
    expect(seen).toEqual([{ version: '0.2.0', digest: sha256Hex(verifiedBytes) }]);
    expect(r.to).toMatchObject({ version: '0.2.0', digest: sha256Hex(verifiedBytes) });
    expect(r.from).toMatchObject({ version: '0.1.0', digest: sha256Hex(deployed) });
    // The package diff is the verified SBOM's, not the file written over it.
    expect(r.diff.packages.changed).toEqual([{ name: 'openssh', architecture: 'amd64', from: '1:9.2p1-2+deb12u5', to: '1:9.2p1-2+deb12u7' }]);
  });

  it('refuses lab-3 under replace (the schema default) before any node is touched: its single etcd member cp-1 cannot be taken out', async () => {
    const dir = artifactDir();
    writeArtifact(dir, { cluster: spec.metadata.name, version: '0.2.0', key, ...N1 });
    const replace = specOf(() => {}, 'replace');
    const r = refusal(await preflight({ artifactDir: dir, spec: replace, plan: makePlan(replace) }));
    expect(r).toMatchObject({ code: 'quorum', message: expect.stringMatching(/^replacing cp-1 \(strategy replace, the spec's kubernetes\.ha\.upgradeStrategy\) takes its etcd member out .*cp-1 is the only member\)\. Nothing was touched/) });
  });

  it('refuses an unsigned N+1', async () => {
    const dir = artifactDir();
    writeArtifact(dir, { cluster: spec.metadata.name, version: '0.2.0', key, unsigned: true, ...N1 });
    expect(refusal(await preflight({ artifactDir: dir }))).toMatchObject({ code: 'unsigned', message: expect.stringMatching(/^N\+1 is unsigned: .* has no signatures\/manifest\.json\.dsse\.json/) });
  });

  it('refuses an N+1 signed by another key, naming both key ids', async () => {
    const other = generateKeyPairSync('ed25519');
    const pem = other.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const dir = artifactDir();
    writeArtifact(dir, { cluster: spec.metadata.name, version: '0.2.0', key: { privateKey: other.privateKey, publicKeyPem: pem, keyid: keyidOf(pem) }, ...N1 });
    const r = refusal(await preflight({ artifactDir: dir }));
    expect(r.code).toBe('bad-signature');
    expect(r.message).toContain(`signed by key ${keyidOf(pem).slice(0, 16)}…, the cluster trusts ${key.keyid.slice(0, 16)}…`);
  });

  it('refuses an N+1 whose signed manifest was edited after signing', async () => {
    const dir = artifactDir();
    writeArtifact(dir, { cluster: spec.metadata.name, version: '0.2.0', key, ...N1 });
    writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify({ tampered: true })}\n`);
    expect(refusal(await preflight({ artifactDir: dir })).code).toBe('bad-signature');
  });

  it('refuses an N+1 whose payload does not match its signed manifest', async () => {
    const dir = artifactDir();
    writeArtifact(dir, { cluster: spec.metadata.name, version: '0.2.0', key, ...N1 });
    writeFileSync(join(dir, 'payload/master/firstboot/firstboot.sh'), 'echo evil\n');
    expect(refusal(await preflight({ artifactDir: dir }))).toMatchObject({ code: 'corrupt', message: expect.stringContaining('payload/master/firstboot/firstboot.sh') });
  });

  it('refuses an artifact built for another cluster', async () => {
    const dir = artifactDir();
    writeArtifact(dir, { cluster: 'prod-7', version: '0.2.0', key, ...N1 });
    expect(refusal(await preflight({ artifactDir: dir }))).toMatchObject({ code: 'other-cluster', message: expect.stringMatching(/^N\+1 was built for cluster prod-7, not lab-3/) });
  });

  it('refuses a downgrade without --allow-downgrade, and passes it with', async () => {
    const dir = artifactDir();
    writeArtifact(dir, { cluster: spec.metadata.name, version: '0.1.0-rc.1', key, ...N1 });
    expect(refusal(await preflight({ artifactDir: dir }))).toMatchObject({ code: 'downgrade', message: expect.stringMatching(/0\.1\.0-rc\.1\) is older than the deployed 0\.1\.0.*--allow-downgrade/) });
    const r = await preflight({ artifactDir: dir, allowDowngrade: true });
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.checks.join('\n')).toMatch(/a downgrade, allowed by --allow-downgrade/);
  });

  it('N+1 kept before any node is touched only as the preflight verified it: a build directory changed since (another signed build, another key, another lock) is refused and nothing is kept', async () => {
    const ws = clusterWorkspace(spec.metadata.name, env);
    const lock = { 'darksite/darksite.lock.json': '{"packages":["openssh"]}\n', 'images/lab-3-master.qcow2': 'disk of 0.2.0\n' };
    const verified = artifactDir();
    writeArtifact(verified, { cluster: spec.metadata.name, version: '0.2.0', key, ...N1, payload: { ...N1.payload, ...lock } });
    const r = await preflight({ artifactDir: verified });
    if (!r.ok) throw new Error(r.message);
    const kept = join(ws, UPGRADE_BUILDS_DIR, r.to.digest);
    const keep = (dir: string): string | undefined => keepVerifiedBuild(spec.metadata.name, env, dir, r.to);
    const nothingKept = (): void => {
      expect(existsSync(kept)).toBe(false);
      expect(existsSync(`${kept}.incoming`)).toBe(false);
    };
    // Another build signed by the same key, copied over the directory after the preflight.
    const swapped = artifactDir();
    writeArtifact(swapped, { cluster: spec.metadata.name, version: '0.2.1', key, ...N1, payload: { ...N1.payload, ...lock } });
    expect(keep(swapped)).toMatch(new RegExp(`^N\\+1's build directory ${swapped} is not the build the preflight verified \\(0\\.2\\.0\\): its manifest\\.json has sha256 [0-9a-f]{12}…, the preflight verified ${r.to.digest.slice(0, 12)}…\\. Nothing was touched; run kubedos upgrade again`));
    nothingKept();
    // The same manifest, re-signed by another key with that key beside it: the next preflight would trust it.
    const other = generateKeyPairSync('ed25519');
    const pem = other.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const rekeyed = artifactDir();
    writeArtifact(rekeyed, { cluster: spec.metadata.name, version: '0.2.0', key: { privateKey: other.privateKey, publicKeyPem: pem, keyid: keyidOf(pem) }, ...N1, payload: { ...N1.payload, ...lock } });
    expect(keep(rekeyed)).toMatch(new RegExp(`: its signatures\\/build-signing-key\\.pub\\.pem is key ${keyidOf(pem).slice(0, 16)}…, the preflight trusted ${key.keyid.slice(0, 16)}…\\.`));
    nothingKept();
    // Its signatures made again by another key, the trusted key left in place.
    const resigned = artifactDir();
    writeArtifact(resigned, { cluster: spec.metadata.name, version: '0.2.0', key: { ...key, privateKey: other.privateKey }, ...N1, payload: { ...N1.payload, ...lock } });
    expect(keep(resigned)).toMatch(/: signatures\/manifest\.json\.dsse\.json: signature does not verify/);
    nothingKept();
    // The darksite lock the manifest lists, edited.
    writeFileSync(join(verified, 'darksite/darksite.lock.json'), '{"packages":["openssh","evil"]}\n');
    expect(keep(verified)).toMatch(/: its darksite\/darksite\.lock\.json has sha256 [0-9a-f]{12}…, its manifest says [0-9a-f]{12}…\./);
    nothingKept();
    // Put back: kept, private, and what the slot cut reads the image's digest from.
    writeFileSync(join(verified, 'darksite/darksite.lock.json'), lock['darksite/darksite.lock.json']);
    expect(keep(verified)).toBeUndefined();
    expect(existsSync(join(kept, 'signatures/build-signing-key.pub.pem'))).toBe(true);
    expect(statSync(join(kept, 'manifest.json')).mode & 0o777).toBe(0o600);
    expect(keptOutput(spec.metadata.name, env, r.to, 'images/lab-3-master.qcow2')).toEqual({ sha256: sha256Hex('disk of 0.2.0\n'), size: 14 });
    expect(() => keptOutput(spec.metadata.name, env, r.to, 'images/lab-3-worker.qcow2')).toThrow(/^0\.2\.0's signed manifest \(.*\) lists no images\/lab-3-worker\.qcow2/);
    writeFileSync(join(kept, 'manifest.json'), '{}');
    expect(() => keptOutput(spec.metadata.name, env, r.to, 'images/lab-3-master.qcow2')).toThrow(/is not the manifest of 0\.2\.0 this run verified/);
    rmSync(kept, { recursive: true });
  });

  it('after a completed upgrade, N is the build it completed (its kept signed files): the checks, the diff and a downgrade are against it; a --rollback back to the sealed deploy\'s build makes that N again', async () => {
    const ws = clusterWorkspace(spec.metadata.name, env);
    const done = artifactDir();
    writeArtifact(done, { cluster: spec.metadata.name, version: '0.2.0', key, ...N1 });
    const passed = await preflight({ artifactDir: done });
    if (!passed.ok) throw new Error(passed.message);
    expect(keepVerifiedBuild(spec.metadata.name, env, done, passed.to, '0.2.0')).toBeUndefined();
    expect(returnToBuild(spec.metadata.name, env, passed.to)).toBeUndefined();
    try {
      rmSync(done, { recursive: true }); // N's files are the workspace's own copy, not the --to directory's
      const older = artifactDir();
      writeArtifact(older, { cluster: spec.metadata.name, version: '0.1.5', key, ...N });
      expect(refusal(await preflight({ artifactDir: older }))).toMatchObject({ code: 'downgrade', message: expect.stringMatching(/^N\+1 \(0\.1\.5\) is older than the deployed 0\.2\.0/) });
      const next = artifactDir();
      writeArtifact(next, { cluster: spec.metadata.name, version: '0.3.0', key, ...N1, packages: { ...N1.packages, wireguard: '1.0.20210914-2' } });
      const r = await preflight({ artifactDir: next });
      if (!r.ok) throw new Error(r.message);
      expect(r.checks).toContain('version: 0.2.0 → 0.3.0');
      expect(r.from.version).toBe('0.2.0');
      // The diff is from 0.2.0's SBOM: only wireguard moved (openssh was already at deb12u7 there).
      expect(r.diff.packages.changed.map((c) => c.name)).toEqual(['wireguard']);
      // A pointer to files the workspace does not hold: refused, saying what to do.
      writeFileSync(join(ws, RUNNING_BUILD_FILE), JSON.stringify({ version: '0.2.0', digest: 'f'.repeat(64) }));
      expect(refusal(await preflight({ artifactDir: next }))).toMatchObject({ code: 'not-deployed', message: expect.stringMatching(/says lab-3 runs 0\.2\.0 \(manifest sha256 ffffffffffff\), but .* does not hold that signed manifest/) });
      // Rolled back to the sealed deploy's build: no pointer, N is 0.1.0 again.
      const sealed = JSON.parse(readFileSync(join(ws, WORKSPACE_LAYOUT.bundle, BUNDLE_PATHS.buildDir, 'manifest.json'), 'utf8')) as { artifactVersion: string };
      expect(returnToBuild(spec.metadata.name, env, { version: sealed.artifactVersion, digest: sha256Hex(readFileSync(join(ws, WORKSPACE_LAYOUT.bundle, BUNDLE_PATHS.buildDir, 'manifest.json'))) })).toBeUndefined();
      expect(existsSync(join(ws, RUNNING_BUILD_FILE))).toBe(false);
      const again = await preflight({ artifactDir: next });
      expect(again.ok && again.from.version).toBe('0.1.0');
    } finally {
      rmSync(join(ws, RUNNING_BUILD_FILE), { force: true });
      rmSync(join(ws, UPGRADE_BUILDS_DIR), { recursive: true, force: true });
    }
  });

  it('refuses the version already deployed', async () => {
    const dir = artifactDir();
    writeArtifact(dir, { cluster: spec.metadata.name, version: '0.1.0', key, ...N1 });
    expect(refusal(await preflight({ artifactDir: dir })).code).toBe('same-version');
  });

  it('refuses an unconverged cluster: a deploy that failed on a node, or one that never finished', async () => {
    const dir = artifactDir();
    writeArtifact(dir, { cluster: spec.metadata.name, version: '0.2.0', key, ...N1 });
    try {
      writeDeployJournal(spec.metadata.name, env, { failAt: { stage: 'converge', node: 'w-1', message: 'ansible: w-1 unreachable' } });
      expect(refusal(await preflight({ artifactDir: dir }))).toMatchObject({ code: 'unconverged', message: expect.stringMatching(/lab-3 is not converged: its last deploy \(run deploy-1\) failed in converge on w-1: ansible: w-1 unreachable/) });
      writeDeployJournal(spec.metadata.name, env, { finished: false });
      expect(refusal(await preflight({ artifactDir: dir })).message).toMatch(/did not finish/);
      writeDeployJournal(spec.metadata.name, env, { after: [{ pipeline: 'stop', ok: true }] });
      expect(refusal(await preflight({ artifactDir: dir })).message).toMatch(/lab-3 is not running: stopped at .*kubedos start SPEC/);
      writeDeployJournal(spec.metadata.name, env, { after: [{ pipeline: 'stop', ok: true }, { pipeline: 'start', ok: true }] });
      expect((await preflight({ artifactDir: dir })).ok).toBe(true);
    } finally {
      writeDeployJournal(spec.metadata.name, env);
    }
  });

  it('refuses an upgrade that would break etcd quorum, with the live health', async () => {
    const three = specOf((s) => {
      const inv = s.spec.nodes.inventory as Record<string, any>[];
      const cp = inv.find((n) => n.role === 'control-plane')!;
      inv.push({ ...cp, name: 'cp-2', vmid: undefined }, { ...cp, name: 'cp-3', vmid: undefined });
      for (const n of inv) delete n.vmid;
      s.spec.kubernetes.ha.controlPlaneReplicas = 3;
      s.spec.kubernetes.ha.upgradeStrategy = 'rolling';
    });
    const dir = artifactDir();
    writeArtifact(dir, { cluster: spec.metadata.name, version: '0.2.0', key, ...N1 });
    const ok = await preflight({ spec: three, artifactDir: dir, health: { observed: true, unhealthy: [] } });
    if (!ok.ok) throw new Error(ok.message);
    expect(ok.waves.filter((w) => w.tier === 'control-plane').map((w) => w.nodes)).toEqual([['cp-1'], ['cp-2'], ['cp-3']]);
    const r = refusal(await preflight({ spec: three, artifactDir: dir, health: { observed: true, unhealthy: [{ node: 'cp-3', detail: 'etcd member unhealthy' }] } }));
    expect(r).toMatchObject({ code: 'quorum', message: expect.stringMatching(/^upgrading would break etcd quorum: 2 of 3 etcd members healthy/) });
  });

  it('refuses a cluster that was never deployed and sealed', async () => {
    const other = specOf((s) => {
      s.metadata.name = 'never-deployed';
    });
    const dir = artifactDir();
    writeArtifact(dir, { cluster: 'never-deployed', version: '0.2.0', key, ...N1 });
    expect(refusal(await preflight({ spec: other, artifactDir: dir })).code).toBe('not-deployed');
  });
});

function policyArtifact(version: string, upgrade?: unknown): string {
  const dir = artifactDir();
  writeArtifact(dir, { cluster: spec.metadata.name, version, key, ...N1 });
  if (upgrade !== undefined) signWithPolicy(dir, upgrade, key);
  return dir;
}

// 2026-12-05 is a Saturday.
const SAT_0248 = Date.parse('2026-12-05T02:48:00Z');
const withWindows = (windows: unknown, channel?: string): ClusterSpec =>
  specOf((s) => {
    s.spec.upgrades = { maintenanceWindows: windows, ...(channel ? { channel } : {}) };
  });

describe('upgradePreflight: the policy gates (channel, stepping stone, maintenance window)', () => {
  it('refuses a build from a less stable channel than the cluster follows (the channel of the build it runs); --channel takes it, N+1\'s own spec does not', async () => {
    const dir = policyArtifact('0.1.2', { channel: 'candidate' });
    expect(refusal(await preflight({ artifactDir: dir }))).toEqual({
      code: 'channel',
      message: 'N+1 0.1.2 is on channel candidate, lab-3 follows stable (the channel of 0.1.0, the build it runs): a cluster takes builds of its channel or a more stable one (stable, candidate, edge). To move lab-3 to candidate, pass --channel candidate',
    });
    // N+1's spec (what kubedos upgrade is given) saying candidate does not move the cluster off the channel it runs.
    expect(refusal(await preflight({ spec: withWindows([], 'candidate'), artifactDir: dir })).code).toBe('channel');
    const over = await preflight({ artifactDir: dir, channel: 'candidate' });
    if (!over.ok) throw new Error(over.message);
    expect(over.checks).toContain('channel: N+1 is on candidate, lab-3 follows candidate (--channel; the build it runs, 0.1.0, is on stable)');
    expect(over.policy.channel).toEqual({ artifact: 'candidate', follows: 'candidate', overridden: true });
    // A manifest whose policy this foundry cannot read is named, not taken as stable.
    expect(refusal(await preflight({ artifactDir: policyArtifact('0.1.3', { channel: 'nightly' }) }))).toMatchObject({ code: 'channel', message: expect.stringMatching(/^N\+1 0\.1\.3: manifest\.json "upgrade" is not an upgrade policy this foundry reads/) });
  });

  it('a cluster whose build is on edge follows edge: it takes a candidate build without --channel', async () => {
    const bundleBuild = join(clusterWorkspace(spec.metadata.name, env), WORKSPACE_LAYOUT.bundle, BUNDLE_PATHS.buildDir);
    try {
      signWithPolicy(bundleBuild, { channel: 'edge' }, key);
      const edge = await preflight({ artifactDir: policyArtifact('0.1.2', { channel: 'candidate' }) });
      if (!edge.ok) throw new Error(edge.message);
      expect(edge.checks).toContain('channel: N+1 is on candidate, lab-3 follows edge (the channel of 0.1.0, the build it runs)');
    } finally {
      writeSealedBuild(spec.metadata.name, env, { version: '0.1.0', key, ...N });
    }
  });

  it('refuses a build whose stepping stone the cluster is below, naming the version to upgrade to first', async () => {
    const dir = policyArtifact('0.3.0', { channel: 'stable', requiresAtLeast: '0.2.0' });
    expect(refusal(await preflight({ artifactDir: dir }))).toEqual({
      code: 'stepping-stone',
      message: 'N+1 0.3.0 can only be installed on a cluster that runs 0.2.0 or later (its stepping stone: upgrades.requiresAtLeast of its spec, signed in its manifest), and lab-3 runs 0.1.0. Upgrade lab-3 to a 0.2.0 build first (kubedos upgrade SPEC --to BUILD_DIR), then to 0.3.0',
    });
    const ok = await preflight({ artifactDir: policyArtifact('0.2.0', { channel: 'stable', requiresAtLeast: '0.1.0' }) });
    if (!ok.ok) throw new Error(ok.message);
    expect(ok.checks).toContain('stepping stone: N+1 needs 0.1.0 or later, lab-3 runs 0.1.0');
    expect(ok.policy.requiresAtLeast).toBe('0.1.0');
  });

  it('outside every maintenance window: refused with the next opening; --outside-window says it was used; a dry run reports; inside: open until', async () => {
    const dir = policyArtifact('0.2.0');
    const sunday = withWindows([{ days: ['sun'], start: '01:00', durationMinutes: 60 }]);
    expect(refusal(await preflight({ spec: sunday, artifactDir: dir, now: SAT_0248 }))).toEqual({
      code: 'outside-window',
      message: 'lab-3 is outside every maintenance window (spec.upgrades.maintenanceWindows): the next opens 2026-12-06 01:00 UTC (in 22 h 12 min). Rerun then, or pass --outside-window to upgrade now',
    });
    const forced = await preflight({ spec: sunday, artifactDir: dir, now: SAT_0248, outsideWindow: true });
    if (!forced.ok) throw new Error(forced.message);
    expect(forced.checks.at(-1)).toBe('window: closed: the next window opens 2026-12-06 01:00 UTC (in 22 h 12 min) — upgrading now: --outside-window');
    expect(forced.policy.window).toMatchObject({ outsideWindow: true, state: { open: false, next: Date.parse('2026-12-06T01:00:00Z') } });
    const dry = await preflight({ spec: sunday, artifactDir: dir, now: SAT_0248, dryRun: true });
    if (!dry.ok) throw new Error(dry.message);
    expect(dry.checks.at(-1)).toMatch(/^window: closed: .* — a dry run; the upgrade itself is refused until then \(or give --outside-window\)$/);
    const open = await preflight({ spec: withWindows([{ days: ['sat'], start: '02:00', durationMinutes: 120 }]), artifactDir: dir, now: SAT_0248 });
    if (!open.ok) throw new Error(open.message);
    expect(open.checks.at(-1)).toBe('window: open until 04:00 UTC (1 h 12 min)');
  });

  it('one refusal, in the header\'s order: the channel before the stepping stone, an unconverged cluster before the window', async () => {
    const both = policyArtifact('0.3.0', { channel: 'edge', requiresAtLeast: '0.2.0' });
    const sunday = withWindows([{ days: ['sun'], start: '01:00', durationMinutes: 60 }]);
    expect(refusal(await preflight({ spec: sunday, artifactDir: both, now: SAT_0248 })).code).toBe('channel');
    expect(refusal(await preflight({ spec: sunday, artifactDir: both, now: SAT_0248, channel: 'edge' })).code).toBe('stepping-stone');
    try {
      writeDeployJournal(spec.metadata.name, env, { finished: false });
      expect(refusal(await preflight({ spec: sunday, artifactDir: policyArtifact('0.2.0'), now: SAT_0248 })).code).toBe('unconverged');
    } finally {
      writeDeployJournal(spec.metadata.name, env);
    }
  });
});
