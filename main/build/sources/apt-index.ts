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
  /** Packages the repository carries of which no version (nor the `outside` one) meets every relation on them. */
  conflicts: VersionConflict[];
}

/** A package no version of which satisfies all its dependants' relations together. */
export interface VersionConflict {
  name: string;
  /** Every relation on it: which package asks, and for what. */
  relations: { from: string; relation: Relation }[];
  /** Every version on offer: the repository's (newest first), then the ones outside it (the Debian lock). */
  available: Candidate[];
  /** Each version, once chosen, makes another one change: the choice never settles (this resolver is not a full solver). */
  unsettled?: true;
}

export interface ResolveOptions {
  /** The relation check (dpkg --compare-versions through the runner in the build). */
  check: VersionCheck;
  /** Locked versions: kept while the index carries them and they meet every relation. */
  prefer?: ReadonlyMap<string, string>;
  /** Versions outside this repository (the Debian lock): a dependency they satisfy and the repository cannot is left to them. */
  outside?: ReadonlyMap<string, readonly Candidate[]>;
  /** How the repository's versions are named in a conflict (the source's name). */
  where?: string;
}

/** At most this many passes: each one re-derives the relations from the versions the previous pass chose. */
const MAX_PASSES = 32;

/**
 * The packages a declaration takes from one repository's index: each declared name and,
 * transitively, each dependency the same repository carries (by name or Provides; of a group, the
 * first alternative some version on offer satisfies, else the first the repository carries), each
 * at the newest version the index carries for amd64 or all that meets **every** relation on it
 * from the packages taken (all dependants together; a locked, `prefer`red, version first while it
 * still does). A dependency no version of the repository meets but an `outside` (Debian lock)
 * version does is left to the outside, like everything the repository does not carry (returned as
 * external). When no version meets them all, the package is a conflict (its relations and every
 * version on offer). The versions chosen change the relations (an older package may ask for other
 * versions), so the choice is repeated until it is stable. Deterministic: index order breaks ties.
 */
export async function resolveUpstream(stanzas: readonly Stanza[], wanted: readonly string[], opts: ResolveOptions): Promise<UpstreamResolution> {
  const prefer = opts.prefer ?? new Map<string, string>();
  const outside = opts.outside ?? new Map<string, readonly Candidate[]>();
  const where = opts.where ?? 'this repository';
  const memo = new Map<string, Promise<boolean>>();
  const ok = (v: string, r: Relation): Promise<boolean> => {
    if (!r.op) return Promise.resolve(true);
    const k = `${v}\0${r.op}\0${r.version}`;
    let p = memo.get(k);
    if (!p) memo.set(k, (p = opts.check(v, r.op, r.version!)));
    return p;
  };
  const meetsAll = async (v: string, rels: readonly Relation[]): Promise<boolean> => {
    for (const r of rels) if (!(await ok(v, r))) return false;
    return true;
  };
  // Every version of each name, newest first (one stanza per version: the first in index order).
  const versions = new Map<string, Stanza[]>();
  for (const s of stanzas) {
    const arch = s.Architecture;
    if (!s.Package || !s.Version || (arch !== 'amd64' && arch !== 'all')) continue;
    const list = versions.get(s.Package) ?? [];
    if (!list.some((x) => x.Version === s.Version)) list.push(s);
    versions.set(s.Package, list);
  }
  for (const list of versions.values()) list.sort((a, b) => compareDebVersions(b.Version!, a.Version!));
  const ordered = (n: string): Stanza[] => {
    const list = versions.get(n) ?? [];
    const p = list.find((s) => s.Version === prefer.get(n));
    return p ? [p, ...list.filter((s) => s !== p)] : list;
  };
  const onOffer = (n: string): Candidate[] => [...(versions.get(n) ?? []).map((s) => ({ version: s.Version!, where })), ...(outside.get(n) ?? [])];
  const provides = new Map<string, string>();
  for (const name of [...versions.keys()].sort()) for (const p of dependencyGroups(ordered(name)[0]!.Provides).flat()) if (!provides.has(p)) provides.set(p, name);

  const declared = new Set(wanted);
  const notFound = [...declared].filter((w) => !versions.has(w)).sort();
  /** null: left to the outside version. */
  let picks = new Map<string, Stanza | null>();
  /** Each pass's choice, and where a choice was first made (to find a cycle). */
  const history: Map<string, Stanza | null>[] = [];
  const seen = new Map<string, number>();
  for (let pass = 1; ; pass++) {
    const relations = new Map<string, { from: string; relation: Relation }[]>();
    const external: { from: string; group: string[] }[] = [];
    const reached: string[] = [];
    const visited = new Set<string>();
    const queue = [...wanted];
    while (queue.length) {
      const n = queue.shift()!;
      if (visited.has(n) || !versions.has(n)) continue;
      visited.add(n);
      reached.push(n);
      const s = picks.has(n) ? picks.get(n)! : ordered(n)[0]!;
      if (!s) continue;
      for (const group of [...dependencyRelations(s['Pre-Depends']), ...dependencyRelations(s.Depends)]) {
        let chosen: { kind: 'repo' | 'provider' | 'outside'; alt: Relation } | undefined;
        for (const alt of group) {
          if (versions.has(alt.name)) {
            let any = false;
            for (const c of onOffer(alt.name)) if ((any = await ok(c.version, alt))) break;
            if (any) chosen = { kind: 'repo', alt };
          } else if (outside.has(alt.name)) {
            for (const c of outside.get(alt.name)!) if (!chosen && (await ok(c.version, alt))) chosen = { kind: 'outside', alt };
          } else if (provides.has(alt.name) && !alt.op) chosen = { kind: 'provider', alt };
          if (chosen) break;
        }
        // Nothing on offer meets any alternative: as before, the first one the repository carries
        // (its relation then names it as a conflict, or the dependency check does), else external.
        if (!chosen) {
          const carried = group.find((a) => versions.has(a.name) || provides.has(a.name));
          if (carried) chosen = { kind: versions.has(carried.name) ? 'repo' : 'provider', alt: carried };
        }
        if (!chosen || chosen.kind === 'outside' || (chosen.kind === 'repo' && picks.get(chosen.alt.name) === null)) {
          external.push({ from: n, group: group.map((a) => a.name) });
          if (!chosen || chosen.kind === 'outside') continue;
        }
        if (chosen.kind === 'provider') {
          queue.push(provides.get(chosen.alt.name)!);
          continue;
        }
        relations.set(chosen.alt.name, [...(relations.get(chosen.alt.name) ?? []), { from: n, relation: chosen.alt }]);
        queue.push(chosen.alt.name);
      }
    }
    // Each reached package at the newest version that meets every relation on it.
    const next = new Map<string, Stanza | null>();
    const conflicts: VersionConflict[] = [];
    for (const n of [...reached].sort()) {
      const rels = (relations.get(n) ?? []).map((r) => r.relation);
      let pick: Stanza | null | undefined;
      for (const s of ordered(n)) if (await meetsAll(s.Version!, rels)) {
        pick = s;
        break;
      }
      if (pick === undefined && !declared.has(n)) for (const c of outside.get(n) ?? []) if (await meetsAll(c.version, rels)) pick = null;
      if (pick === undefined) {
        conflicts.push({ name: n, relations: relations.get(n) ?? [], available: onOffer(n) });
        pick = picks.has(n) ? picks.get(n)! : ordered(n)[0]!;
      }
      next.set(n, pick);
    }
    const state = [...next].map(([n, s]) => `${n}=${s ? s.Version : '-'}`).join(' ');
    const stable = [...next].every(([n, s]) => picks.has(n) && picks.get(n) === s) && next.size === picks.size;
    const again = seen.get(state);
    if (stable || again !== undefined || pass >= MAX_PASSES) {
      if (!stable) {
        // The choice comes back without settling: every package whose version moves in that cycle is a conflict.
        const cycle = history.slice(again ?? 0);
        for (const [n] of next) {
          if (conflicts.some((c) => c.name === n) || cycle.every((h) => h.get(n) === next.get(n))) continue;
          conflicts.push({ name: n, relations: relations.get(n) ?? [], available: onOffer(n), unsettled: true });
        }
      }
      return finish(next, notFound, external, conflicts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)));
    }
    seen.set(state, history.length);
    history.push(next);
    picks = next;
  }
}

function finish(picks: ReadonlyMap<string, Stanza | null>, notFound: string[], external: { from: string; group: string[] }[], conflicts: VersionConflict[]): UpstreamResolution {
  const packages: UpstreamPick[] = [];
  const malformed: string[] = [];
  for (const [name, s] of picks) {
    if (!s) continue;
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
  return { packages, notFound, external, malformed: malformed.sort(), conflicts };
}

/** `kubedos-xz-lib: kubedos-xz needs kubedos-xz-lib (>= 1.5); on offer 1.4 (xz-apt), 1.3 (Debian lock)`. */
export function conflictText(c: VersionConflict): string {
  const asks = c.relations.length ? c.relations.map((r) => `${r.from} needs ${relationText(r.relation)}`).join(' and ') : 'declared';
  const offer = c.available.map((a) => `${a.version} (${a.where})`).join(', ') || 'nothing';
  return c.unsettled ? `${c.name}: no choice of versions settles (each version chosen changes what the others ask for; last: ${asks}); on offer ${offer}` : `${c.name}: ${asks}; on offer ${offer}`;
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

/** An upstream package apt on a node would pass over: a newer one of its name elsewhere breaks a relation it was taken for. */
export interface Shadowed {
  name: string;
  version: string;
  newer: Candidate;
  from: string;
  relation: Relation;
}

/**
 * Upstream packages apt on a node would not install: the darksite has one index, and apt takes
 * the newest version of a name, so a package of the repository taken at an older version than the
 * Debian lock's (an upper bound, `<< 2.0`) is passed over for Debian's, which breaks the relation
 * it was taken for. Only relations with no alternative count (with one, apt may take another).
 */
export async function shadowedByNewer(
  mine: readonly { name: string; version: string }[],
  relations: readonly { from: string; group: Relation[] }[],
  outside: ReadonlyMap<string, readonly Candidate[]>,
  check: VersionCheck,
): Promise<Shadowed[]> {
  const out: Shadowed[] = [];
  for (const p of mine) {
    for (const c of outside.get(p.name) ?? []) {
      if (!(await check(c.version, '>>', p.version))) continue;
      for (const { from, group } of relations) {
        const r = group.length === 1 ? group[0]! : undefined;
        if (r?.name !== p.name || !r.op || (await check(c.version, r.op, r.version!))) continue;
        out.push({ name: p.name, version: p.version, newer: c, from, relation: r });
        break;
      }
    }
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
