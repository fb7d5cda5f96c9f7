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
import { verifyBuild } from '../build/verify';
import { LOCK_FILE } from '../build/darksite/index';
import { StageError } from '../pipeline/runner';

export const PREBUILT_ENV = 'KUBEDOS_PREBUILT_ARTIFACT';

export async function prebuiltReport(dir: string, cluster: string, log: (line: string) => void): Promise<BuildReport> {
  const t0 = Date.now();
  const v = await verifyBuild(dir);
  if (!v.ok) throw new StageError(`build: the kept artifact ${dir} does not verify: ${v.file}: ${v.reason}`, { hint: 'restore again from an intact copy of the artifact (kubedos verify DIR names what is wrong)' });
  const m = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8')) as BuildManifest;
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
