// Artifact versions (metadata.artifactVersion: MAJOR.MINOR.PATCH[-pre][+build]) in order, by
// Semantic Versioning 2.0's precedence rules: a pre-release is lower than its release, build
// metadata is ignored. Pure.

const SEMVER = /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

export interface ArtifactVersion {
  major: number;
  minor: number;
  patch: number;
  pre: string[];
}

export function parseArtifactVersion(v: string): ArtifactVersion | undefined {
  const m = SEMVER.exec(v);
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), pre: m[4] ? m[4].split('.') : [] };
}

const cmpIdentifier = (a: string, b: string): number => {
  const na = /^\d+$/.test(a);
  const nb = /^\d+$/.test(b);
  if (na && nb) return Math.sign(Number(a) - Number(b));
  if (na !== nb) return na ? -1 : 1; // numeric identifiers are lower than alphanumeric ones
  return a < b ? -1 : a > b ? 1 : 0;
};

/** -1, 0 or 1; throws on a string that is not a version (the spec's schema refuses those). */
export function compareArtifactVersions(a: string, b: string): number {
  const x = parseArtifactVersion(a);
  const y = parseArtifactVersion(b);
  if (!x || !y) throw new Error(`not an artifact version: ${JSON.stringify(x ? b : a)} (expected MAJOR.MINOR.PATCH like 0.2.0)`);
  for (const k of ['major', 'minor', 'patch'] as const) if (x[k] !== y[k]) return Math.sign(x[k] - y[k]);
  if (!x.pre.length || !y.pre.length) return x.pre.length === y.pre.length ? 0 : x.pre.length ? -1 : 1;
  for (let i = 0; i < Math.min(x.pre.length, y.pre.length); i++) {
    const c = cmpIdentifier(x.pre[i]!, y.pre[i]!);
    if (c) return c;
  }
  return Math.sign(x.pre.length - y.pre.length);
}
