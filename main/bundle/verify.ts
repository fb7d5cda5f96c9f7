// verifyBundle: checks a recovery bundle offline and names the first thing that does not match.
// Order: the signature over bundle.json (embedded key, or a pinned one that must be the same),
// every listed file by size and sha256, nothing unlisted, no secret material, then what the
// files say: the build's own DSSE envelopes, spec/plan/build hashes and cluster names, the hub
// pin and certificate chain, and the shape of every record. The build outputs (ISOs, images)
// are not in the bundle and are not required.
import { X509Certificate } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson, sha256Hex } from '../../common/canonical';
import { Plan } from '../../common/plan/index';
import { parseSpec } from '../../common/spec/index';
import type { BuildManifest, DsseEnvelope } from '../build/attest';
import { PUBLIC_KEY_FILE, verifyDsse } from '../build/attest';
import { sha256File } from '../build/files';
import { keyidOf } from '../build/keys';
import { verifyAttestations } from '../build/verify';
import { certFingerprint, verifyChain } from '../trust/ca';
import { RevocationList } from '../trust/revocation';
import type { BundleManifest as BundleManifestType } from './schema';
import { BUNDLE_PATHS, BUNDLE_PAYLOAD_TYPE, BundleManifest, HubRecord, NodeRecord, REQUIRED_BUNDLE_FILES, StagesRecord } from './schema';
import { secretMaterialIn } from './secret-guard';

export interface BundleVerifyResult {
  ok: boolean;
  /** The first file that failed, relative to the bundle directory. */
  file?: string;
  reason?: string;
  /** What was checked and passed, in order, one line each. */
  checks: string[];
  cluster?: string;
  keyid?: string;
}

export interface BundleVerifyOptions {
  /** Verify with this ed25519 public key (PEM); the embedded key must be the same key. */
  publicKeyPem?: string;
}

/** True when DIR looks like a recovery bundle (as opposed to a build directory). */
export function isBundleDir(dir: string): boolean {
  return existsSync(join(dir, BUNDLE_PATHS.manifest));
}

export async function verifyBundle(dir: string, opts: BundleVerifyOptions = {}): Promise<BundleVerifyResult> {
  const checks: string[] = [];
  // Filled in as they become known, so a failure reports what was established before it.
  const known: { cluster?: string } = {};
  let keyid: string | undefined;
  const fail = (file: string, reason: string): BundleVerifyResult => ({ ok: false, file, reason, checks, ...(known.cluster ? { cluster: known.cluster } : {}), ...(keyid ? { keyid } : {}) });
  const read = (path: string): Buffer => readFileSync(join(dir, path));

  // 1. The key and the signature over bundle.json.
  for (const f of [BUNDLE_PATHS.manifest, BUNDLE_PATHS.envelope]) if (!existsSync(join(dir, f))) return fail(f, 'missing');
  const embeddedPem = existsSync(join(dir, BUNDLE_PATHS.publicKey)) ? read(BUNDLE_PATHS.publicKey).toString('utf8') : undefined;
  let embeddedKeyid: string | undefined;
  if (embeddedPem !== undefined) {
    try {
      embeddedKeyid = keyidOf(embeddedPem);
    } catch (err) {
      return fail(BUNDLE_PATHS.publicKey, `not an ed25519 public key: ${(err as Error).message}`);
    }
  }
  let pem: string;
  if (opts.publicKeyPem !== undefined) {
    try {
      keyid = keyidOf(opts.publicKeyPem);
    } catch (err) {
      return fail('--key', `not an ed25519 public key: ${(err as Error).message}`);
    }
    if (embeddedKeyid !== undefined && embeddedKeyid !== keyid) {
      return fail(BUNDLE_PATHS.publicKey, `the bundle's key ${embeddedKeyid} is not the key given (${keyid}): this bundle was not signed by the key you trust`);
    }
    pem = opts.publicKeyPem;
  } else {
    if (embeddedPem === undefined || embeddedKeyid === undefined) return fail(BUNDLE_PATHS.publicKey, 'missing (pass --key to verify with a pinned key)');
    pem = embeddedPem;
    keyid = embeddedKeyid;
  }
  let envelope: DsseEnvelope;
  try {
    envelope = JSON.parse(read(BUNDLE_PATHS.envelope).toString('utf8')) as DsseEnvelope;
  } catch (err) {
    return fail(BUNDLE_PATHS.envelope, `not JSON: ${(err as Error).message}`);
  }
  if (envelope.payloadType !== BUNDLE_PAYLOAD_TYPE) return fail(BUNDLE_PATHS.envelope, `payload type ${JSON.stringify(envelope.payloadType)}, expected ${BUNDLE_PAYLOAD_TYPE}`);
  let payload: Buffer;
  try {
    payload = verifyDsse(envelope, pem, keyid);
  } catch (err) {
    return fail(BUNDLE_PATHS.envelope, `signature does not verify with key ${keyid}: ${(err as Error).message}`);
  }
  if (!payload.equals(read(BUNDLE_PATHS.manifest))) return fail(BUNDLE_PATHS.manifest, `content differs from what ${BUNDLE_PATHS.envelope} signed`);
  checks.push(`signature: ${BUNDLE_PATHS.manifest} signed by key ${keyid}${opts.publicKeyPem !== undefined ? ' (the key given)' : ' (embedded key)'}`);

  let manifest: BundleManifestType;
  try {
    const parsed = BundleManifest.safeParse(JSON.parse(payload.toString('utf8')));
    if (!parsed.success) return fail(BUNDLE_PATHS.manifest, `not a bundle manifest: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    manifest = parsed.data;
  } catch (err) {
    return fail(BUNDLE_PATHS.manifest, `not JSON: ${(err as Error).message}`);
  }
  known.cluster = manifest.cluster;
  if (manifest.signingKeyId !== keyid) return fail(BUNDLE_PATHS.manifest, `names signing key ${manifest.signingKeyId}, signed by ${keyid}`);

  // 2. Every listed file, then nothing else.
  const listed = new Map(manifest.files.map((f) => [f.path, f]));
  if (listed.size !== manifest.files.length) return fail(BUNDLE_PATHS.manifest, 'lists a file twice');
  for (const f of manifest.files) {
    const p = join(dir, f.path);
    if (!existsSync(p)) return fail(f.path, 'missing');
    const st = lstatSync(p);
    if (!st.isFile()) return fail(f.path, 'not a regular file');
    if (st.size !== f.size) return fail(f.path, `size ${st.size}, bundle.json says ${f.size}`);
    const sha = await sha256File(p);
    if (sha !== f.sha256) return fail(f.path, `sha256 ${sha}, bundle.json says ${f.sha256}`);
  }
  for (const req of REQUIRED_BUNDLE_FILES) if (!listed.has(req)) return fail(req, 'not in the bundle (bundle.json does not list it)');
  const own = new Set<string>([BUNDLE_PATHS.manifest, BUNDLE_PATHS.envelope, BUNDLE_PATHS.publicKey]);
  for (const entry of walk(dir)) {
    if (entry.kind !== 'file') return fail(entry.path, `unexpected ${entry.kind} (a bundle holds regular files only)`);
    if (listed.has(entry.path) || own.has(entry.path)) continue;
    return fail(entry.path, 'not listed in bundle.json');
  }
  checks.push(`files: ${manifest.files.length} listed files match sha256 and size; nothing unlisted`);
  for (const f of [...manifest.files.map((e) => e.path), ...own]) {
    if (!existsSync(join(dir, f))) continue;
    const what = secretMaterialIn(read(f));
    if (what) return fail(f, `holds ${what}; a recovery bundle must hold public material only`);
  }
  checks.push('secrets: no private key, age identity or enrollment token in any file');

  // 3. The build's attestations, with the same key (the outputs themselves are not here).
  const buildKeyPath = `${BUNDLE_PATHS.buildDir}/${PUBLIC_KEY_FILE}`;
  let buildKeyid: string;
  try {
    buildKeyid = keyidOf(read(buildKeyPath).toString('utf8'));
  } catch (err) {
    return fail(buildKeyPath, `not an ed25519 public key: ${(err as Error).message}`);
  }
  if (buildKeyid !== keyid) return fail(buildKeyPath, `the build was signed by key ${buildKeyid}, the bundle by ${keyid}`);
  const att = verifyAttestations(join(dir, BUNDLE_PATHS.buildDir), pem, keyid);
  if (!att.ok) return fail(`${BUNDLE_PATHS.buildDir}/${att.file}`, att.reason ?? 'does not verify');
  checks.push(`build: manifest, SBOM and provenance envelopes verify with key ${keyid}`);

  // 4. What the files say agrees with bundle.json and with each other.
  if (listed.get(BUNDLE_PATHS.spec)!.sha256 !== manifest.specSha256) return fail(BUNDLE_PATHS.spec, `sha256 ${listed.get(BUNDLE_PATHS.spec)!.sha256}, bundle.json specSha256 says ${manifest.specSha256}`);
  if (listed.get(BUNDLE_PATHS.plan)!.sha256 !== manifest.planSha256) return fail(BUNDLE_PATHS.plan, `sha256 ${listed.get(BUNDLE_PATHS.plan)!.sha256}, bundle.json planSha256 says ${manifest.planSha256}`);
  if (listed.get(BUNDLE_PATHS.buildManifest)!.sha256 !== manifest.buildManifestSha256) {
    return fail(BUNDLE_PATHS.buildManifest, `sha256 ${listed.get(BUNDLE_PATHS.buildManifest)!.sha256}, bundle.json buildManifestSha256 says ${manifest.buildManifestSha256}`);
  }
  let plan: Plan;
  try {
    const parsed = Plan.safeParse(JSON.parse(read(BUNDLE_PATHS.plan).toString('utf8')));
    if (!parsed.success) return fail(BUNDLE_PATHS.plan, `not a valid plan: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    plan = parsed.data;
  } catch (err) {
    return fail(BUNDLE_PATHS.plan, `not JSON: ${(err as Error).message}`);
  }
  if (plan.cluster.name !== manifest.cluster) return fail(BUNDLE_PATHS.plan, `is for cluster ${plan.cluster.name}, bundle.json says ${manifest.cluster}`);
  if (plan.cluster.artifactVersion !== manifest.artifactVersion) return fail(BUNDLE_PATHS.plan, `is for artifact ${plan.cluster.artifactVersion}, bundle.json says ${manifest.artifactVersion}`);
  const spec = parseSpec(read(BUNDLE_PATHS.spec).toString('utf8'));
  if (!spec.spec) return fail(BUNDLE_PATHS.spec, `not a valid ClusterSpec: ${spec.diagnostics.filter((d) => d.severity === 'error').slice(0, 3).map((d) => d.message).join('; ')}`);
  if (sha256Hex(canonicalJson(spec.spec)) !== plan.cluster.specSha256) return fail(BUNDLE_PATHS.plan, 'was not planned from spec.yaml (its cluster.specSha256 is not the hash of the parsed spec)');
  checks.push(`spec: spec.yaml sha256 ${manifest.specSha256.slice(0, 16)}…, a valid ClusterSpec for ${spec.spec.metadata.name}`);
  checks.push(`plan: plan.json is a valid Plan for cluster ${plan.cluster.name} artifact ${plan.cluster.artifactVersion}, planned from spec.yaml`);
  let build: BuildManifest;
  try {
    build = JSON.parse(read(BUNDLE_PATHS.buildManifest).toString('utf8')) as BuildManifest;
  } catch (err) {
    return fail(BUNDLE_PATHS.buildManifest, `not JSON: ${(err as Error).message}`);
  }
  if (build.cluster !== manifest.cluster || build.artifactVersion !== manifest.artifactVersion) {
    return fail(BUNDLE_PATHS.buildManifest, `is for ${String(build.cluster)} artifact ${String(build.artifactVersion)}, bundle.json says ${manifest.cluster} artifact ${manifest.artifactVersion}`);
  }
  if (build.inputs?.planSha256 !== sha256Hex(canonicalJson(plan))) return fail(BUNDLE_PATHS.buildManifest, 'was built from another plan (inputs.planSha256 is not the hash of plan.json)');
  checks.push(`build: manifest is for ${build.cluster} artifact ${build.artifactVersion}, built from plan.json; ${Array.isArray(build.outputs) ? build.outputs.length : 0} outputs named by sha256 (not in the bundle)`);

  // 5. Trust: pin and chain.
  const certs: Record<string, string> = {};
  for (const f of [BUNDLE_PATHS.rootCa, BUNDLE_PATHS.clusterCa, BUNDLE_PATHS.hubCert]) {
    certs[f] = read(f).toString('utf8');
    try {
      certFingerprint(certs[f]);
    } catch (err) {
      return fail(f, `not a PEM certificate: ${(err as Error).message}`);
    }
  }
  const pin = read(BUNDLE_PATHS.hubPin).toString('utf8').trim();
  const hubFingerprint = certFingerprint(certs[BUNDLE_PATHS.hubCert]!);
  if (pin !== hubFingerprint) return fail(BUNDLE_PATHS.hubPin, `says ${pin}, trust/hub.crt is ${hubFingerprint}`);
  if (!(await verifyChain(certs[BUNDLE_PATHS.hubCert]!, [certs[BUNDLE_PATHS.clusterCa]!], certs[BUNDLE_PATHS.rootCa]!, chainCheckTime(Object.values(certs))))) {
    return fail(BUNDLE_PATHS.hubCert, 'does not chain to trust/cluster-ca.crt and trust/root-ca.crt');
  }
  checks.push(`trust: hub.pin ${pin.slice(0, 23)}… matches hub.crt; hub.crt chains to cluster-ca.crt and root-ca.crt`);

  // 6. Records.
  const record = <T>(path: string, schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } } }): T | string => {
    let v: unknown;
    try {
      v = JSON.parse(read(path).toString('utf8'));
    } catch (err) {
      return `not JSON: ${(err as Error).message}`;
    }
    const r = schema.safeParse(v);
    return r.success ? r.data : `not valid: ${r.error.issues.slice(0, 3).map((i) => `${i.path.map(String).join('.')}: ${i.message}`).join('; ')}`;
  };
  const hub = record(BUNDLE_PATHS.hub, HubRecord);
  if (typeof hub === 'string') return fail(BUNDLE_PATHS.hub, hub);
  if (hub.node !== plan.enrollment.hub) return fail(BUNDLE_PATHS.hub, `is for ${hub.node}, the plan's hub is ${plan.enrollment.hub}`);
  for (const n of plan.nodes) {
    const path = `${BUNDLE_PATHS.nodesDir}/${n.name}.json`;
    if (!listed.has(path)) return fail(path, `missing: the plan has node ${n.name}`);
    const r = record(path, NodeRecord);
    if (typeof r === 'string') return fail(path, r);
    if (r.node !== n.name || r.vmid !== n.vmid) return fail(path, `is for ${r.node} vmid ${r.vmid}, the plan has ${n.name} vmid ${n.vmid}`);
  }
  const nodeFiles = manifest.files.filter((f) => f.path.startsWith(`${BUNDLE_PATHS.nodesDir}/`));
  const extraNode = nodeFiles.find((f) => !plan.nodes.some((n) => f.path === `${BUNDLE_PATHS.nodesDir}/${n.name}.json`));
  if (extraNode) return fail(extraNode.path, 'is not a node of the plan');
  const stages = record(BUNDLE_PATHS.stages, StagesRecord);
  if (typeof stages === 'string') return fail(BUNDLE_PATHS.stages, stages);
  if (listed.has(BUNDLE_PATHS.revoked)) {
    const rev = record(BUNDLE_PATHS.revoked, RevocationList);
    if (typeof rev === 'string') return fail(BUNDLE_PATHS.revoked, rev);
    if (rev.cluster !== manifest.cluster) return fail(BUNDLE_PATHS.revoked, `is for cluster ${rev.cluster}`);
  }
  checks.push(`records: hub.json, ${plan.nodes.length} node records (one per planned node), stages.json (${stages.stages.length} stages)${listed.has(BUNDLE_PATHS.revoked) ? ', revoked.json' : ''}`);
  return { ok: true, checks, cluster: manifest.cluster, keyid };
}

interface WalkEntry {
  path: string;
  kind: 'file' | 'symlink' | 'other';
}

/** Every entry under root except directories, as POSIX paths, sorted; symlinks are not followed. */
function walk(root: string): WalkEntry[] {
  const out: WalkEntry[] = [];
  const visit = (rel: string): void => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) visit(p);
      else out.push({ path: p, kind: e.isFile() ? 'file' : e.isSymbolicLink() ? 'symlink' : 'other' });
    }
  };
  visit('');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Chain signatures are checked just after the last certificate's start of validity, not now: a
 * bundle is an archive and must still verify after the 30-day hub certificate has expired. */
function chainCheckTime(pems: readonly string[]): Date {
  const latest = Math.max(...pems.map((p) => Date.parse(new X509Certificate(p).validFrom)));
  return new Date(latest + 1000);
}
