// Restore: rebuild a cluster's workspace from its recovery bundle and kept artifact, on a fresh
// machine, with the SAME cluster identity (same root and cluster CA, same hub pin, same build
// signing key, same plan hash). Everything is checked offline FIRST, and a refusal writes and
// destroys nothing, with one message each:
//   1. the bundle verifies (signature, every file's sha256: one flipped byte is named);
//   2. it is the cluster meant: --cluster NAME, and a workspace already there for that name;
//   3. the recovery identity opens it (wrong key: refused) and its keys are its certificates' keys;
//   4. the artifact verifies (its own signatures and every output) and is the build the bundle
//      names (same manifest sha256, same signing key).
// Then restoreWorkspace() makes the fresh workspace: spec, plan, trust certificates, the root key
// as the bundle keeps it (still encrypted to the recovery recipient only), every secret back in
// the SecretStore under this machine's workspace identity, and the artifact as its build/.
// The deploy pipeline then runs on it like any deploy (the CLI: kubedos restore … --target).
import { cpSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { sha256Hex } from '../../common/canonical';
import { planJson, plan as planOf } from '../../common/plan/index';
import { parseSpec } from '../../common/spec/index';
import type { OpenedRecovery } from '../bundle/restorable';
import { checkRestorable, openRecovery } from '../bundle/restorable';
import { BUNDLE_PATHS, BundleManifest } from '../bundle/schema';
import { verifyBundle } from '../bundle/verify';
import { MANIFEST_FILE, PUBLIC_KEY_FILE } from '../build/attest';
import { listFiles } from '../build/files';
import { verifyBuild } from '../build/verify';
import { certFingerprint } from '../trust/ca';
import { ageIdentity } from '../trust/identity';
import { readIdentityFile, RECOVERY_FILES, recoveryDir, writeRecoveryRecipient } from '../trust/recovery';
import { openSecretStore } from '../trust/secret-store';
import { clusterWorkspace, ensureClusterWorkspace, makePrivateDir, WORKSPACE_LAYOUT, writePrivateFile } from '../workspace';

/** A restore refused before anything was written: which check, why, and what to do. */
export class RestoreRefused extends Error {
  constructor(
    readonly check: 'bundle' | 'cluster' | 'recovery-key' | 'artifact' | 'workspace',
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = 'RestoreRefused';
  }

  /** The one line the CLI and the workbench's restore run show. */
  get summary(): string {
    return `restore refused (${this.check}): ${this.message}; nothing was written`;
  }
}

/**
 * The recovery identity from the file the user gave, for a restore; a file that is missing, open to
 * others or holds no age identity refuses the restore before anything is read or written (the CLI
 * and the workbench's restore show the same refusal).
 */
export function readRestoreIdentity(file: string): string {
  try {
    return readIdentityFile(file);
  } catch (err) {
    throw new RestoreRefused('recovery-key', (err as Error).message, 'give the file holding the recovery identity (AGE-SECRET-KEY-1…), e.g. the one kubedos recovery-key --out wrote');
  }
}

export interface RestoreRequest {
  bundleDir: string;
  artifactDir: string;
  /** The recovery identity (AGE-SECRET-KEY-1…). */
  identity: string;
  /** The cluster the user means to restore; refused when the bundle is another cluster's. */
  expectCluster?: string;
  env: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

export interface VerifiedRestore {
  cluster: string;
  manifest: BundleManifest;
  opened: OpenedRecovery;
  rootFingerprint: string;
  planSha256: string;
  workspace: string;
  checks: string[];
  /** The workspace is the one an earlier run of this restore made (its timeline names this bundle): resume it. */
  resumed: boolean;
}

/** One phase of the restore's own timeline (rebuild-the-world MTTR). */
export interface RestorePhase {
  name: string;
  startedAtMs: number;
  durationMs: number;
  detail: string;
}

/** Every offline check, in order; throws RestoreRefused on the first that fails. Writes nothing. */
export async function verifyRestore(r: RestoreRequest): Promise<VerifiedRestore> {
  const checks: string[] = [];
  // 1. The bundle itself.
  if (!existsSync(join(r.bundleDir, BUNDLE_PATHS.manifest))) throw new RestoreRefused('bundle', `${r.bundleDir} is not a recovery bundle (no bundle.json)`, 'point at the bundle/ directory the seal stage wrote (or the copy on the stick)');
  const v = await verifyBundle(r.bundleDir);
  if (!v.ok) throw new RestoreRefused('bundle', `the bundle does not verify: ${v.file}: ${v.reason}`, 'use an intact copy of the bundle (the stick\'s receipt, or another copy); nothing was written');
  checks.push(...v.checks.map((c) => `bundle ${c}`));
  const manifest = BundleManifest.parse(JSON.parse(readFileSync(join(r.bundleDir, BUNDLE_PATHS.manifest), 'utf8')));
  const cluster = manifest.cluster;
  const rootPem = readFileSync(join(r.bundleDir, BUNDLE_PATHS.rootCa), 'utf8');
  const rootFingerprint = certFingerprint(rootPem);

  // 2. The cluster meant, and no other cluster's workspace in the way.
  if (r.expectCluster !== undefined && r.expectCluster !== cluster) {
    throw new RestoreRefused('cluster', `the bundle is from cluster ${cluster} (root CA ${rootFingerprint}), not ${r.expectCluster}`, `restore ${r.expectCluster} from its own bundle, or drop --cluster to restore ${cluster}`);
  }
  const workspace = clusterWorkspace(cluster, r.env);
  const existingRoot = join(workspace, WORKSPACE_LAYOUT.trust, 'root-ca.crt');
  if (existsSync(existingRoot)) {
    const have = certFingerprint(readFileSync(existingRoot, 'utf8'));
    if (have !== rootFingerprint) {
      throw new RestoreRefused('cluster', `the workspace ${workspace} holds a cluster ${cluster} with root CA ${have}; the bundle is from another cluster of that name (root CA ${rootFingerprint})`, 'restore into an empty workspace (KUBEDOS_WORKSPACE=NEW_DIR) or check which bundle belongs to this cluster');
    }
  }
  // A rerun of a restore that stopped part-way (deploy or etcd) resumes in its own workspace: same
  // root CA, and the timeline that restore wrote names this very bundle.
  const resumed = existsSync(existingRoot) && restoredFrom(workspace) === sha256Hex(readFileSync(join(r.bundleDir, BUNDLE_PATHS.manifest)));
  const occupied = existsSync(workspace) && !resumed ? readdirSync(workspace).filter((n) => n !== '.deploy.lock') : [];
  if (occupied.length) {
    throw new RestoreRefused('workspace', `the workspace ${workspace} is not empty (${occupied.slice(0, 4).join(', ')}${occupied.length > 4 ? ', …' : ''}); a restore makes a fresh one`, 'point KUBEDOS_WORKSPACE at an empty directory, or move the old workspace away (kubedos destroy exports what it holds)');
  }
  checks.push(resumed ? `cluster: ${cluster}, root CA ${rootFingerprint}; workspace ${workspace} was restored from this bundle before: resuming it` : `cluster: ${cluster}, root CA ${rootFingerprint}; workspace ${workspace} is empty`);

  // 3. The recovery identity opens it, and the keys are the certificates' keys.
  const restorable = await checkRestorable(r.bundleDir, { identity: r.identity });
  if (!restorable.ok) {
    const wrongKey = /cannot decrypt/.test(restorable.reason ?? '');
    throw new RestoreRefused(
      wrongKey ? 'recovery-key' : 'bundle',
      wrongKey ? `the recovery key does not open this bundle (${restorable.file}); the bundle is encrypted to ${restorable.recipient ?? 'another recipient'}` : `the bundle cannot restore this cluster: ${restorable.file}: ${restorable.reason}`,
      wrongKey ? 'use the recovery identity whose recipient the bundle names (recovery/recipient.txt); kubedos recovery-key prints a workspace\'s recipient' : 'seal the cluster again with this version, then restore from the new bundle',
    );
  }
  checks.push(...restorable.checks);
  const opened = await openRecovery(r.bundleDir, r.identity, manifest);

  // 4. The artifact: intact, and the build the bundle names.
  const artifactManifest = join(r.artifactDir, MANIFEST_FILE);
  if (!existsSync(artifactManifest)) throw new RestoreRefused('artifact', `${r.artifactDir} is not a build directory (no ${MANIFEST_FILE})`, 'point --artifact at the kept build directory (ISOs/images with manifest.json and signatures/)');
  const bundleKey = readFileSync(join(r.bundleDir, BUNDLE_PATHS.publicKey), 'utf8');
  const ab = await verifyBuild(r.artifactDir, { publicKeyPem: bundleKey });
  if (!ab.ok) throw new RestoreRefused('artifact', `the artifact does not verify against the bundle's signing key: ${ab.file}: ${ab.reason}`, 'use the artifact kept with this bundle (kubedos verify ARTIFACT says what is wrong with this one)');
  const artifactSha = sha256Hex(readFileSync(artifactManifest));
  if (artifactSha !== manifest.buildManifestSha256) {
    let what = '';
    try {
      const m = JSON.parse(readFileSync(artifactManifest, 'utf8')) as { cluster?: string; artifactVersion?: string };
      what = ` (it is ${String(m.cluster)} artifact ${String(m.artifactVersion)}; the bundle names ${cluster} artifact ${manifest.artifactVersion})`;
    } catch {
      /* named by hash alone */
    }
    throw new RestoreRefused('artifact', `the artifact's manifest.json sha256 ${artifactSha} is not the build the bundle names (${manifest.buildManifestSha256})${what}`, 'use the build directory this bundle was sealed from');
  }
  checks.push(`artifact: ${ab.checked} outputs verify with key ${ab.keyid}; manifest.json is the build the bundle names`);
  return { cluster, manifest, opened, rootFingerprint, planSha256: manifest.planSha256, workspace, checks, resumed };
}

/**
 * Makes the fresh workspace from a verified restore: spec, plan, trust, recovery recipient and root
 * key (still encrypted to the recipient only), every secret in the SecretStore (this machine's
 * workspace identity), the artifact as build/ (hard links when on the same disk). Returns the
 * spec path a deploy then takes.
 */
export async function restoreWorkspace(v: VerifiedRestore, r: RestoreRequest): Promise<{ workspace: string; specPath: string; secrets: number; artifactFiles: number }> {
  const ws = ensureClusterWorkspace(v.cluster, r.env);
  const b = (p: string): string => join(r.bundleDir, p);
  const specText = readFileSync(b(BUNDLE_PATHS.spec), 'utf8');
  const specPath = join(ws, 'spec.yaml');
  writeFileSync(specPath, specText, { mode: 0o644 });
  // The plan again from the spec: it must hash like the bundle's plan.json (same plan, same identity).
  const spec = parseSpec(specText).spec!;
  const planText = readFileSync(b(BUNDLE_PATHS.plan), 'utf8');
  if (planJson(planOf(spec)) !== planText) {
    throw new Error(`the bundle's spec.yaml plans to a different plan than its plan.json with this version of kubedos; restore with the version that sealed it`);
  }
  writeFileSync(join(ws, WORKSPACE_LAYOUT.plan), planText);

  const trust = makePrivateDir(join(ws, WORKSPACE_LAYOUT.trust));
  for (const [from, to] of [
    [BUNDLE_PATHS.rootCa, 'root-ca.crt'],
    [BUNDLE_PATHS.clusterCa, 'cluster-ca.crt'],
    [BUNDLE_PATHS.hubCert, 'hub.crt'],
    [BUNDLE_PATHS.hubPin, 'hub.pin'],
    [BUNDLE_PATHS.revoked, 'revoked.json'],
  ] as const) {
    if (existsSync(b(from))) writeFileSync(join(trust, to), readFileSync(b(from)));
  }
  writeRecoveryRecipient(ws, v.opened.recipient);
  writePrivateFile(join(recoveryDir(ws), RECOVERY_FILES.rootKey), readFileSync(b(BUNDLE_PATHS.recoveryRootKey)));
  const store = await openSecretStore(join(ws, WORKSPACE_LAYOUT.secrets), await ageIdentity(r.env));
  for (const [name, value] of Object.entries(v.opened.secrets).sort(([a], [c]) => a.localeCompare(c))) await store.put(name, value);

  // The artifact as the workspace's build directory.
  const build = join(ws, WORKSPACE_LAYOUT.build);
  const files = listFiles(r.artifactDir);
  for (const f of files) {
    const to = join(build, f);
    mkdirSync(dirname(to), { recursive: true });
    try {
      linkSync(join(r.artifactDir, f), to);
    } catch {
      cpSync(join(r.artifactDir, f), to, { preserveTimestamps: true });
    }
  }
  if (!existsSync(join(build, PUBLIC_KEY_FILE))) throw new Error(`the artifact copy in ${build} has no ${PUBLIC_KEY_FILE}`);
  return { workspace: ws, specPath, secrets: Object.keys(v.opened.secrets).length, artifactFiles: files.length };
}

/** The bundle sha256 an earlier restore's timeline names, if the workspace holds one. */
export function restoredFrom(workspace: string): string | undefined {
  try {
    const t = JSON.parse(readFileSync(join(workspace, 'restore-timeline.json'), 'utf8')) as { bundleSha256?: unknown };
    return typeof t.bundleSha256 === 'string' ? t.bundleSha256 : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the restore's timeline beside the journal (restore-timeline.json) and returns its path. */
export function writeRestoreTimeline(workspace: string, t: { cluster: string; bundleSha256: string; rootFingerprint: string; phases: RestorePhase[]; proof?: unknown }): string {
  const path = join(workspace, 'restore-timeline.json');
  const total = t.phases.reduce((s, p) => s + p.durationMs, 0);
  writeFileSync(path, `${JSON.stringify({ ...t, totalMs: total }, null, 2)}\n`);
  return path;
}

/** Bytes of the artifact (for the restore's progress line). */
export function artifactBytes(dir: string): number {
  return listFiles(dir).reduce((s, f) => s + statSync(join(dir, f)).size, 0);
}
