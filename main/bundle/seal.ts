// sealBundle: the recovery bundle written, verified where it was staged, proven restorable and only
// then put in place: one rule for the deploy's seal stage (main/stages/seal.ts) and the reseal after
// a completed upgrade or rollback (main/upgrade/reseal.ts). The caller says what is sealed (spec,
// plan, build, node facts, the run record) and how to take an etcd snapshot; the public trust
// files, the build signing key, the recovery material and the drill history come from the workspace.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { sha256Hex } from '../../common/canonical';
import type { Plan } from '../../common/plan/index';
import { firstFew } from '../../common/text/first-few';
import { plural } from '../../common/text/plural';
import { buildSigningKey } from '../build/keys';
import { readDrillHistory } from '../drills/history';
import type { HubFacts, NodeFacts } from '../node-facts';
import { ageIdentity, openSecretStore } from '../trust/index';
import { certFingerprint } from '../trust/ca';
import { recoveryIdentity } from '../trust/recovery';
import { RevocationList } from '../trust/revocation';
import { WORKSPACE_LAYOUT } from '../workspace';
import { recoveryInput } from './recovery-input';
import { checkRestorable } from './restorable';
import type { StagesRecord } from './schema';
import { BUNDLE_PATHS, BundleManifest } from './schema';
import { verifyBundle } from './verify';
import type { WrittenBundle } from './write';
import { BundleInputError, prepareBundle } from './write';

/** Public trust material the enroll stage leaves in <workspace>/trust (PEM; the pin is certFingerprint(hub.crt)). */
export const SEAL_TRUST_FILES = { root: 'root-ca.crt', intermediate: 'cluster-ca.crt', hub: 'hub.crt', pin: 'hub.pin', revoked: 'revoked.json' } as const;

/** Files that differ on every run by nature: the run record and the etcd snapshot. */
const PER_RUN_FILES = new Set<string>([BUNDLE_PATHS.stages, BUNDLE_PATHS.etcdSnapshot]);

/** An etcd snapshot for the bundle, or why there is none (main/stages/seal-snapshot.ts). */
export type SealSnapshot = { node: string; data: Buffer } | { skipped: string };

export interface SealInput {
  /** The cluster's workspace (<workspace root>/clusters/<name>). */
  workspace: string;
  /** The environment: KUBEDOS_WORKSPACE (drill history), the build key, the recovery identity. */
  env: NodeJS.ProcessEnv;
  specText: string;
  plan: Plan;
  /** The build the cluster runs: its signed files are sealed (main/bundle/write.ts BUILD_FILES_IN_BUNDLE). */
  buildDir: string;
  hub: HubFacts;
  nodes: Readonly<Record<string, NodeFacts>>;
  stages: StagesRecord;
  snapshot: () => Promise<SealSnapshot>;
  log: (line: string) => void;
  progress?: (fraction: number, what?: string) => void;
}

export interface SealResult {
  written: WrittenBundle;
  /** Files that say something new since the bundle in place (stages.json and the snapshot aside). */
  changes: number;
  /** What was sealed, for the caller's summary (also logged). */
  notes: string[];
}

const fileSha = (path: string): string | null => (existsSync(path) ? sha256Hex(readFileSync(path)) : null);

/** sha256 of each trust file the seal reads (null when absent): what the seal stage's input hash covers. */
export function trustFileDigests(workspace: string): Record<string, string | null> {
  const dir = join(workspace, WORKSPACE_LAYOUT.trust);
  return Object.fromEntries(Object.values(SEAL_TRUST_FILES).map((f) => [f, fileSha(join(dir, f))]));
}

/** path -> sha256 of the bundle in place, or undefined when there is none (or it is unreadable). */
function previousFiles(bundleFile: string): Map<string, string> | undefined {
  if (!existsSync(bundleFile)) return undefined;
  try {
    const m = BundleManifest.safeParse(JSON.parse(readFileSync(bundleFile, 'utf8')));
    return m.success ? new Map(m.data.files.map((f) => [f.path, f.sha256])) : undefined;
  } catch {
    return undefined;
  }
}

/** The public trust files as the seal takes them, checked (present, PEM, pin, revocations of this cluster). */
function readTrust(workspace: string, cluster: string): { rootCaPem: string; clusterCaPem: string; hubCertPem: string; revocations?: RevocationList; hubPin: string } {
  const trustDir = join(workspace, WORKSPACE_LAYOUT.trust);
  const trustPath = (f: string): string => join(trustDir, f);
  const absent = [SEAL_TRUST_FILES.root, SEAL_TRUST_FILES.intermediate, SEAL_TRUST_FILES.hub].filter((f) => !existsSync(trustPath(f)));
  if (absent.length) {
    throw new BundleInputError(
      `${absent.join(', ')} missing in ${trustDir}`,
      "the enroll stage writes the cluster's public certificates there (root-ca.crt, cluster-ca.crt, hub.crt); run kubedos deploy again so enroll runs, or restore them from the SecretStore's recovery copy",
    );
  }
  const hubCertPem = readFileSync(trustPath(SEAL_TRUST_FILES.hub), 'utf8');
  let hubPin: string;
  try {
    hubPin = certFingerprint(hubCertPem);
  } catch (err) {
    throw new BundleInputError(`${trustPath(SEAL_TRUST_FILES.hub)} is not a PEM certificate: ${(err as Error).message}`, 'run kubedos deploy again so enroll rewrites it');
  }
  if (existsSync(trustPath(SEAL_TRUST_FILES.pin))) {
    const pinned = readFileSync(trustPath(SEAL_TRUST_FILES.pin), 'utf8').trim();
    if (pinned !== hubPin) throw new BundleInputError(`${trustPath(SEAL_TRUST_FILES.pin)} says ${pinned}, but hub.crt is ${hubPin}`, 'the hub certificate changed after its pin was written; run kubedos deploy again so enroll re-pins the nodes');
  }
  let revocations: RevocationList | undefined;
  const revokedFile = trustPath(SEAL_TRUST_FILES.revoked);
  if (existsSync(revokedFile)) {
    let parsed;
    try {
      parsed = RevocationList.safeParse(JSON.parse(readFileSync(revokedFile, 'utf8')));
    } catch (err) {
      throw new BundleInputError(`${revokedFile} is not JSON: ${(err as Error).message}`, 'restore it (kubedos-enroll-hub keeps the same list in /etc/kubedos/enroll/revoked.json on the master)');
    }
    if (!parsed.success) throw new BundleInputError(`${revokedFile} is not a revocation list: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    if (parsed.data.cluster !== cluster) throw new BundleInputError(`${revokedFile} is for cluster ${parsed.data.cluster}, not ${cluster}`);
    revocations = parsed.data;
  }
  return {
    rootCaPem: readFileSync(trustPath(SEAL_TRUST_FILES.root), 'utf8'),
    clusterCaPem: readFileSync(trustPath(SEAL_TRUST_FILES.intermediate), 'utf8'),
    hubCertPem,
    hubPin,
    ...(revocations ? { revocations } : {}),
  };
}

/**
 * Writes the cluster's recovery bundle, verifies it in its staging directory with the checks of
 * `kubedos verify`, proves it restorable (every encrypted file opened when the recovery identity is
 * at hand) and only then moves it in: a bundle that does not verify never replaces a good one.
 * Throws BundleInputError (message and hint) for inputs that cannot make a bundle.
 */
export async function sealBundle(i: SealInput): Promise<SealResult> {
  const cluster = i.plan.cluster.name;
  const progress = i.progress ?? (() => undefined);
  const { hubPin, ...trust } = readTrust(i.workspace, cluster);
  const bundleDir = join(i.workspace, WORKSPACE_LAYOUT.bundle);
  const before = previousFiles(join(bundleDir, BUNDLE_PATHS.manifest));
  progress(0.1, 'writing the bundle');
  const signingKey = await buildSigningKey(cluster, i.env, { log: i.log });
  progress(0.05, 'taking an etcd snapshot');
  const snap = await i.snapshot();
  if ('skipped' in snap) i.log(`etcd snapshot: none in this bundle (${snap.skipped})`);
  else i.log(`etcd snapshot: ${snap.data.length} bytes from ${snap.node}, encrypted to the recovery recipient`);
  const store = await openSecretStore(join(i.workspace, WORKSPACE_LAYOUT.secrets), await ageIdentity(i.env));
  // The drill history of this workspace root (<root>/clusters/<name>), whatever KUBEDOS_WORKSPACE says.
  const drills = readDrillHistory(cluster, { ...i.env, KUBEDOS_WORKSPACE: dirname(dirname(i.workspace)) });
  const recovery = await recoveryInput({
    workspace: i.workspace,
    cluster,
    env: i.env,
    store,
    ...(before ? { previousBundleDir: bundleDir } : {}),
    ...('skipped' in snap ? {} : { etcdSnapshot: snap }),
  });
  const prepared = prepareBundle({
    workspace: i.workspace,
    specText: i.specText,
    plan: i.plan,
    buildDir: i.buildDir,
    trust,
    hub: i.hub,
    nodes: i.nodes,
    stages: i.stages,
    signingKey,
    recovery: recovery.input,
    ...(drills.records.length ? { drills: drills.records } : {}),
  });

  progress(0.6, 'verifying the bundle');
  const v = await verifyBundle(prepared.stagingDir);
  for (const line of v.checks) i.log(`verified ${line}`);
  if (!v.ok) {
    prepared.discard();
    throw new BundleInputError(`the new recovery bundle does not verify: ${v.file}: ${v.reason}`, `the bundle in ${prepared.dir} was left as it was; fix the input named above and seal again`);
  }
  // Seal re-proves restore: the bundle carries everything a restore decrypts, encrypted to the
  // recovery recipient; with the recovery identity at hand, every file is opened and checked.
  progress(0.8, 'checking the bundle is complete for a restore');
  const r = await checkRestorable(prepared.stagingDir, { identity: recoveryIdentity(i.workspace, i.env) });
  for (const line of r.checks) i.log(`restorable: ${line}`);
  if (!r.ok) {
    prepared.discard();
    throw new BundleInputError(`the new recovery bundle could not restore this cluster: ${r.file}: ${r.reason}`, `the bundle in ${prepared.dir} was left as it was; check the recovery recipient (kubedos recovery-key SPEC) and seal again`);
  }
  i.log(
    r.level === 'decrypted'
      ? 'restorable: proven with the recovery identity (every encrypted file opened)'
      : 'restorable: checked without the recovery identity (it is offline): files present and age-encrypted; set KUBEDOS_RECOVERY_IDENTITY_FILE for a run to have them opened',
  );
  const written = prepared.commit();
  await recovery.remember();
  // stages.json names the sealing run, so it differs on every run; count the files that say something new.
  const changed = written.manifest.files.filter((f) => !PER_RUN_FILES.has(f.path) && before?.get(f.path) !== f.sha256).map((f) => f.path);
  const removed = [...(before?.keys() ?? [])].filter((p) => !written.manifest.files.some((f) => f.path === p));
  const changes = changed.length + removed.length;
  const notes = [
    `${written.dir}: ${plural(written.manifest.files.length, 'file')}, bundle.json sha256 ${written.bundleSha256}`,
    `signed by build key ${written.manifest.signingKeyId}; hub pin ${hubPin}`,
    before === undefined
      ? 'first seal of this cluster'
      : changes
        ? `changed since the last seal, ${plural(changes, 'file')}: ${firstFew([...changed, ...removed.map((p) => `${p} (removed)`)])}`
        : 'unchanged since the last seal except the run record (stages.json)',
  ];
  for (const n of notes) i.log(n);
  i.log(`check it offline: kubedos verify ${written.dir}`);
  progress(1);
  return { written, changes, notes };
}
