// What has been built for a cluster, for the workbench's Artifacts view: the build in the
// cluster's workspace (what deploy builds into) with its manifest, SBOM packages, provenance and
// signature status (verify.ts), the artifact cache by kind, and the darksite lock with whether the
// package lists moved since it was resolved. Reads only; the full verification (every output
// hashed) runs when asked, the signature check always.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ArtifactsOverview, BuiltArtifacts, SbomPackage, VerifyStatus } from '../../common/contract/artifacts';
import { payloadDir } from '../paths';
import { clusterWorkspace, WORKSPACE_LAYOUT } from '../workspace';
import type { BuildManifest } from './attest';
import { MANIFEST_FILE, PROVENANCE_FILE, PUBLIC_KEY_FILE, SBOM_FILE } from './attest';
import { ArtifactCache } from './cache';
import { diffSummary } from './darksite/pins';
import { lockDigest, readLists, readLock } from './darksite/index';
import { cacheRoot, clusterLockPath } from './index';
import { keyidOf } from './keys';
import { verifyAttestations, verifyBuild } from './verify';

const first = (e: unknown): string => ((e as Error).message ?? String(e)).split('\n')[0]?.slice(0, 300) ?? '';

function readJson(dir: string, file: string, problems: string[]): unknown {
  const p = join(dir, file);
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, 'utf8'));
  } catch (err) {
    problems.push(`${file}: not JSON (${first(err)})`);
    return undefined;
  }
}

interface CdxComponent {
  type?: string;
  name?: string;
  version?: string;
  purl?: string;
  properties?: { name: string; value: string }[];
}

/** A build directory as the view shows it; `full` hashes every output (kubedos verify), else only the signatures are checked. */
export async function describeBuild(dir: string, o: { full?: boolean } = {}): Promise<BuiltArtifacts> {
  const problems: string[] = [];
  if (!existsSync(join(dir, MANIFEST_FILE))) return { dir, present: false, problems, outputs: [], totalBytes: 0 };
  const m = readJson(dir, MANIFEST_FILE, problems) as BuildManifest | undefined;
  const outputs = (m?.outputs ?? []).map((x) => ({ path: x.path, size: x.size, sha256: x.sha256, ...(x.kind ? { kind: x.kind } : {}), ...(x.role ? { role: x.role } : {}) })).sort((a, b) => a.path.localeCompare(b.path));
  const out: BuiltArtifacts = { dir, present: true, problems, outputs, totalBytes: outputs.reduce((n, x) => n + x.size, 0) };
  if (m) out.manifest = { cluster: m.cluster, artifactVersion: m.artifactVersion, sourceDateEpoch: m.sourceDateEpoch, roles: m.roles, specSha256: m.inputs.spec.sha256, lockSha256: m.inputs.lockSha256, tools: m.inputs.tools };
  const sbom = readJson(dir, SBOM_FILE, problems) as { components?: CdxComponent[] } | undefined;
  if (sbom) {
    const comps = sbom.components ?? [];
    const prop = (c: CdxComponent, n: string) => c.properties?.find((p) => p.name === n)?.value;
    const packages: SbomPackage[] = comps
      .filter((c) => c.type === 'library' && c.name)
      .map((c) => {
        const source = prop(c, 'kubedos:source');
        const roles = prop(c, 'kubedos:roles');
        return { name: c.name as string, ...(c.version ? { version: c.version } : {}), ...(c.purl ? { purl: c.purl } : {}), ...(source ? { source } : {}), ...(roles ? { roles } : {}) };
      })
      .sort((a, b) => a.name.localeCompare(b.name) || (a.version ?? '').localeCompare(b.version ?? ''));
    out.sbom = { packages, files: comps.filter((c) => c.type === 'file').length };
  }
  const prov = readJson(dir, PROVENANCE_FILE, problems) as
    | { subject?: unknown[]; predicate?: { buildDefinition?: { buildType?: string; resolvedDependencies?: { name: string; digest: Record<string, string> }[] }; runDetails?: { builder?: { id?: string; version?: Record<string, string> } } } }
    | undefined;
  if (prov) {
    const b = prov.predicate?.runDetails?.builder;
    out.provenance = {
      builder: `${b?.id ?? 'unknown'}${b?.version ? ` (${Object.entries(b.version).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`,
      buildType: prov.predicate?.buildDefinition?.buildType ?? 'unknown',
      subjects: prov.subject?.length ?? 0,
      dependencies: (prov.predicate?.buildDefinition?.resolvedDependencies ?? []).map((d) => ({ name: d.name, digest: Object.entries(d.digest).map(([k, v]) => `${k}:${v}`).join(' ') })),
    };
  }
  out.verify = await verifyStatus(dir, o.full === true);
  return out;
}

async function verifyStatus(dir: string, full: boolean): Promise<VerifyStatus> {
  if (full) return { ...(await verifyBuild(dir)), scope: 'full' };
  const keyPath = join(dir, PUBLIC_KEY_FILE);
  if (!existsSync(keyPath)) return { ok: false, file: PUBLIC_KEY_FILE, reason: 'missing: the signatures cannot be checked', checked: 0, scope: 'signatures' };
  try {
    const pem = readFileSync(keyPath, 'utf8');
    return { ...verifyAttestations(dir, pem, keyidOf(pem)), scope: 'signatures' };
  } catch (err) {
    return { ok: false, file: PUBLIC_KEY_FILE, reason: first(err), checked: 0, scope: 'signatures' };
  }
}

export async function artifactsOverview(cluster: string, env: NodeJS.ProcessEnv, o: { full?: boolean } = {}): Promise<ArtifactsOverview> {
  const build = await describeBuild(join(clusterWorkspace(cluster, env), WORKSPACE_LAYOUT.build), o);
  const root = cacheRoot(env);
  const entries = existsSync(root) && statSync(root).isDirectory() ? new ArtifactCache(root).entries() : [];
  const kinds = new Map<string, { entries: number; bytes: number }>();
  for (const e of entries) {
    const k = kinds.get(e.kind) ?? { entries: 0, bytes: 0 };
    kinds.set(e.kind, { entries: k.entries + 1, bytes: k.bytes + e.bytes });
  }
  const lockPath = clusterLockPath(cluster, env);
  let lock: ArtifactsOverview['lock'] = { path: lockPath, exists: false };
  try {
    const l = readLock(lockPath);
    if (l) {
      let listsChanged: boolean | undefined;
      try {
        listsChanged = l.listsSha256 !== readLists(join(payloadDir(), 'packages')).sha256;
      } catch {
        listsChanged = undefined;
      }
      lock = {
        path: lockPath,
        exists: true,
        sha256: lockDigest(l),
        packages: l.packages.length,
        sources: [...new Set(l.packages.map((p) => p.source))].sort(),
        ...(listsChanged !== undefined ? { listsChanged } : {}),
        ...(l.previous ? { previous: { sha256: l.previous.sha256, reason: l.previous.reason, summary: diffSummary(l.previous.diff) } } : {}),
      };
    }
  } catch (err) {
    lock = { path: lockPath, exists: true, error: first(err) };
  }
  return {
    cluster,
    build,
    cache: { root, entries: entries.length, bytes: entries.reduce((n, e) => n + e.bytes, 0), byKind: [...kinds.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([kind, v]) => ({ kind, ...v })) },
    lock,
  };
}
