// Test fixtures for the recovery bundle (used by main/bundle, main/stages/seal and the verify CLI
// tests): lab-3's plan, a small build directory made with attest.ts's own renderers and signed
// with the cluster's build key (in the given KUBEDOS_WORKSPACE), real certificates from
// main/trust/ca.ts, and node/hub facts as the firstboot stage would record them.
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson, sha256Hex } from '../../common/canonical';
import { plan as planOf, planJson } from '../../common/plan/index';
import type { Plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import type { PipelineEvent } from '../../common/pipeline/events';
import type { BuildManifest } from '../build/attest';
import { envelopePath, MANIFEST_FILE, payloadTypeFor, PROVENANCE_FILE, PUBLIC_KEY_FILE, renderManifest, renderProvenance, renderSbom, SBOM_FILE, signDsse } from '../build/attest';
import type { BuildSigningKey } from '../build/keys';
import { buildSigningKey } from '../build/keys';
import type { HubFacts, NodeFacts } from '../node-facts';
import { certFingerprint, createClusterIntermediate, createRootCa, issueHubTlsCert } from '../trust/ca';
import { ageIdentity } from '../trust/identity';
import { createRecoveryKey, encryptTo, recoveryDir, recoveryIdentityFileText, RECOVERY_FILES, writeRecoveryRecipient } from '../trust/recovery';
import { openSecretStore } from '../trust/secret-store';
import { recoveryInput } from './recovery-input';
import { wgKeyPair } from '../trust/wg-keys';
import { clusterWorkspace, WORKSPACE_LAYOUT } from '../workspace';
import type { BundleInputs, BundleRecoveryInput } from './write';
import { writeBundle } from './write';
import { stagesRecord } from './stages';
import { BUNDLE_PATHS } from './schema';
import type { DeployStart } from '../deploy/start';
import type { StageDefinition } from '../pipeline/runner';
import { StageError } from '../pipeline/runner';
import type { ClusterEtcdRestoreRequest, RestoreIdentityProof } from '../restore/etcd-cluster';
import { EtcdRestoreError, identityProof } from '../restore/etcd-cluster';

export const FIXTURE_EPOCH = 1_700_000_000;

export interface BundleFixture extends BundleInputs {
  trust: TrustFixture;
  env: NodeJS.ProcessEnv;
  signingKey: BuildSigningKey;
}

/** Writes manifest, SBOM, provenance, their envelopes and the public key into buildDir. The
 * manifest names one image per role; with `withOutputs` those images are written too (a build
 * directory that `verifyBuild` passes), otherwise they are only named (as in a bundle). */
export function writeFakeBuild(buildDir: string, p: Plan, specText: string, key: BuildSigningKey, withOutputs = false): void {
  const cluster = p.cluster.name;
  const roles = [...new Set(p.nodes.map((n) => n.role))].sort();
  const manifest: BuildManifest = {
    apiVersion: 'kubedos.ca/v1alpha1',
    kind: 'BuildManifest',
    cluster,
    artifactVersion: p.cluster.artifactVersion,
    sourceDateEpoch: FIXTURE_EPOCH,
    roles,
    inputs: {
      spec: { path: 'spec.yaml', sha256: sha256Hex(specText) },
      planSha256: sha256Hex(canonicalJson(p)),
      lockSha256: sha256Hex('lock'),
      payload: {},
      hostFiles: [],
      tools: { xorriso: '1.5.4' },
    },
    outputs: roles.map((role) => ({ path: `images/${cluster}-${role}.qcow2`, sha256: sha256Hex(imageBytes(role)), size: imageBytes(role).length, kind: 'image' as const, role })),
  };
  if (withOutputs) {
    mkdirSync(join(buildDir, 'images'), { recursive: true });
    for (const role of roles) writeFileSync(join(buildDir, `images/${cluster}-${role}.qcow2`), imageBytes(role));
  }
  const texts: Record<string, string> = {
    [MANIFEST_FILE]: renderManifest(manifest),
    [SBOM_FILE]: renderSbom({ cluster, artifactVersion: p.cluster.artifactVersion, sourceDateEpoch: FIXTURE_EPOCH, packages: [], payloadFiles: [], tools: manifest.inputs.tools, kubedosVersion: '0.1.0', outputs: manifest.outputs }),
    [PROVENANCE_FILE]: renderProvenance({ manifest, externalParameters: { spec: 'spec.yaml' }, kubedosVersion: '0.1.0', nodeVersion: 'v20.0.0', invocationId: 'fixture' }),
  };
  mkdirSync(join(buildDir, 'signatures'), { recursive: true });
  for (const [file, text] of Object.entries(texts)) {
    writeFileSync(join(buildDir, file), text);
    writeFileSync(join(buildDir, envelopePath(file)), `${canonicalJson(signDsse(payloadTypeFor(file), Buffer.from(text), key.privateKey, key.keyid), 2)}\n`);
  }
  writeFileSync(join(buildDir, PUBLIC_KEY_FILE), key.publicKeyPem);
}

const imageBytes = (role: string): Buffer => Buffer.from(`qcow2 stand-in for ${role}\n`.repeat(32));

export interface TrustFixture {
  rootCaPem: string;
  clusterCaPem: string;
  hubCertPem: string;
  /** The private keys (never written into a bundle in clear; see recoveryFixture). */
  keys: { root: string; cluster: string; hub: string };
}

export async function trustFixture(p: Plan): Promise<TrustFixture> {
  const now = new Date(FIXTURE_EPOCH * 1000);
  const root = await createRootCa({ name: p.cluster.name, now });
  const ca = await createClusterIntermediate(root, { cluster: p.cluster.name, now });
  const hubNode = p.nodes.find((n) => n.name === p.enrollment.hub)!;
  const hub = await issueHubTlsCert(ca, { cluster: p.cluster.name, hub: hubNode.name, lanAddress: hubNode.lan.address, now });
  return { rootCaPem: root.certPem, clusterCaPem: ca.certPem, hubCertPem: hub.certPem, keys: { root: root.keyPem, cluster: ca.keyPem, hub: hub.keyPem } };
}

/**
 * Puts the fixture's trust into the workspace as clusterTrust() leaves it: public certificates in
 * trust/, the root key in recovery/root-ca.key.age (to a new recovery recipient only), the other
 * keys in the SecretStore. Returns the recovery identity (written 0600 to `identityFile` too).
 */
export async function recoveryFixture(fx: BundleFixture, identityFile: string): Promise<{ identity: string; recipient: string }> {
  const dir = join(fx.workspace, 'trust');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'root-ca.crt'), fx.trust.rootCaPem);
  writeFileSync(join(dir, 'cluster-ca.crt'), fx.trust.clusterCaPem);
  writeFileSync(join(dir, 'hub.crt'), fx.trust.hubCertPem);
  writeFileSync(join(dir, 'hub.pin'), `${certFingerprint(fx.trust.hubCertPem)}\n`);
  const rec = await createRecoveryKey();
  writeRecoveryRecipient(fx.workspace, rec.recipient);
  writeFileSync(join(recoveryDir(fx.workspace), RECOVERY_FILES.rootKey), await encryptTo([rec.recipient], fx.trust.keys.root), { mode: 0o600 });
  const store = await openSecretStore(join(fx.workspace, 'secrets'), await ageIdentity(fx.env));
  await store.put('ca/cluster.key', fx.trust.keys.cluster);
  await store.put('enroll/hub-tls.key', fx.trust.keys.hub);
  await store.put('enroll/hmac.key', new Uint8Array(32).fill(7));
  writeFileSync(identityFile, recoveryIdentityFileText(p(fx), rec.identity, rec.recipient), { mode: 0o600 });
  return rec;
}

const p = (fx: BundleFixture): string => fx.plan.cluster.name;

/** The recovery material for writeBundle straight from a fixture workspace (as the seal builds it), with an etcd snapshot if given. */
export async function recoveryInputOf(fx: BundleFixture, etcdSnapshot?: { node: string; data: Uint8Array }): Promise<BundleRecoveryInput> {
  const store = await openSecretStore(join(fx.workspace, 'secrets'), await ageIdentity(fx.env));
  return (await recoveryInput({ workspace: fx.workspace, cluster: fx.plan.cluster.name, env: fx.env, store, ...(etcdSnapshot ? { etcdSnapshot } : {}) })).input;
}

/** Node facts for every plan node and the hub's facts, with real WireGuard public keys. */
export function factsFixture(p: Plan): { hub: HubFacts; nodes: Record<string, NodeFacts> } {
  const nodes: Record<string, NodeFacts> = {};
  for (const [i, n] of p.nodes.entries()) {
    nodes[n.name] = {
      node: n.name,
      vmid: n.vmid,
      firstboot: { node: n.name, startedAt: FIXTURE_EPOCH + 100 + i, completedAt: FIXTURE_EPOCH + 160 + i, steps: ['planes', 'agent', 'marker'] },
      sshHostKey: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${Buffer.from(sha256Hex(n.name)).toString('base64').slice(0, 43)} root@${n.name}`,
      wgPublicKeys: { wg1: wgKeyPair().publicKey, wg2: wgKeyPair().publicKey, wg3: wgKeyPair().publicKey },
    };
  }
  const hubNode = p.nodes.find((n) => n.name === p.enrollment.hub)!;
  const port = (plane: 'wg1' | 'wg2' | 'wg3'): number => p.planes.find((x) => x.name === plane)!.listenPort;
  const keys = nodes[hubNode.name]!.wgPublicKeys!;
  return {
    hub: {
      node: hubNode.name,
      lanAddress: hubNode.lan.address,
      enrollment: { address: hubNode.lan.address, port: p.enrollment.port },
      wgPublicKeys: { wg1: keys.wg1!, wg2: keys.wg2!, wg3: keys.wg3! },
      listenPorts: { wg1: port('wg1'), wg2: port('wg2'), wg3: port('wg3') },
    },
    nodes,
  };
}

/** Journal events of one deploy run in which every stage up to workload succeeded and seal runs. */
export function journalFixture(runId: string, stages: readonly string[]): PipelineEvent[] {
  const t = (s: number): string => new Date((FIXTURE_EPOCH + s) * 1000).toISOString();
  let seq = 0;
  const events: PipelineEvent[] = [{ type: 'run', state: 'started', stages: [...stages], pipeline: 'deploy', runId, seq: seq++, time: t(0) }];
  for (const [i, stage] of stages.entries()) {
    events.push({ type: 'stage', stage, state: 'running', rerun: 'safe-rerun', attempt: 0, runId, seq: seq++, time: t(i * 10) });
    if (stage !== 'seal') events.push({ type: 'stage', stage, state: 'success', rerun: 'safe-rerun', attempt: 0, inputHash: sha256Hex(stage), durationMs: 1000 + i, runId, seq: seq++, time: t(i * 10 + 5) });
  }
  return events;
}

export const DEPLOY_STAGES = ['validate', 'plan', 'build', 'provision', 'firstboot', 'backplanes', 'enroll', 'converge', 'workload', 'seal'] as const;

/** Everything writeBundle needs for lab-3, under `root` (used as KUBEDOS_WORKSPACE). */
export async function bundleFixture(root: string): Promise<BundleFixture> {
  const specText = TEMPLATES['lab-3'].text;
  const spec = parseSpec(specText).spec;
  if (!spec) throw new Error('lab-3 template does not parse');
  const p = planOf(spec);
  const env = { KUBEDOS_WORKSPACE: root };
  const workspace = clusterWorkspace(p.cluster.name, env);
  const signingKey = await buildSigningKey(p.cluster.name, env);
  const buildDir = join(workspace, 'build');
  writeFakeBuild(buildDir, p, specText, signingKey);
  mkdirSync(workspace, { recursive: true });
  writeFileSync(join(workspace, 'plan.json'), planJson(p));
  const { hub, nodes } = factsFixture(p);
  const runId = '00000000-0000-4000-8000-000000000001';
  const summaries = { build: { stage: 'build', changes: 2, notes: ['built images/lab-3-master.qcow2'] }, converge: { stage: 'converge', changes: 0, notes: [] } };
  return {
    env,
    workspace,
    specText,
    plan: p,
    buildDir,
    trust: await trustFixture(p),
    hub,
    nodes,
    stages: stagesRecord(journalFixture(runId, DEPLOY_STAGES), runId, summaries),
    signingKey,
  };
}

// Test fixture of a restore run (engine, CLI and IPC tests): a sealed lab-3 whose bundle holds an
// etcd snapshot, its kept artifact and recovery identity, and in place of the VMs a fake deploy
// DAG and a fake etcd restore. The fake DAG's seal behaves as the real one does for the re-seal:
// it writes the workspace's bundle only when there is none in place, and what it writes is the
// bundle of the cluster's CURRENT etcd (before the fake etcd restore ran: a bundle without a
// snapshot; after: one with the snapshot), so a test sees which etcd a bundle was sealed from.
export const FAKE_SNAPSHOT = Buffer.from('fake etcd snapshot with the key restore-proof');

export interface RestoreRunFixture {
  fx: BundleFixture;
  /** The bundle to restore (with FAKE_SNAPSHOT) and the kept artifact, as on the stick. */
  bundleDir: string;
  artifactDir: string;
  identityFile: string;
  /** bundle.json sha256 of what the fake seal writes before / after the fake etcd restore. */
  emptyEtcdBundleSha: string;
  restoredBundleSha: string;
  /** What ran, in order: 'deploy:<stage>' for the fake DAG's stages, 'etcd'. */
  calls: string[];
  /** Makes the fake DAG fail: the stage, on which of its passes (1 = first). */
  failDeploy?: { stage: 'provision' | 'seal'; pass: number };
  failEtcd?: boolean;
  pipelineFor: NonNullable<DeployStart['pipelineFor']>;
  etcd: (r: ClusterEtcdRestoreRequest) => Promise<RestoreIdentityProof>;
  /** sha256 of the bundle.json in `dir` (undefined: none). */
  bundleSha(dir: string): string | undefined;
}

const manifestSha = (dir: string): string | undefined => (existsSync(join(dir, BUNDLE_PATHS.manifest)) ? sha256Hex(readFileSync(join(dir, BUNDLE_PATHS.manifest))) : undefined);

/** `a` is the sealing machine's workspace root; the stick's copies go to `stick`. */
export async function restoreRunFixture(a: string, stick: string): Promise<RestoreRunFixture> {
  const fx = await bundleFixture(a);
  writeFakeBuild(fx.buildDir, fx.plan, fx.specText, fx.signingKey, true);
  const identityFile = join(stick, 'recovery.txt');
  await recoveryFixture(fx, identityFile);
  const emptyEtcd = join(stick, 'sealed-empty-etcd');
  cpSync(writeBundle({ ...fx, recovery: await recoveryInputOf(fx) }).dir, emptyEtcd, { recursive: true });
  const bundleDir = join(stick, 'bundle');
  cpSync(writeBundle({ ...fx, recovery: await recoveryInputOf(fx, { node: 'cp-1', data: FAKE_SNAPSHOT }) }).dir, bundleDir, { recursive: true });
  const artifactDir = join(stick, 'artifact');
  cpSync(fx.buildDir, artifactDir, { recursive: true });

  let etcdRestored = false;
  const passes = new Map<string, number>();
  const f: RestoreRunFixture = {
    fx,
    bundleDir,
    artifactDir,
    identityFile,
    emptyEtcdBundleSha: manifestSha(emptyEtcd)!,
    restoredBundleSha: manifestSha(bundleDir)!,
    calls: [],
    bundleSha: manifestSha,
    pipelineFor: (_source, options) => {
      const stage = (name: string, needs: string[], run: () => void): StageDefinition => ({
        name,
        description: `fake ${name}`,
        needs,
        rerun: 'safe-rerun',
        async run() {
          const pass = (passes.get(name) ?? 0) + 1;
          passes.set(name, pass);
          f.calls.push(`deploy:${name}`);
          if (f.failDeploy?.stage === name && f.failDeploy.pass === pass) throw new StageError(`fake ${name} failed on pass ${pass}`, { hint: 'fix the fake' });
          run();
          return {};
        },
      });
      return {
        stages: [
          stage('provision', [], () => undefined),
          stage('seal', ['provision'], () => {
            const bundle = join(options.workspace!, WORKSPACE_LAYOUT.bundle);
            if (!existsSync(bundle)) cpSync(etcdRestored ? bundleDir : emptyEtcd, bundle, { recursive: true });
          }),
        ],
      };
    },
    async etcd(r) {
      f.calls.push('etcd');
      if (f.failEtcd) throw new EtcdRestoreError('fake etcd on cp-1 did not come up', { step: 'health', member: 'cp-1', command: ['etcdctl', 'endpoint', 'health'], stderrTail: 'context deadline exceeded', next: 'see journalctl -u etcd on cp-1', nothingStopped: false });
      if (!r.snapshot.equals(FAKE_SNAPSHOT)) throw new Error('the fake etcd got another snapshot');
      etcdRestored = true;
      const cluster = certFingerprint(r.bundle.clusterCaPem);
      return identityProof(r, { members: ['cp-1'], snapshotSha256: sha256Hex(r.snapshot), snapshotRevision: 42, revision: 43, clusterCaFingerprint: cluster, rootCaFingerprint: certFingerprint(r.bundle.rootCaPem), ...(r.expectKey ? { expectKey: { key: r.expectKey, bytes: 5 } } : {}), alreadyRestored: false });
    },
  };
  return f;
}
