// What the workbench's Recovery view shows: the bundle's manifest, and on request the same
// checks as `kubedos verify` and the seal's restore-completeness check (structure only: the
// recovery identity is offline and never handed to the workbench).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RecoveryInspection } from '../../common/contract/recovery';
import { sha256Hex } from '../../common/canonical';
import { checkRestorable } from './restorable';
import { BUNDLE_PATHS, BundleManifest } from './schema';
import { verifyBundle } from './verify';

export async function inspectBundle(cluster: string, dir: string, o: { verify?: boolean } = {}): Promise<RecoveryInspection> {
  const file = join(dir, BUNDLE_PATHS.manifest);
  if (!existsSync(file)) return { cluster, dir, present: false };
  let manifest: BundleManifest;
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
    manifest = BundleManifest.parse(JSON.parse(bytes.toString('utf8')));
  } catch (err) {
    return { cluster, dir, present: true, error: `bundle.json is not a bundle manifest: ${(err as Error).message.split('\n')[0]}` };
  }
  const out: RecoveryInspection = {
    cluster,
    dir,
    present: true,
    bundleSha256: sha256Hex(bytes),
    manifest: {
      artifactVersion: manifest.artifactVersion,
      signingKeyId: manifest.signingKeyId,
      specSha256: manifest.specSha256,
      planSha256: manifest.planSha256,
      files: manifest.files,
      ...(manifest.recovery ? { recovery: manifest.recovery } : {}),
    },
  };
  if (!o.verify) return out;
  const v = await verifyBundle(dir);
  out.verify = { ok: v.ok, checks: v.checks, ...(v.file ? { file: v.file } : {}), ...(v.reason ? { reason: v.reason } : {}) };
  if (!v.ok) return out; // completeness means nothing for a bundle that does not verify
  const r = await checkRestorable(dir);
  out.restorable = { ok: r.ok, checks: r.checks, ...(r.file ? { file: r.file } : {}), ...(r.reason ? { reason: r.reason } : {}), ...(r.level ? { level: r.level } : {}), ...(r.recipient ? { recipient: r.recipient } : {}) };
  return out;
}
