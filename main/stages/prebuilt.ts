// A deploy from a kept artifact instead of a build: `kubedos restore --target` sets
// KUBEDOS_PREBUILT_ARTIFACT to the restored workspace's build/ (the artifact the bundle names), and
// the build stage then verifies that directory (signatures, every output) and hands its manifest
// on as the build's report, building nothing and downloading nothing.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256Hex } from '../../common/canonical';
import type { NodeRole } from '../../common/spec/schema';
import type { BuildManifest } from '../build/attest';
import { MANIFEST_FILE } from '../build/attest';
import type { BuildReport } from '../build/index';
import { verifyBuildSigned } from '../build/verify';
import { LOCK_FILE } from '../build/darksite/index';
import { StageError } from '../pipeline/runner';

export const PREBUILT_ENV = 'KUBEDOS_PREBUILT_ARTIFACT';
/**
 * With PREBUILT_ENV: the sha256 of the signed manifest the kept artifact must have (a replace-based
 * upgrade's new VM: the build its preflight verified). A directory holding another build — even one
 * that verifies with its own key — is refused.
 */
export const PREBUILT_DIGEST_ENV = 'KUBEDOS_PREBUILT_MANIFEST_SHA256';

export async function prebuiltReport(dir: string, cluster: string, log: (line: string) => void, expectDigest?: string): Promise<BuildReport> {
  const t0 = Date.now();
  const { result: v, signed } = await verifyBuildSigned(dir);
  if (!v.ok || !signed) throw new StageError(`build: the kept artifact ${dir} does not verify: ${v.file}: ${v.reason}`, { hint: 'restore again from an intact copy of the artifact (kubedos verify DIR names what is wrong)' });
  // The manifest as its signature covered it: the outputs just verified are this one's.
  const manifestBytes = signed[MANIFEST_FILE]!;
  if (expectDigest !== undefined && sha256Hex(manifestBytes) !== expectDigest) {
    throw new StageError(`build: the kept artifact ${dir} holds another build than the one this run was checked against: its signed manifest has sha256 ${sha256Hex(manifestBytes).slice(0, 12)}…, expected ${expectDigest.slice(0, 12)}…`, { hint: 'the directory changed since the upgrade verified it: copy that build there again and rerun the upgrade (its preflight verifies the build as it is now)' });
  }
  const m = JSON.parse(manifestBytes.toString('utf8')) as BuildManifest;
  if (m.cluster !== cluster) throw new StageError(`build: the kept artifact ${dir} is for cluster ${m.cluster}, not ${cluster}`, { hint: 'use the artifact the bundle names' });
  log(`using the kept artifact ${dir} (${v.checked} outputs verified with key ${v.keyid}); nothing is built`);
  const lockPath = join(dir, 'darksite', LOCK_FILE);
  let lock: BuildReport['lock'];
  let upstreamPackages = 0;
  try {
    const text = readFileSync(lockPath);
    const parsed = JSON.parse(text.toString('utf8')) as { packages?: unknown[]; upstream?: unknown[] };
    upstreamPackages = parsed.upstream?.length ?? 0;
    lock = { path: lockPath, sha256: sha256Hex(text), packages: parsed.packages?.length ?? 0, resolved: false, written: false };
  } catch {
    lock = { path: lockPath, sha256: m.inputs.lockSha256, packages: 0, resolved: false, written: false };
  }
  return {
    outDir: dir,
    roles: [...(m.roles as NodeRole[])],
    built: [],
    reused: m.outputs.map((o) => o.path),
    outputs: m.outputs,
    downloaded: 0,
    // What the kept artifact carries from declared sources (it was verified above, nothing is fetched).
    upstream: { packages: upstreamPackages, images: keptImages(dir), files: m.outputs.filter((o) => o.path.startsWith('files/sha256/')).length },
    durationMs: Date.now() - t0,
    lock,
    logFile: join(dir, 'build.log'),
  };
}

/** The images in the kept artifact's OCI image layout (oci/index.json), 0 when it has none. */
function keptImages(dir: string): number {
  try {
    return ((JSON.parse(readFileSync(join(dir, 'oci', 'index.json'), 'utf8')) as { manifests?: unknown[] }).manifests ?? []).length;
  } catch {
    return 0;
  }
}
