// qcow2 golden images: a Debian root filesystem debootstrapped offline from the darksite
// (file: mirror, verified with the darksite key), the role payload installed, then GPT with an
// ESP (shim → signed GRUB) and an ext4 root assembled without loop mounts:
// mkfs.fat + mcopy, mkfs.ext4 -d (byte-reproducible: ../ext4.ts), sfdisk on a sparse file,
// dd conv=notrunc, qemu-img convert.
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, symlinkSync, writeFileSync, ftruncateSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { sha256Hex } from '../../../common/canonical';
import { run } from '../../exec/runner';
import { makeReproducibleExt4 } from '../ext4';
import { assertNothingMountedUnder, copyTree, pinTimes } from '../files';
import { ISO_HOST_FILES, requireHostFiles } from '../iso/host-files';
import type { RenderedPayload } from '../payload/render';
import { CODENAME, KEYRING_FILE } from '../darksite/index';
import type { AbFiles } from './ab';
import { prepareAbRootfs, writeAbDisk } from './ab';
import { ROOT_MIB } from '../../../common/upgrade/ab-size';

export interface BaseRootfsInput {
  darksiteDir: string;
  /** Package names of the base set (installer-only ones are dropped). */
  packages: readonly string[];
  /** Where to write the tar of the root filesystem. */
  outTar: string;
  workDir: string;
  sourceDateEpoch: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

/** debootstrap the base set once (shared by every role), kept as a tar in the cache. */
export async function buildBaseRootfs(input: BaseRootfsInput): Promise<void> {
  const { workDir, signal } = input;
  if (existsSync(workDir)) assertNothingMountedUnder(workDir);
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  const rootfs = join(workDir, 'rootfs');
  const pkgs = [...new Set(input.packages)].filter((p) => !INSTALLER_ONLY.has(p)).sort();
  input.log?.(`image: debootstrap base root filesystem from the darksite (${pkgs.length} packages)`);
  await run(
    ['debootstrap', '--variant=minbase', `--keyring=${join(input.darksiteDir, KEYRING_FILE)}`, '--components=main', `--include=${pkgs.join(',')}`, '--merged-usr', CODENAME, rootfs, `file://${input.darksiteDir}`],
    { signal, timeoutMs: 30 * 60_000, env: { DEBIAN_FRONTEND: 'noninteractive', SOURCE_DATE_EPOCH: String(input.sourceDateEpoch) }, hint: 'debootstrap needs root and the darksite built by kubedos build darksite' },
  );
  assertNothingMountedUnder(rootfs);
  mkdirSync(dirname(input.outTar), { recursive: true });
  await run(['tar', '--numeric-owner', '--xattrs', '--sort=name', `--mtime=@${input.sourceDateEpoch}`, '-C', rootfs, '-cf', input.outTar, '.'], { signal, timeoutMs: 10 * 60_000 });
  rmSync(workDir, { recursive: true, force: true });
}


export interface ImageInput {
  payload: RenderedPayload;
  /** Base root filesystem tar from buildBaseRootfs. */
  baseTar: string;
  /** .deb files of the role's packages that the base does not have (installed with dpkg in the chroot). */
  extraDebs: readonly string[];
  outFile: string;
  workDir: string;
  sourceDateEpoch: number;
  cluster: string;
  /** apt source line the node keeps (the darksite as served in the cluster). */
  aptSource: string;
  /** The root file system (each slot of an A/B disk); default ROOT_MIB (common/upgrade/ab-size.ts). */
  rootSizeMiB?: number;
  /** The artifact's OCI image layout (declared images), copied to OCI_NODE_DIR for containerd to import. */
  ociLayoutDir?: string;
  /** 'ab' (spec.upgrades.diskLayout): ESP, root A, root B, data with the GRUB boot counter
   * (./ab.ts, docs/upgrades.md). Default 'single': GPT with an ESP and one ext4 root. */
  diskLayout?: 'single' | 'ab';
  /** diskLayout 'ab': the role's A/B boot files (readAbFiles: payload/upgrade/, its health gate's
   * configuration from the plan, its slot kernel arguments), the ones its SBOM lines hash. */
  abFiles?: AbFiles;
  /** diskLayout 'ab': the data partition (MiB), the rest of the role's smallest first disk (abDataMiB). */
  abDataMiB?: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

/** Where a node keeps the artifact's OCI image layout (payload/ansible kubedos_containerd_oci_dir). */
export const OCI_NODE_DIR = 'srv/kubedos/oci';

/** Packages the installer needs but a golden image must not run in a chroot. */
export const INSTALLER_ONLY = new Set(['grub-efi-amd64', 'efibootmgr', 'tasksel', 'tasksel-data']);

/** Pure: a deterministic UUID from a label (the same cluster+role gets the same filesystem ids). */
export function stableUuid(label: string): string {
  const h = sha256Hex(label);
  const v = `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${h.slice(18, 20)}-${h.slice(20, 32)}`;
  return v;
}

/** Pure: the ESP's FAT volume id (mkfs.fat -i) and how fstab names it (UUID=XXXX-XXXX). */
export function espVolumeIds(cluster: string, role: string): { espVolId: string; espMountId: string } {
  const espVolId = stableUuid(`${cluster}/${role}/esp`).replace(/-/g, '').slice(0, 8);
  return { espVolId, espMountId: `${espVolId.slice(0, 4)}-${espVolId.slice(4, 8)}`.toUpperCase() };
}

/**
 * Pure: GRUB config placed on the ESP (the signed GRUB reads $prefix/grub.cfg). No menu countdown
 * (timeout=0): under TCG GRUB's "1 s" took 33–67 s per boot (docs/upgrades.md "Health gate").
 */
export function renderDiskGrubCfg(rootUuid: string, kernel: string, initrd: string): string {
  return [
    'set timeout=0',
    'set default=0',
    'serial --unit=0 --speed=115200',
    'terminal_input serial console',
    'terminal_output serial console',
    `search --no-floppy --fs-uuid --set=root ${rootUuid}`,
    `menuentry "Kube'd'OS" {`,
    `  linux /boot/${kernel} root=UUID=${rootUuid} ro console=tty0 console=ttyS0,115200n8`,
    `  initrd /boot/${initrd}`,
    '}',
    '',
  ].join('\n');
}

/** Pure: the sfdisk script of the golden disk. */
export function renderPartitionTable(diskUuid: string, espUuid: string, rootPartUuid: string, espSectors: number, rootSectors: number): string {
  return [
    'label: gpt',
    `label-id: ${diskUuid}`,
    'unit: sectors',
    'first-lba: 2048',
    `start=2048, size=${espSectors}, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=${espUuid}, name="esp"`,
    `start=${2048 + espSectors}, size=${rootSectors}, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=${rootPartUuid}, name="root"`,
    '',
  ].join('\n');
}

export async function buildImage(input: ImageInput): Promise<void> {
  const { workDir, signal, payload } = input;
  const epoch = input.sourceDateEpoch;
  requireHostFiles([ISO_HOST_FILES.shim, ISO_HOST_FILES.grubDisk]);
  if (existsSync(workDir)) assertNothingMountedUnder(workDir);
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  const rootfs = join(workDir, 'rootfs');
  mkdirSync(rootfs, { recursive: true });
  await run(['tar', '--numeric-owner', '--xattrs', '-xpf', input.baseTar, '-C', rootfs], { signal, timeoutMs: 10 * 60_000 });
  if (input.extraDebs.length) {
    input.log?.(`image ${payload.role}: installing ${input.extraDebs.length} role packages with dpkg in the chroot`);
    const debDir = join(rootfs, 'var/cache/kubedos-debs');
    mkdirSync(debDir, { recursive: true });
    for (const d of input.extraDebs) copyFileSync(d, join(debDir, d.split('/').pop()!));
    await run(['chroot', rootfs, 'dpkg', '--install', '--force-confdef', '--force-confold', ...input.extraDebs.map((d) => `/var/cache/kubedos-debs/${d.split('/').pop()}`)], {
      signal,
      timeoutMs: 20 * 60_000,
      env: { DEBIAN_FRONTEND: 'noninteractive', PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
      hint: 'a role package needs a dependency that is not in the darksite lock for this role',
    });
    rmSync(debDir, { recursive: true, force: true });
  }
  // Payload, exactly as the installer's late_command installs it.
  const staged = join(workDir, 'payload');
  for (const f of payload.files) {
    const p = join(staged, f.path);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, f.data);
    chmodSync(p, f.mode);
  }
  await run(['sh', join(staged, 'firstboot/install-payload.sh'), rootfs, staged], { signal });
  if (input.ociLayoutDir) {
    input.log?.(`image ${payload.role}: the artifact's OCI image layout into /${OCI_NODE_DIR}`);
    copyTree(input.ociLayoutDir, join(rootfs, OCI_NODE_DIR));
  }

  const rootUuid = stableUuid(`${input.cluster}/${payload.role}/root-fs`);
  const { espVolId, espMountId } = espVolumeIds(input.cluster, payload.role);
  writeFileSync(join(rootfs, 'etc/fstab'), `UUID=${rootUuid} / ext4 errors=remount-ro 0 1\nUUID=${espMountId} /boot/efi vfat umask=0077 0 1\n`);
  mkdirSync(join(rootfs, 'boot/efi'), { recursive: true });
  writeFileSync(join(rootfs, 'etc/hostname'), `${payload.role}\n`);
  writeFileSync(join(rootfs, 'etc/machine-id'), '');
  rmSync(join(rootfs, 'var/lib/dbus/machine-id'), { force: true });
  writeFileSync(join(rootfs, 'etc/apt/sources.list'), `${input.aptSource}\n`);
  // Any NIC gets DHCP until first boot's planned LAN takes over (first boot removes this file: kubedos-firstboot.sh step_lan).
  mkdirSync(join(rootfs, 'etc/systemd/network'), { recursive: true });
  writeFileSync(join(rootfs, 'etc/systemd/network/90-kubedos-dhcp.network'), '[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n');
  const wants = join(rootfs, 'etc/systemd/system/multi-user.target.wants');
  mkdirSync(wants, { recursive: true });
  if (!existsSync(join(wants, 'systemd-networkd.service'))) symlinkSync('/lib/systemd/system/systemd-networkd.service', join(wants, 'systemd-networkd.service'));
  // containerd is in the control-plane and worker images (payload/packages) so the darksite carries it, but it
  // runs only where the workload stage's runtime play enables it (Kubernetes, or images the spec declares).
  rmSync(join(wants, 'containerd.service'), { force: true });
  // Clones must not share host keys or caches.
  for (const f of readdirSync(join(rootfs, 'etc/ssh'))) if (/^ssh_host_/.test(f)) rmSync(join(rootfs, 'etc/ssh', f));
  for (const d of ['var/lib/apt/lists', 'var/cache/apt', 'var/log', 'tmp']) {
    const p = join(rootfs, d);
    if (!existsSync(p)) continue;
    for (const e of readdirSync(p)) if (e !== 'partial' && e !== 'lock') rmSync(join(p, e), { recursive: true, force: true });
  }
  const bootFiles = readdirSync(join(rootfs, 'boot'));
  const kernel = bootFiles.filter((f) => f.startsWith('vmlinuz-')).sort().pop();
  const initrd = bootFiles.filter((f) => f.startsWith('initrd.img-')).sort().pop();
  if (!kernel || !initrd) throw new Error(`image ${payload.role}: no kernel/initrd in ${join(rootfs, 'boot')} (is linux-image-amd64 pinned in base.list?)`);

  if (input.diskLayout === 'ab') {
    if (!input.abFiles) throw new Error(`image ${payload.role}: an A/B disk needs its boot files (abFiles: payload/upgrade/ and the role's health gate)`);
    if (input.abDataMiB === undefined) throw new Error(`image ${payload.role}: an A/B disk needs the size of its data partition (abDataMiB, from the role's first disk)`);
    prepareAbRootfs({ rootfs, files: input.abFiles.root, espMountId, kernel, initrd });
    const raw = join(workDir, 'disk.raw');
    await writeAbDisk({ rootfs, esp: input.abFiles.esp, workDir, cluster: input.cluster, role: payload.role, espVolId, rootMiB: input.rootSizeMiB ?? ROOT_MIB, dataMiB: input.abDataMiB, sourceDateEpoch: epoch, rawOut: raw, ...(signal ? { signal } : {}), ...(input.log ? { log: input.log } : {}) });
    mkdirSync(dirname(input.outFile), { recursive: true });
    rmSync(input.outFile, { force: true });
    await run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', raw, input.outFile], { signal, timeoutMs: 20 * 60_000 });
    rmSync(raw, { force: true });
    return;
  }

  // ESP: shim as the removable-media loader and in EFI/debian, signed GRUB beside it.
  const espTree = join(workDir, 'esp');
  const grubCfg = renderDiskGrubCfg(rootUuid, kernel, initrd);
  for (const dir of ['EFI/BOOT', 'EFI/debian']) {
    mkdirSync(join(espTree, dir), { recursive: true });
    copyFileSync(ISO_HOST_FILES.grubDisk.path, join(espTree, dir, 'grubx64.efi'));
    writeFileSync(join(espTree, dir, 'grub.cfg'), grubCfg);
  }
  copyFileSync(ISO_HOST_FILES.shim.path, join(espTree, 'EFI/BOOT/BOOTX64.EFI'));
  copyFileSync(ISO_HOST_FILES.shim.path, join(espTree, 'EFI/debian/shimx64.efi'));
  pinTimes(espTree, epoch);
  const espImg = join(workDir, 'esp.img');
  const espMiB = 64;
  const env = { SOURCE_DATE_EPOCH: String(epoch), MTOOLS_SKIP_CHECK: '1' };
  await run(['mkfs.fat', '--invariant', '-F', '32', '-i', espVolId, '-n', 'ESP', '-C', espImg, String(espMiB * 1024)], { env, signal });
  await run(['mcopy', '-s', '-m', '-Q', '-i', espImg, join(espTree, 'EFI'), '::/'], { env, signal });

  pinTimes(rootfs, epoch);
  const rootMiB = input.rootSizeMiB ?? ROOT_MIB;
  const rootImg = join(workDir, 'root.ext4');
  await makeReproducibleExt4({
    tree: rootfs, out: rootImg, sizeMiB: rootMiB, uuid: rootUuid, label: 'kubedos-root',
    hashSeed: stableUuid(`${input.cluster}/${payload.role}/hash-seed`), sourceDateEpoch: epoch, signal, timeoutMs: 20 * 60_000,
  });
  // The tree is in root.ext4 now: free it before the raw disk is written (peak disk use ~2x the root).
  assertNothingMountedUnder(rootfs);
  rmSync(rootfs, { recursive: true, force: true });

  const raw = join(workDir, 'disk.raw');
  const espSectors = espMiB * 2048;
  const rootSectors = rootMiB * 2048;
  const totalBytes = (2048 + espSectors + rootSectors + 2048) * 512;
  const fd = openSync(raw, 'w');
  ftruncateSync(fd, totalBytes);
  closeSync(fd);
  await run(['sfdisk', '--quiet', '--no-reread', '--no-tell-kernel', raw], {
    input: renderPartitionTable(stableUuid(`${input.cluster}/${payload.role}/disk`), stableUuid(`${input.cluster}/${payload.role}/esp-part`), stableUuid(`${input.cluster}/${payload.role}/root-part`), espSectors, rootSectors),
    signal,
  });
  await run(['dd', `if=${espImg}`, `of=${raw}`, 'bs=1M', `seek=1`, 'conv=notrunc,sparse', 'status=none'], { signal });
  await run(['dd', `if=${rootImg}`, `of=${raw}`, 'bs=1M', `seek=${1 + espMiB}`, 'conv=notrunc,sparse', 'status=none'], { signal, timeoutMs: 20 * 60_000 });
  mkdirSync(dirname(input.outFile), { recursive: true });
  rmSync(input.outFile, { force: true });
  rmSync(rootImg, { force: true });
  await run(['qemu-img', 'convert', '-f', 'raw', '-O', 'qcow2', raw, input.outFile], { signal, timeoutMs: 20 * 60_000 });
  rmSync(raw, { force: true });
}
