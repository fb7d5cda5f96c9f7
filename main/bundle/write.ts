// writeBundle: the cluster's recovery bundle in <workspace>/bundle/. Built in a temporary sibling
// directory and renamed into place, so a crash never leaves half a bundle under the final name.
// Deterministic: the same inputs give byte-identical files (canonical JSON, sorted lists, no time
// of day; ed25519 signatures are deterministic; file times are pinned to the build's
// SOURCE_DATE_EPOCH so an archive of the directory is reproducible too).
import type { KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { canonicalJson } from '../../common/canonical';
import { planJson } from '../../common/plan/index';
import type { Plan } from '../../common/plan/index';
import type { DsseEnvelope } from '../build/attest';
import { LOCK_FILE } from '../build/darksite/index';
import { envelopePath, MANIFEST_FILE, PUBLIC_KEY_FILE, SIGNED_FILES, signDsse } from '../build/attest';
import { pinTimes, sha256Of } from '../build/files';
import { keyidOf } from '../build/keys';
import { verifyAttestations } from '../build/verify';
import type { HubFacts, NodeFacts } from '../node-facts';
import type { DrillRecord } from '../../common/drills/timeline';
import { certFingerprint } from '../trust/ca';
import { isAgeRecipient, looksAgeEncrypted } from '../trust/recovery';
import type { RevocationList } from '../trust/revocation';
import { WORKSPACE_LAYOUT } from '../workspace';
import { renderBundleReadme } from './readme';
import type { BundleFileEntry, NodeRecord, StagesRecord } from './schema';
import { BUNDLE_API_VERSION, BUNDLE_KIND, BUNDLE_PATHS, BUNDLE_PAYLOAD_TYPE, BundleManifest, HubRecord, StagesRecord as StagesRecordSchema } from './schema';
import { secretMaterialIn } from './secret-guard';

/** The build files the bundle carries (attestations and their envelopes; never the outputs). */
export const BUILD_FILES_IN_BUNDLE: readonly string[] = [...SIGNED_FILES, ...SIGNED_FILES.map(envelopePath), PUBLIC_KEY_FILE];

export interface BundleTrustInput {
  rootCaPem: string;
  clusterCaPem: string;
  hubCertPem: string;
  revocations?: RevocationList;
}

/** What the bundle carries for a restore; every file already encrypted to `recipient` only. */
export interface BundleRecoveryInput {
  recipient: string;
  /** recovery/root-ca.key.age as the workspace keeps it. */
  rootKeyAge: Uint8Array;
  /** recovery/secrets.json.age (RecoverySecrets, encrypted). */
  secretsAge: Uint8Array;
  /** recovery/etcd-snapshot.db.age and what it is, when the seal could take a snapshot. */
  etcdSnapshot?: { age: Uint8Array; node: string; sha256: string; size: number };
}

export interface BundleInputs {
  /** The cluster's workspace; the bundle goes to <workspace>/bundle. */
  workspace: string;
  /** The spec exactly as it was read (its bytes are hashed). */
  specText: string;
  plan: Plan;
  /** The build output directory: manifest.json, sbom.cdx.json, provenance.intoto.json, signatures/. */
  buildDir: string;
  trust: BundleTrustInput;
  hub: HubFacts;
  /** Facts of every node in the plan, by node name. */
  nodes: Readonly<Record<string, NodeFacts>>;
  stages: StagesRecord;
  /** The cluster's build signing key (main/build/keys.ts buildSigningKey); it signed the build too. */
  signingKey: { privateKey: KeyObject; publicKeyPem: string; keyid: string };
  /** Encrypted material to resume the same identity (absent: a bundle that cannot restore). */
  recovery?: BundleRecoveryInput;
  /** Drill results (main/drills/history.ts). */
  drills?: readonly DrillRecord[];
}

export interface WrittenBundle {
  dir: string;
  manifest: BundleManifest;
  /** sha256 of bundle.json's bytes. */
  bundleSha256: string;
}

/** Inputs that cannot make a bundle (missing build, facts that disagree with the plan, secrets). */
export class BundleInputError extends Error {
  constructor(message: string, readonly hint?: string) {
    super(message);
    this.name = 'BundleInputError';
  }
}

/** A complete bundle in a temporary sibling of its final directory, not yet in place. */
export interface PreparedBundle extends WrittenBundle {
  /** Where the bundle is now; verify it here before commit() moves it to `dir`. */
  stagingDir: string;
  /** Replaces <workspace>/bundle with the staged bundle (two renames). */
  commit(): WrittenBundle;
  /** Removes the staged bundle; the one in place (if any) stays. */
  discard(): void;
}

/** Writes the bundle and puts it in place. */
export function writeBundle(o: BundleInputs): WrittenBundle {
  return prepareBundle(o).commit();
}

/** Writes the bundle next to its final place; the caller verifies it, then commits or discards. */
export function prepareBundle(o: BundleInputs): PreparedBundle {
  const { files, sourceDateEpoch } = bundleFiles(o);
  const entries: BundleFileEntry[] = [...files.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([path, data]) => ({ path, sha256: sha256Of(data), size: data.length }));
  const buildManifestBytes = files.get(BUNDLE_PATHS.buildManifest)!;
  const manifest = BundleManifest.parse({
    apiVersion: BUNDLE_API_VERSION,
    kind: BUNDLE_KIND,
    cluster: o.plan.cluster.name,
    artifactVersion: o.plan.cluster.artifactVersion,
    specSha256: sha256Of(files.get(BUNDLE_PATHS.spec)!),
    planSha256: sha256Of(files.get(BUNDLE_PATHS.plan)!),
    buildManifestSha256: sha256Of(buildManifestBytes),
    signingKeyId: o.signingKey.keyid,
    files: entries,
    ...(o.recovery
      ? {
          recovery: {
            recipient: o.recovery.recipient,
            encrypted: entries.filter((e) => e.path.endsWith('.age')).map((e) => e.path),
            ...(o.recovery.etcdSnapshot ? { etcdSnapshot: { node: o.recovery.etcdSnapshot.node, sha256: o.recovery.etcdSnapshot.sha256, size: o.recovery.etcdSnapshot.size } } : {}),
          },
        }
      : {}),
  });
  const manifestText = `${canonicalJson(manifest, 2)}\n`;
  const envelope: DsseEnvelope = signDsse(BUNDLE_PAYLOAD_TYPE, Buffer.from(manifestText), o.signingKey.privateKey, o.signingKey.keyid);
  files.set(BUNDLE_PATHS.manifest, Buffer.from(manifestText));
  files.set(BUNDLE_PATHS.envelope, Buffer.from(`${canonicalJson(envelope, 2)}\n`));
  files.set(BUNDLE_PATHS.publicKey, Buffer.from(o.signingKey.publicKeyPem));

  const dir = join(o.workspace, WORKSPACE_LAYOUT.bundle);
  const stagingDir = writeStaging(dir, files, sourceDateEpoch);
  const written: WrittenBundle = { dir, manifest, bundleSha256: sha256Of(manifestText) };
  let done = false;
  return {
    ...written,
    stagingDir,
    commit() {
      if (done) throw new Error(`bundle ${stagingDir} was already committed or discarded`);
      done = true;
      swapInto(dir, stagingDir);
      return written;
    },
    discard() {
      if (done) return;
      done = true;
      rmSync(stagingDir, { recursive: true, force: true });
    },
  };
}

/** Every file of the bundle except bundle.json and signatures/, after checking the inputs agree. */
function bundleFiles(o: BundleInputs): { files: Map<string, Buffer>; sourceDateEpoch?: number } {
  const cluster = o.plan.cluster.name;
  const files = new Map<string, Buffer>();
  const text = (path: string, t: string): void => void files.set(path, Buffer.from(t));
  const json = (path: string, v: unknown): void => text(path, `${canonicalJson(v, 2)}\n`);

  text(BUNDLE_PATHS.spec, o.specText);
  text(BUNDLE_PATHS.plan, planJson(o.plan));

  // The build's attestations, checked before they are sealed: same cluster, same key, signatures good.
  for (const f of BUILD_FILES_IN_BUNDLE) {
    const p = join(o.buildDir, f);
    if (!existsSync(p)) throw new BundleInputError(`the build directory ${o.buildDir} has no ${f}`, 'run the build stage (or kubedos build --spec SPEC --out DIR) so the bundle can carry its attestations');
    files.set(`${BUNDLE_PATHS.buildDir}/${f}`, readFileSync(p));
  }
  // The darksite lock (exact versions, hashes and sources of every package): what a rebuild must
  // reproduce. It is listed in the build manifest, so verify checks it like any output.
  const lockInBuild = join(o.buildDir, 'darksite', LOCK_FILE);
  if (existsSync(lockInBuild)) files.set(`${BUNDLE_PATHS.buildDir}/darksite/${LOCK_FILE}`, readFileSync(lockInBuild));
  const buildKeyPem = files.get(`${BUNDLE_PATHS.buildDir}/${PUBLIC_KEY_FILE}`)!.toString('utf8');
  if (keyidOf(buildKeyPem) !== o.signingKey.keyid) {
    throw new BundleInputError(
      `the build in ${o.buildDir} was signed by key ${keyidOf(buildKeyPem)}, not by this cluster's build signing key ${o.signingKey.keyid}`,
      'rebuild with this workspace (the same KUBEDOS_WORKSPACE) so one key signs both the build and the bundle',
    );
  }
  const att = verifyAttestations(o.buildDir, o.signingKey.publicKeyPem, o.signingKey.keyid);
  if (!att.ok) throw new BundleInputError(`the build in ${o.buildDir} does not verify: ${att.file}: ${att.reason}`, `run kubedos verify ${o.buildDir}, then rebuild`);
  let buildManifest: { cluster?: unknown; artifactVersion?: unknown; sourceDateEpoch?: unknown };
  try {
    buildManifest = JSON.parse(files.get(BUNDLE_PATHS.buildManifest)!.toString('utf8')) as typeof buildManifest;
  } catch (err) {
    throw new BundleInputError(`${join(o.buildDir, MANIFEST_FILE)} is not JSON: ${(err as Error).message}`, 'rebuild');
  }
  if (buildManifest.cluster !== cluster || buildManifest.artifactVersion !== o.plan.cluster.artifactVersion) {
    throw new BundleInputError(
      `the build in ${o.buildDir} is for ${String(buildManifest.cluster)} artifact ${String(buildManifest.artifactVersion)}, the plan for ${cluster} artifact ${o.plan.cluster.artifactVersion}`,
      'build the artifact from this spec before sealing',
    );
  }

  // Public trust material. The pin is derived here, so it always matches hub.crt.
  const cert = (what: string, pem: string): string => {
    try {
      certFingerprint(pem);
    } catch (err) {
      throw new BundleInputError(`${what} is not a PEM certificate: ${(err as Error).message}`);
    }
    return pem.endsWith('\n') ? pem : `${pem}\n`;
  };
  text(BUNDLE_PATHS.rootCa, cert('the root CA certificate', o.trust.rootCaPem));
  text(BUNDLE_PATHS.clusterCa, cert('the cluster CA certificate', o.trust.clusterCaPem));
  text(BUNDLE_PATHS.hubCert, cert('the hub certificate', o.trust.hubCertPem));
  text(BUNDLE_PATHS.hubPin, `${certFingerprint(o.trust.hubCertPem)}\n`);
  if (o.trust.revocations) json(BUNDLE_PATHS.revoked, { ...o.trust.revocations, revoked: [...o.trust.revocations.revoked].sort((a, b) => a.node.localeCompare(b.node)) });

  // Hub and node facts, checked against the plan.
  if (o.hub.node !== o.plan.enrollment.hub) throw new BundleInputError(`hub facts are for ${o.hub.node}, the plan's hub is ${o.plan.enrollment.hub}`);
  json(BUNDLE_PATHS.hub, HubRecord.parse(o.hub));
  const planned = new Map(o.plan.nodes.map((n) => [n.name, n]));
  for (const name of Object.keys(o.nodes)) if (!planned.has(name)) throw new BundleInputError(`facts for node ${name}, which is not in the plan (${[...planned.keys()].join(', ')})`);
  const records: NodeRecord[] = [];
  for (const n of o.plan.nodes) {
    const f = o.nodes[n.name];
    if (!f) throw new BundleInputError(`no facts for node ${n.name}`, 'the firstboot stage records every node (VMID, keys, first-boot marker); run the deploy again so it does');
    if (f.vmid !== n.vmid) throw new BundleInputError(`node ${n.name} reported VMID ${f.vmid}, the plan says ${n.vmid}`);
    const record: NodeRecord = {
      node: n.name,
      role: n.role,
      vmid: f.vmid,
      wgPublicKeys: { ...f.wgPublicKeys },
      ...(f.sshHostKey !== undefined ? { sshHostKey: f.sshHostKey } : {}),
      ...(f.firstboot !== undefined ? { firstboot: f.firstboot } : {}),
    };
    records.push(record);
    json(`${BUNDLE_PATHS.nodesDir}/${n.name}.json`, record);
  }
  json(BUNDLE_PATHS.stages, StagesRecordSchema.parse(o.stages));
  text(
    BUNDLE_PATHS.readme,
    renderBundleReadme({
      cluster,
      artifactVersion: o.plan.cluster.artifactVersion,
      hubPin: certFingerprint(o.trust.hubCertPem),
      signingKeyId: o.signingKey.keyid,
      nodes: [...records].sort((a, b) => a.node.localeCompare(b.node)),
      hasRevocations: o.trust.revocations !== undefined,
      ...(o.recovery ? { recovery: { recipient: o.recovery.recipient, etcdSnapshot: o.recovery.etcdSnapshot !== undefined } } : {}),
      hasDrills: Boolean(o.drills?.length),
    }),
  );

  if (o.drills?.length) json(BUNDLE_PATHS.drills, { cluster, drills: [...o.drills].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) });

  for (const [path, data] of files) {
    const what = secretMaterialIn(data);
    if (what) throw new BundleInputError(`${path} would carry ${what}; the recovery bundle holds public material only`, 'keep secrets in the SecretStore (docs/secrets.md); find out how it got into this input');
  }
  // Encrypted to the recovery recipient only: not public, but nothing beside the bundle opens it.
  if (o.recovery) {
    if (!isAgeRecipient(o.recovery.recipient)) throw new BundleInputError(`the recovery recipient ${JSON.stringify(o.recovery.recipient.slice(0, 70))} is not an age X25519 recipient`, 'name one with kubedos recovery-key');
    const enc = (path: string, data: Uint8Array): void => {
      if (!looksAgeEncrypted(data)) throw new BundleInputError(`${path} is not an age-encrypted file`, 'the recovery files are encrypted before they reach the bundle; this is a bug in the seal stage');
      files.set(path, Buffer.from(data));
    };
    text(BUNDLE_PATHS.recoveryRecipient, `${o.recovery.recipient}\n`);
    enc(BUNDLE_PATHS.recoveryRootKey, o.recovery.rootKeyAge);
    enc(BUNDLE_PATHS.recoverySecrets, o.recovery.secretsAge);
    if (o.recovery.etcdSnapshot) enc(BUNDLE_PATHS.etcdSnapshot, o.recovery.etcdSnapshot.age);
  }
  const epoch = buildManifest.sourceDateEpoch;
  return { files, ...(typeof epoch === 'number' && Number.isInteger(epoch) && epoch > 0 ? { sourceDateEpoch: epoch } : {}) };
}

/** Writes `files` into a new temporary sibling of `dir` and returns its path. */
function writeStaging(dir: string, files: ReadonlyMap<string, Buffer>, epoch: number | undefined): string {
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  removeAbandoned(parent);
  const tmp = mkdtempSync(join(parent, `.bundle.tmp-${process.pid}-`));
  try {
    for (const [path, data] of files) {
      const p = join(tmp, path);
      mkdirSync(dirname(p), { recursive: true, mode: 0o755 });
      writeFileSync(p, data, { mode: 0o644 });
      chmodSync(p, 0o644);
    }
    chmodSync(tmp, 0o755);
    if (epoch !== undefined) pinTimes(tmp, epoch);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return tmp;
}

/** Puts the staged tree at `dir`. rename(2) cannot replace a non-empty directory: the old bundle
 * moves aside first and is removed once the new one is in place. */
function swapInto(dir: string, staged: string): void {
  const old = existsSync(dir) ? `${dirname(dir)}/.bundle.old-${process.pid}-${staged.slice(-6)}` : undefined;
  if (old) renameSync(dir, old);
  try {
    renameSync(staged, dir);
  } catch (err) {
    if (old) renameSync(old, dir);
    rmSync(staged, { recursive: true, force: true });
    throw err;
  }
  if (old) rmSync(old, { recursive: true, force: true });
}

/** Temp and old bundle directories left by a seal that died (its process is gone). */
function removeAbandoned(parent: string): void {
  for (const name of readdirSync(parent)) {
    const m = /^\.bundle\.(?:tmp|old)-(\d+)-/.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    rmSync(join(parent, name), { recursive: true, force: true });
  }
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
