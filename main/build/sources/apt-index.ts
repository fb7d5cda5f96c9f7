// Pure parts of taking packages from a declared upstream apt repository (spec.sources.apt):
// Debian version order, the SHA256 list of a verified InRelease, where a repository keeps its
// Packages index, which packages a declaration pulls in (the named ones and, transitively, their
// dependencies that the same repository carries) and which dependencies must come from Debian.
// No I/O here: apt.ts fetches and verifies, this decides.
import type { z } from 'zod';
import type { AptSourceSpec } from '../../../common/spec/schema';
import type { VersionOp } from '../darksite/pins';
import type { Stanza } from '../darksite/udebs';

type AptSource = z.infer<typeof AptSourceSpec>;

function order(c: string | undefined): number {
  if (c === undefined || /\d/.test(c)) return 0;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  if (c === '~') return -1;
  return c.charCodeAt(0) + 256;
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/** dpkg's verrevcmp: one upstream version or revision against another. */
function verrevcmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const ac = order(a[i]);
      const bc = order(b[j]);
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    while (a[i] === '0') i++;
    while (b[j] === '0') j++;
    while (isDigit(a[i]) && isDigit(b[j])) {
      if (!firstDiff) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (isDigit(a[i])) return 1;
    if (isDigit(b[j])) return -1;
    if (firstDiff) return firstDiff;
  }
  return 0;
}

function splitVersion(v: string): { epoch: number; upstream: string; revision: string } {
  const colon = v.indexOf(':');
  const epoch = colon > 0 ? Number(v.slice(0, colon)) : 0;
  const rest = colon > 0 ? v.slice(colon + 1) : v;
  const dash = rest.lastIndexOf('-');
  return { epoch, upstream: dash >= 0 ? rest.slice(0, dash) : rest, revision: dash >= 0 ? rest.slice(dash + 1) : '' };
}

/** Debian version order (as `dpkg --compare-versions`): negative, 0 or positive. */
export function compareDebVersions(a: string, b: string): number {
  const x = splitVersion(a);
  const y = splitVersion(b);
  if (x.epoch !== y.epoch) return x.epoch - y.epoch;
  return verrevcmp(x.upstream, y.upstream) || verrevcmp(x.revision, y.revision);
}

/** The signed text of a clearsigned InRelease (dash-escaping undone); the whole text if it is not clearsigned. */
export function signedText(inRelease: string): string {
  const lines = inRelease.replace(/\r\n/g, '\n').split('\n');
  const begin = lines.indexOf('-----BEGIN PGP SIGNED MESSAGE-----');
  if (begin < 0) return inRelease;
  let i = begin + 1;
  while (i < lines.length && lines[i] !== '') i++;
  const end = lines.indexOf('-----BEGIN PGP SIGNATURE-----', i);
  return lines
    .slice(i + 1, end < 0 ? lines.length : end)
    .map((l) => (l.startsWith('- ') ? l.slice(2) : l))
    .join('\n');
}

/** The SHA256 section of a Release text: path → sha256 and size. */
export function releaseHashes(release: string): Map<string, { sha256: string; size: number }> {
  const out = new Map<string, { sha256: string; size: number }>();
  let inSection = false;
  for (const line of release.split('\n')) {
    if (/^\S/.test(line)) {
      inSection = /^SHA256:\s*$/.test(line);
      continue;
    }
    if (!inSection) continue;
    const m = /^\s+([0-9a-f]{64})\s+(\d+)\s+(\S+)\s*$/.exec(line);
    if (m) out.set(m[3]!, { sha256: m[1]!, size: Number(m[2]) });
  }
  return out;
}

/**
 * The Packages indexes of a source for amd64, relative to the Release file's folder: one per
 * component (or one for a flat repository), the gzip, xz or uncompressed form the Release lists,
 * in that order (Debian's own Release lists an uncompressed Packages it does not serve; xz needs a
 * process, see apt.ts). Missing ones are named.
 */
export function packagesIndexes(source: AptSource, hashes: ReadonlyMap<string, unknown>): { found: string[]; missing: string[] } {
  const dirs = source.suite.endsWith('/') || !source.components.length ? [''] : source.components.map((c) => `${c}/binary-amd64/`);
  const found: string[] = [];
  const missing: string[] = [];
  for (const d of dirs) {
    const pick = [`${d}Packages.gz`, `${d}Packages.xz`, `${d}Packages`].find((p) => hashes.has(p));
    if (pick) found.push(pick);
    else missing.push(`${d}Packages`);
  }
  return { found, missing };
}

/** The URL of a file listed in a source's Release (relative to the folder that holds the Release). */
export function releaseFileUrl(source: AptSource, path: string): string {
  const base = source.url.replace(/\/+$/, '');
  return source.suite.endsWith('/') ? `${base}/${source.suite.replace(/^\/+/, '')}${path}` : `${base}/dists/${source.suite}/${path}`;
}

/** The URL of a package file: the index's Filename is relative to the repository's url. */
export function packageUrl(source: AptSource, filename: string): string {
  return `${source.url.replace(/\/+$/, '')}/${filename.replace(/^\/+/, '')}`;
}

/** Names in a Depends/Pre-Depends field: groups of alternatives, versions and arch qualifiers dropped. */
export function dependencyGroups(field: string | undefined): string[][] {
  if (!field) return [];
  return field
    .split(',')
    .map((g) =>
      g
        .split('|')
        .map((alt) => alt.trim().split(/[\s(:[]/)[0]!)
        .filter(Boolean),
    )
    .filter((g) => g.length > 0);
}

/** One alternative of a dependency: a name and, when the field gives one, a Debian version relation. */
export interface Relation {
  name: string;
  op?: VersionOp;
  version?: string;
}

const RELATION = /^([^\s(:[]+)(?::\S+)?\s*(?:\(\s*(<<|<=|=|>=|>>|<|>)\s*([^\s)]+)\s*\))?/;

/** Pure: a Depends/Pre-Depends/Provides field as groups of alternatives with their version relations (arch qualifiers dropped; the obsolete `<`/`>` read as `<=`/`>=`, as dpkg does). */
export function dependencyRelations(field: string | undefined): Relation[][] {
  if (!field) return [];
  return field
    .split(',')
    .map((g) =>
      g
        .split('|')
        .map((alt): Relation | undefined => {
          const m = RELATION.exec(alt.trim());
          if (!m) return undefined;
          const op = m[2] === '<' ? '<=' : m[2] === '>' ? '>=' : (m[2] as VersionOp | undefined);
          return { name: m[1]!, ...(op && m[3] ? { op, version: m[3] } : {}) };
        })
        .filter((r): r is Relation => r !== undefined),
    )
    .filter((g) => g.length > 0);
}

/** `name (op version)` as the index writes it. */
export function relationText(r: Relation): string {
  return r.op ? `${r.name} (${r.op} ${r.version})` : r.name;
}

export interface UpstreamPick {
  name: string;
  version: string;
  architecture: string;
  sha256: string;
  size: number;
  /** Filename field of the index (relative to the repository's url). */
  path: string;
  /** Pre-Depends and Depends, joined (absent when the package has none). */
  depends?: string;
  provides?: string;
}

export interface UpstreamResolution {
  packages: UpstreamPick[];
  /** Declared names the index does not carry for amd64 (or all). */
  notFound: string[];
  /** Dependencies the repository does not satisfy: they must come from Debian (the darksite lock). */
  external: { from: string; group: string[] }[];
  /** Index stanzas that lack a field the lock needs (name only). */
  malformed: string[];
}

/**
 * Pure: the packages a declaration takes from one repository's index: each declared name at the
 * highest version the index carries for amd64 or all (or the `prefer`red, locked, version while
 * the index still carries it), and transitively each dependency the same
 * repository provides (by name or Provides; the first alternative it carries). Everything else a
 * package depends on is returned as external.
 */
export function resolveUpstream(stanzas: readonly Stanza[], wanted: readonly string[], prefer: ReadonlyMap<string, string> = new Map()): UpstreamResolution {
  const best = new Map<string, Stanza>();
  const provides = new Map<string, string>();
  for (const s of stanzas) {
    const name = s.Package;
    const arch = s.Architecture;
    if (!name || !s.Version || (arch !== 'amd64' && arch !== 'all')) continue;
    const cur = best.get(name);
    // A preferred (locked) version the index still carries wins over a newer one.
    if (cur && prefer.get(name) === cur.Version) continue;
    if (!cur || prefer.get(name) === s.Version || compareDebVersions(s.Version, cur.Version!) > 0) best.set(name, s);
  }
  for (const [name, s] of [...best].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) for (const p of dependencyGroups(s.Provides).flat()) if (!provides.has(p)) provides.set(p, name);
  const carried = (n: string): string | undefined => (best.has(n) ? n : provides.get(n));
  const chosen = new Map<string, Stanza>();
  const notFound: string[] = [];
  const external: { from: string; group: string[] }[] = [];
  const queue = [...wanted];
  for (const w of wanted) if (!best.has(w)) notFound.push(w);
  while (queue.length) {
    const n = queue.shift()!;
    const s = best.get(n);
    if (!s || chosen.has(n)) continue;
    chosen.set(n, s);
    for (const group of [...dependencyGroups(s['Pre-Depends']), ...dependencyGroups(s.Depends)]) {
      const hit = group.map(carried).find((x) => x !== undefined);
      if (hit) queue.push(hit);
      else external.push({ from: n, group });
    }
  }
  const packages: UpstreamPick[] = [];
  const malformed: string[] = [];
  for (const [name, s] of chosen) {
    const size = Number(s.Size);
    if (!s.Filename || !/^[0-9a-f]{64}$/.test(s.SHA256 ?? '') || !Number.isInteger(size) || !s.Filename.endsWith('.deb')) {
      malformed.push(name);
      continue;
    }
    const depends = [s['Pre-Depends'], s.Depends].map((f) => f?.replace(/\s+/g, ' ').trim()).filter(Boolean).join(', ');
    const provides = s.Provides?.replace(/\s+/g, ' ').trim();
    packages.push({ name, version: s.Version!, architecture: s.Architecture!, sha256: s.SHA256!, size, path: s.Filename, ...(depends ? { depends } : {}), ...(provides ? { provides } : {}) });
  }
  packages.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { packages, notFound: notFound.sort(), external, malformed: malformed.sort() };
}

/** Pure: the dependency groups and Provides of packages as locked (their `depends`/`provides` fields). */
export function lockedRelations(pkgs: readonly { name: string; depends?: string; provides?: string }[]): { relations: { from: string; group: Relation[] }[]; provided: Map<string, { by: string; version?: string }[]> } {
  const relations: { from: string; group: Relation[] }[] = [];
  const provided = new Map<string, { by: string; version?: string }[]>();
  for (const p of pkgs) {
    for (const group of dependencyRelations(p.depends)) relations.push({ from: p.name, group });
    for (const r of dependencyRelations(p.provides).flat()) provided.set(r.name, [...(provided.get(r.name) ?? []), { by: p.name, ...(r.op === '=' && r.version ? { version: r.version } : {}) }]);
  }
  return { relations, provided };
}

/** A version on offer for a dependency: what holds it (`standin-apt`, `Debian lock`) and its version. */
export interface Candidate {
  version: string;
  where: string;
}

export type VersionCheck = (version: string, op: VersionOp, wanted: string) => Promise<boolean>;

/**
 * Dependency groups none of whose alternatives is satisfied, by name and version: an alternative
 * `n (op v)` is met by a package `n` on offer at a version that satisfies the relation, or by a
 * chosen package that provides `n` (unversioned: any Provides; versioned: only a Provides with
 * `= version`, Debian's rule). The comparison is injected (dpkg --compare-versions through the
 * runner in the build). Each unmet group says what was found, so the refusal can name it.
 */
export async function unmetRelations(
  relations: readonly { from: string; group: Relation[] }[],
  offer: ReadonlyMap<string, readonly Candidate[]>,
  provided: ReadonlyMap<string, readonly { by: string; version?: string }[]>,
  check: VersionCheck,
): Promise<{ from: string; group: Relation[]; found: string[] }[]> {
  const memo = new Map<string, Promise<boolean>>();
  const ok = (v: string, op: VersionOp, w: string): Promise<boolean> => {
    const k = `${v}\0${op}\0${w}`;
    let p = memo.get(k);
    if (!p) memo.set(k, (p = check(v, op, w)));
    return p;
  };
  const out: { from: string; group: Relation[]; found: string[] }[] = [];
  for (const { from, group } of relations) {
    let met = false;
    const found: string[] = [];
    for (const alt of group) {
      for (const c of offer.get(alt.name) ?? []) {
        if (!alt.op || (await ok(c.version, alt.op, alt.version!))) met = true;
        else found.push(`${alt.name} ${c.version} (${c.where})`);
        if (met) break;
      }
      for (const p of met ? [] : (provided.get(alt.name) ?? [])) {
        if (!alt.op || (p.version !== undefined && (await ok(p.version, alt.op, alt.version!)))) met = true;
        else found.push(`${p.by} provides ${alt.name}${p.version ? ` ${p.version}` : ' without a version'}`);
        if (met) break;
      }
      if (met) break;
    }
    if (!met) out.push({ from, group, found });
  }
  return out;
}

/** Pure: the binary form of an OpenPGP key file (armored blocks decoded; binary passed through). */
export function dearmor(bytes: Uint8Array): Uint8Array {
  const text = Buffer.from(bytes).toString('latin1');
  if (!text.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----')) return bytes;
  const parts: Buffer[] = [];
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '-----BEGIN PGP PUBLIC KEY BLOCK-----') continue;
    i++;
    while (i < lines.length && lines[i]!.trim() !== '' && /^[A-Za-z-]+:/.test(lines[i]!)) i++;
    const b64: string[] = [];
    for (; i < lines.length; i++) {
      const l = lines[i]!.trim();
      if (l.startsWith('-----END') || /^=[A-Za-z0-9+/=]{4}$/.test(l)) break;
      if (l) b64.push(l);
    }
    parts.push(Buffer.from(b64.join(''), 'base64'));
  }
  return new Uint8Array(Buffer.concat(parts));
}
