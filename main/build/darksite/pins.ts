// Package lists (payload/packages/<role>.list: names in, an optional version constraint where a
// role really needs one) and the lock (the resolved closure: an output of a build, stored per
// cluster in the workspace and carried in the artifact). Pure: parsing, hashing, diffing and
// the wording of drift; no apt, no files.
import { z } from 'zod';
import { NODE_ROLES } from '../../../common/spec/schema';
import type { NodeRole } from '../../../common/spec/schema';
import { sha256Hex } from '../../../common/canonical';

export type VersionOp = '<<' | '<=' | '=' | '>=' | '>>';

/** One wanted package of a list: a name, and a Debian version relation when a role needs one. */
export interface Want {
  name: string;
  constraint?: { op: VersionOp; version: string };
  /** Where it was declared, for error messages: "base.list:12". */
  origin: string;
}

export class PinError extends Error {}

const PKG = /^[a-z0-9][a-z0-9+.-]+$/;
const VER = /^[A-Za-z0-9.+~:-]+$/;

/** Lines: `name`, or `name (OP version)` with OP one of << <= = >= >> (Debian's relations). */
export function parseList(file: string, text: string): Want[] {
  const wants: Want[] = [];
  const seen = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    const origin = `${file}:${i + 1}`;
    const m = /^([^\s(=]+)\s*(?:\(\s*(<<|<=|=|>=|>>)\s*([^\s)]+)\s*\))?$/.exec(line);
    if (!m || !PKG.test(m[1]!) || (m[3] !== undefined && !VER.test(m[3]))) {
      const hint = /^[^=\s]+=\S+$/.test(line) ? ` (exact versions go stale when the archive moves: write the name alone, or a relation like "${line.split('=')[0]} (>= ${line.split('=')[1]})" if the role really needs one)` : '';
      throw new PinError(`${origin}: "${line}" is not a package name or "name (OP version)"${hint}`);
    }
    if (seen.has(m[1]!)) throw new PinError(`${origin}: ${m[1]} is listed twice in ${file}`);
    seen.add(m[1]!);
    wants.push({ name: m[1]!, ...(m[2] ? { constraint: { op: m[2] as VersionOp, version: m[3]! } } : {}), origin });
  });
  return wants;
}

export interface PackageLists {
  base: Want[];
  roles: Record<NodeRole, Want[]>;
  /** sha256 over every list's bytes: a lock records the lists it was resolved from. */
  sha256: string;
}

/** files: name → text for base.list and <role>.list (a missing role list means no extras). */
export function packageLists(files: Record<string, string>): PackageLists {
  const base = parseList('base.list', files['base.list'] ?? '');
  if (!base.length) throw new PinError('payload/packages/base.list is missing or empty: every node needs the base set');
  const roles = {} as Record<NodeRole, Want[]>;
  for (const r of NODE_ROLES) roles[r] = parseList(`${r}.list`, files[`${r}.list`] ?? '');
  const names = Object.keys(files).filter((f) => f.endsWith('.list')).sort();
  const sha256 = sha256Hex(names.map((n) => `${n}\n${files[n]}`).join('\0'));
  return { base, roles, sha256 };
}

/** One locked package file of the darksite (.deb or installer .udeb). */
export const LockedFile = z.object({
  name: z.string().regex(PKG),
  version: z.string().regex(VER),
  architecture: z.string().regex(/^[a-z0-9]+$/),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  /** Pool file name (no host, no directory). */
  filename: z.string().regex(/^[A-Za-z0-9.+~_%-]+\.u?deb$/),
});

export const LockedPackage = LockedFile.extend({
  roles: z.array(z.enum(NODE_ROLES)).min(1),
  /** Which archive served it: "debian/bookworm-security" (the suite of the host's Debian sources). */
  source: z.string().min(1),
});
export type LockedPackage = z.infer<typeof LockedPackage>;

export const VersionChange = z.object({ name: z.string(), architecture: z.string(), from: z.string(), to: z.string() });
export const LockDiff = z.object({
  added: z.array(z.object({ name: z.string(), architecture: z.string(), version: z.string() })),
  removed: z.array(z.object({ name: z.string(), architecture: z.string(), version: z.string() })),
  changed: z.array(VersionChange),
});
export type LockDiff = z.infer<typeof LockDiff>;

/** A package from a declared upstream apt source (spec.sources.apt), verified against its signed index. */
export const UpstreamLockedPackage = LockedFile.extend({
  /** The apt source's name in spec.sources.apt. */
  source: z.string().min(1),
  /** Filename in the repository's index (relative to its url). */
  path: z.string().regex(/^(?!.*(^|\/)\.\.(\/|$))[A-Za-z0-9.+~_%/-]+\.deb$/),
  /** The index's Pre-Depends and Depends (joined with ", "), as resolved: every build checks them
   * by name and version against the Debian lock it uses (sources/apt.ts). Absent: no dependencies. */
  depends: z.string().optional(),
  /** The index's Provides: what this package satisfies for the others of its source. */
  provides: z.string().optional(),
});
export type UpstreamLockedPackage = z.infer<typeof UpstreamLockedPackage>;

export const DarksiteLock = z.object({
  apiVersion: z.literal('kubedos.ca/v1alpha2'),
  kind: z.literal('DarksiteLock'),
  codename: z.string(),
  architecture: z.literal('amd64'),
  /** sha256 of the package lists this closure was resolved from. */
  listsSha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** The lock this one replaced, and what moved: an auditor's trail (also in the provenance). */
  previous: z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), reason: z.enum(['update', 'lists-changed', 'sources-changed']), diff: LockDiff }).optional(),
  packages: z.array(LockedPackage).min(1),
  /** sha256 of the declared apt sources (spec.sources.apt) the upstream packages were resolved from. */
  upstreamSha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /** Packages from declared upstream apt sources, sorted by source then name. */
  upstream: z.array(UpstreamLockedPackage).optional(),
});
export type DarksiteLock = z.infer<typeof DarksiteLock>;

/** Pure: the locked packages a set of roles needs, sorted by name. */
export function packagesFor(lock: DarksiteLock, roles: readonly NodeRole[]): LockedPackage[] {
  const want = new Set(roles);
  return lock.packages.filter((p) => p.roles.some((r) => want.has(r))).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Pure: the upstream packages the build installs on a role's nodes (spec.sources.apt `installOn`):
 * every locked package of each declared source that names the role (its declared packages and the
 * dependencies taken from the same repository), sorted by name. A source without `installOn` only
 * fills the darksite.
 */
export function upstreamInstalledFor(upstream: readonly UpstreamLockedPackage[], sources: readonly { name: string; installOn?: readonly NodeRole[] | undefined }[], role: NodeRole): UpstreamLockedPackage[] {
  const on = new Set(sources.filter((s) => s.installOn?.includes(role)).map((s) => s.name));
  return upstream.filter((p) => on.has(p.source)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Pure: what moved from one closure to the next, sorted by name. */
export function diffLocks(before: readonly Pick<LockedPackage, 'name' | 'architecture' | 'version'>[], after: readonly Pick<LockedPackage, 'name' | 'architecture' | 'version'>[]): LockDiff {
  const key = (p: { name: string; architecture: string }): string => `${p.name}:${p.architecture}`;
  const a = new Map(before.map((p) => [key(p), p]));
  const b = new Map(after.map((p) => [key(p), p]));
  const byName = <T extends { name: string }>(xs: T[]): T[] => xs.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  return {
    added: byName([...b.values()].filter((p) => !a.has(key(p))).map((p) => ({ name: p.name, architecture: p.architecture, version: p.version }))),
    removed: byName([...a.values()].filter((p) => !b.has(key(p))).map((p) => ({ name: p.name, architecture: p.architecture, version: p.version }))),
    changed: byName([...b.values()].filter((p) => a.has(key(p)) && a.get(key(p))!.version !== p.version).map((p) => ({ name: p.name, architecture: p.architecture, from: a.get(key(p))!.version, to: p.version }))),
  };
}

export function diffIsEmpty(d: LockDiff): boolean {
  return !d.added.length && !d.removed.length && !d.changed.length;
}

/** Pure: the diff as lines ("~ name old → new", "+ name ver", "- name ver"), at most `max` of them. */
export function renderDiff(d: LockDiff, max = Infinity): string[] {
  const lines = [
    ...d.changed.map((c) => `  ~ ${c.name.padEnd(28)} ${c.from} → ${c.to}`),
    ...d.added.map((c) => `  + ${c.name.padEnd(28)} ${c.version}`),
    ...d.removed.map((c) => `  - ${c.name.padEnd(28)} ${c.version}`),
  ];
  if (lines.length <= max) return lines;
  return [...lines.slice(0, max), `  … and ${lines.length - max} more (full list in the build log)`];
}

export function diffSummary(d: LockDiff): string {
  return `${d.changed.length} changed, ${d.added.length} added, ${d.removed.length} removed`;
}

/** A locked version the archive no longer serves (and the cache does not hold). */
export interface Superseded {
  name: string;
  architecture: string;
  locked: string;
  /** What the archive serves today, or undefined when it serves no version at all. */
  available?: string;
}

/** Raised when the lock cannot be honoured: never replaced silently. */
export class DriftError extends Error {
  constructor(
    message: string,
    readonly superseded: readonly Superseded[],
    /** Every line, for the build log (the message holds the first few). */
    readonly detail: string,
  ) {
    super(message);
    this.name = 'DriftError';
  }
}

export const DRIFT_SHOWN = 8;

/** Pure: the short drift message (at most ~15 lines however many packages moved). */
export function driftMessage(sup: readonly Superseded[], o: { mode: 'default' | 'frozen'; lockPath: string; acceptCommand: string }): { message: string; detail: string } {
  const row = (s: Superseded): string => `  ${s.name.padEnd(28)} ${s.locked} → ${s.available ?? '(no longer served at all)'}`;
  const shown = sup.slice(0, DRIFT_SHOWN).map(row);
  const more = sup.length > DRIFT_SHOWN ? [`  … and ${sup.length - DRIFT_SHOWN} more (full list in the build log)`] : [];
  const head =
    o.mode === 'frozen'
      ? `darksite --frozen: the lock cannot be satisfied: ${sup.length} locked package(s) are neither in the cache nor served by the archive any more:`
      : `darksite drift: the archive no longer serves ${sup.length} locked package version(s), and the cache does not hold them (nothing was replaced):`;
  const tail = [
    `To accept the archive's versions (writes a new lock, prints the diff, records the old lock's digest): ${o.acceptCommand}`,
    'To rebuild exactly what was locked instead, bring its packages: kubedos build … --offline --from BUILD_OR_BUNDLE_DIR',
    `(lock: ${o.lockPath})`,
  ];
  return { message: [head, ...shown, ...more, ...tail].join('\n'), detail: [head, ...sup.map(row)].join('\n') };
}

/** Pure: "Inst name (version suite [arch])" lines of `apt-get -s install`. */
export function parseSimulation(stdout: string): { name: string; version: string; architecture: string }[] {
  const out: { name: string; version: string; architecture: string }[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) .*\[(\S+)\]\)/.exec(line);
    if (m) out.push({ name: m[1]!, version: m[2]!, architecture: m[3]! });
  }
  return out;
}

/** Pure: the stanzas of `apt-cache show name=version…`: what the lock records per package. */
export function parseShow(stdout: string): { name: string; version: string; architecture: string; filename: string; size: number; sha256: string }[] {
  const out: { name: string; version: string; architecture: string; filename: string; size: number; sha256: string }[] = [];
  for (const stanza of stdout.split(/\n\n+/)) {
    const f = (k: string): string | undefined => new RegExp(`^${k}: (.*)$`, 'm').exec(stanza)?.[1]?.trim();
    const name = f('Package');
    const version = f('Version');
    const architecture = f('Architecture');
    const filename = f('Filename');
    const size = f('Size');
    const sha256 = f('SHA256');
    if (name && version && architecture && filename && size && sha256) out.push({ name, version, architecture, filename: filename.split('/').pop()!, size: Number(size), sha256 });
  }
  return out;
}

/** Pure: `apt-cache madison` lines → name → [{version, suite}] in the order apt prints them. */
export function parseMadison(stdout: string): Map<string, { version: string; suite: string }[]> {
  const out = new Map<string, { version: string; suite: string }[]>();
  for (const line of stdout.split('\n')) {
    const m = /^\s*(\S+)\s*\|\s*(\S+)\s*\|\s*\S+\s+(\S+?)\/\S+\s+\S+\s+Packages\s*$/.exec(line);
    if (!m) continue;
    const list = out.get(m[1]!) ?? [];
    list.push({ version: m[2]!, suite: m[3]! });
    out.set(m[1]!, list);
  }
  return out;
}

/** Pure: which listed names an apt error is about, so the message can name them. */
export function unresolvedWants(stderr: string, wants: readonly Want[]): Want[] {
  const bad: Want[] = [];
  for (const p of wants) {
    const v = p.constraint?.op === '=' ? p.constraint.version : undefined;
    if ((v && stderr.includes(`Version '${v}' for '${p.name}' was not found`)) || new RegExp(`Unable to locate package ${p.name.replace(/[.+]/g, '\\$&')}\\b`).test(stderr) || stderr.includes(`Package '${p.name}' has no installation candidate`)) bad.push(p);
  }
  return bad;
}

/** Up to n items joined, with "… and K more" (one rule: common/text/first-few.ts). */
export { firstFew } from '../../../common/text/first-few';
