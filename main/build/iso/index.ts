// Role installer ISOs: hybrid BIOS (isolinux) + UEFI (shim → signed GRUB) media carrying the
// Debian installer with the role's preseed and payload injected into its initrd, plus the
// payload and the darksite on the medium (control planes and workers: also the artifact's OCI
// image layout, ./oci.ts). Reproducible: staged tree, FAT image and ISO use
// SOURCE_DATE_EPOCH, fixed owners, sorted cpio entries, deterministic gzip.
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { sha256Hex } from '../../../common/canonical';
import { run } from '../../exec/runner';
import { copyTree, listFiles, makeWritable, pinTimes } from '../files';
import type { PayloadFile, RenderedPayload } from '../payload/render';
import { ISO_HOST_FILES, requireHostFiles } from './host-files';
import { INITRD_OCI_SCRIPT, ISO_OCI_DIR, renderOciLateScript, withOciLateCommand } from './oci';
import { INITRD_AB_SCRIPT, renderAbLateScript, withAbPreseed } from './ab';
import type { AbLayoutInput } from '../../upgrade/ab-layout';

export const INITRD_PAYLOAD_DIR = 'kubedos-payload';

export interface IsoInput {
  payload: RenderedPayload;
  /** The signed darksite repository directory to put on the medium. */
  darksiteDir: string;
  outFile: string;
  workDir: string;
  sourceDateEpoch: number;
  cluster: string;
  /** Remaster a user-supplied Debian netinst ISO instead of the netboot kernel/initrd. */
  netinstIso?: string;
  /** The artifact's OCI image layout (declared images; control planes and workers): put on the
   * medium at ISO_OCI_DIR and copied to the target by the late command (./oci.ts). */
  ociLayout?: { dir: string; indexSha256: string };
  /** spec.upgrades.diskLayout: ab: the A/B disk (./ab.ts) and the files its late command installs
   * (abInstallerFiles, under /kubedos-ab of the initrd). */
  ab?: IsoAb;
  signal?: AbortSignal;
}

export interface IsoAb {
  layout: AbLayoutInput;
  files: PayloadFile[];
}

/** The ISO's cache-key inputs: the layout's index digest enters only when the medium carries
 * it, so ISOs without declared images keep the key (and bytes) they had before. */
export function isoKeyInputs<T extends object>(base: T, ociIndexSha256?: string): T | (T & { oci: string }) {
  return ociIndexSha256 ? { ...base, oci: ociIndexSha256 } : base;
}

/** The payload as the medium installs it: with a layout, the preseed (and its copy in the
 * payload) runs the layout copy first in late_command; with an A/B disk, the A/B recipe and its
 * late command (./ab.ts). Without either, the payload unchanged. */
export function isoPayload(payload: RenderedPayload, ociLayout?: IsoInput['ociLayout'], ab?: IsoAb): RenderedPayload {
  if (!ociLayout && !ab) return payload;
  let preseed = ab ? withAbPreseed(payload.preseed, ab.layout) : payload.preseed;
  if (ociLayout) preseed = withOciLateCommand(preseed);
  const data = new TextEncoder().encode(preseed);
  return { ...payload, preseed, files: payload.files.map((f) => (f.path === 'preseed.cfg' ? { ...f, data } : f)) };
}

/** Pure: the kernel command line of the installer. */
export function installerCmdline(): string {
  return 'auto=true priority=critical preseed/file=/preseed.cfg console=ttyS0,115200n8 --- console=ttyS0,115200n8';
}

/** Pure: GRUB menu for the medium (read by the signed GRUB from /boot/grub/grub.cfg). */
export function renderGrubCfg(role: string, kernel: string, initrd: string): string {
  return [
    'set timeout=1',
    'set default=0',
    'serial --unit=0 --speed=115200',
    'terminal_input serial console',
    'terminal_output serial console',
    `menuentry "Kube'd'OS: install ${role}" {`,
    `  linux ${kernel} ${installerCmdline()}`,
    `  initrd ${initrd}`,
    '}',
    '',
  ].join('\n');
}

/** Pure: isolinux menu for BIOS boots. */
export function renderIsolinuxCfg(kernel: string, initrd: string): string {
  return ['serial 0 115200', 'default install', 'prompt 0', 'timeout 10', 'label install', `  kernel ${kernel}`, `  append initrd=${initrd} ${installerCmdline()}`, ''].join('\n');
}

/** A newc cpio (gzip) with the preseed at / and the payload under /kubedos-payload, plus
 * the darksite key as the installer's archive keyring so Release files verify against it. */
export async function payloadInitrd(payload: RenderedPayload, workDir: string, epoch: number, signal?: AbortSignal, extra: readonly PayloadFile[] = []): Promise<Buffer> {
  const root = join(workDir, 'initrd-overlay');
  rmSync(root, { recursive: true, force: true });
  const write = (rel: string, f: Pick<PayloadFile, 'data' | 'mode'>): void => {
    const p = join(root, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, f.data);
    chmodSync(p, f.mode);
  };
  for (const f of payload.files) write(`${INITRD_PAYLOAD_DIR}/${f.path}`, f);
  write('preseed.cfg', { data: new TextEncoder().encode(payload.preseed), mode: 0o644 });
  for (const f of extra) write(f.path, f);
  const keyring = payload.files.find((f) => f.path === 'kubedos-archive-keyring.gpg');
  if (!keyring) throw new Error('iso: the payload carries no darksite keyring');
  write('usr/share/keyrings/archive.gpg', keyring);
  pinTimes(root, epoch);
  const entries = new Set<string>();
  for (const f of listFiles(root)) {
    const parts = f.split('/');
    for (let i = 1; i < parts.length; i++) entries.add(parts.slice(0, i).join('/'));
    entries.add(f);
  }
  const list = [...entries].sort().join('\n') + '\n';
  const r = await run(['cpio', '--quiet', '-o', '-H', 'newc', '--reproducible', '-R', '0:0'], { cwd: root, input: list, binary: true, signal, maxBufferBytes: 512 * 1024 * 1024 });
  return gzipSync(r.stdoutBytes ?? Buffer.alloc(0), { level: 9 });
}

async function efiImage(path: string, files: { name: string; src: string }[], epoch: number, workDir: string, signal?: AbortSignal): Promise<void> {
  const tree = join(workDir, 'efi-tree');
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(join(tree, 'EFI/BOOT'), { recursive: true });
  for (const f of files) copyFileSync(f.src, join(tree, 'EFI/BOOT', f.name));
  pinTimes(tree, epoch);
  rmSync(path, { force: true });
  const env = { SOURCE_DATE_EPOCH: String(epoch), MTOOLS_SKIP_CHECK: '1' };
  await run(['mkfs.fat', '--invariant', '-i', '4b554245', '-n', 'KUBEDOS_EFI', '-C', path, '8192'], { env, signal });
  await run(['mcopy', '-s', '-m', '-Q', '-i', path, join(tree, 'EFI'), '::/'], { env, signal });
}

function isoDate(epoch: number): string {
  const d = new Date(epoch * 1000);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}00`;
}

export async function buildIso(input: IsoInput): Promise<void> {
  const { workDir, sourceDateEpoch: epoch, signal, ociLayout, ab } = input;
  const payload = isoPayload(input.payload, ociLayout, ab);
  const extra: PayloadFile[] = [];
  if (ab) extra.push({ path: INITRD_AB_SCRIPT, data: new TextEncoder().encode(renderAbLateScript(ab.layout)), mode: 0o755 }, ...ab.files);
  if (ociLayout) {
    const index = join(ociLayout.dir, 'index.json');
    const got = existsSync(index) ? sha256Hex(readFileSync(index)) : 'missing';
    if (got !== ociLayout.indexSha256) throw new Error(`iso ${payload.role}: ${index} is sha256:${got}, the artifact's OCI index is sha256:${ociLayout.indexSha256}; rebuild with --rebuild`);
    extra.push({ path: INITRD_OCI_SCRIPT, data: new TextEncoder().encode(renderOciLateScript(ociLayout.indexSha256)), mode: 0o755 });
  }
  const stage = join(workDir, 'stage');
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(stage, { recursive: true });
  let kernelPath: string;
  let initrdPath: string;
  let efiImg: string;
  if (input.netinstIso) {
    // Remaster: take the user's medium as it is (its udebs, its signed EFI image), replace the
    // menus and append our preseed/payload to its initrd.
    await run(['xorriso', '-osirrox', 'on', '-indev', input.netinstIso, '-extract', '/', stage], { signal, hint: 'is the file a Debian netinst ISO?' });
    makeWritable(stage);
    // xorriso writes a fresh boot catalog; a stale one in the tree would clash with it.
    rmSync(join(stage, 'isolinux/boot.cat'), { force: true });
    const probe = (cands: string[]): string => {
      for (const c of cands) if (existsSync(join(stage, c))) return c;
      throw new Error(`iso: ${input.netinstIso} has none of ${cands.join(', ')}; is it a Debian amd64 netinst ISO?`);
    };
    kernelPath = probe(['install.amd/vmlinuz', 'install/vmlinuz']);
    initrdPath = probe(['install.amd/initrd.gz', 'install/initrd.gz']);
    efiImg = probe(['boot/grub/efi.img', 'boot/efi.img']);
    requireHostFiles([ISO_HOST_FILES.mbr, ISO_HOST_FILES.isolinux, ISO_HOST_FILES.ldlinux]);
  } else {
    requireHostFiles(Object.values(ISO_HOST_FILES));
    kernelPath = 'install/vmlinuz';
    initrdPath = 'install/initrd.gz';
    efiImg = 'boot/efi.img';
    mkdirSync(join(stage, 'install'), { recursive: true });
    copyFileSync(ISO_HOST_FILES.kernel.path, join(stage, kernelPath));
    copyFileSync(ISO_HOST_FILES.initrd.path, join(stage, initrdPath));
    mkdirSync(join(stage, 'boot'), { recursive: true });
    await efiImage(join(stage, efiImg), [
      { name: 'BOOTX64.EFI', src: ISO_HOST_FILES.shim.path },
      { name: 'grubx64.efi', src: ISO_HOST_FILES.grubCd.path },
    ], epoch, workDir, signal);
    mkdirSync(join(stage, 'EFI/BOOT'), { recursive: true });
    copyFileSync(ISO_HOST_FILES.shim.path, join(stage, 'EFI/BOOT/BOOTX64.EFI'));
    copyFileSync(ISO_HOST_FILES.grubCd.path, join(stage, 'EFI/BOOT/grubx64.efi'));
  }
  // The installer initrd with our overlay appended (the kernel unpacks concatenated archives in order).
  const overlay = await payloadInitrd(payload, workDir, epoch, signal, extra);
  writeFileSync(join(stage, initrdPath), Buffer.concat([readFileSync(join(stage, initrdPath)), overlay]));
  mkdirSync(join(stage, 'boot/grub'), { recursive: true });
  writeFileSync(join(stage, 'boot/grub/grub.cfg'), renderGrubCfg(payload.role, `/${kernelPath}`, `/${initrdPath}`));
  mkdirSync(join(stage, 'isolinux'), { recursive: true });
  copyFileSync(ISO_HOST_FILES.isolinux.path, join(stage, 'isolinux/isolinux.bin'));
  copyFileSync(ISO_HOST_FILES.ldlinux.path, join(stage, 'isolinux/ldlinux.c32'));
  writeFileSync(join(stage, 'isolinux/isolinux.cfg'), renderIsolinuxCfg(`/${kernelPath}`, `/${initrdPath}`));
  // The signed GRUB finds its medium by /.disk/info.
  mkdirSync(join(stage, '.disk'), { recursive: true });
  writeFileSync(join(stage, '.disk/info'), `Kube'd'OS ${input.cluster} ${payload.role} installer (Debian 12 amd64)\n`);
  // Payload and darksite travel on the medium too (recovery, and the netinst remaster path).
  for (const f of payload.files) {
    const p = join(stage, 'kubedos/payload', f.path);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, f.data);
    chmodSync(p, f.mode);
  }
  writeFileSync(join(stage, 'kubedos/preseed.cfg'), payload.preseed);
  copyTree(input.darksiteDir, join(stage, 'darksite'));
  if (ociLayout) copyTree(ociLayout.dir, join(stage, ISO_OCI_DIR));
  pinTimes(stage, epoch);
  rmSync(input.outFile, { force: true });
  mkdirSync(dirname(input.outFile), { recursive: true });
  const label = `KUBEDOS_${payload.role.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`.slice(0, 32);
  await run(
    [
      'xorriso', '-as', 'mkisofs',
      '-o', input.outFile,
      '-V', label,
      '-J', '-joliet-long', '-r',
      '-uid', '0', '-gid', '0',
      '-isohybrid-mbr', ISO_HOST_FILES.mbr.path,
      '-b', 'isolinux/isolinux.bin', '-c', 'isolinux/boot.cat',
      '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table',
      '-eltorito-alt-boot', '-e', efiImg, '-no-emul-boot', '-isohybrid-gpt-basdat',
      `--modification-date=${isoDate(epoch)}`,
      stage,
    ],
    { env: { SOURCE_DATE_EPOCH: String(epoch) }, signal, timeoutMs: 20 * 60_000 },
  );
}
