// Offline verification of a build directory: DSSE signatures over manifest, SBOM and
// provenance (with the build key, or a pinned one), then every output listed in the manifest
// by size and sha256, the plan the build was made from (plan.json, where the build kept it) by the
// manifest's inputs.planSha256, then nothing unlisted. Stops at the first file that does not match
// and names it.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { keyidOf } from './keys';
import type { BuildManifest, DsseEnvelope } from './attest';
import { envelopePath, MANIFEST_FILE, PLAN_FILE, PROVENANCE_FILE, PUBLIC_KEY_FILE, SBOM_FILE, SIGNED_FILES, SIGNATURES_DIR, verifyDsse } from './attest';
import { sha256Hex } from '../../common/canonical';
import { Plan } from '../../common/plan/schema';
import { PLACED_STATE_FILE } from './cache';
import { listFiles, sha256File } from './files';

export interface VerifyResult {
  ok: boolean;
  /** The first file that failed, relative to the build directory. */
  file?: string;
  reason?: string;
  checked: number;
  keyid?: string;
}

/**
 * A verification and, when it passed, the bytes each signed file's envelope carries (manifest,
 * SBOM, provenance), checked equal to the file: a caller that goes on to read them reads these,
 * not the file again, so what it uses is what was verified. Kept out of VerifyResult, which is
 * printed and sent to the workbench as it is.
 */
export interface SignedVerification {
  result: VerifyResult;
  signed?: Record<string, Buffer>;
}

export async function verifyBuild(dir: string, opts: { publicKeyPem?: string; onProgress?: (file: string) => void } = {}): Promise<VerifyResult> {
  return (await verifyBuildSigned(dir, opts)).result;
}

/** verifyBuild, with the signed files' verified bytes. */
export async function verifyBuildSigned(dir: string, opts: { publicKeyPem?: string; onProgress?: (file: string) => void } = {}): Promise<SignedVerification> {
  let checked = 0;
  const fail = (file: string, reason: string): SignedVerification => ({ result: { ok: false, file, reason, checked } });
  const keyPath = join(dir, PUBLIC_KEY_FILE);
  let pem = opts.publicKeyPem;
  if (!pem) {
    if (!existsSync(keyPath)) return fail(PUBLIC_KEY_FILE, 'missing (pass --key to verify with a pinned key)');
    pem = readFileSync(keyPath, 'utf8');
  }
  let keyid: string;
  try {
    keyid = keyidOf(pem);
  } catch (err) {
    return fail(PUBLIC_KEY_FILE, `not an ed25519 public key: ${(err as Error).message}`);
  }
  const attestations = verifyAttestationsSigned(dir, pem, keyid);
  if (!attestations.result.ok) return attestations;
  checked += attestations.result.checked;
  let manifest: BuildManifest;
  try {
    manifest = JSON.parse(attestations.signed![MANIFEST_FILE]!.toString('utf8')) as BuildManifest;
  } catch (err) {
    return fail(MANIFEST_FILE, `not JSON: ${(err as Error).message}`);
  }
  const listed = new Set<string>();
  for (const o of manifest.outputs) {
    listed.add(o.path);
    const p = join(dir, o.path);
    opts.onProgress?.(o.path);
    if (!existsSync(p)) return fail(o.path, 'missing');
    const size = statSync(p).size;
    if (size !== o.size) return fail(o.path, `size ${size}, manifest says ${o.size}`);
    const sha = await sha256File(p);
    if (sha !== o.sha256) return fail(o.path, `sha256 ${sha}, manifest says ${o.sha256}`);
    checked++;
  }
  const plan = readBuildPlan(dir, attestations.signed![MANIFEST_FILE]!);
  if (plan.kind === 'bad') return fail(PLAN_FILE, plan.why);
  if (plan.kind === 'ok') checked++;
  const known = new Set<string>([MANIFEST_FILE, SBOM_FILE, PROVENANCE_FILE, PUBLIC_KEY_FILE, PLACED_STATE_FILE, PLAN_FILE, ...SIGNED_FILES.map(envelopePath)]);
  for (const f of listFiles(dir)) {
    if (listed.has(f) || known.has(f)) continue;
    if (f.startsWith(`${SIGNATURES_DIR}/`)) return fail(f, 'unexpected file in signatures/');
    return fail(f, 'not listed in manifest.json');
  }
  return { result: { ok: true, checked, keyid }, ...(attestations.signed ? { signed: attestations.signed } : {}) };
}

/** sha256 of the plan a build was made from (its signed manifest's inputs.planSha256); undefined when it does not say. */
export function plannedWith(manifestBytes: Buffer | string): string | undefined {
  try {
    const m = JSON.parse(manifestBytes.toString()) as { inputs?: { planSha256?: unknown } };
    return typeof m.inputs?.planSha256 === 'string' ? m.inputs.planSha256 : undefined;
  } catch {
    return undefined;
  }
}

/** What readBuildPlan found: the plan, none (a build made before PLAN_FILE was kept), or why it is not the build's. */
export type BuildPlan = { kind: 'ok'; plan: Plan } | { kind: 'none' } | { kind: 'bad'; why: string };

/**
 * The plan the build in `dir` was made from (PLAN_FILE), checked against `manifestBytes` (its signed
 * manifest, already verified by the caller): its bytes hash to inputs.planSha256 and it is a Plan
 * this kubedos reads.
 */
export function readBuildPlan(dir: string, manifestBytes: Buffer): BuildPlan {
  const file = join(dir, PLAN_FILE);
  if (!existsSync(file)) return { kind: 'none' };
  const bytes = readFileSync(file);
  const wanted = plannedWith(manifestBytes);
  const sha = sha256Hex(bytes);
  if (sha !== wanted) return { kind: 'bad', why: `sha256 ${sha}, the manifest's inputs.planSha256 says ${wanted ?? '(nothing)'}` };
  let parsed: ReturnType<typeof Plan.safeParse>;
  try {
    parsed = Plan.safeParse(JSON.parse(bytes.toString('utf8')));
  } catch (err) {
    return { kind: 'bad', why: `not JSON: ${(err as Error).message}` };
  }
  if (!parsed.success) return { kind: 'bad', why: `not a plan this kubedos reads: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}` };
  return { kind: 'ok', plan: parsed.data };
}

/** The DSSE envelopes over manifest, SBOM and provenance in `dir`: each verifies with the key and
 * signed exactly the file beside it. Outputs are not looked at (the recovery bundle carries the
 * attestations without the images they describe). */
export function verifyAttestations(dir: string, publicKeyPem: string, keyid: string = keyidOf(publicKeyPem)): VerifyResult {
  return verifyAttestationsSigned(dir, publicKeyPem, keyid).result;
}

/** verifyAttestations, with the signed files' verified bytes. */
export function verifyAttestationsSigned(dir: string, publicKeyPem: string, keyid: string = keyidOf(publicKeyPem)): SignedVerification {
  let checked = 0;
  const fail = (file: string, reason: string): SignedVerification => ({ result: { ok: false, file, reason, checked } });
  const signed: Record<string, Buffer> = {};
  for (const file of SIGNED_FILES) {
    const envFile = envelopePath(file);
    if (!existsSync(join(dir, envFile))) return fail(envFile, 'missing signature envelope');
    if (!existsSync(join(dir, file))) return fail(file, 'missing');
    let payload: Buffer;
    try {
      payload = verifyDsse(JSON.parse(readFileSync(join(dir, envFile), 'utf8')) as DsseEnvelope, publicKeyPem, keyid);
    } catch (err) {
      return fail(envFile, `signature does not verify: ${(err as Error).message}`);
    }
    if (!payload.equals(readFileSync(join(dir, file)))) return fail(file, `content differs from what ${envFile} signed`);
    signed[file] = payload;
    checked++;
  }
  return { result: { ok: true, checked, keyid }, signed };
}
