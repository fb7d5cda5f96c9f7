// The darksite: an offline, signed apt repository holding the dependency closure of the package
// lists. The closure is the cluster's lock (<workspace>/clusters/<name>/darksite.lock.json), an
// output of a build: resolution needs the Debian archive (its address comes from the host's apt
// sources); after that the lock plus the content-addressed .deb cache (or a build's darksite,
// brought with --from) are enough, so a rebuild downloads nothing and --offline needs no network.
import { createHash } from 'node:crypto';
import { copyFileSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { canonicalJson } from '../../../common/canonical';
import type { NodeRole } from '../../../common/spec/schema';
import { CommandError, run } from '../../exec/runner';
import { sha256File, sha256Of, writeFileAtomic } from '../files';
import { stopGpgAgent } from '../keys';
import type { RepoKey } from '../keys';
import { hostDebianSources, renderSourcesList, renderUdebSourcesList } from './apt-sources';
import type { DarksiteLock as DarksiteLockT, LockDiff, LockedPackage, PackageLists, Superseded, UpstreamLockedPackage, VersionOp, Want } from './pins';
import { DarksiteLock, diffIsEmpty, diffLocks, DriftError, driftMessage, firstFew, packageLists, packagesFor, parseMadison, parseShow, parseSimulation, PinError, unresolvedWants } from './pins';
import { NODE_ROLES } from '../../../common/spec/schema';
import type { UdebLock as UdebLockT } from './udebs';
import { extrasSha256, installerInfo, kernelAbiOf, parseExtras, parseStanzas, selectUdebs, UDEB_EXTRAS_FILE, UDEB_LOCK_FILE, UdebLock } from './udebs';

export const CODENAME = 'bookworm';
export const LOCK_FILE = 'darksite.lock.json';
export const KEYRING_FILE = 'kubedos-archive-keyring.gpg';

/**
 * How the lock meets the archive, like `npm install` / `npm ci`:
 * - default: reuse every locked version still obtainable (cache, then archive); a locked version
 *   the archive no longer serves stops the build with the drift message (never replaced silently).
 * - update: resolve the lists again, write the new lock, print the diff, keep the old lock's digest.
 * - frozen: the lock must be satisfied exactly (cache or archive); changed lists are refused.
 * - offline: cache only (or a build's darksite brought with --from); never a network call.
 */
export type LockMode = 'default' | 'update' | 'frozen' | 'offline';
export const LOCK_MODES: readonly LockMode[] = ['default', 'update', 'frozen', 'offline'];

export interface DarksiteOptions {
  /** payload/packages: the lists (read-only: a build never writes the app's own tree). */
  packagesDir: string;
  /** The cluster's lock in its workspace (written by resolutions). */
  lockPath: string;
  /** Shared cache root: <cache>/debs/<sha256>.deb, <cache>/apt (private apt state). */
  cacheDir: string;
  mode?: LockMode;
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** Long detail (every package of a drift) for the build log file only, never the terminal. */
  logDetail?: (text: string) => void;
  /** Where apt sources are read (tests point elsewhere). */
  aptRoot?: string;
  /** The command that accepts drift, for messages (the CLI fills in the spec path). */
  acceptCommand?: string;
}

export interface DarksiteStats {
  downloaded: number;
  reused: number;
}

export function readLists(packagesDir: string): PackageLists {
  if (!existsSync(packagesDir)) throw new PinError(`${packagesDir} does not exist: the package lists live in payload/packages/`);
  const files: Record<string, string> = {};
  for (const f of readdirSync(packagesDir).sort()) if (f.endsWith('.list')) files[f] = readFileSync(join(packagesDir, f), 'utf8');
  return packageLists(files);
}

/** The lock at path, or undefined; anything that is not a lock stops with one line naming the fix. */
export function readLock(path: string): DarksiteLockT | undefined {
  if (!existsSync(path)) return undefined;
  const fix = `fix it, or delete it and resolve again (kubedos lock update --spec SPEC)`;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new PinError(`${path} is not JSON (${(err as Error).message.split('\n')[0]}): ${fix}`);
  }
  const parsed = DarksiteLock.safeParse(json);
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw new PinError(`${path} is not a darksite lock: ${i.path.join('.') || '(top)'}: ${i.message}${parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more problems)` : ''}: ${fix}`);
  }
  const seen = new Set<string>();
  for (const p of parsed.data.packages) {
    const k = `${p.name}:${p.architecture}`;
    if (seen.has(k)) throw new PinError(`${path} is not a darksite lock: ${k} is locked twice: ${fix}`);
    seen.add(k);
  }
  return parsed.data;
}

export function lockDigest(lock: DarksiteLockT): string {
  return sha256Of(canonicalJson(lock, 2) + '\n');
}

/** Bounded, actionable text for an apt failure: what apt said (signature, hash, 404), never its argv. */
function aptFailure(err: unknown, what: string): Error {
  if (!(err instanceof CommandError)) return err as Error;
  const t = err.stderrTail;
  if (/NO_PUBKEY|BADSIG|EXPKEYSIG|signatures were invalid|is not signed|no longer signed|Signed-By/.test(t)) {
    const repo = /repository '([^']+)'/.exec(t)?.[1] ?? /InRelease.*?:\s*(\S+)/.exec(t)?.[1];
    return new Error(`${what}: the archive's Release signature does not verify${repo ? ` (${repo})` : ''}; apt refused it and nothing was cached. Check the source's signing key (signed-by= in the apt sources) or the archive itself.`);
  }
  const hash = /(?:Hash Sum mismatch|File has unexpected size)[^\n]*/.exec(t);
  if (hash) {
    const file = /Failed to fetch \S*\/([^/\s]+\.u?deb)/.exec(t)?.[1] ?? /([^/\s]+\.u?deb)/.exec(t)?.[1];
    return new Error(`${what}: the archive served ${file ?? 'a package'} with the wrong hash or size (${hash[0].trim()}); nothing unverified was cached. The archive's copy is corrupt or was tampered with: try again later or another mirror.`);
  }
  const last = t.trim().split('\n').filter((l) => /^(E|W|Err):/.test(l)).slice(-2).join(' / ') || t.trim().split('\n').slice(-1)[0] || err.message.slice(0, 200);
  return new Error(`${what}: ${last}${err.hint ? ` (${err.hint})` : ''}`);
}

/** Private apt configuration: host sources for Debian only, empty dpkg status, our own dirs. */
class PrivateApt {
  private updated = false;
  constructor(
    private readonly dir: string,
    private readonly opts: Pick<DarksiteOptions, 'signal' | 'log' | 'aptRoot'>,
    /** Only the codename's main/debian-installer index (the installer's udebs), nothing else. */
    private readonly udebs = false,
  ) {}

  private args(archives: string): string[] {
    const d = this.dir;
    for (const sub of ['lists/partial', 'cache/archives/partial', 'etc/preferences.d', 'etc/apt.conf.d']) mkdirSync(join(d, sub), { recursive: true });
    mkdirSync(join(archives, 'partial'), { recursive: true });
    if (!existsSync(join(d, 'status'))) writeFileSync(join(d, 'status'), '');
    return [
      '-o', `Dir::Etc::sourcelist=${join(d, 'sources.list')}`,
      '-o', 'Dir::Etc::sourceparts=-',
      '-o', `Dir::Etc::preferencesparts=${join(d, 'etc/preferences.d')}`,
      '-o', `Dir::Etc::preferences=${join(d, 'etc/preferences')}`,
      '-o', `Dir::State=${d}`,
      '-o', `Dir::State::lists=${join(d, 'lists')}`,
      '-o', `Dir::State::status=${join(d, 'status')}`,
      '-o', `Dir::Cache=${join(d, 'cache')}`,
      '-o', `Dir::Cache::archives=${archives}`,
      '-o', 'Debug::NoLocking=1',
      '-o', 'APT::Architecture=amd64',
      '-o', 'APT::Architectures=amd64',
      '-o', 'APT::Install-Recommends=false',
      '-o', 'APT::Sandbox::User=root',
      '-o', 'Acquire::Languages=none',
      '-o', 'APT::Get::AllowUnauthenticated=false',
    ];
  }

  /** Versions preferred over the candidate (the lock's), or none. */
  prefer(pkgs: readonly { name: string; version: string }[]): void {
    mkdirSync(join(this.dir, 'etc'), { recursive: true });
    writeFileSync(join(this.dir, 'etc/preferences'), pkgs.map((p) => `Package: ${p.name}\nPin: version ${p.version}\nPin-Priority: 1001\n`).join('\n'));
  }

  async update(): Promise<void> {
    if (this.updated) return;
    mkdirSync(this.dir, { recursive: true });
    const sources = hostDebianSources(CODENAME, this.opts.aptRoot);
    writeFileSync(join(this.dir, 'sources.list'), this.udebs ? renderUdebSourcesList(sources, CODENAME) : renderSourcesList(sources));
    this.opts.log?.(`darksite: apt-get update (private lists${this.udebs ? ', installer udebs' : ''}, Debian sources of this host)`);
    try {
      await run(['apt-get', ...this.args(join(this.dir, 'cache/archives')), '-q', 'update', '-o', 'APT::Update::Error-Mode=any'], {
        signal: this.opts.signal,
        timeoutMs: 15 * 60_000,
        hint: 'the Debian archive named in the apt sources must be reachable; with a filled cache use --offline',
      });
    } catch (err) {
      throw aptFailure(err, 'darksite: apt-get update of the Debian archive failed');
    }
    this.updated = true;
  }

  async cache(argv: string[]): Promise<{ stdout: string }> {
    return run(['apt-cache', ...this.args(join(this.dir, 'cache/archives')), ...argv], { signal: this.opts.signal, timeoutMs: 10 * 60_000, maxBufferBytes: 128 * 1024 * 1024 });
  }

  async apt(argv: string[], cwd?: string, archives?: string): Promise<{ stdout: string; stderr: string }> {
    return run(['apt-get', ...this.args(archives ?? join(this.dir, 'cache/archives')), ...argv], { signal: this.opts.signal, timeoutMs: 30 * 60_000, ...(cwd ? { cwd } : {}) });
  }

  /** name → versions served today (with their suite), in apt's order. */
  async served(names: readonly string[]): Promise<Map<string, { version: string; suite: string }[]>> {
    const out = new Map<string, { version: string; suite: string }[]>();
    const unique = [...new Set(names)].sort();
    for (let i = 0; i < unique.length; i += 200) {
      const r = await this.cache(['madison', ...unique.slice(i, i + 200)]);
      for (const [k, v] of parseMadison(r.stdout)) out.set(k, v);
    }
    return out;
  }
}

/** One private apt per build (per options object): resolving and then fetching in the same
 * build update the archive's lists once, not twice. */
const aptOfBuild = new WeakMap<DarksiteOptions, PrivateApt>();
function debianApt(opts: DarksiteOptions): PrivateApt {
  let apt = aptOfBuild.get(opts);
  if (!apt) aptOfBuild.set(opts, (apt = new PrivateApt(join(opts.cacheDir, 'apt'), opts)));
  return apt;
}

function sortByName<T extends { name: string; architecture?: string }>(xs: T[]): T[] {
  const k = (x: T): string => `${x.name}\0${x.architecture ?? ''}`;
  return xs.sort((a, b) => (k(a) < k(b) ? -1 : k(a) > k(b) ? 1 : 0));
}

/** Debian's version relation, decided by dpkg itself (`dpkg --compare-versions`) through the runner. */
export async function satisfies(version: string, op: VersionOp, wanted: string, signal?: AbortSignal): Promise<boolean> {
  const dpkgOp = { '<<': 'lt', '<=': 'le', '=': 'eq', '>=': 'ge', '>>': 'gt' }[op];
  const r = await run(['dpkg', '--compare-versions', version, dpkgOp, wanted], { okExitCodes: [0, 1], signal, timeoutMs: 10_000 });
  return r.exitCode === 0;
}

/** Resolve every role's closure (base + role lists) without downloading: a new lock. */
async function resolveLock(lists: PackageLists, apt: PrivateApt, prefer: readonly LockedPackage[], opts: DarksiteOptions): Promise<DarksiteLockT> {
  apt.prefer(prefer);
  await apt.update();
  const byKey = new Map<string, Omit<LockedPackage, 'source'>>();
  for (const role of NODE_ROLES) {
    const wanted: Want[] = [...lists.base, ...lists.roles[role]];
    const specs = wanted.map((w) => (w.constraint?.op === '=' ? `${w.name}=${w.constraint.version}` : w.name));
    opts.log?.(`darksite: resolving ${role} (${wanted.length} listed packages${prefer.length ? `, preferring the ${prefer.length} locked versions` : ''})`);
    let sim: { stdout: string };
    try {
      sim = await apt.apt(['-s', '-y', 'install', ...specs]);
    } catch (err) {
      const text = `${(err as Error).message}\n${(err as { stderrTail?: string }).stderrTail ?? ''}`;
      const bad = unresolvedWants(text, wanted);
      if (bad.length) {
        throw new PinError(
          `${bad.length} listed package(s) do not exist in the Debian archive (${CODENAME}, -updates, -security): ${firstFew(bad.map((b) => `${b.name}${b.constraint ? ` (${b.constraint.op} ${b.constraint.version})` : ''} at ${b.origin}`))}. ` +
            'Fix the name in payload/packages/ (apt-cache search WORD finds the right one).',
        );
      }
      throw aptFailure(err, `darksite: apt could not resolve the ${role} closure`);
    }
    const chosen = parseSimulation(sim.stdout);
    for (const w of wanted) {
      if (!w.constraint || w.constraint.op === '=') continue;
      const got = chosen.find((c) => c.name === w.name);
      if (got && !(await satisfies(got.version, w.constraint.op, w.constraint.version, opts.signal))) {
        throw new PinError(`${w.origin}: ${w.name} must be (${w.constraint.op} ${w.constraint.version}) but the archive offers ${got.version}; relax the constraint or wait for the archive`);
      }
    }
    const shown = parseShow((await apt.cache(['show', ...chosen.map((c) => `${c.name}:${c.architecture}=${c.version}`)])).stdout);
    for (const inst of chosen) {
      const file = shown.find((f) => f.name === inst.name && f.version === inst.version && f.architecture === inst.architecture);
      if (!file) throw new Error(`darksite: apt chose ${inst.name} ${inst.version} but apt-cache show has no record of it`);
      const key = `${inst.name}\0${inst.version}\0${inst.architecture}`;
      const prev = byKey.get(key);
      if (prev) prev.roles = [...new Set([...prev.roles, role])].sort() as NodeRole[];
      else byKey.set(key, { name: inst.name, version: inst.version, architecture: inst.architecture, sha256: file.sha256, size: file.size, filename: file.filename, roles: [role] });
    }
  }
  const served = await apt.served([...byKey.values()].map((p) => p.name));
  const packages = [...byKey.values()].map((p) => {
    const suites = (served.get(p.name) ?? []).filter((s) => s.version === p.version).map((s) => s.suite).sort();
    return { ...p, source: `debian/${suites[0] ?? CODENAME}` };
  });
  return { apiVersion: 'kubedos.ca/v1alpha2', kind: 'DarksiteLock', codename: CODENAME, architecture: 'amd64', listsSha256: lists.sha256, packages: sortByName(packages) };
}

export function debCachePath(cacheDir: string, sha256: string): string {
  return join(cacheDir, 'debs', `${sha256}.deb`);
}

/** Where a declared upstream source's packages sit in the darksite (apart from Debian's: names may clash). */
export function upstreamPoolDir(source: string): string {
  return `pool/upstream/${source}`;
}

export function udebCachePath(cacheDir: string, sha256: string): string {
  return join(cacheDir, 'udebs', `${sha256}.udeb`);
}

type Fetchable = Pick<LockedPackage, 'name' | 'version' | 'architecture' | 'sha256' | 'filename'>;

function driftError(sup: Superseded[], opts: DarksiteOptions, mode: 'default' | 'frozen'): DriftError {
  const { message, detail } = driftMessage(sup, { mode, lockPath: opts.lockPath, acceptCommand: opts.acceptCommand ?? 'kubedos lock update --spec SPEC' });
  return new DriftError(message, sup, detail);
}

/** Make sure every package is in the cache with the right hash; download what is missing. */
async function fillCache(pkgs: readonly Fetchable[], opts: DarksiteOptions, apt: PrivateApt, kind: 'deb' | 'udeb' = 'deb'): Promise<DarksiteStats> {
  const pathOf = (sha: string): string => (kind === 'deb' ? debCachePath(opts.cacheDir, sha) : udebCachePath(opts.cacheDir, sha));
  const what = kind === 'deb' ? 'package' : 'installer udeb';
  const missing: Fetchable[] = [];
  let reused = 0;
  mkdirSync(join(opts.cacheDir, `${kind}s`), { recursive: true });
  for (const p of pkgs) {
    const path = pathOf(p.sha256);
    if (existsSync(path)) {
      if ((await sha256File(path)) === p.sha256) {
        reused++;
        continue;
      }
      opts.log?.(`darksite: cached ${p.filename} does not match its sha256: discarded, fetching again`);
      rmSync(path, { force: true });
    }
    missing.push(p);
  }
  if (!missing.length) return { downloaded: 0, reused };
  const names = missing.map((p) => `${p.name}=${p.version}`);
  if (opts.mode === 'offline') {
    throw new Error(
      `darksite --offline: ${missing.length} locked ${what}(s) are not in the cache ${join(opts.cacheDir, `${kind}s`)}: ${firstFew(names)}. ` +
        'Bring them from a build or recovery bundle (--from DIR), or build once without --offline.',
    );
  }
  await apt.update();
  if (kind === 'deb') {
    const served = await apt.served(missing.map((p) => p.name));
    const sup: Superseded[] = [];
    for (const p of missing) {
      const versions = served.get(p.name) ?? [];
      if (!versions.some((v) => v.version === p.version)) sup.push({ name: p.name, architecture: p.architecture, locked: p.version, ...(versions[0] ? { available: versions[0].version } : {}) });
    }
    if (sup.length) {
      const e = driftError(sortByName(sup), opts, opts.mode === 'frozen' ? 'frozen' : 'default');
      opts.logDetail?.(e.detail);
      throw e;
    }
  }
  const tmp = join(opts.cacheDir, `download-${kind}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    opts.log?.(`darksite: downloading ${missing.length} ${what}(s) with apt-get download`);
    let failure: CommandError | undefined;
    for (let i = 0; i < missing.length; i += 200) {
      try {
        await apt.apt(['-q', 'download', ...missing.slice(i, i + 200).map((p) => `${p.name}:${p.architecture}=${p.version}`)], tmp);
      } catch (err) {
        // apt fetches what it can and fails at the end: keep what arrived (verified below), name what did not.
        if (!(err instanceof CommandError) || err.reason !== 'exit') throw err;
        if (/Hash Sum mismatch|unexpected size|NO_PUBKEY|BADSIG/.test(err.stderrTail)) throw aptFailure(err, `darksite: downloading locked ${what}s failed`);
        failure = err;
      }
    }
    const want = new Map(missing.map((p) => [p.sha256, p]));
    const byFile = new Map(missing.map((p) => [p.filename, p]));
    for (const f of readdirSync(tmp).sort()) {
      if (!f.endsWith(`.${kind}`)) continue;
      const sha = await sha256File(join(tmp, f));
      if (!want.has(sha)) {
        const locked = byFile.get(f) ?? missing.find((p) => f.startsWith(`${p.name}_`));
        throw new Error(
          `darksite: the archive served ${f} with sha256 ${sha.slice(0, 16)}…, but the lock records ${locked ? `${locked.sha256.slice(0, 16)}… for ${locked.name}=${locked.version}` : 'no such file'}: ` +
            'the same version with different bytes (a rebuilt or tampered archive). Nothing was cached. If you trust the archive, accept it with kubedos lock update --spec SPEC.',
        );
      }
      renameSync(join(tmp, f), pathOf(sha));
      want.delete(sha);
    }
    if (want.size) {
      const notFound = failure ? /\s404\s+Not Found/.test(failure.stderrTail) : false;
      const missingNames = [...want.values()].map((p) => `${p.name}=${p.version}`);
      opts.logDetail?.(`darksite: not delivered (${missingNames.length}): ${missingNames.join(', ')}`);
      throw new Error(
        `darksite: the archive did not deliver ${want.size} locked ${what}(s): ${firstFew(missingNames)}` +
          (notFound ? ' (it answered 404 Not Found)' : failure ? ` (${aptFailure(failure, 'apt-get download').message.replace(/^apt-get download: /, '')})` : '') +
          `. ${want.size === missing.length ? '' : `The ${missing.length - want.size} that arrived are cached. `}The archive must serve every locked file (a full Debian mirror does); the full list is in the build log.`,
      );
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return { downloaded: missing.length, reused };
}

export interface LockResult {
  lock: DarksiteLockT;
  /** The archive was asked (a resolution ran). */
  resolved: boolean;
  /** Written to lockPath by this call (created or replaced). */
  written: boolean;
  /** Against the previous lock, when there was one and something moved. */
  diff?: LockDiff;
  previousSha256?: string;
}

/** The cluster's lock for the current lists, honouring the mode (see LockMode). */
export async function ensureLock(opts: DarksiteOptions): Promise<LockResult> {
  const mode = opts.mode ?? 'default';
  const lists = readLists(opts.packagesDir);
  const existing = readLock(opts.lockPath);
  const accept = opts.acceptCommand ?? 'kubedos lock update --spec SPEC';
  if (mode === 'frozen' || mode === 'offline') {
    if (!existing) throw new PinError(`--${mode}: this cluster has no lock yet (${opts.lockPath}); build once without --${mode}, or bring the lock and packages of a build: --from BUILD_OR_BUNDLE_DIR`);
    if (existing.listsSha256 !== lists.sha256) throw new PinError(`--${mode}: the package lists in ${opts.packagesDir} changed since the lock was resolved (${opts.lockPath}); a ${mode} build cannot resolve them. Resolve with: ${accept}`);
    return { lock: existing, resolved: false, written: false };
  }
  if (mode === 'default' && existing && existing.listsSha256 === lists.sha256) return { lock: existing, resolved: false, written: false };
  const apt = debianApt(opts);
  if (!existing) opts.log?.(`darksite: no lock for this cluster yet: resolving the package lists against the Debian archive (${opts.lockPath})`);
  else if (mode === 'default') opts.log?.('darksite: the package lists changed since the lock: resolving them, keeping every locked version the archive still serves');
  // The upstream part of the lock (spec.sources.apt) is kept as it is: upstream.ts owns it.
  const resolved = await resolveLock(lists, apt, mode === 'default' && existing ? existing.packages : [], opts);
  const fresh: DarksiteLockT = existing?.upstream ? { ...resolved, ...(existing.upstreamSha256 ? { upstreamSha256: existing.upstreamSha256 } : {}), upstream: existing.upstream } : resolved;
  let lock = fresh;
  let diff: LockDiff | undefined;
  let previousSha256: string | undefined;
  if (existing) {
    diff = diffLocks(existing.packages, fresh.packages);
    if (mode === 'default' && diff.changed.length) {
      const sup = diff.changed.map((c) => ({ name: c.name, architecture: c.architecture, locked: c.from, available: c.to }));
      const e = driftError(sup, opts, 'default');
      opts.logDetail?.(e.detail);
      throw e;
    }
    if (diffIsEmpty(diff) && existing.listsSha256 === fresh.listsSha256) return { lock: existing, resolved: true, written: false, diff };
    previousSha256 = lockDigest(existing);
    lock = { ...fresh, previous: { sha256: previousSha256, reason: mode === 'update' ? 'update' : 'lists-changed', diff } };
  }
  mkdirSync(dirname(opts.lockPath), { recursive: true });
  writeFileAtomic(opts.lockPath, canonicalJson(lock, 2) + '\n');
  return { lock, resolved: true, written: true, ...(diff ? { diff } : {}), ...(previousSha256 ? { previousSha256 } : {}) };
}

/** Put the .debs the roles need into the cache. */
export async function fetchPackages(lock: DarksiteLockT, roles: readonly NodeRole[], opts: DarksiteOptions): Promise<{ packages: LockedPackage[]; stats: DarksiteStats }> {
  const pkgs = packagesFor(lock, roles);
  const apt = debianApt(opts);
  const stats = await fillCache(pkgs, opts, apt);
  return { packages: pkgs, stats };
}

/**
 * The time capsule: take the lock and the .debs of an earlier build (or a recovery bundle that
 * carries its darksite) into this cluster's lock and the cache, each file checked against the
 * lock's sha256. Afterwards an --offline build needs nothing else.
 */
export async function importDarksite(fromDir: string, opts: Pick<DarksiteOptions, 'lockPath' | 'cacheDir' | 'log'>): Promise<{ lock: DarksiteLockT; imported: number; replacedSha256?: string }> {
  const ds = [join(fromDir, 'darksite'), fromDir].find((d) => existsSync(join(d, LOCK_FILE)) && existsSync(join(d, 'pool/main')));
  if (!ds) throw new Error(`--from ${fromDir}: no darksite there (expected darksite/${LOCK_FILE} and darksite/pool/main/ of a build or recovery bundle)`);
  const lock = readLock(join(ds, LOCK_FILE))!;
  mkdirSync(join(opts.cacheDir, 'debs'), { recursive: true });
  let imported = 0;
  const bad: string[] = [];
  for (const p of lock.packages) {
    const src = join(ds, 'pool/main', p.filename);
    const dst = debCachePath(opts.cacheDir, p.sha256);
    if (existsSync(dst) && (await sha256File(dst)) === p.sha256) continue;
    if (!existsSync(src) || (await sha256File(src)) !== p.sha256) {
      bad.push(p.filename);
      continue;
    }
    const tmp = `${dst}.import-${process.pid}`;
    copyFileSync(src, tmp, constants.COPYFILE_FICLONE);
    renameSync(tmp, dst);
    imported++;
  }
  for (const p of lock.upstream ?? []) {
    const src = join(ds, upstreamPoolDir(p.source), p.filename);
    const dst = debCachePath(opts.cacheDir, p.sha256);
    if (existsSync(dst) && (await sha256File(dst)) === p.sha256) continue;
    if (!existsSync(src) || (await sha256File(src)) !== p.sha256) {
      bad.push(`${upstreamPoolDir(p.source)}/${p.filename}`);
      continue;
    }
    const tmp = `${dst}.import-${process.pid}`;
    copyFileSync(src, tmp, constants.COPYFILE_FICLONE);
    renameSync(tmp, dst);
    imported++;
  }
  if (bad.length) throw new Error(`--from ${fromDir}: ${bad.length} package(s) of its lock are missing or do not match their sha256: ${firstFew(bad)}; that darksite is incomplete or damaged (kubedos verify ${fromDir} names the first bad file)`);
  const existing = existsSync(opts.lockPath) ? readFileSync(opts.lockPath, 'utf8') : undefined;
  const text = canonicalJson(lock, 2) + '\n';
  if (existing !== text) {
    mkdirSync(dirname(opts.lockPath), { recursive: true });
    writeFileAtomic(opts.lockPath, text);
  }
  const replacedSha256 = existing && existing !== text ? sha256Of(existing) : undefined;
  opts.log?.(`darksite: took the lock (${lock.packages.length} packages) and ${imported} package file(s) from ${ds}${replacedSha256 ? `; the cluster's previous lock ${replacedSha256.slice(0, 12)}… was replaced` : ''}`);
  return { lock, imported, ...(replacedSha256 ? { replacedSha256 } : {}) };
}

export function readUdebLock(path: string): UdebLockT | undefined {
  if (!existsSync(path)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new PinError(`${path} is not JSON (${(err as Error).message.split('\n')[0]}); delete it and build again`);
  }
  const parsed = UdebLock.safeParse(json);
  if (!parsed.success) throw new PinError(`${path} is not an installer udeb lock (${parsed.error.issues[0]?.message}); delete it and build again`);
  return parsed.data;
}

export interface UdebLockOptions extends DarksiteOptions {
  /** The installer initrd (gzip) whose kernel ABI and contents the udebs must match. */
  initrdPath: string;
  initrdSha256: string;
  /** The cluster's udeb lock in its workspace; the shipped one in packagesDir only seeds it. */
  udebLockPath: string;
}

/** Pure: why a udeb lock does not fit this installer and extras list, or undefined when it does. */
export function udebLockStale(lock: UdebLockT | undefined, initrdSha256: string, extrasText: string): string | undefined {
  if (!lock) return 'there is no lock';
  if (lock.installer.initrdSha256 !== initrdSha256) return `the installer initrd changed (lock: kernel ${lock.installer.kernelAbi}, initrd ${lock.installer.initrdSha256.slice(0, 12)}…; host: ${initrdSha256.slice(0, 12)}…)`;
  if (lock.extrasSha256 !== extrasSha256(extrasText)) return `${UDEB_EXTRAS_FILE} changed`;
  return undefined;
}

/** The udeb lock for this installer initrd: the cluster's (or the shipped seed) when it fits, else a fresh resolution. */
export async function ensureUdebLock(opts: UdebLockOptions): Promise<{ lock: UdebLockT; resolved: boolean }> {
  const extrasPath = join(opts.packagesDir, UDEB_EXTRAS_FILE);
  const extrasText = existsSync(extrasPath) ? readFileSync(extrasPath, 'utf8') : '';
  const existing = readUdebLock(opts.udebLockPath) ?? readUdebLock(join(opts.packagesDir, UDEB_LOCK_FILE));
  const stale = udebLockStale(existing, opts.initrdSha256, extrasText);
  if (existing && !stale && opts.mode !== 'update') {
    if (!existsSync(opts.udebLockPath)) writeFileAtomic(opts.udebLockPath, canonicalJson(existing, 2) + '\n');
    return { lock: existing, resolved: false };
  }
  if (opts.mode === 'offline' || opts.mode === 'frozen') {
    throw new Error(`darksite --${opts.mode}: the installer udeb lock ${opts.udebLockPath} does not fit (${stale}); resolving the installer udebs needs the Debian archive (build without --${opts.mode})`);
  }
  const info = installerInfo(readFileSync(opts.initrdPath));
  const apt = new PrivateApt(join(opts.cacheDir, 'apt-udeb'), opts, true);
  await apt.update();
  const index = parseStanzas((await apt.cache(['dumpavail'])).stdout);
  if (!index.some((s) => kernelAbiOf(s) === info.kernelAbi)) {
    throw new Error(
      `darksite: the Debian archive's ${CODENAME} main/debian-installer index has no kernel-module udebs for the installer kernel ${info.kernelAbi} (${info.kernelVersion}) of ${opts.initrdPath}; ` +
        'upgrade debian-installer-12-netboot-amd64 to the archive\'s point release (apt-get install debian-installer-12-netboot-amd64) and build again',
    );
  }
  const sel = selectUdebs(index, info, parseExtras(extrasText));
  if (sel.missingExtras.length) throw new Error(`darksite: ${UDEB_EXTRAS_FILE} names udebs the archive's ${CODENAME} installer index does not have: ${firstFew(sel.missingExtras)}`);
  if (sel.unsatisfied.length) throw new Error(`darksite: installer udeb dependencies nothing satisfies: ${firstFew(sel.unsatisfied)}`);
  const lock: UdebLockT = {
    apiVersion: 'kubedos.ca/v1alpha1',
    kind: 'InstallerUdebLock',
    codename: CODENAME,
    architecture: 'amd64',
    installer: { initrdSha256: opts.initrdSha256, kernelAbi: info.kernelAbi, kernelVersion: info.kernelVersion },
    extrasSha256: extrasSha256(extrasText),
    udebs: sel.udebs,
  };
  opts.log?.(`darksite: installer udebs resolved for kernel ${info.kernelAbi}: ${lock.udebs.length} (${(lock.udebs.reduce((a, u) => a + u.size, 0) / 1048576).toFixed(1)} MiB)`);
  mkdirSync(dirname(opts.udebLockPath), { recursive: true });
  writeFileAtomic(opts.udebLockPath, canonicalJson(lock, 2) + '\n');
  return { lock, resolved: true };
}

/** Put the locked installer udebs into the cache (<cache>/udebs/<sha256>.udeb). */
export async function fetchUdebs(lock: UdebLockT, opts: DarksiteOptions): Promise<DarksiteStats> {
  return fillCache(lock.udebs, opts, new PrivateApt(join(opts.cacheDir, 'apt-udeb'), opts, true), 'udeb');
}

export interface RepoInput {
  outDir: string;
  packages: readonly LockedPackage[];
  lock: DarksiteLockT;
  cacheDir: string;
  key: RepoKey;
  /** Packages from declared upstream apt sources (pool/upstream/<source>/, same index as Debian's). */
  upstream?: readonly UpstreamLockedPackage[];
  /** Installer udebs (pool/udeb, main/debian-installer index); none: an empty, signed index. */
  udebs?: { lock: UdebLockT };
  sourceDateEpoch: number;
  label: string;
  signal?: AbortSignal;
}

/** Pure: the Release file of the repository. */
export function renderRelease(files: readonly { path: string; size: number; sha256: string; md5: string }[], label: string, epoch: number): string {
  const lines = [
    'Origin: kubedos',
    `Label: ${label}`,
    `Suite: ${CODENAME}`,
    `Codename: ${CODENAME}`,
    `Date: ${new Date(epoch * 1000).toUTCString()}`,
    'Architectures: amd64',
    'Components: main',
    `Description: Kube'd'OS darksite (${label})`,
    'MD5Sum:',
    ...files.map((f) => ` ${f.md5} ${String(f.size).padStart(16)} ${f.path}`),
    'SHA256:',
    ...files.map((f) => ` ${f.sha256} ${String(f.size).padStart(16)} ${f.path}`),
  ];
  return lines.join('\n') + '\n';
}

/** Pure: Packages stanzas sorted by Package then Version, so directory order never matters. */
export function sortPackagesIndex(text: string): string {
  const stanzas = text.split(/\n\n+/).map((s) => s.trim()).filter(Boolean);
  const key = (s: string): string => `${/^Package: (.*)$/m.exec(s)?.[1] ?? ''}\0${/^Version: (.*)$/m.exec(s)?.[1] ?? ''}`;
  // Every stanza ends with a blank line, the last one too (debootstrap's parser needs it).
  return stanzas.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0)).map((s) => `${s}\n\n`).join('');
}

/** Write pool/, dists/, Release/InRelease/Release.gpg, the public keyring and the lock into outDir. */
export async function writeRepository(input: RepoInput): Promise<void> {
  const { outDir } = input;
  rmSync(outDir, { recursive: true, force: true });
  const pool = join(outDir, 'pool/main');
  mkdirSync(pool, { recursive: true });
  for (const p of input.packages) copyFileSync(debCachePath(input.cacheDir, p.sha256), join(pool, p.filename), constants.COPYFILE_FICLONE);
  const rel = join('dists', CODENAME);
  const binDir = join(outDir, rel, 'main/binary-amd64');
  mkdirSync(binDir, { recursive: true });
  const r = await run(['apt-ftparchive', '-q', 'packages', 'pool/main'], { cwd: outDir, signal: input.signal, maxBufferBytes: 256 * 1024 * 1024 });
  let upstreamText = '';
  if (input.upstream?.length) {
    for (const p of input.upstream) {
      const dir = join(outDir, upstreamPoolDir(p.source));
      mkdirSync(dir, { recursive: true });
      copyFileSync(debCachePath(input.cacheDir, p.sha256), join(dir, p.filename), constants.COPYFILE_FICLONE);
    }
    upstreamText = (await run(['apt-ftparchive', '-q', 'packages', 'pool/upstream'], { cwd: outDir, signal: input.signal, maxBufferBytes: 64 * 1024 * 1024 })).stdout;
    const listed = parseStanzas(upstreamText).length;
    if (listed !== input.upstream.length) throw new Error(`darksite: the upstream index lists ${listed} packages, the lock ${input.upstream.length}`);
  }
  const packagesText = sortPackagesIndex(`${r.stdout}\n\n${upstreamText}`);
  writeFileSync(join(binDir, 'Packages'), packagesText);
  writeFileSync(join(binDir, 'Packages.gz'), gzipSync(packagesText, { level: 9 }));
  // The installer reads its own components (udebs) from main/debian-installer. Without udebs
  // an empty, signed index still lets the installer verify the Release with the cluster key.
  const diDir = join(outDir, rel, 'main/debian-installer/binary-amd64');
  mkdirSync(diDir, { recursive: true });
  let diText = '';
  if (input.udebs?.lock.udebs.length) {
    const upool = join(outDir, 'pool/udeb');
    mkdirSync(upool, { recursive: true });
    for (const u of input.udebs.lock.udebs) copyFileSync(udebCachePath(input.cacheDir, u.sha256), join(upool, u.filename), constants.COPYFILE_FICLONE);
    const u = await run(['apt-ftparchive', '-q', '-o', 'APT::FTPArchive::Packages::Extensions=.udeb', 'packages', 'pool/udeb'], { cwd: outDir, signal: input.signal, maxBufferBytes: 64 * 1024 * 1024 });
    diText = sortPackagesIndex(u.stdout);
    const listed = parseStanzas(diText).length;
    if (listed !== input.udebs.lock.udebs.length) throw new Error(`darksite: the udeb index lists ${listed} udebs, the lock ${input.udebs.lock.udebs.length}`);
    writeFileSync(join(outDir, UDEB_LOCK_FILE), canonicalJson(input.udebs.lock, 2) + '\n');
  }
  writeFileSync(join(diDir, 'Packages'), diText);
  writeFileSync(join(diDir, 'Packages.gz'), gzipSync(diText, { level: 9 }));
  // Per-component Release files: the installer's mirror check reads main/binary-amd64/Release
  // to decide whether the mirror serves its architecture.
  for (const sub of ['main/binary-amd64', 'main/debian-installer/binary-amd64']) {
    writeFileSync(join(outDir, rel, sub, 'Release'), `Archive: ${CODENAME}\nOrigin: kubedos\nLabel: ${input.label}\nComponent: main\nArchitecture: amd64\n`);
  }
  const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex');
  const indexFiles = [
    'main/binary-amd64/Packages',
    'main/binary-amd64/Packages.gz',
    'main/binary-amd64/Release',
    'main/debian-installer/binary-amd64/Packages',
    'main/debian-installer/binary-amd64/Packages.gz',
    'main/debian-installer/binary-amd64/Release',
  ].map((p) => {
    const bytes = readFileSync(join(outDir, rel, p));
    return { path: p, size: bytes.length, sha256: sha256Of(bytes), md5: md5(bytes) };
  });
  const release = renderRelease(indexFiles, input.label, input.sourceDateEpoch);
  writeFileSync(join(outDir, rel, 'Release'), release);
  const gpgEnv = { GNUPGHOME: input.key.gnupgHome, LC_ALL: 'C' };
  const base = ['gpg', '--batch', '--yes', '--faked-system-time', `${input.sourceDateEpoch}!`, '--local-user', input.key.fingerprint, '--digest-algo', 'SHA512'];
  try {
    await run([...base, '--clearsign', '--output', join(outDir, rel, 'InRelease'), join(outDir, rel, 'Release')], { env: gpgEnv, signal: input.signal });
    await run([...base, '--armor', '--detach-sign', '--output', join(outDir, rel, 'Release.gpg'), join(outDir, rel, 'Release')], { env: gpgEnv, signal: input.signal });
  } finally {
    await stopGpgAgent(input.key.gnupgHome);
  }
  writeFileSync(join(outDir, KEYRING_FILE), input.key.publicKeyring);
  const subset: DarksiteLockT = { ...input.lock, packages: [...input.packages] };
  writeFileSync(join(outDir, LOCK_FILE), canonicalJson(subset, 2) + '\n');
}
