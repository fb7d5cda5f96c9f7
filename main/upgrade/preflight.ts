// The upgrade preflight (issue 18): everything `kubedos upgrade SPEC --to ARTIFACT` checks before
// any node is touched, in this order, stopping at the first refusal with one message:
//   1. the cluster has a sealed deploy (its recovery bundle holds build N's signed attestations);
//   2. N+1 is signed, by the key the cluster trusts (N's build key, or --key), and every output
//      matches its signed manifest;
//   3. N+1 was built for this cluster;
//   4. N+1 is newer than N (an older one only with --allow-downgrade; the same version never);
//   5. N+1's release channel (its signed manifest's "upgrade.channel") is the one the cluster follows
//      (the channel of the build it runs, N's signed manifest; or --channel) or a more stable one;
//   6. the cluster runs at least N+1's stepping stone (manifest "upgrade.requiresAtLeast");
//   7. the last deploy converged and nothing stopped or destroyed the cluster since;
//   8. the waves (common/upgrade/waves.ts): the etcd quorum guard and the live health (observeHealth:
//      the cluster looked at through its guest agents, main/upgrade/live-health.ts);
//   9. now is inside a maintenance window (spec.upgrades.maintenanceWindows; none: any time), unless
//      --outside-window; a dry run says when instead of refusing.
// The gates of 5, 6 and 9 are common/upgrade/policy.ts.
// Then it hands back the N → N+1 diff (packages and payload, from the two signed SBOMs) and the
// waves. It reads files only, but for the live health the caller's observeHealth looks at (read-only).
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { canonicalJson, sha256Hex } from '../../common/canonical';
import { BuildRef } from '../../common/upgrade/agent';
import { plural } from '../../common/text/plural';
import { errText } from '../../common/text/error-text';
import type { Plan } from '../../common/plan/schema';
import type { ClusterSpec, UpgradeChannel } from '../../common/spec/schema';
import type { WindowState } from '../../common/upgrade/policy';
import { channelCheck, readArtifactPolicy, spanText, steppingStone, upgradePolicyOf, utcMinute, windowAt, windowText } from '../../common/upgrade/policy';
import { compareArtifactVersions } from '../../common/upgrade/version';
import type { UpgradeHealth, Wave } from '../../common/upgrade/waves';
import { planWaves } from '../../common/upgrade/waves';
import type { BuildManifest } from '../build/attest';
import { envelopePath, MANIFEST_FILE, PLAN_FILE, PUBLIC_KEY_FILE, SBOM_FILE } from '../build/attest';
import { keyidOf } from '../build/keys';
import { plannedWith, readBuildPlan, verifyAttestationsSigned, verifyBuildSigned } from '../build/verify';
import { BUNDLE_PATHS } from '../bundle/schema';
import { BUILD_FILES_IN_BUNDLE } from '../bundle/write';
import { LOCK_FILE } from '../build/darksite/index';
import { convergedAndRunning } from '../lifecycle/record';
import { readJournal } from '../pipeline/journal';
import { etcdMembers } from '../stages/converge';
import { clusterWorkspace, makePrivateDir, WORKSPACE_LAYOUT, writePrivateFile } from '../workspace';
import type { ArtifactDiff } from './sbom-diff';
import { diffSboms, SbomDocument } from './sbom-diff';

export const REFUSAL_CODES = ['not-deployed', 'unsigned', 'bad-signature', 'corrupt', 'other-cluster', 'downgrade', 'same-version', 'channel', 'stepping-stone', 'unconverged', 'quorum', 'unhealthy', 'no-nodes', 'outside-window'] as const;
export type PreflightRefusal = (typeof REFUSAL_CODES)[number];

export interface PreflightInput {
  spec: ClusterSpec;
  plan: Plan;
  /** The N+1 build directory (kubedos build --out DIR). */
  artifactDir: string;
  allowDowngrade?: boolean;
  /** Trust this ed25519 public key (PEM) instead of the build key recorded in N's bundle. */
  publicKeyPem?: string;
  /** The live health, when the caller has it; else observeHealth is asked once the files passed (step 8). */
  health?: UpgradeHealth;
  /** Looks at the deployed cluster now (main/upgrade/live-health.ts); a throw is reported as "not observed" with its reason. Neither given: not observed. */
  observeHealth?: (n1: BuildRef) => Promise<UpgradeHealth>;
  env?: NodeJS.ProcessEnv;
  onProgress?: (file: string) => void;
  /** `--channel`: follow this channel instead of the one of the build the cluster runs (N's signed manifest). */
  channel?: UpgradeChannel;
  /** `--outside-window`: upgrade now, whatever the maintenance windows say. */
  outsideWindow?: boolean;
  /** A dry run touches nothing: a closed window is reported, not refused. */
  dryRun?: boolean;
  /** The time the windows are judged at (epoch ms; default: the clock). */
  now?: number;
}

/** The policy gates' verdicts (common/upgrade/policy.ts), for --json and the apply loop. */
export interface PreflightPolicy {
  channel: { artifact: UpgradeChannel; follows: UpgradeChannel; overridden: boolean };
  requiresAtLeast?: string;
  window: { state: WindowState; text: string; outsideWindow: boolean };
}

export interface PreflightPassed {
  ok: true;
  cluster: string;
  /** N and N+1: versions, and the digests of the signed manifests this preflight verified (what records and the run name). */
  from: BuildRef & { keyid: string };
  to: BuildRef & { keyid: string; files: number };
  /** Checks that passed, in order, one line each. */
  checks: string[];
  diff: ArtifactDiff;
  waves: Wave[];
  warnings: string[];
  policy: PreflightPolicy;
}

export interface PreflightRefused {
  ok: false;
  code: PreflightRefusal;
  message: string;
  checks: string[];
}

export type PreflightResult = PreflightPassed | PreflightRefused;

/** The spec's upgrade waves for its plan (the upgrade's and the rollback's order). */
export function upgradeWaves(spec: ClusterSpec, plan: Plan, health?: UpgradeHealth): ReturnType<typeof planWaves> {
  const members = new Set(etcdMembers(plan).map((n) => n.name));
  return planWaves({
    strategy: spec.spec.kubernetes.ha.upgradeStrategy,
    maxUnavailable: spec.spec.kubernetes.ha.maxUnavailable ?? 1,
    failureDomains: spec.spec.nodes.failureDomains.map((d) => d.name),
    nodes: plan.nodes.map((n) => ({ name: n.name, role: n.role, domain: n.domain, hub: n.hub, etcd: members.has(n.name) })),
    health: health ?? { observed: false, unhealthy: [] },
  });
}

/** Where the cluster's recovery bundle keeps build N (the sealed deploy's signed build: manifest, SBOM, key). */
export function deployedBuildDir(cluster: string, env: NodeJS.ProcessEnv): string {
  return join(clusterWorkspace(cluster, env), WORKSPACE_LAYOUT.bundle, BUNDLE_PATHS.buildDir);
}

/**
 * The build the cluster runs: its sealed deploy's (deployedBuildDir) until an upgrade completes;
 * then that upgrade's N+1, whose signed build files (what the recovery bundle keeps of a build:
 * BUILD_FILES_IN_BUNDLE and the darksite lock) the workspace keeps under UPGRADE_BUILDS_DIR/<sha256
 * of its manifest>, RUNNING_BUILD_FILE naming it once the upgrade completed (keepVerifiedBuild, returnToBuild). A completed --rollback names
 * the build it returned to (returnToBuild). What the next upgrade's checks, diff and headline take as N.
 */
export const RUNNING_BUILD_FILE = 'upgrade/runs.json';
export const UPGRADE_BUILDS_DIR = 'upgrade/builds';
const DARKSITE_LOCK = join('darksite', LOCK_FILE);

/** The directory of the build the cluster runs (see RUNNING_BUILD_FILE). Throws, saying what to do, when the workspace names a build it does not hold. */
export function runningBuildDir(cluster: string, env: NodeJS.ProcessEnv): string {
  const ws = clusterWorkspace(cluster, env);
  const pointer = join(ws, RUNNING_BUILD_FILE);
  if (!existsSync(pointer)) return deployedBuildDir(cluster, env);
  let ref: BuildRef;
  try {
    ref = BuildRef.parse(JSON.parse(readFileSync(pointer, 'utf8')));
  } catch (err) {
    throw new Error(`${pointer} does not parse (${(err as Error).message.split('\n')[0] ?? ''}): it names the build ${cluster} runs since its last completed upgrade; remove it only if ${cluster} runs its sealed deploy's build`, { cause: err });
  }
  const dir = keptBuildDir(cluster, env, ref.digest);
  const manifest = join(dir, MANIFEST_FILE);
  if (!existsSync(manifest) || sha256Hex(readFileSync(manifest)) !== ref.digest) {
    throw new Error(`${pointer} says ${cluster} runs ${ref.version} (manifest sha256 ${ref.digest.slice(0, 12)}), but ${dir} does not hold that signed manifest: copy that build's manifest.json, sbom, provenance, signatures/ and key from its build directory there, or remove ${pointer} only if ${cluster} runs its sealed deploy's build`);
  }
  return dir;
}

/** The sha256 of the sealed deploy's signed manifest; undefined without one. */
export function deployedDigest(cluster: string, env: NodeJS.ProcessEnv): string | undefined {
  const m = join(deployedBuildDir(cluster, env), MANIFEST_FILE);
  return existsSync(m) ? sha256Hex(readFileSync(m)) : undefined;
}

/** Where the workspace holds the signed files of build `ref`: the recovery bundle's build/ when the bundle names it, else its kept copy in UPGRADE_BUILDS_DIR. */
export function buildDirOf(cluster: string, env: NodeJS.ProcessEnv, ref: Pick<BuildRef, 'digest'>): string {
  return ref.digest === deployedDigest(cluster, env) ? deployedBuildDir(cluster, env) : keptBuildDir(cluster, env, ref.digest);
}

/** UPGRADE_BUILDS_DIR/<digest> of the cluster's workspace: a build's kept signed files. */
function keptBuildDir(cluster: string, env: NodeJS.ProcessEnv, digest: string): string {
  return join(clusterWorkspace(cluster, env), UPGRADE_BUILDS_DIR, digest);
}

/** The spec a kept build was made from, beside its signed files (keepBuildFiles): what a reseal of the recovery bundle seals with it. */
export const KEPT_SPEC_FILE = 'spec.yaml';

/** The files the workspace keeps of a build (what the bundle keeps: BUILD_FILES_IN_BUNDLE; the darksite lock and the plan it was made from) copied from `from` to `to` (private modes); a lock or plan is skipped when the build has none. */
function copyKeptFiles(from: string, to: string): void {
  for (const f of [...BUILD_FILES_IN_BUNDLE, DARKSITE_LOCK, PLAN_FILE]) {
    if (!existsSync(join(from, f))) continue; // the lock of a build without a darksite, the plan of an older build; the signed files are checked by whoever reads them
    makePrivateDir(dirname(join(to, f)));
    writePrivateFile(join(to, f), readFileSync(join(from, f)));
  }
}

/**
 * The signed files of the build in `buildDir` (what the bundle keeps of a build: BUILD_FILES_IN_BUNDLE
 * and the darksite lock) copied to UPGRADE_BUILDS_DIR/<sha256 of its manifest>/, with the spec it
 * was built from when `o.specText` is that spec (its sha256 is the signed manifest's inputs.spec) and
 * the plan it was made from (PLAN_FILE) when `o.plan` is that plan (its canonical JSON's sha256 is
 * inputs.planSha256). Returns the build's reference. For a build the workspace already holds
 * verified (the sealed bundle's, with the bundle's spec and plan: main/upgrade/reseal.ts); N+1 of an
 * upgrade goes through keepVerifiedBuild.
 */
export function keepBuildFiles(cluster: string, env: NodeJS.ProcessEnv, buildDir: string, o: { specText?: string; plan?: unknown } = {}, built: SignedBuild = readBuildRef(buildDir)): BuildRef {
  const ref: BuildRef = { version: built.version, digest: built.digest };
  const dir = keptBuildDir(cluster, env, ref.digest);
  copyKeptFiles(buildDir, dir);
  if (o.specText !== undefined && builtFrom(built.manifest) === sha256Hex(o.specText)) writePrivateFile(join(dir, KEPT_SPEC_FILE), o.specText);
  if (o.plan !== undefined && !existsSync(join(dir, PLAN_FILE))) {
    const text = canonicalJson(o.plan);
    if (plannedWith(built.manifest) === sha256Hex(text)) writePrivateFile(join(dir, PLAN_FILE), text);
  }
  return ref;
}

/**
 * N+1's signed files kept in the workspace before any node is touched (runUpgradeService), and
 * checked there against what the preflight verified: the copy's manifest has the verified digest,
 * its key is the key the preflight trusted (by keyid), its signatures verify with that key, and its
 * darksite lock is the one the manifest lists. The build directory can change after the preflight
 * (it is the user's, and an upgrade runs for hours): from here on the run reads the kept copy — the
 * slot images are checked against its manifest (keptOutput), the next upgrade's preflight trusts
 * its key — so what it reads is what was verified. The copy is staged beside its place and moved in
 * only once checked. Returns why it is not that build, or undefined.
 */
export function keepVerifiedBuild(cluster: string, env: NodeJS.ProcessEnv, artifactDir: string, to: BuildRef & { keyid: string }, specText?: string): string | undefined {
  if (to.digest === deployedDigest(cluster, env)) return undefined; // the sealed bundle holds it
  const dir = keptBuildDir(cluster, env, to.digest);
  const stage = `${dir}.incoming`;
  rmSync(stage, { recursive: true, force: true });
  makePrivateDir(stage);
  const why = ((): string | undefined => {
    copyKeptFiles(artifactDir, stage);
    const manifestPath = join(stage, MANIFEST_FILE);
    if (!existsSync(manifestPath)) return `it has no ${MANIFEST_FILE}`;
    const manifest = readFileSync(manifestPath);
    const digest = sha256Hex(manifest);
    if (digest !== to.digest) return `its ${MANIFEST_FILE} has sha256 ${digest.slice(0, 12)}…, the preflight verified ${to.digest.slice(0, 12)}…`;
    const keyPath = join(stage, PUBLIC_KEY_FILE);
    if (!existsSync(keyPath)) return `it has no ${PUBLIC_KEY_FILE}`;
    const pem = readFileSync(keyPath, 'utf8');
    let keyid: string;
    try {
      keyid = keyidOf(pem);
    } catch (err) {
      return `its ${PUBLIC_KEY_FILE} is not an ed25519 public key (${errText(err)})`;
    }
    if (keyid !== to.keyid) return `its ${PUBLIC_KEY_FILE} is key ${keyid.slice(0, 16)}…, the preflight trusted ${to.keyid.slice(0, 16)}…`;
    const v = verifyAttestationsSigned(stage, pem, keyid).result;
    if (!v.ok) return `${v.file ?? '?'}: ${v.reason ?? 'does not verify'}`;
    const listed = (JSON.parse(manifest.toString('utf8')) as BuildManifest).outputs.find((o) => o.path === DARKSITE_LOCK);
    if (listed) {
      const lock = join(stage, DARKSITE_LOCK);
      if (!existsSync(lock)) return `it has no ${DARKSITE_LOCK}, which its manifest lists`;
      const sha = sha256Hex(readFileSync(lock));
      if (sha !== listed.sha256) return `its ${DARKSITE_LOCK} has sha256 ${sha.slice(0, 12)}…, its manifest says ${listed.sha256.slice(0, 12)}…`;
    }
    const plan = readBuildPlan(stage, manifest);
    if (plan.kind === 'bad') return `its ${PLAN_FILE}: ${plan.why}`;
    if (specText !== undefined && builtFrom(manifest) === sha256Hex(specText)) writePrivateFile(join(stage, KEPT_SPEC_FILE), specText);
    return undefined;
  })();
  if (why) {
    rmSync(stage, { recursive: true, force: true });
    return `N+1's build directory ${artifactDir} is not the build the preflight verified (${to.version}): ${why}. Nothing was touched; run kubedos upgrade again, and its preflight verifies the build as it is now (kubedos verify ${artifactDir} names the first file that does not match)`;
  }
  rmSync(dir, { recursive: true, force: true });
  renameSync(stage, dir);
  return undefined;
}

/**
 * The size and sha256 the build `ref` signed for its output `path` (images/<cluster>-<role>.qcow2):
 * read from the workspace's verified copy of its manifest (keepVerifiedBuild; the sealed bundle's
 * for the deployed build), whose digest must still be ref's. Throws, saying what is missing.
 */
export function keptOutput(cluster: string, env: NodeJS.ProcessEnv, ref: BuildRef, path: string): { sha256: string; size: number } {
  const file = join(buildDirOf(cluster, env, ref), MANIFEST_FILE);
  if (!existsSync(file)) throw new Error(`the workspace keeps no signed manifest of ${ref.version} (${file}), so its images cannot be checked against it: run kubedos upgrade again (it keeps the build's signed files before any node is touched)`);
  const bytes = readFileSync(file);
  if (sha256Hex(bytes) !== ref.digest) throw new Error(`${file} is not the manifest of ${ref.version} this run verified (sha256 ${sha256Hex(bytes).slice(0, 12)}…, expected ${ref.digest.slice(0, 12)}…): run kubedos upgrade again`);
  const out = (JSON.parse(bytes.toString('utf8')) as BuildManifest).outputs.find((o) => o.path === path);
  if (!out) throw new Error(`${ref.version}'s signed manifest (${file}) lists no ${path}: the build has no image for this role`);
  return { sha256: out.sha256, size: out.size };
}

/** A build's reference with the bytes of its signed manifest (what builtFrom reads). */
export type SignedBuild = BuildRef & { manifest: Buffer };

/**
 * The signed manifest of the build in `dir`, read once: its version, its digest (the sha256 of the
 * manifest's bytes: what records and pointers name) and the bytes. Throws, naming the file, when
 * it cannot be read or names no version.
 */
export function readBuildRef(dir: string): SignedBuild {
  const file = join(dir, MANIFEST_FILE);
  const manifest = readFileSync(file);
  let version: unknown;
  try {
    version = (JSON.parse(manifest.toString('utf8')) as { artifactVersion?: unknown }).artifactVersion;
  } catch (err) {
    throw new Error(`${file} does not parse: ${(err as Error).message.split('\n')[0] ?? ''}`, { cause: err });
  }
  if (typeof version !== 'string') throw new Error(`${file} names no artifactVersion: not a build's signed manifest`);
  return { version, digest: sha256Hex(manifest), manifest };
}

/** sha256 of the spec a build was made from (its signed manifest's inputs.spec); undefined when it does not say. */
export function builtFrom(manifestBytes: Buffer | string): string | undefined {
  try {
    const m = JSON.parse(manifestBytes.toString()) as { inputs?: { spec?: { sha256?: unknown } } };
    return typeof m.inputs?.spec?.sha256 === 'string' ? m.inputs.spec.sha256 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `ref` named as what the cluster runs (no pointer when it is the sealed deploy's build): after a
 * completed upgrade or --rollback. A note when the workspace does not keep its
 * files (an upgrade completed before they were kept): the pointer is removed and the next upgrade
 * takes the sealed deploy's build as N.
 */
export function returnToBuild(cluster: string, env: NodeJS.ProcessEnv, ref: BuildRef): string | undefined {
  const ws = clusterWorkspace(cluster, env);
  const pointer = join(ws, RUNNING_BUILD_FILE);
  if (ref.digest === deployedDigest(cluster, env)) {
    rmSync(pointer, { force: true });
    return undefined;
  }
  if (!existsSync(join(keptBuildDir(cluster, env, ref.digest), MANIFEST_FILE))) {
    rmSync(pointer, { force: true });
    return `the workspace does not keep ${ref.version}'s signed build files (${keptBuildDir(cluster, env, ref.digest)}): the next upgrade takes the sealed deploy's build as what ${cluster} runs`;
  }
  makePrivateDir(dirname(pointer));
  writePrivateFile(pointer, `${JSON.stringify({ version: ref.version, digest: ref.digest } satisfies BuildRef, null, 2)}\n`);
  return undefined;
}

export async function upgradePreflight(o: PreflightInput): Promise<PreflightResult> {
  const env = o.env ?? process.env;
  const cluster = o.spec.metadata.name;
  const checks: string[] = [];
  const refuse = (code: PreflightRefusal, message: string): PreflightRefused => ({ ok: false, code, message, checks });
  const workspace = clusterWorkspace(cluster, env);

  // 1. N: the build the cluster runs, as its recovery bundle recorded it (or its last completed upgrade: runningBuildDir).
  let bundleBuild: string;
  try {
    bundleBuild = runningBuildDir(cluster, env);
  } catch (err) {
    return refuse('not-deployed', (err as Error).message);
  }
  if (!existsSync(join(bundleBuild, MANIFEST_FILE))) {
    return refuse('not-deployed', `${cluster} has no sealed deploy (no ${join(bundleBuild, MANIFEST_FILE)}): an upgrade starts from the build a deploy recorded in its recovery bundle. Deploy it first: kubedos deploy SPEC`);
  }
  const bundleKeyPem = existsSync(join(bundleBuild, PUBLIC_KEY_FILE)) ? readFileSync(join(bundleBuild, PUBLIC_KEY_FILE), 'utf8') : undefined;
  const trustedPem = o.publicKeyPem ?? bundleKeyPem;
  if (!trustedPem) return refuse('not-deployed', `${cluster}'s recovery bundle has no build key (${join(bundleBuild, PUBLIC_KEY_FILE)}); pass the key its builds are signed with: --key PUB.pem`);
  let trustedKeyid: string;
  try {
    trustedKeyid = keyidOf(trustedPem);
  } catch (err) {
    return refuse('bad-signature', `the trusted key is not an ed25519 public key: ${(err as Error).message}`);
  }
  const { result: current, signed: signedN } = verifyAttestationsSigned(bundleBuild, trustedPem, trustedKeyid);
  if (!current.ok || !signedN) return refuse('bad-signature', `the deployed build N in ${bundleBuild} does not verify with the trusted key ${trustedKeyid.slice(0, 16)}…: ${current.file}: ${current.reason}. Was --key the cluster's key?`);
  // What N's and N+1's signatures covered (the envelopes' own bytes) is what is read from here on.
  const manifestN = JSON.parse(signedN[MANIFEST_FILE]!.toString('utf8')) as BuildManifest;
  checks.push(`deployed: ${cluster} runs artifact ${manifestN.artifactVersion} (build key ${trustedKeyid.slice(0, 16)}…)`);

  // 2. N+1's signatures, with the key the cluster trusts.
  const envelope = join(o.artifactDir, envelopePath(MANIFEST_FILE));
  if (!existsSync(join(o.artifactDir, MANIFEST_FILE))) return refuse('unsigned', `${o.artifactDir} is not a build directory (no ${MANIFEST_FILE}): build N+1 with kubedos build --spec SPEC --out DIR`);
  if (!existsSync(envelope)) return refuse('unsigned', `N+1 is unsigned: ${o.artifactDir} has no ${envelopePath(MANIFEST_FILE)}. Only a build signed by the cluster's build key can be installed; build it with kubedos build`);
  const ownKeyPath = join(o.artifactDir, PUBLIC_KEY_FILE);
  const ownKeyid = ((): string | undefined => {
    try {
      return existsSync(ownKeyPath) ? keyidOf(readFileSync(ownKeyPath, 'utf8')) : undefined;
    } catch {
      return undefined;
    }
  })();
  const { result: verified, signed: signedN1 } = await verifyBuildSigned(o.artifactDir, { publicKeyPem: trustedPem, ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
  if (!verified.ok) {
    const file = verified.file ?? '?';
    if (file.startsWith('signatures/') || /signature|signed/.test(verified.reason ?? '')) {
      const who = ownKeyid && ownKeyid !== trustedKeyid ? `it is signed by key ${ownKeyid.slice(0, 16)}…, the cluster trusts ${trustedKeyid.slice(0, 16)}…` : `${file}: ${verified.reason}`;
      return refuse('bad-signature', `N+1 is not signed by ${cluster}'s build key: ${who}. Build N+1 in this cluster's workspace (same build key), or pass the right key with --key`);
    }
    return refuse('corrupt', `N+1 does not match its signed manifest: ${file}: ${verified.reason}. Copy the build again (kubedos verify ${o.artifactDir} names the first mismatch)`);
  }
  checks.push(`signed: ${verified.checked} files of N+1 match its manifest, signatures by the cluster's key ${trustedKeyid.slice(0, 16)}…`);
  if (!signedN1) throw new Error('internal: a passed verification without the signed files\' bytes');
  const manifestN1 = JSON.parse(signedN1[MANIFEST_FILE]!.toString('utf8')) as BuildManifest;
  const n1: BuildRef = { version: manifestN1.artifactVersion, digest: sha256Hex(signedN1[MANIFEST_FILE]!) };

  // 3. For this cluster.
  if (manifestN1.cluster !== cluster) {
    return refuse('other-cluster', `N+1 was built for cluster ${manifestN1.cluster}, not ${cluster} (manifest.json "cluster"): its plan, addresses and identities are another cluster's. Build N+1 from ${cluster}'s spec`);
  }
  checks.push(`cluster: N+1 was built for ${cluster}`);

  // 4. Newer.
  const order = compareArtifactVersions(manifestN1.artifactVersion, manifestN.artifactVersion);
  if (order === 0) {
    return refuse(
      'same-version',
      `N+1 is artifact ${manifestN1.artifactVersion}, the version ${cluster} already runs: nodes, metrics and rollbacks tell builds apart by version. Raise metadata.artifactVersion in the spec and build again`,
    );
  }
  if (order < 0 && !o.allowDowngrade) {
    return refuse('downgrade', `N+1 (${manifestN1.artifactVersion}) is older than the deployed ${manifestN.artifactVersion}: a downgrade. If that is what you want, add --allow-downgrade`);
  }
  checks.push(order < 0 ? `version: ${manifestN.artifactVersion} → ${manifestN1.artifactVersion} (a downgrade, allowed by --allow-downgrade)` : `version: ${manifestN.artifactVersion} → ${manifestN1.artifactVersion}`);

  // 5. The release channel: the cluster follows the channel of the build it runs (N's signed
  // manifest), not the spec handed to this command — N+1's spec cannot move the cluster to its own
  // channel by itself; --channel does, for this run, and N+1's channel is the cluster's from then on.
  const runsPolicy = readArtifactPolicy(manifestN);
  if (!runsPolicy.ok) return refuse('channel', `N ${manifestN.artifactVersion} (the build ${cluster} runs): ${runsPolicy.message}`);
  const artifactPolicy = readArtifactPolicy(manifestN1);
  if (!artifactPolicy.ok) return refuse('channel', `N+1 ${manifestN1.artifactVersion}: ${artifactPolicy.message}. Build N+1 with this foundry`);
  const { channel: artifactChannel, requiresAtLeast } = artifactPolicy.policy;
  const runsChannel = runsPolicy.policy.channel;
  const channel = channelCheck(runsChannel, artifactChannel, o.channel);
  const follows = `${cluster} follows ${channel.follows}${o.channel && o.channel !== runsChannel ? ` (--channel; the build it runs, ${manifestN.artifactVersion}, is on ${runsChannel})` : ` (the channel of ${manifestN.artifactVersion}, the build it runs)`}`;
  if (!channel.ok) {
    return refuse('channel', `N+1 ${manifestN1.artifactVersion} is on channel ${artifactChannel}, ${follows}: a cluster takes builds of its channel or a more stable one (stable, candidate, edge). To move ${cluster} to ${artifactChannel}, pass --channel ${artifactChannel}`);
  }
  checks.push(`channel: N+1 is on ${artifactChannel}, ${follows}`);

  // 6. The stepping stone.
  const stone = steppingStone(manifestN.artifactVersion, { version: manifestN1.artifactVersion, ...(requiresAtLeast ? { requiresAtLeast } : {}) });
  if (!stone.ok) {
    return refuse(
      'stepping-stone',
      `N+1 ${manifestN1.artifactVersion} can only be installed on a cluster that runs ${stone.requiresAtLeast} or later (its stepping stone: upgrades.requiresAtLeast of its spec, signed in its manifest), and ${cluster} runs ${manifestN.artifactVersion}. Upgrade ${cluster} to a ${stone.requiresAtLeast} build first (kubedos upgrade SPEC --to BUILD_DIR), then to ${manifestN1.artifactVersion}`,
    );
  }
  checks.push(stone.requiresAtLeast ? `stepping stone: N+1 needs ${stone.requiresAtLeast} or later, ${cluster} runs ${manifestN.artifactVersion}` : 'stepping stone: none (N+1 installs over any older version)');

  // 5. Converged.
  const journalPath = join(workspace, WORKSPACE_LAYOUT.journal);
  const events = readJournal(journalPath);
  const state = convergedAndRunning(events, { cluster, journalPath, spec: 'SPEC', action: 'An upgrade' });
  if (!state.ok) return refuse('unconverged', `${state.message}, then upgrade`);
  checks.push(`converged: ${state.note}`);

  // 6. The waves, against the live health.
  const health = o.health ?? (o.observeHealth ? await o.observeHealth(n1).catch((err: unknown): UpgradeHealth => ({ observed: false, unhealthy: [], note: `looking at the cluster failed: ${String((err as Error).message ?? err).split('\n')[0]!.slice(0, 300)}` })) : undefined);
  const waves = upgradeWaves(o.spec, o.plan, health);
  if (!waves.ok) return refuse(waves.code, waves.message);
  if (health?.observed) checks.push(`live health: ${health.note ?? 'every node healthy'}`);
  checks.push(`waves: ${waves.waves.length}, strategy ${o.spec.spec.kubernetes.ha.upgradeStrategy}, at most ${plural(o.spec.spec.kubernetes.ha.maxUnavailable ?? 1, 'node')} down at once`);

  // 9. The maintenance window.
  const now = o.now ?? Date.now();
  const windowState = windowAt(now, upgradePolicyOf(o.spec).maintenanceWindows);
  const text = windowText(now, windowState);
  if (!windowState.open && !o.outsideWindow && !o.dryRun) {
    return refuse('outside-window', `${cluster} is outside every maintenance window (spec.upgrades.maintenanceWindows): the next opens ${utcMinute(windowState.next)} (in ${spanText(windowState.next - now)}). Rerun then, or pass --outside-window to upgrade now`);
  }
  const note = windowState.open ? (o.outsideWindow ? ' (--outside-window given: not needed now, and the run does not stop when the window closes)' : '') : o.outsideWindow ? ' — upgrading now: --outside-window' : ' — a dry run; the upgrade itself is refused until then (or give --outside-window)';
  checks.push(`window: ${text}${note}`);

  const diff = diffSboms(SbomDocument.parse(JSON.parse(signedN[SBOM_FILE]!.toString('utf8'))), SbomDocument.parse(JSON.parse(signedN1[SBOM_FILE]!.toString('utf8'))));
  return {
    ok: true,
    cluster,
    from: { version: manifestN.artifactVersion, digest: sha256Hex(signedN[MANIFEST_FILE]!), keyid: trustedKeyid },
    to: { ...n1, keyid: verified.keyid ?? trustedKeyid, files: verified.checked },
    checks,
    diff,
    waves: waves.waves,
    warnings: waves.warnings,
    policy: { channel: { artifact: artifactChannel, follows: channel.follows, overridden: channel.overridden }, ...(requiresAtLeast ? { requiresAtLeast } : {}), window: { state: windowState, text, outsideWindow: Boolean(o.outsideWindow) } },
  };
}
