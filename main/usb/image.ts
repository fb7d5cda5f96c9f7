// The portable stick image: one raw disk image that `usb write` puts on a stick.
//
// Layout (chosen so any Linux machine reads it without tools of ours, and a half-written stick is
// never mistaken for a good one):
//   bytes 0 … 1 MiB   MBR partition table (one partition, type 83); this first MiB is what the
//                     writer puts on the stick LAST, so until the rest is written and flushed the
//                     stick has no partition table at all
//   1 MiB … end       partition 1: ext4, label KUBEDOS, holding
//       README.txt          what the stick is, how to check it and how to restore from it
//       STICK.json          what is on it: the artifact's manifest digest, the bundle's digest
//       artifact/           the build directory (manifest, ISOs, images, darksite, signatures)
//       bundle/             the recovery bundle
//       kubedos/            the workbench AppImage when one was built (dist/*.AppImage), else the
//                           CLI itself: bin/, main/, common/, payload/ and the production
//                           node_modules, run with `node kubedos/bin/kubedos.mjs` (Node 20+)
// ext4 rather than FAT: images can be over 4 GiB, the CLI keeps its executable bits, and
// `mkfs.ext4 -d` fills it without mounting anything (as root or not). A fixed filesystem UUID and
// hash seed, a fixed MBR disk id and main/build/ext4.ts (every inode's times pinned to the
// artifact's SOURCE_DATE_EPOCH, ctime included) make it byte for byte reproducible: the same
// artifact, bundle and workbench give the same image digest. The receipt still records the digest
// of the image that was actually written, which is what `usb verify` checks.
import { chmodSync, closeSync, constants, copyFileSync, existsSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { canonicalJson } from '../../common/canonical';
import { MANIFEST_FILE } from '../build/attest';
import type { BuildManifest } from '../build/attest';
import { makeReproducibleExt4 } from '../build/ext4';
import { copyTree, pinTimes, sha256File, sha256Of } from '../build/files';
import { stableUuid } from '../build/image/index';
import { run } from '../exec/runner';
import { appRoot } from '../paths';
import { BUNDLE_PATHS } from '../bundle/schema';

export const MIB = 1024 * 1024;
/** Where partition 1 starts and how much the writer holds back to write last. */
export const FIRST_REGION_BYTES = MIB;
export const STICK_LABEL = 'KUBEDOS';

export interface StickContents {
  cluster: string;
  /** sha256 of the artifact's manifest.json (when an artifact is on the stick). */
  artifactManifestSha256?: string;
  artifactVersion?: string;
  /** sha256 of the bundle's bundle.json (when a bundle is on the stick). */
  bundleSha256?: string;
  /** What runs from the stick: the AppImage's file name, or "cli". */
  workbench: string;
  kubedosVersion: string;
}

export interface StickImage {
  /** The raw image file (in a private temp directory: call dispose() when done). */
  path: string;
  size: number;
  /** sha256 of the image file, taken once it is complete. */
  sha256: string;
  contents: StickContents;
  dispose(): void;
}

export interface StickImageInput {
  artifact?: string;
  bundle?: string;
  /** An AppImage to put on the stick instead of the CLI (default: the newest dist/*.AppImage of the app, if any). */
  appImage?: string;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

function duBytes(dir: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      files++;
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) bytes += Math.ceil(statSync(p).size / 4096) * 4096;
    }
  };
  walk(dir);
  return { bytes, files };
}

/** The production dependencies of the app (package.json `dependencies`, transitively), as
 * directories under its node_modules. */
function productionModules(root: string): string[] {
  const nm = realpathSync(join(root, 'node_modules'));
  const seen = new Set<string>();
  const depsOf = (pkgJson: string): string[] => {
    const p = JSON.parse(readFileSync(pkgJson, 'utf8')) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    return [...Object.keys(p.dependencies ?? {}), ...Object.keys(p.optionalDependencies ?? {})];
  };
  const queue = depsOf(join(root, 'package.json'));
  while (queue.length > 0) {
    const name = queue.shift()!;
    if (seen.has(name)) continue;
    const dir = join(nm, name);
    if (!existsSync(join(dir, 'package.json'))) continue; // an optional dependency for another platform
    seen.add(name);
    queue.push(...depsOf(join(dir, 'package.json')));
  }
  return [...seen].sort();
}

const isTestFile = (name: string): boolean => /\.test\.tsx?$/.test(name) || name === 'testing.ts';

/** The CLI as it runs from the stick: `node kubedos/bin/kubedos.mjs …`. */
function placeCli(dst: string): void {
  const root = appRoot();
  mkdirSync(dst, { recursive: true });
  writeFileSync(join(dst, 'package.json'), readFileSync(join(root, 'package.json')));
  for (const d of ['bin', 'main', 'common', 'payload']) copyTree(join(root, d), join(dst, d));
  // Tests are not part of the CLI.
  const prune = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) prune(p);
      else if (isTestFile(e.name)) rmSync(p);
    }
  };
  prune(join(dst, 'main'));
  prune(join(dst, 'common'));
  const nm = realpathSync(join(root, 'node_modules'));
  for (const m of productionModules(root)) copyTree(join(nm, m), join(dst, 'node_modules', m));
}

function findAppImage(): string | undefined {
  const dist = join(appRoot(), 'dist');
  if (!existsSync(dist)) return undefined;
  const found = readdirSync(dist)
    .filter((f) => f.endsWith('.AppImage'))
    .sort();
  return found.length ? join(dist, found[found.length - 1]!) : undefined;
}

export function renderStickReadme(c: StickContents): string {
  return [
    `Kube'd'OS stick for cluster ${c.cluster}`,
    '',
    'What is here',
    c.artifactManifestSha256 ? `  artifact/     the build (manifest.json sha256 ${c.artifactManifestSha256}, version ${c.artifactVersion ?? '?'})` : '  artifact/     (no artifact was written to this stick)',
    c.bundleSha256 ? `  bundle/       the recovery bundle (bundle.json sha256 ${c.bundleSha256})` : '  bundle/       (no recovery bundle was written to this stick)',
    c.workbench === 'cli' ? '  kubedos/      the kubedos CLI (needs Node.js 20 or newer on the machine)' : `  kubedos/      the workbench: kubedos/${c.workbench}`,
    '  STICK.json    the same list, machine-readable',
    '',
    'Check the stick before you trust it (from the machine that wrote it, with its receipt):',
    '  kubedos usb verify /dev/sdX',
    'Check what is on it, offline, on any Linux machine (mount it read-only first):',
    '  mount -o ro /dev/sdX1 /mnt',
    c.workbench === 'cli' ? '  node /mnt/kubedos/bin/kubedos.mjs verify /mnt/artifact' : `  /mnt/kubedos/${c.workbench} (the workbench) — or kubedos verify /mnt/artifact`,
    c.workbench === 'cli' ? '  node /mnt/kubedos/bin/kubedos.mjs verify /mnt/bundle' : '  kubedos verify /mnt/bundle',
    '',
    'Copy artifact/ and bundle/ to a disk before you build or deploy from them: the stick is',
    'written once and meant to stay as it is (a later `kubedos usb verify` proves it did).',
    '',
  ].join('\n');
}

/** Builds the stick image in a private temp directory. */
export async function buildStickImage(input: StickImageInput): Promise<StickImage> {
  if (!input.artifact && !input.bundle) throw new Error('a stick needs something to carry: pass --artifact DIR, --bundle DIR or both');
  const work = mkdtempSync(join(tmpdir(), 'kubedos-stick-'));
  const dispose = (): void => rmSync(work, { recursive: true, force: true });
  try {
    const tree = join(work, 'tree');
    mkdirSync(tree, { mode: 0o755 });
    let cluster: string | undefined;
    let epoch = 0;
    const contents: Partial<StickContents> = {};
    if (input.artifact) {
      const manifestBytes = readFileSync(join(input.artifact, MANIFEST_FILE));
      const m = JSON.parse(manifestBytes.toString('utf8')) as BuildManifest;
      cluster = m.cluster;
      epoch = m.sourceDateEpoch;
      contents.artifactManifestSha256 = sha256Of(manifestBytes);
      contents.artifactVersion = m.artifactVersion;
      copyTree(input.artifact, join(tree, 'artifact'));
    }
    if (input.bundle) {
      const bundleBytes = readFileSync(join(input.bundle, BUNDLE_PATHS.manifest));
      const b = JSON.parse(bundleBytes.toString('utf8')) as { cluster: string };
      if (cluster && b.cluster !== cluster) throw new Error(`the artifact is cluster ${cluster}'s but the bundle is cluster ${b.cluster}'s: a stick carries one cluster`);
      cluster = b.cluster;
      contents.bundleSha256 = sha256Of(bundleBytes);
      copyTree(input.bundle, join(tree, 'bundle'));
    }
    const appImage = input.appImage ?? findAppImage();
    if (appImage) {
      mkdirSync(join(tree, 'kubedos'));
      copyFileSync(appImage, join(tree, 'kubedos', basename(appImage)), constants.COPYFILE_FICLONE);
      chmodSync(join(tree, 'kubedos', basename(appImage)), 0o755);
    } else {
      placeCli(join(tree, 'kubedos'));
    }
    const pkg = JSON.parse(readFileSync(join(appRoot(), 'package.json'), 'utf8')) as { version: string };
    const full: StickContents = { cluster: cluster!, ...contents, workbench: appImage ? basename(appImage) : 'cli', kubedosVersion: pkg.version };
    writeFileSync(join(tree, 'STICK.json'), `${canonicalJson(full, 2)}\n`);
    writeFileSync(join(tree, 'README.txt'), renderStickReadme(full));
    pinTimes(tree, epoch);

    const { bytes, files } = duBytes(tree);
    // Room for metadata (inodes, directories, journal) on top of the data, rounded to MiB.
    const fsMiB = Math.ceil((bytes * 1.1 + files * 4096 + 48 * MIB) / MIB);
    const fsImg = join(work, 'part1.ext4');
    input.log?.(`usb: stick filesystem ${fsMiB} MiB for ${files} files`);
    await makeReproducibleExt4({
      tree, out: fsImg, sizeMiB: fsMiB, uuid: stableUuid(`${cluster}/usb/fs`), label: STICK_LABEL, bytesPerInode: 8192,
      hashSeed: stableUuid(`${cluster}/usb/hash-seed`), sourceDateEpoch: epoch, signal: input.signal, timeoutMs: 30 * 60_000,
      hint: 'mkfs.ext4 (package e2fsprogs) makes the stick filesystem',
    });
    rmSync(tree, { recursive: true, force: true });
    const path = join(work, 'stick.img');
    const size = FIRST_REGION_BYTES + fsMiB * MIB;
    const fd = openSync(path, 'w', 0o600);
    ftruncateSync(fd, size);
    closeSync(fd);
    const diskId = `0x${stableUuid(`${cluster}/usb/disk`).slice(0, 8)}`;
    await run(['sfdisk', '--quiet', '--no-reread', '--no-tell-kernel', path], {
      input: ['label: dos', `label-id: ${diskId}`, 'unit: sectors', `start=${FIRST_REGION_BYTES / 512}, size=${fsMiB * 2048}, type=83`, ''].join('\n'),
      signal: input.signal,
    });
    await run(['dd', `if=${fsImg}`, `of=${path}`, 'bs=1M', `seek=${FIRST_REGION_BYTES / MIB}`, 'conv=notrunc,sparse', 'status=none'], { signal: input.signal, timeoutMs: 30 * 60_000 });
    rmSync(fsImg, { force: true });
    return { path, size, sha256: await sha256File(path), contents: full, dispose };
  } catch (err) {
    dispose();
    throw err;
  }
}
