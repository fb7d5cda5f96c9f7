// Packages from declared upstream apt repositories (spec.sources.apt) into the cluster's darksite
// lock and the .deb cache, with the Debian lock's modes (darksite/index.ts LockMode):
// - the repository's key (its `key` URL) must be the one whose signature on InRelease is by the
//   pinned fingerprint (verify.ts); the Packages index must hash to what that InRelease lists;
//   every .deb to what the index lists. Nothing is written before it is verified.
// - default: the locked upstream packages are reused (cache, else the repository must still serve
//   that exact file); a locked version the repository no longer serves is refused by name (drift);
//   a changed declaration is resolved again keeping the locked versions still served, and a
//   version change it would need is refused the same way.
// - update: resolved again, the lock rewritten with the diff; frozen/offline: the declaration must
//   be the locked one; offline never touches the network.
// The packages live in the lock's `upstream` list and in the darksite's pool/upstream/<source>/.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { z } from 'zod';
import { canonicalJson, sha256Hex } from '../../../common/canonical';
import type { AptSourceSpec } from '../../../common/spec/schema';
import { run } from '../../exec/runner';
import { debCachePath, satisfies } from '../darksite/index';
import { writeFileAtomic } from '../files';
import type { DarksiteLock, LockDiff, LockedPackage, Superseded, UpstreamLockedPackage } from '../darksite/pins';
import { diffIsEmpty, diffLocks, DriftError, driftMessage, firstFew, PinError } from '../darksite/pins';
import { parseStanzas } from '../darksite/udebs';
import type { Stanza } from '../darksite/udebs';
import type { Candidate, VersionCheck } from './apt-index';
import { conflictText, dearmor, lockedRelations, packagesIndexes, packageUrl, relationText, releaseFileUrl, releaseHashes, resolveUpstream, shadowedByNewer, signedText, unmetRelations } from './apt-index';
import { download, fetchInRelease } from './fetch';
import { SourceVerifyError } from './verify';

type AptSource = z.infer<typeof AptSourceSpec>;
export type UpstreamMode = 'default' | 'update' | 'frozen' | 'offline';

export interface UpstreamOptions {
  /** The cluster's lock as the Debian step left it (ensureLock). */
  lock: DarksiteLock;
  lockPath: string;
  /** Cache root: .debs at <cache>/debs/<sha256>.deb (shared with Debian's), keys and indexes under <cache>/sources. */
  cacheDir: string;
  mode: UpstreamMode;
  /**
   * Mode 'update' only: resolve just these declared sources again (`kubedos lock update --source
   * NAME`); every other source keeps its locked packages and its repository is not asked. The
   * declaration must be the one the lock was resolved from.
   */
  only?: readonly string[];
  /** The Debian step wrote the lock in this build: its `previous` (digest, diff) is extended, not replaced. */
  lockWrittenThisBuild?: boolean;
  acceptCommand?: string;
  signal?: AbortSignal;
  log?: (line: string) => void;
  logDetail?: (text: string) => void;
}

export interface UpstreamResult {
  lock: DarksiteLock;
  packages: UpstreamLockedPackage[];
  written: boolean;
  diff?: LockDiff;
  downloaded: number;
  reused: number;
}

/** Pure: sha256 of a declaration (what the lock's upstream part was resolved from). */
export function declarationSha256(sources: readonly AptSource[]): string {
  return sha256Hex(canonicalJson([...sources].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))));
}

function sortUpstream(xs: UpstreamLockedPackage[]): UpstreamLockedPackage[] {
  const k = (p: UpstreamLockedPackage): string => `${p.source}\0${p.name}`;
  return xs.sort((a, b) => (k(a) < k(b) ? -1 : k(a) > k(b) ? 1 : 0));
}

interface OpenedIndex {
  stanzas: Stanza[];
}

/** Key → InRelease (signature by the pinned key) → Packages indexes (hash listed in the InRelease). */
async function openIndex(source: AptSource, o: UpstreamOptions): Promise<OpenedIndex> {
  const store = `${o.cacheDir}/sources`;
  const sig = o.signal ? { signal: o.signal } : {};
  if (!source.key) {
    throw new SourceVerifyError(source.name, `apt source ${source.name}: no key URL, so its InRelease cannot be checked; nothing was fetched`, `add key: <URL of the repository's public key> to spec.sources.apt ${source.name} (the build accepts it only if it signs as ${source.signedBy})`);
  }
  const keyring = dearmor(await download(source.name, source.key, sig));
  const release = await fetchInRelease(source, keyring, { cacheDir: store, ...sig });
  const hashes = releaseHashes(signedText(Buffer.from(readFileSync(release.path)).toString('utf8')));
  const { found, missing } = packagesIndexes(source, hashes);
  if (missing.length) {
    throw new SourceVerifyError(source.name, `apt source ${source.name} (${source.url} ${source.suite}): its InRelease lists no ${missing.join(', ')} (uncompressed, .gz or .xz) for amd64`, 'check suite and components in spec.sources.apt');
  }
  const stanzas: Stanza[] = [];
  for (const path of found) {
    const want = hashes.get(path)!;
    const url = releaseFileUrl(source, path);
    const body = await download(source.name, url, sig);
    const sha = sha256Hex(body);
    if (sha !== want.sha256 || body.byteLength !== want.size) {
      throw new SourceVerifyError(source.name, `apt source ${source.name}: ${url} has sha256 ${sha} (${body.byteLength} bytes), its signed InRelease says ${want.sha256} (${want.size} bytes); nothing was cached`, 'the repository is being updated or was tampered with: try again later; if it persists, tell the repository owner');
    }
    const text = path.endsWith('.gz') ? Buffer.from(gunzipSync(body)).toString('utf8') : path.endsWith('.xz') ? await unxz(source.name, url, body, o.signal) : Buffer.from(body).toString('utf8');
    stanzas.push(...parseStanzas(text));
  }
  return { stanzas };
}

/** An xz index (already hash-checked against the signed InRelease) decompressed by xz-utils through the runner. */
async function unxz(source: string, url: string, body: Uint8Array, signal?: AbortSignal): Promise<string> {
  try {
    const r = await run(['xz', '--decompress', '--stdout', '--single-stream'], { input: body, timeoutMs: 120_000, maxBufferBytes: 512 * 1024 * 1024, ...(signal ? { signal } : {}) });
    return r.stdout;
  } catch (err) {
    const tail = ((err as { stderrTail?: string }).stderrTail ?? (err as Error).message).trim().split('\n').slice(-3).join(' ');
    throw new SourceVerifyError(source, `apt source ${source}: ${url} matches its signed InRelease but xz cannot decompress it (${tail}); nothing was cached`, 'install xz-utils on the foundry (kubedos doctor lists it); if xz is there, tell the repository owner their index is broken');
  }
}

function driftOf(sup: Superseded[], o: UpstreamOptions, mode: 'default' | 'frozen'): DriftError {
  const { message, detail } = driftMessage(sup, { mode, lockPath: o.lockPath, acceptCommand: o.acceptCommand ?? 'kubedos lock update --spec SPEC' });
  o.logDetail?.(detail);
  return new DriftError(message.replace(/^darksite/, 'darksite (upstream apt sources)'), sup, detail);
}

/** Resolve every declared source against its verified index. */
async function resolveAll(sources: readonly AptSource[], o: UpstreamOptions, opened: Map<string, OpenedIndex>, prefer: readonly UpstreamLockedPackage[]): Promise<UpstreamLockedPackage[]> {
  const out: UpstreamLockedPackage[] = [];
  const conflicts: string[] = [];
  // What the Debian lock offers: a dependency the repository cannot meet but Debian can is left to Debian.
  const debian = debianOffer(o.lock.packages);
  for (const s of sources) {
    const idx = opened.get(s.name) ?? (await openIndex(s, o));
    opened.set(s.name, idx);
    const r = await resolveUpstream(idx.stanzas, s.packages, { prefer: new Map(prefer.filter((p) => p.source === s.name).map((p) => [p.name, p.version])), outside: debian, where: s.name, check: versionCheck(o) });
    conflicts.push(...r.conflicts.map((c) => `${conflictText(c)} (apt source ${s.name})`));
    if (r.notFound.length) throw new PinError(`apt source ${s.name} (${s.url} ${s.suite}): its index has no amd64 or all package ${firstFew(r.notFound)}; fix the names in spec.sources.apt ${s.name}.packages`);
    if (r.malformed.length) throw new PinError(`apt source ${s.name}: index entries without Filename, Size or SHA256: ${firstFew(r.malformed)}; the repository's index is not usable`);
    o.log?.(`sources: apt ${s.name}: ${r.packages.length} package(s) resolved from its signed index (${s.packages.length} declared)`);
    for (const p of r.packages) {
      out.push({ name: p.name, version: p.version, architecture: p.architecture, sha256: p.sha256, size: p.size, filename: p.path.split('/').pop()!, path: p.path, source: s.name, ...(p.depends ? { depends: p.depends } : {}), ...(p.provides ? { provides: p.provides } : {}) });
    }
  }
  if (conflicts.length) {
    throw new PinError(
      `upstream packages: ${conflicts.length} package(s) of which no version satisfies every relation on it (all its dependants together): ${firstFew(conflicts, 5, '; ')}. ` +
        'Declare (or update to) a repository that carries a version matching all of them, take a newer Debian package (kubedos lock update) when Debian is to provide it, or drop the package that asks for it from spec.sources.apt.',
    );
  }
  return sortUpstream(out);
}

function debianOffer(debian: readonly LockedPackage[]): Map<string, Candidate[]> {
  const offer = new Map<string, Candidate[]>();
  for (const p of debian) offer.set(p.name, [...(offer.get(p.name) ?? []), { version: p.version, where: 'Debian lock' }]);
  return offer;
}

/** The one relation check of the build: dpkg --compare-versions through the runner. */
function versionCheck(o: UpstreamOptions): VersionCheck {
  return (v, op, w) => satisfies(v, op, w, o.signal);
}

/**
 * Every dependency of the upstream packages (as locked: their `depends`), by name and version,
 * against their own source's packages and the Debian lock this build uses (dpkg decides the
 * relation). Run on every build, offline too: a Debian lock that moved (lists edited, --update)
 * cannot leave an upstream package with a dependency nothing satisfies. An upstream package that
 * apt on a node would pass over for a newer Debian one of its name breaking the relation it was
 * taken for is refused too.
 */
async function checkDependencies(target: readonly UpstreamLockedPackage[], debian: readonly LockedPackage[], o: UpstreamOptions): Promise<void> {
  const unmet: string[] = [];
  const shadowed: string[] = [];
  const fromDebian = debianOffer(debian);
  for (const source of [...new Set(target.map((p) => p.source))].sort()) {
    const mine = target.filter((p) => p.source === source);
    const offer = new Map<string, Candidate[]>();
    for (const p of mine) offer.set(p.name, [...(offer.get(p.name) ?? []), { version: p.version, where: source }]);
    for (const [name, cs] of fromDebian) offer.set(name, [...(offer.get(name) ?? []), ...cs]);
    const { relations, provided } = lockedRelations(mine);
    for (const u of await unmetRelations(relations, offer, provided, versionCheck(o))) {
      unmet.push(`${u.from} needs ${u.group.map(relationText).join(' | ')}${u.found.length ? ` (found ${u.found.join(', ')})` : ''}`);
    }
    for (const x of await shadowedByNewer(mine, relations, fromDebian, versionCheck(o))) {
      shadowed.push(`${x.from} needs ${relationText(x.relation)}: ${x.name} ${x.version} (${source}) meets it, but the ${x.newer.where} holds ${x.name} ${x.newer.version}, newer, which it does not accept`);
    }
  }
  if (unmet.length) {
    throw new PinError(
      `upstream packages have ${unmet.length} dependency(ies) neither their repository nor the Debian lock satisfies (by name and version): ${firstFew(unmet)}. ` +
        'Add the missing Debian ones to payload/packages/base.list (or the role list that installs them); a version found but excluded by the relation needs a newer Debian package (kubedos lock update) or a repository that carries a matching version; or declare the repository that carries them in spec.sources.apt.',
    );
  }
  if (shadowed.length) {
    throw new PinError(
      `upstream packages apt on a node would pass over: ${shadowed.length}: ${firstFew(shadowed, 5, '; ')}. ` +
        'apt installs the newest version of a name the darksite carries: drop the Debian package from payload/packages (base.list or the role list) if nothing else needs it, or declare a repository version the relation accepts.',
    );
  }
}

/** The sources `only` names, checked: update mode, each one declared, the declaration the locked one. */
function onlySources(sources: readonly AptSource[], o: UpstreamOptions, same: boolean): Set<string> {
  const names = [...new Set(o.only)].sort();
  const declared = sources.map((s) => s.name);
  if (o.mode !== 'update') throw new PinError(`moving only some apt sources (${names.join(', ')}) is a lock update (kubedos lock update --source NAME); this run's mode is ${o.mode}`);
  const unknown = names.filter((n) => !declared.includes(n));
  if (unknown.length) throw new PinError(`--source ${unknown.join(', ')}: spec.sources.apt declares no such source (it declares ${declared.length ? declared.join(', ') : 'none'}); nothing was resolved`);
  if (!same) {
    throw new PinError(
      `--source ${names.join(', ')}: spec.sources.apt is not the declaration the lock was resolved from (${o.lockPath}), so the other sources' locked packages cannot be kept as they are; nothing was resolved. ` +
        `Resolve every source with: ${o.acceptCommand ?? 'kubedos lock update --spec SPEC'} (it resolves the Debian lists too), or build once (a changed declaration keeps every locked version its repository still serves)`,
    );
  }
  return new Set(names);
}

/** The cluster's upstream packages: locked (per mode), in the cache and verified. */
export async function ensureUpstream(sources: readonly AptSource[], o: UpstreamOptions): Promise<UpstreamResult> {
  const lock = o.lock;
  const locked = lock.upstream ?? [];
  if (!sources.length && !locked.length) return { lock, packages: [], written: false, downloaded: 0, reused: 0 };
  const decl = declarationSha256(sources);
  const same = lock.upstreamSha256 === decl && lock.upstream !== undefined;
  const accept = o.acceptCommand ?? 'kubedos lock update --spec SPEC';
  if ((o.mode === 'frozen' || o.mode === 'offline') && !same) {
    throw new PinError(`--${o.mode}: spec.sources.apt changed since the lock was resolved (${o.lockPath}); a ${o.mode} build cannot resolve upstream packages. Resolve with: ${accept}`);
  }
  const only = o.only?.length ? onlySources(sources, o, same) : undefined;
  const opened = new Map<string, OpenedIndex>();
  let target: UpstreamLockedPackage[] = locked;
  let diff: LockDiff | undefined;
  if (!same || o.mode === 'update') {
    const moving = only ? sources.filter((s) => only.has(s.name)) : sources;
    o.log?.(`sources: resolving ${moving.length} declared apt source(s) (${moving.map((s) => s.name).join(', ')})${only ? '; every other source keeps its locked packages' : ''}`);
    // A changed declaration keeps every locked version its repository still serves (like edited package lists).
    const fresh = await resolveAll(moving, o, opened, o.mode === 'default' ? locked : []);
    const next = only ? sortUpstream([...locked.filter((p) => !only.has(p.source)), ...fresh]) : fresh;
    diff = diffLocks(locked, next);
    if (o.mode === 'default' && diff.changed.length) throw driftOf(diff.changed.map((c) => ({ name: c.name, architecture: c.architecture, locked: c.from, available: c.to })), o, 'default');
    target = next;
  }
  // Before anything is fetched: every dependency met by the Debian lock this build uses.
  await checkDependencies(target, lock.packages, o);
  // Every package in the cache with its locked sha256; what is missing comes from its repository.
  let reused = 0;
  const missing: UpstreamLockedPackage[] = [];
  for (const p of target) {
    const path = debCachePath(o.cacheDir, p.sha256);
    if (existsSync(path) && sha256Hex(readFileSync(path)) === p.sha256) reused++;
    else missing.push(p);
  }
  if (missing.length && o.mode === 'offline') {
    throw new Error(`darksite --offline: ${missing.length} locked upstream package(s) are not in the cache ${o.cacheDir}/debs: ${firstFew(missing.map((p) => `${p.name}=${p.version} (${p.source})`))}. Bring them from a build (--from DIR), or build once without --offline.`);
  }
  const bySource = new Map(sources.map((s) => [s.name, s]));
  const sup: Superseded[] = [];
  const verified: [UpstreamLockedPackage, Uint8Array][] = [];
  for (const p of missing) {
    const s = bySource.get(p.source);
    if (!s) throw new PinError(`the lock holds ${p.name} from apt source ${p.source}, which spec.sources.apt no longer declares. Resolve with: ${accept}`);
    const idx = opened.get(s.name) ?? (await openIndex(s, o));
    opened.set(s.name, idx);
    const entry = idx.stanzas.find((x) => x.Package === p.name && x.Version === p.version && x.Architecture === p.architecture);
    if (!entry) {
      const served = (await resolveUpstream(idx.stanzas, [p.name], { check: versionCheck(o) })).packages.find((x) => x.name === p.name);
      sup.push({ name: p.name, architecture: p.architecture, locked: p.version, ...(served ? { available: served.version } : {}) });
      continue;
    }
    if (entry.SHA256 !== p.sha256) {
      throw new SourceVerifyError(s.name, `apt source ${s.name}: ${p.name} ${p.version} is listed with sha256 ${entry.SHA256 ?? '(none)'}, the lock records ${p.sha256}: the same version with other bytes (a rebuilt or tampered repository); nothing was cached`, `if you trust the repository, accept it with ${accept}`);
    }
    const url = packageUrl(s, p.path);
    const body = await download(s.name, url, o.signal ? { signal: o.signal } : {});
    const sha = sha256Hex(body);
    if (sha !== p.sha256 || body.byteLength !== p.size) {
      throw new SourceVerifyError(s.name, `apt source ${s.name}: ${url} has sha256 ${sha} (${body.byteLength} bytes), the signed index says ${p.sha256} (${p.size} bytes); nothing was cached`, 'the repository serves a corrupt or altered file: try again later; if it persists, tell the repository owner');
    }
    verified.push([p, body]);
  }
  if (sup.length) throw driftOf(sup, o, o.mode === 'frozen' ? 'frozen' : 'default');
  // Everything verified: only now is anything cached.
  for (const [p, body] of verified) {
    const path = debCachePath(o.cacheDir, p.sha256);
    mkdirSync(dirname(path), { recursive: true });
    writeFileAtomic(path, body, 0o644);
  }
  if (verified.length) o.log?.(`sources: ${verified.length} upstream package(s) downloaded and verified against their signed index`);
  // The lock: unchanged, or the new upstream part (with the previous lock's digest and what moved).
  const nextUpstream = sources.length ? target : [];
  if (same && (!diff || diffIsEmpty(diff))) return { lock, packages: target, written: false, downloaded: verified.length, reused };
  const before = lock;
  const base: DarksiteLock = { ...before };
  delete base.upstream;
  delete base.upstreamSha256;
  const next: DarksiteLock = { ...base, ...(sources.length ? { upstreamSha256: decl, upstream: nextUpstream } : {}) };
  const upDiff = diff ?? diffLocks(locked, nextUpstream);
  if (o.lockWrittenThisBuild) {
    // One change of the lock per build: the Debian step's trail (if any) carries both diffs.
    const d = before.previous?.diff;
    if (before.previous && d) next.previous = { ...before.previous, diff: { added: [...d.added, ...upDiff.added], removed: [...d.removed, ...upDiff.removed], changed: [...d.changed, ...upDiff.changed] } };
  } else if (existsSync(o.lockPath)) {
    next.previous = { sha256: sha256Hex(readFileSync(o.lockPath)), reason: o.mode === 'update' ? 'update' : 'sources-changed', diff: upDiff };
  }
  mkdirSync(dirname(o.lockPath), { recursive: true });
  writeFileAtomic(o.lockPath, canonicalJson(next, 2) + '\n');
  o.log?.(`sources: lock ${o.lockPath}: ${nextUpstream.length} upstream package(s)${diffIsEmpty(upDiff) ? '' : ` (${upDiff.changed.length} changed, ${upDiff.added.length} added, ${upDiff.removed.length} removed)`}`);
  return { lock: next, packages: target, written: true, diff: upDiff, downloaded: verified.length, reused };
}
