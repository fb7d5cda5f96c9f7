// The foundry: spec + plan → darksite, role ISOs, qcow2 images, payload trees, manifest, SBOM,
// provenance and DSSE signatures in one output directory. Every artifact goes through the
// content-addressed cache (cache.ts): unchanged inputs are placed, not rebuilt.
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { canonicalJson } from '../../common/canonical';
import type { Plan } from '../../common/plan/schema';
import { NODE_ROLES } from '../../common/spec/schema';
import type { ClusterSpec, NodeRole } from '../../common/spec/schema';
import { CommandError, run } from '../exec/runner';
import { clusterWorkspace, makePrivateDir, workspaceRoot } from '../workspace';
import type { BuildManifest, OutputRecord } from './attest';
import { ensureUpstream } from './sources/apt';
import { collectUpstream, importSourceContent } from './sources/index';
import { envelopePath, MANIFEST_FILE, payloadTypeFor, PLAN_FILE, PROVENANCE_FILE, PUBLIC_KEY_FILE, renderManifest, renderProvenance, renderSbom, SBOM_FILE, signDsse } from './attest';
import { ArtifactCache, inputsKey, place, readPlaced, writePlaced } from './cache';
import { packagesFor, upstreamInstalledFor } from './darksite/pins';
import type { LockMode } from './darksite/index';
import { CODENAME, ensureLock, ensureUdebLock, fetchPackages, fetchUdebs, importDarksite, LOCK_FILE, lockDigest, readLists, upstreamPoolDir, writeRepository } from './darksite/index';
import { diffSummary, renderDiff } from './darksite/pins';
import type { UdebLock } from './darksite/udebs';
import { UDEB_LOCK_FILE } from './darksite/udebs';
import { assertNothingMountedUnder, ensureFreeSpace, GiB, MiB, sha256File, sha256Of, writeFileAtomic } from './files';
import { buildBaseRootfs, buildImage } from './image/index';
import { abSbomFiles, readAbFiles, readSlotArgs } from './image/ab';
import { abInstallerFiles } from './iso/ab';
import { AB_ESP_MIB, abRoleDataMiB, ROOT_MIB } from '../../common/upgrade/ab-size';
import { gateConfig } from '../../common/upgrade/gate-config';
import { artifactPolicyOf } from '../../common/upgrade/policy';
import { ISO_HOST_FILES } from './iso/host-files';
import { buildIso, isoKeyInputs } from './iso/index';
import { buildSigningKey, opsSshKey, repoKey, withRepoKey } from './keys';
import { loadPayloadSources } from './payload/load';
import type { RenderedPayload } from './payload/render';
import { renderPayload, rolesOf } from './payload/render';
import { hubHealthWatchConfigText } from '../stages/converge';

export type BuildTarget = 'darksite' | 'iso' | 'image';
export const ALL_TARGETS: readonly BuildTarget[] = ['darksite', 'iso', 'image'];
export const KUBEDOS_VERSION = '0.1.0';

export interface BuildOptions {
  spec: ClusterSpec;
  specPath: string;
  specSha256: string;
  plan: Plan;
  outDir: string;
  /** The app's root: git provenance and SOURCE_DATE_EPOCH are read here when it is a checkout. */
  repoRoot: string;
  /** payload/ (payloadDir(): the checkout's, or the packaged app's resources). */
  payloadDir: string;
  targets: readonly BuildTarget[];
  roles?: readonly NodeRole[];
  /** How the cluster's lock meets the archive (darksite/index.ts LockMode); default 'default'. */
  lockMode?: LockMode;
  /** A build or recovery bundle whose darksite (lock + .debs) this build takes first: the time capsule. */
  from?: string;
  /** The command that accepts drift, for the drift message (the CLI fills in the spec path). */
  acceptCommand?: string;
  /** Ignore cache hits: rebuild every artifact and replace its cache entry. */
  rebuild?: boolean;
  /** host[:port] and directory where installers reach the darksite over HTTP. */
  installerMirror?: { host: string; directory: string };
  netinstIso?: string;
  /**
   * Put the netboot installer's own components (udebs for its kernel ABI, locked in
   * payload/packages/installer-udebs.lock.json) on the darksite, so the installer can run a full
   * install from it. Needs debian-installer-12-netboot-amd64 on the host and a mirror serving them.
   */
  installerUdebs?: boolean;
  /** Installers power off when done (lab, bench); default true for qemu, false for proxmox. */
  poweroff?: boolean;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

/** Roles whose nodes run containerd (payload/ansible playbooks/40-runtime.yml): their images carry the OCI layout. */
export const CONTAINERD_ROLES: readonly NodeRole[] = ['control-plane', 'worker'];

/** The artifact's OCI image layout for a role's qcow2 image and ISO: the roles that run containerd only. */
export function ociLayoutFor<T>(role: NodeRole, layout: T | undefined): T | undefined {
  return layout && CONTAINERD_ROLES.includes(role) ? layout : undefined;
}

/** Pure: the role an output belongs to: payload/<role>/…, iso/<cluster>-<role>.iso, images/<cluster>-<role>.qcow2. */
export function roleOfOutput(path: string, cluster: string): string | undefined {
  const payload = /^payload\/([^/]+)\//.exec(path)?.[1];
  if (payload) return payload;
  const prefix = path.startsWith('iso/') ? 'iso/' : path.startsWith('images/') ? 'images/' : undefined;
  if (!prefix) return undefined;
  const name = path.slice(prefix.length);
  const m = /^(.+)\.(iso|qcow2)$/.exec(name);
  return m && m[1]!.startsWith(`${cluster}-`) ? m[1]!.slice(cluster.length + 1) : undefined;
}

export interface BuildReport {
  outDir: string;
  roles: NodeRole[];
  built: string[];
  reused: string[];
  outputs: OutputRecord[];
  downloaded: number;
  durationMs: number;
  /** The cluster's lock: where it is, its digest, how many packages, and what moved in this build. */
  lock: { path: string; sha256: string; packages: number; resolved: boolean; written: boolean; diff?: string[]; diffSummary?: string; previousSha256?: string };
  /** Every line of this build's log (also in lock's folder: build.log). */
  logFile: string;
  /** From declared sources (spec.sources): apt packages in the darksite, images in oci/, files in files/. */
  upstream: { packages: number; images: number; files: number };
}

/** Packages (Debian names) each build target needs on the host, for a doctor-style error. */
const TARGET_PACKAGES: Record<BuildTarget, string[]> = {
  darksite: ['apt', 'apt-utils', 'gnupg', 'gpgconf'],
  iso: ['xorriso', 'mtools', 'dosfstools', 'cpio', 'isolinux', 'syslinux-common', 'shim-signed', 'grub-efi-amd64-signed', 'debian-installer-12-netboot-amd64'],
  image: ['debootstrap', 'e2fsprogs', 'fdisk', 'dosfstools', 'mtools', 'qemu-utils', 'shim-signed', 'grub-efi-amd64-signed'],
};

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.KUBEDOS_CACHE ?? join(workspaceRoot(env), 'cache'));
}

/** Versions of the host packages the build uses; missing ones → one actionable error. */
export async function hostToolVersions(targets: readonly BuildTarget[], signal?: AbortSignal, extraPackages: readonly string[] = []): Promise<Record<string, string>> {
  const pkgs = [...new Set([...['darksite' as BuildTarget, ...targets].flatMap((t) => TARGET_PACKAGES[t]), ...extraPackages])].sort();
  const r = await run(['dpkg-query', '-W', '-f', '${Package}\\t${Version}\\t${db:Status-Abbrev}\\n', ...pkgs], { okExitCodes: [0, 1], signal });
  const versions: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const [name, version, status] = line.split('\t');
    if (name && version && status?.startsWith('ii')) versions[name] = version;
  }
  const missing = pkgs.filter((p) => !versions[p]);
  if (missing.length) {
    throw new Error(
      `host packages missing for kubedos build (${targets.join(', ')}): ${missing.join(', ')}. Install with: sudo apt-get install ${missing.join(' ')}   (or scripts/setup-host.sh; kubedos doctor says what each is for)`,
    );
  }
  return versions;
}

async function sourceDateEpoch(repoRoot: string, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<number> {
  if (env.SOURCE_DATE_EPOCH && /^\d+$/.test(env.SOURCE_DATE_EPOCH)) return Number(env.SOURCE_DATE_EPOCH);
  try {
    const r = await run(['git', 'log', '-1', '--format=%ct', '--', 'payload', 'main/build'], { cwd: repoRoot, signal, timeoutMs: 10_000 });
    if (/^\d+$/.test(r.stdout.trim())) return Number(r.stdout.trim());
  } catch {
    /* not a git checkout */
  }
  return 1700000000;
}

async function gitInfo(repoRoot: string, signal?: AbortSignal): Promise<{ commit: string; dirty: boolean } | undefined> {
  try {
    const head = await run(['git', 'rev-parse', 'HEAD'], { cwd: repoRoot, signal, timeoutMs: 10_000 });
    const st = await run(['git', 'status', '--porcelain', '--', 'payload', 'main/build', 'common'], { cwd: repoRoot, signal, timeoutMs: 10_000 });
    return { commit: head.stdout.trim(), dirty: st.stdout.trim().length > 0 };
  } catch {
    return undefined;
  }
}

export function defaultInstallerMirror(plan: Plan): { host: string; directory: string } {
  // QEMU user networking: the lab forwards 10.0.2.100:80 (guestfwd) to the host's darksite
  // server on loopback. On Proxmox pass --installer-mirror (a host on the LAN serving darksite/).
  return plan.substrate.type === 'qemu' ? { host: '10.0.2.100', directory: '/darksite' } : { host: plan.lan.apiVip, directory: '/darksite' };
}

export function buildLogPath(cluster: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(clusterWorkspace(cluster, env), 'build.log');
}

export function clusterLockPath(cluster: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(clusterWorkspace(cluster, env), LOCK_FILE);
}

export async function runBuild(o: BuildOptions): Promise<BuildReport> {
  const started = performance.now();
  const env = o.env ?? process.env;
  const cwsp = clusterWorkspace(o.plan.cluster.name, env);
  // Private from the first component this build creates: the workspace holds keys, the cache
  // the cluster's packages and images.
  makePrivateDir(cwsp);
  makePrivateDir(cacheRoot(env));
  // The full detail of a build (every package of a drift, every line apt printed) goes here;
  // messages on the terminal stay short and point to it.
  const logFile = buildLogPath(o.plan.cluster.name, env);
  writeFileSync(logFile, '', { mode: 0o600 });
  const log = (line: string): void => {
    appendFileSync(logFile, line.endsWith('\n') ? line : `${line}\n`);
    o.log?.(line.split('\n').length > 20 ? `${line.split('\n').slice(0, 20).join('\n')}\n… (${line.split('\n').length - 20} more lines in ${logFile})` : line);
  };
  const signal = o.signal;
  const outDir = resolve(o.outDir);
  const cluster = o.plan.cluster.name;
  const packagesDir = join(o.payloadDir, 'packages');
  const cache = new ArtifactCache(cacheRoot(env), log);
  const lookup = (key: string) => (o.rebuild ? Promise.resolve(undefined) : cache.lookup(key));
  const built: string[] = [];
  const reused: string[] = [];
  const targets = [...new Set(o.targets)];

  const tools = await hostToolVersions(targets, signal);
  const epoch = await sourceDateEpoch(o.repoRoot, env, signal);
  const planRoles = rolesOf(o.plan);
  const roles = (o.roles?.length ? [...o.roles] : planRoles).sort();
  for (const r of roles) if (!planRoles.includes(r)) throw new Error(`build: the plan has no ${r} node (roles: ${planRoles.join(', ')})`);
  mkdirSync(outDir, { recursive: true });
  const state = readPlaced(outDir);
  const placedNow = new Set<string>();
  const track = (prefix: string, files: { path: string }[]): void => {
    for (const f of files) placedNow.add(prefix ? `${prefix}/${f.path}` : f.path);
  };

  // Keys (one module handles key material: keys.ts).
  // At rest they are age-encrypted in the cluster's SecretStore; the darksite key is imported into
  // a temporary GNUPGHOME only while the repository is signed (withRepoKey).
  const rkey = await repoKey(cluster, env, { signal, log });
  const skey = await buildSigningKey(cluster, env, { log });
  const ops = await opsSshKey(cluster, env, { signal, log });

  // Darksite: lock → cache → signed repository.
  const mode = o.lockMode ?? 'default';
  const lockPath = clusterLockPath(cluster, env);
  const logDetail = (text: string): void => appendFileSync(logFile, text.endsWith('\n') ? text : `${text}\n`);
  const dsOpts = { packagesDir, lockPath, cacheDir: cacheRoot(env), mode, signal, log, logDetail, ...(o.acceptCommand ? { acceptCommand: o.acceptCommand } : {}) };
  if (o.from) {
    await importDarksite(resolve(o.from), dsOpts);
    importSourceContent(resolve(o.from), cacheRoot(env), log);
  }
  const locked = await ensureLock(dsOpts);
  if (locked.written) {
    log(locked.diff ? `darksite: lock ${lockPath} written: ${diffSummary(locked.diff)} (previous lock ${locked.previousSha256?.slice(0, 12)}…)` : `darksite: lock ${lockPath} created: ${locked.lock.packages.length} packages`);
    if (locked.diff) logDetail(renderDiff(locked.diff).join('\n'));
  }
  // Declared upstream apt sources: into the same lock (same modes) and the same .deb cache.
  const up = await ensureUpstream(o.spec.spec.sources.apt, { lock: locked.lock, lockPath, cacheDir: cacheRoot(env), mode, lockWrittenThisBuild: locked.written, ...(o.acceptCommand ? { acceptCommand: o.acceptCommand } : {}), ...(signal ? { signal } : {}), log, logDetail });
  if (up.written && up.diff) logDetail(renderDiff(up.diff).join('\n'));
  const lock = up.lock;
  const lockSha = lockDigest(lock);
  const upstreamPackages = up.packages;
  const rolePackages = packagesFor(lock, roles);
  const isoHost = await hashHostFiles(Object.values(ISO_HOST_FILES));
  let udebLock: UdebLock | undefined;
  if (o.installerUdebs) {
    const initrd = isoHost.find((h) => h.path === ISO_HOST_FILES.initrd.path)!;
    if (initrd.sha256 === 'missing') throw new Error(`--installer-udebs: ${initrd.path} is missing (package ${initrd.package}); install it: sudo apt-get install ${initrd.package}`);
    udebLock = (await ensureUdebLock({ ...dsOpts, initrdPath: initrd.path, initrdSha256: initrd.sha256, udebLockPath: join(cwsp, UDEB_LOCK_FILE) })).lock;
  }
  const dsKey = inputsKey('darksite', {
    packages: rolePackages.map((p) => p.sha256),
    ...(upstreamPackages.length ? { upstream: upstreamPackages.map((p) => `${p.source}/${p.filename}/${p.sha256}`) } : {}),
    ...(udebLock ? { udebs: udebLock.udebs.map((u) => u.sha256) } : {}),
    key: rkey.fingerprint,
    epoch,
    label: cluster,
    tools: { apt: tools.apt, 'apt-utils': tools['apt-utils'], gnupg: tools.gnupg },
  });
  let downloaded = up.downloaded;
  let ds = await lookup(dsKey);
  if (!ds) {
    ensureFreeSpace(cache.root, 2 * GiB, 'building the darksite');
    const fetched = await fetchPackages(lock, roles, dsOpts);
    downloaded += fetched.stats.downloaded;
    if (udebLock) downloaded += (await fetchUdebs(udebLock, dsOpts)).downloaded;
    const scratch = cache.scratch('darksite');
    log(`darksite: writing signed repository (${fetched.packages.length} packages${upstreamPackages.length ? `, ${upstreamPackages.length} from declared apt sources` : ''}${udebLock ? `, ${udebLock.udebs.length} installer udebs for kernel ${udebLock.installer.kernelAbi}` : ''})`);
    await withRepoKey(
      cluster,
      env,
      (key) => writeRepository({ outDir: scratch, packages: fetched.packages, upstream: upstreamPackages, lock, ...(udebLock ? { udebs: { lock: udebLock } } : {}), cacheDir: cacheRoot(env), key, sourceDateEpoch: epoch, label: cluster, signal }),
      { signal, log },
    );
    ds = await cache.store(dsKey, 'darksite', scratch);
    built.push('darksite');
  } else reused.push('darksite');
  if (targets.includes('darksite')) {
    place(ds, outDir, 'darksite', state);
    track('darksite', ds.files);
  }

  // Payload per role (pure render), then media.
  const sources = loadPayloadSources(o.payloadDir);
  const pins = readLists(packagesDir);
  const mirror = o.installerMirror ?? defaultInstallerMirror(o.plan);
  const poweroff = o.poweroff ?? o.plan.substrate.type === 'qemu';
  let baseEntry: { key: string; dir: string } | undefined;
  const baseRootfs = async (): Promise<{ key: string; dir: string }> => {
    if (baseEntry) return baseEntry;
    const names = pins.base.map((p) => p.name);
    const key = inputsKey('rootfs', { darksite: dsKey, names, epoch, tools: pick(tools, ['debootstrap', 'tar']) });
    let e = await lookup(key);
    if (!e) {
      ensureFreeSpace(cache.root, 2 * GiB, 'debootstrapping the base root filesystem');
      const scratch = cache.scratch('rootfs');
      mkdirSync(scratch, { recursive: true });
      const work = cache.scratch('rootfs-work');
      try {
        await buildBaseRootfs({ darksiteDir: ds!.dir, packages: names, outTar: join(scratch, 'rootfs.tar'), workDir: work, sourceDateEpoch: epoch, signal, log });
      } finally {
        removeWorkDir(work, log);
      }
      e = await cache.store(key, 'rootfs', scratch);
      built.push('rootfs (base)');
    }
    baseEntry = { key, dir: e.dir };
    return baseEntry;
  };
  // Declared upstream files and images (spec.sources): verified before they are cached or placed;
  // the images' OCI layout also goes into the images of the roles that run containerd.
  const upstream = await collectUpstream(o.spec, cacheRoot(env), { mode, ...(signal ? { signal } : {}), log });
  const ociIndexSha = upstream.layoutEntry?.files.find((f) => f.path === 'index.json')?.sha256;
  const payloadRecords: Record<string, { path: string; sha256: string }[]> = {};
  const payloadSbom: { role: string; path: string; sha256: string }[] = [];
  const abSbom: { role: string; path: string; sha256: string }[] = [];
  for (const role of roles) {
    // Packages of declared apt sources whose installOn names this role: installed like the role's
    // own Debian packages (in its image with dpkg, by its installer through pkgsel).
    const installed = upstreamInstalledFor(upstreamPackages, o.spec.spec.sources.apt, role);
    const names = [...[...pins.base, ...pins.roles[role]].map((p) => p.name), ...installed.map((p) => p.name)];
    const payload: RenderedPayload = renderPayload({
      plan: o.plan,
      role,
      sources,
      sshAllowUsers: o.spec.spec.security.ssh.allowUsers,
      opsAuthorizedKey: ops.publicKey,
      repoKeyring: rkey.publicKeyring,
      packages: names,
      mirror,
      poweroff,
      healthWatch: hubHealthWatchConfigText(o.spec, o.plan),
    });
    const payloadHashes = payload.files.map((f) => ({ path: f.path, sha256: sha256Of(f.data) }));
    payloadRecords[role] = payloadHashes;
    for (const h of payloadHashes) payloadSbom.push({ role, ...h });
    const pKey = inputsKey('payload', { payloadHashes, modes: payload.files.map((f) => f.mode) });
    let pe = await lookup(pKey);
    if (!pe) {
      const scratch = cache.scratch(`payload-${role}`);
      for (const f of payload.files) writeFileAtomic(join(scratch, f.path), f.data, f.mode);
      pe = await cache.store(pKey, 'payload', scratch);
    }
    place(pe, outDir, `payload/${role}`, state);
    track(`payload/${role}`, pe.files);
    // The roles that run containerd get the layout in their qcow2 image and on their ISO.
    const oci = ociLayoutFor(role, upstream.layoutEntry);

    // An A/B disk (spec.upgrades.diskLayout): the qcow2 and the ISO lay out the same four partitions.
    const ab = o.spec.spec.upgrades?.diskLayout === 'ab';
    const upgradeDir = join(o.payloadDir, 'upgrade');
    // The A/B disk fills the smallest first disk among the role's nodes (its data partition takes the rest).
    const abGate = ab ? gateConfig(o.spec, o.plan, role) : undefined;
    const abSlotArgs = ab ? readSlotArgs(upgradeDir, role) : undefined;
    const dataMiB = ab ? abRoleDataMiB(o.plan, role) : undefined;
    // What the role's image and installer carry of the A/B boot, listed in the SBOM by hash.
    // payload/upgrade/ read once here: the image, the installer, the SBOM and the cache key take these bytes.
    const abFiles = ab ? readAbFiles({ upgradeDir, gate: abGate!, ...(abSlotArgs ? { slotArgs: abSlotArgs } : {}) }) : undefined;
    const abListed = abFiles ? abSbomFiles(abFiles.root, abFiles.esp) : [];
    for (const f of abListed) abSbom.push({ role, ...f });

    if (targets.includes('iso')) {
      const netinstSha = o.netinstIso ? await sha256File(o.netinstIso) : undefined;
      const isoAb = ab
        ? {
            layout: { cluster, role, espMiB: AB_ESP_MIB, rootMiB: ROOT_MIB, dataMiB: dataMiB! },
            files: abInstallerFiles(abFiles!.root, abFiles!.esp),
          }
        : undefined;
      const isoBase = { payloadHashes, darksite: dsKey, host: isoHost, epoch, netinstSha, tools: pick(tools, ['xorriso', 'mtools', 'dosfstools', 'cpio', 'isolinux', 'syslinux-common']), cluster, node: process.versions.node };
      // The A/B disk enters the key only for that layout: the default ISO keeps its key.
      const key = inputsKey('iso', isoKeyInputs(isoAb ? { ...isoBase, diskLayout: 'ab', layout: isoAb.layout, abFiles: isoAb.files.map((f) => ({ path: f.path, sha256: sha256Of(f.data), mode: f.mode })) } : isoBase, oci ? ociIndexSha : undefined));
      const name = `${cluster}-${role}.iso`;
      let e = await lookup(key);
      if (!e) {
        log(`iso ${role}: building`);
        ensureFreeSpace(cache.root, 2 * GiB, `building the ${role} ISO`);
        const scratch = cache.scratch(`iso-${role}`);
        mkdirSync(scratch, { recursive: true });
        const work = cache.scratch(`iso-work-${role}`);
        try {
          await buildIso({ payload, darksiteDir: ds.dir, outFile: join(scratch, name), workDir: work, sourceDateEpoch: epoch, cluster, netinstIso: o.netinstIso, ...(oci && ociIndexSha ? { ociLayout: { dir: oci.dir, indexSha256: ociIndexSha } } : {}), ...(isoAb ? { ab: isoAb } : {}), signal });
        } finally {
          rmSync(work, { recursive: true, force: true });
        }
        e = await cache.store(key, 'iso', scratch);
        built.push(`iso/${name}`);
      } else reused.push(`iso/${name}`);
      place(e, outDir, 'iso', state);
      track('iso', e.files);
    }
    if (targets.includes('image')) {
      const extras = packagesFor(lock, [role]).filter((p) => p.roles.length < NODE_ROLES.length);
      const base = await baseRootfs();
      // An A/B disk (spec.upgrades.diskLayout) adds its layout and upgrade files to the key. `ext4`
      // names how the root filesystem is made (main/build/ext4.ts: every inode time pinned): images
      // cached before it were not byte-reproducible, so they are not reused.
      const key = inputsKey('image', { payloadHashes, base: base.key, extras: extras.map((p) => p.sha256), ...(installed.length ? { upstream: installed.map((p) => `${p.source}/${p.filename}/${p.sha256}`) } : {}), host: isoHost, epoch, tools: pick(tools, ['e2fsprogs', 'fdisk', 'dosfstools', 'mtools', 'qemu-utils', 'tar']), cluster, mirror, ext4: 'pinned-times', ...(oci ? { oci: ociIndexSha } : {}), ...(ab ? { diskLayout: 'ab', upgrade: abListed, dataMiB, gate: abGate, slotArgs: abSlotArgs } : {}) });
      const name = `${cluster}-${role}.qcow2`;
      let e = await lookup(key);
      if (!e) {
        log(`image ${role}: building (base root filesystem + ${extras.length} role packages${installed.length ? ` + ${installed.length} from declared apt sources (${installed.map((p) => `${p.name} ${p.version}`).join(', ')})` : ''} + payload)`);
        // Peak: the root tree and its ext4 image, then the ext4 image and the raw disk (2x the root size).
        ensureFreeSpace(cache.root, ((ab ? 3 : 2) * ROOT_MIB + 512) * MiB, `building the ${role} image`);
        const scratch = cache.scratch(`image-${role}`);
        mkdirSync(scratch, { recursive: true });
        const work = cache.scratch(`image-work-${role}`);
        try {
          await buildImage({
            payload,
            baseTar: join(base.dir, 'rootfs.tar'),
            extraDebs: [...extras.map((p) => join(ds!.dir, 'pool/main', p.filename)), ...installed.map((p) => join(ds!.dir, upstreamPoolDir(p.source), p.filename))],
            outFile: join(scratch, name),
            workDir: work,
            sourceDateEpoch: epoch,
            cluster,
            aptSource: `deb [signed-by=/usr/share/keyrings/kubedos-archive-keyring.gpg] http://${mirror.host}${mirror.directory} ${CODENAME} main`,
            ...(oci ? { ociLayoutDir: oci.dir } : {}),
            ...(ab ? { diskLayout: 'ab' as const, abFiles, abDataMiB: dataMiB } : {}),
            signal,
            log,
          });
        } finally {
          removeWorkDir(work, log);
        }
        e = await cache.store(key, 'image', scratch);
        built.push(`images/${name}`);
      } else reused.push(`images/${name}`);
      place(e, outDir, 'images', state);
      track('images', e.files);
    }
  }

  if (upstream.fileEntry.files.length) {
    place(upstream.fileEntry, outDir, 'files', state);
    track('files', upstream.fileEntry.files);
  }
  if (upstream.layoutEntry) {
    place(upstream.layoutEntry, outDir, 'oci', state);
    track('oci', upstream.layoutEntry.files);
  }

  // Forget (and delete) outputs of earlier builds that this build did not produce.
  for (const rel of Object.keys(state.files)) {
    if (placedNow.has(rel)) continue;
    rmSync(join(outDir, rel), { force: true });
    delete state.files[rel];
  }
  writePlaced(outDir, state);

  const kindOf = (p: string): OutputRecord['kind'] =>
    p.startsWith('iso/') ? 'iso' : p.startsWith('images/') ? 'image' : p.startsWith('darksite/') ? 'darksite' : p.startsWith('oci/') ? 'container-image' : p.startsWith('files/') ? 'upstream-file' : 'payload';
  const outputs: OutputRecord[] = [...placedNow].sort().map((p) => {
    const f = state.files[p]!;
    const role = roleOfOutput(p, cluster);
    return { path: p, sha256: f.sha256, size: f.size, kind: kindOf(p), ...(role ? { role } : {}) };
  });
  const git = await gitInfo(o.repoRoot, signal);
  const planText = canonicalJson(o.plan);
  const manifest: BuildManifest = {
    apiVersion: 'kubedos.ca/v1alpha1',
    kind: 'BuildManifest',
    cluster,
    artifactVersion: o.plan.cluster.artifactVersion,
    sourceDateEpoch: epoch,
    roles,
    upgrade: artifactPolicyOf(o.spec),
    inputs: {
      spec: { path: o.specPath, sha256: o.specSha256 },
      planSha256: sha256Of(planText),
      lockSha256: lockSha,
      ...(lock.previous ? { previousLockSha256: lock.previous.sha256 } : {}),
      ...(udebLock ? { udebLockSha256: sha256Of(canonicalJson(udebLock, 2) + '\n') } : {}),
      payload: payloadRecords,
      hostFiles: isoHost,
      tools,
      ...(git ? { git } : {}),
      ...(upstreamPackages.length || upstream.images.length || upstream.files.length
        ? {
            sources: {
              apt: upstreamPackages.map((p) => ({ source: p.source, name: p.name, version: p.version, architecture: p.architecture, sha256: p.sha256 })),
              images: upstream.images.map((i) => ({ name: i.name, reference: i.reference, digest: i.digest })),
              files: o.spec.spec.sources.files.map((f) => ({ name: f.name, url: f.url, sha256: f.sha256 })),
            },
          }
        : {}),
    },
    outputs,
  };
  const manifestText = renderManifest(manifest);
  const sbomText = renderSbom({ cluster, artifactVersion: o.plan.cluster.artifactVersion, sourceDateEpoch: epoch, packages: [...rolePackages, ...upstreamPackages.map((p) => ({ ...p, roles, source: `upstream/${p.source}` })), ...(udebLock?.udebs ?? []).map((u) => ({ ...u, roles }))], payloadFiles: payloadSbom, tools, kubedosVersion: KUBEDOS_VERSION, outputs, images: upstream.images.map((i) => ({ name: i.name, reference: i.reference, digest: i.digest })), upstreamFiles: o.spec.spec.sources.files, ...(abSbom.length ? { abFiles: abSbom } : {}) });
  const provText = renderProvenance({
    manifest,
    externalParameters: {
      spec: o.specPath,
      targets,
      roles,
      lockMode: mode,
      ...(lock.previous ? { lockChange: { previousLockSha256: lock.previous.sha256, reason: lock.previous.reason, summary: diffSummary(lock.previous.diff), changed: lock.previous.diff.changed } } : {}), installerMirror: mirror, netinstIso: o.netinstIso ?? null, ...(o.installerUdebs ? { installerUdebs: true } : {}) },
    kubedosVersion: KUBEDOS_VERSION,
    nodeVersion: process.versions.node,
    invocationId: inputsKey('invocation', { manifest: sha256Of(manifestText) }),
  });
  writeIfChanged(join(outDir, PLAN_FILE), planText);
  for (const [file, text] of [[MANIFEST_FILE, manifestText], [SBOM_FILE, sbomText], [PROVENANCE_FILE, provText]] as const) {
    writeIfChanged(join(outDir, file), text);
    const envl = signDsse(payloadTypeFor(file), Buffer.from(text), skey.privateKey, skey.keyid);
    writeIfChanged(join(outDir, envelopePath(file)), canonicalJson(envl, 2) + '\n');
  }
  writeIfChanged(join(outDir, PUBLIC_KEY_FILE), skey.publicKeyPem);
  return {
    outDir,
    roles,
    built,
    reused,
    outputs,
    downloaded,
    durationMs: performance.now() - started,
    upstream: { packages: upstreamPackages.length, images: upstream.images.length, files: upstream.files.length },
    lock: { path: lockPath, sha256: lockSha, packages: lock.packages.length, resolved: locked.resolved, written: locked.written || up.written, ...(locked.diff ? { diff: renderDiff(locked.diff, 30), diffSummary: diffSummary(locked.diff) } : {}), ...(locked.previousSha256 ? { previousSha256: locked.previousSha256 } : {}) },
    logFile,
  };
}

/** Remove a scratch tree unless something is still mounted inside it (then say so and keep it). */
function removeWorkDir(dir: string, log: (l: string) => void): void {
  try {
    assertNothingMountedUnder(dir);
  } catch (err) {
    log(`build: kept ${dir}: ${(err as Error).message}`);
    return;
  }
  rmSync(dir, { recursive: true, force: true });
}

function writeIfChanged(path: string, text: string): void {
  if (existsSync(path) && readFileSync(path, 'utf8') === text) return;
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
}

function pick(o: Record<string, string>, keys: string[]): Record<string, string | undefined> {
  return Object.fromEntries(keys.map((k) => [k, o[k]]));
}

const hostHashCache = new Map<string, { key: string; sha256: string }>();
async function hashHostFiles(files: readonly { path: string; package: string }[]): Promise<{ path: string; package: string; sha256: string }[]> {
  const out: { path: string; package: string; sha256: string }[] = [];
  const { statSync } = await import('node:fs');
  for (const f of files) {
    if (!existsSync(f.path)) {
      out.push({ path: f.path, package: f.package, sha256: 'missing' });
      continue;
    }
    const st = statSync(f.path);
    const key = `${st.size}:${st.mtimeMs}:${st.ino}`;
    const hit = hostHashCache.get(f.path);
    const sha = hit && hit.key === key ? hit.sha256 : await sha256File(f.path);
    hostHashCache.set(f.path, { key, sha256: sha });
    out.push({ path: f.path, package: f.package, sha256: sha });
  }
  return out;
}

export { CommandError };
