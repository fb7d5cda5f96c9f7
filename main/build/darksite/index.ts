// The darksite: an offline, signed apt repository holding the dependency closure of the pinned
// package lists. Resolution needs the Debian archive once (its address comes from the host's
// apt sources); after that the lock file plus the content-addressed .deb cache are enough,
// so a second build downloads nothing and `--offline` needs no network at all.
import { createHash } from 'node:crypto';
import { copyFileSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { canonicalJson } from '../../../common/canonical';
import type { NodeRole } from '../../../common/spec/schema';
import { CommandError, run } from '../../exec/runner';
import { sha256File, sha256Of, writeFileAtomic } from '../files';
import { stopGpgAgent } from '../keys';
import type { RepoKey } from '../keys';
import { hostDebianSources, renderSourcesList, renderUdebSourcesList } from './apt-sources';
import type { DarksiteLock as DarksiteLockT, LockedPackage, Pin, PinSet } from './pins';
import { DarksiteLock, packagesFor, parseShow, parseSimulation, pinSet, PinError, unresolvedPins } from './pins';
import { NODE_ROLES } from '../../../common/spec/schema';
import type { UdebLock as UdebLockT } from './udebs';
import { extrasSha256, installerInfo, kernelAbiOf, parseExtras, parseStanzas, selectUdebs, UDEB_EXTRAS_FILE, UDEB_LOCK_FILE, UdebLock } from './udebs';

export const CODENAME = 'bookworm';
export const LOCK_FILE = 'darksite.lock.json';
export const KEYRING_FILE = 'kubedos-archive-keyring.gpg';

export interface DarksiteOptions {
  /** payload/packages */
  packagesDir: string;
  /** Shared cache root: <cache>/debs/<sha256>.deb, <cache>/apt (private apt state). */
  cacheDir: string;
  offline?: boolean;
  refreshLock?: boolean;
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** Where apt sources are read (tests point elsewhere). */
  aptRoot?: string;
}

export interface DarksiteStats {
  downloaded: number;
  reused: number;
  resolved: boolean;
}

export function readPinSet(packagesDir: string): PinSet {
  if (!existsSync(packagesDir)) throw new PinError(`${packagesDir} does not exist: the pinned package lists live in payload/packages/`);
  const files: Record<string, string> = {};
  for (const f of readdirSync(packagesDir).sort()) if (f.endsWith('.list')) files[f] = readFileSync(join(packagesDir, f), 'utf8');
  return pinSet(files);
}

export function readLock(packagesDir: string): DarksiteLockT | undefined {
  const p = join(packagesDir, LOCK_FILE);
  if (!existsSync(p)) return undefined;
  const parsed = DarksiteLock.safeParse(JSON.parse(readFileSync(p, 'utf8')));
  if (!parsed.success) throw new Error(`${p} is not a darksite lock (${parsed.error.issues[0]?.message}); delete it and build with --refresh-lock`);
  return parsed.data;
}

/** Private apt configuration: host sources for Debian only, empty dpkg status, our own dirs. */
class PrivateApt {
  private updated = false;
  constructor(
    private readonly dir: string,
    private readonly opts: DarksiteOptions,
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

  async update(): Promise<void> {
    if (this.updated) return;
    mkdirSync(this.dir, { recursive: true });
    const sources = hostDebianSources(CODENAME, this.opts.aptRoot);
    writeFileSync(join(this.dir, 'sources.list'), this.udebs ? renderUdebSourcesList(sources, CODENAME) : renderSourcesList(sources));
    this.opts.log?.(`darksite: apt-get update (private lists${this.udebs ? ', installer udebs' : ''}, Debian sources of this host)`);
    await run(['apt-get', ...this.args(join(this.dir, 'cache/archives')), '-q', 'update'], {
      signal: this.opts.signal,
      timeoutMs: 15 * 60_000,
      hint: 'the Debian archive named in /etc/apt/sources.list must be reachable to resolve pins; with a filled cache use --offline',
    });
    this.updated = true;
  }

  async cache(argv: string[]): Promise<{ stdout: string }> {
    return run(['apt-cache', ...this.args(join(this.dir, 'cache/archives')), ...argv], { signal: this.opts.signal, timeoutMs: 10 * 60_000, maxBufferBytes: 128 * 1024 * 1024 });
  }

  async apt(argv: string[], cwd?: string, archives?: string): Promise<{ stdout: string; stderr: string }> {
    return run(['apt-get', ...this.args(archives ?? join(this.dir, 'cache/archives')), ...argv], { signal: this.opts.signal, timeoutMs: 30 * 60_000, ...(cwd ? { cwd } : {}) });
  }
}

function sortByName<T extends { name: string }>(xs: T[]): T[] {
  return xs.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Resolve every role's closure (base + role pins) without downloading: the new lock. */
async function resolveLock(pins: PinSet, apt: PrivateApt, log?: (l: string) => void): Promise<DarksiteLockT> {
  await apt.update();
  const byKey = new Map<string, LockedPackage>();
  for (const role of NODE_ROLES) {
    const wanted: Pin[] = [...pins.base, ...pins.roles[role]];
    const specs = wanted.map((p) => `${p.name}=${p.version}`);
    log?.(`darksite: resolving ${role} (${wanted.length} pins)`);
    let sim: { stdout: string };
    try {
      sim = await apt.apt(['-s', '-y', 'install', ...specs]);
    } catch (err) {
      const text = `${(err as Error).message}\n${(err as { stderrTail?: string }).stderrTail ?? ''}`;
      const bad = unresolvedPins(text, wanted);
      if (bad.length) {
        throw new PinError(`pins that do not resolve in the Debian archive: ${bad.map((b) => `${b.name}=${b.version} (${b.origin})`).join(', ')}. Fix the version in payload/packages/ (apt-cache policy NAME shows what exists).`);
      }
      throw err;
    }
    const chosen = parseSimulation(sim.stdout);
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
  return { apiVersion: 'kubedos.ca/v1alpha1', kind: 'DarksiteLock', codename: CODENAME, architecture: 'amd64', pinsSha256: pins.sha256, packages: sortByName([...byKey.values()]) };
}

export function debCachePath(cacheDir: string, sha256: string): string {
  return join(cacheDir, 'debs', `${sha256}.deb`);
}

export function udebCachePath(cacheDir: string, sha256: string): string {
  return join(cacheDir, 'udebs', `${sha256}.udeb`);
}

type Fetchable = Pick<LockedPackage, 'name' | 'version' | 'architecture' | 'sha256' | 'filename'>;

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
  if (!missing.length) return { downloaded: 0, reused, resolved: false };
  if (opts.offline) {
    throw new Error(
      `darksite --offline: ${missing.length} locked ${what}(s) are not in the cache ${join(opts.cacheDir, `${kind}s`)}: ${missing.slice(0, 8).map((p) => `${p.name}=${p.version}`).join(', ')}${missing.length > 8 ? ', …' : ''}. Build once with network (without --offline) to fill it.`,
    );
  }
  await apt.update();
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
        // apt fetches what it can and fails at the end: keep what arrived, name what did not.
        if (!(err instanceof CommandError) || err.reason !== 'exit') throw err;
        failure = err;
      }
    }
    const want = new Map(missing.map((p) => [p.sha256, p]));
    for (const f of readdirSync(tmp)) {
      if (!f.endsWith(`.${kind}`)) continue;
      const sha = await sha256File(join(tmp, f));
      if (!want.has(sha)) throw new Error(`darksite: apt downloaded ${f} whose sha256 ${sha} is not in the lock (the archive changed?); rebuild the lock with --refresh-lock`);
      renameSync(join(tmp, f), pathOf(sha));
      want.delete(sha);
    }
    if (want.size) {
      const notFound = failure ? /\s404\s+Not Found/.test(failure.stderrTail) : false;
      throw new Error(
        `darksite: the Debian mirror of this host did not deliver ${want.size} locked ${what}(s): ${[...want.values()].map((p) => `${p.name}=${p.version}`).join(', ')}` +
          (notFound ? ' (the mirror answered 404 Not Found)' : failure ? ` (${failure.message})` : '') +
          `. The ${want.size === missing.length ? '' : `${missing.length - want.size} that arrived are cached; the `}mirror must serve every locked file (a full Debian mirror does).`,
      );
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return { downloaded: missing.length, reused, resolved: false };
}

/** Lock for the current pins: the checked-in one when it matches, else a fresh resolution. */
export async function ensureLock(opts: DarksiteOptions): Promise<{ lock: DarksiteLockT; resolved: boolean }> {
  const pins = readPinSet(opts.packagesDir);
  const existing = readLock(opts.packagesDir);
  if (existing && existing.pinsSha256 === pins.sha256 && !opts.refreshLock) return { lock: existing, resolved: false };
  if (opts.offline) {
    throw new Error(`darksite --offline: ${existing ? 'the pins changed since' : 'there is no'} ${join(opts.packagesDir, LOCK_FILE)}; resolving the closure needs the Debian archive once (build without --offline)`);
  }
  const apt = new PrivateApt(join(opts.cacheDir, 'apt'), opts);
  const lock = await resolveLock(pins, apt, opts.log);
  writeFileAtomic(join(opts.packagesDir, LOCK_FILE), canonicalJson(lock, 2) + '\n');
  return { lock, resolved: true };
}

/** Put the .debs the roles need into the cache. */
export async function fetchPackages(lock: DarksiteLockT, roles: readonly NodeRole[], opts: DarksiteOptions): Promise<{ packages: LockedPackage[]; stats: DarksiteStats }> {
  const pkgs = packagesFor(lock, roles);
  const apt = new PrivateApt(join(opts.cacheDir, 'apt'), opts);
  const stats = await fillCache(pkgs, opts, apt);
  return { packages: pkgs, stats };
}

export function readUdebLock(packagesDir: string): UdebLockT | undefined {
  const p = join(packagesDir, UDEB_LOCK_FILE);
  if (!existsSync(p)) return undefined;
  const parsed = UdebLock.safeParse(JSON.parse(readFileSync(p, 'utf8')));
  if (!parsed.success) throw new Error(`${p} is not an installer udeb lock (${parsed.error.issues[0]?.message}); delete it and build with --refresh-lock`);
  return parsed.data;
}

export interface UdebLockOptions extends DarksiteOptions {
  /** The installer initrd (gzip) whose kernel ABI and contents the udebs must match. */
  initrdPath: string;
  initrdSha256: string;
}

/** Pure: why a udeb lock does not fit this installer and extras list, or undefined when it does. */
export function udebLockStale(lock: UdebLockT | undefined, initrdSha256: string, extrasText: string): string | undefined {
  if (!lock) return 'there is no lock';
  if (lock.installer.initrdSha256 !== initrdSha256) return `the installer initrd changed (lock: kernel ${lock.installer.kernelAbi}, initrd ${lock.installer.initrdSha256.slice(0, 12)}…; host: ${initrdSha256.slice(0, 12)}…)`;
  if (lock.extrasSha256 !== extrasSha256(extrasText)) return `${UDEB_EXTRAS_FILE} changed`;
  return undefined;
}

/** The udeb lock for this installer initrd: the checked-in one when it fits, else a fresh resolution. */
export async function ensureUdebLock(opts: UdebLockOptions): Promise<{ lock: UdebLockT; resolved: boolean }> {
  const extrasPath = join(opts.packagesDir, UDEB_EXTRAS_FILE);
  const extrasText = existsSync(extrasPath) ? readFileSync(extrasPath, 'utf8') : '';
  const existing = readUdebLock(opts.packagesDir);
  const stale = udebLockStale(existing, opts.initrdSha256, extrasText);
  if (existing && !stale && !opts.refreshLock) return { lock: existing, resolved: false };
  if (opts.offline) {
    throw new Error(`darksite --offline: ${join(opts.packagesDir, UDEB_LOCK_FILE)} does not fit (${stale}); resolving the installer udebs needs the Debian archive once (build without --offline)`);
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
  if (sel.missingExtras.length) throw new Error(`darksite: ${UDEB_EXTRAS_FILE} names udebs the archive's ${CODENAME} installer index does not have: ${sel.missingExtras.join(', ')}`);
  if (sel.unsatisfied.length) throw new Error(`darksite: installer udeb dependencies nothing satisfies: ${sel.unsatisfied.join('; ')}`);
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
  writeFileAtomic(join(opts.packagesDir, UDEB_LOCK_FILE), canonicalJson(lock, 2) + '\n');
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
  const packagesText = sortPackagesIndex(r.stdout);
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
