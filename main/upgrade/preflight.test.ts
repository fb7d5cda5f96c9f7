import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plan as makePlan } from '../../common/plan/plan';
import { parseSpec } from '../../common/spec/index';
import type { ClusterSpec } from '../../common/spec/schema';
import { templateObject, toYaml } from '../../common/testing/specs';
import { keyidOf } from '../build/keys';
import { buildSigningKey } from '../build/keys';
import type { PreflightInput, PreflightResult } from './preflight';
import { upgradePreflight } from './preflight';
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
    expect(r.checks).toHaveLength(6);
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
