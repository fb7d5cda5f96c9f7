// Files from host packages that go onto the media, and which package ships each. A missing
// one is reported like `kubedos doctor` does: the path, the package, the install command.
import { existsSync } from 'node:fs';

export interface HostFile {
  path: string;
  package: string;
  purpose: string;
}

const DI = '/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64';

export const ISO_HOST_FILES = {
  kernel: { path: `${DI}/linux`, package: 'debian-installer-12-netboot-amd64', purpose: 'installer kernel (signed)' },
  initrd: { path: `${DI}/initrd.gz`, package: 'debian-installer-12-netboot-amd64', purpose: 'installer initrd' },
  shim: { path: '/usr/lib/shim/shimx64.efi.signed', package: 'shim-signed', purpose: 'Secure Boot first stage (Microsoft-signed shim)' },
  grubCd: { path: '/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed', package: 'grub-efi-amd64-signed', purpose: 'signed GRUB for CD media' },
  grubDisk: { path: '/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed', package: 'grub-efi-amd64-signed', purpose: 'signed GRUB for disk images' },
  mbr: { path: '/usr/lib/ISOLINUX/isohdpfx.bin', package: 'isolinux', purpose: 'hybrid MBR for BIOS USB boot' },
  isolinux: { path: '/usr/lib/ISOLINUX/isolinux.bin', package: 'isolinux', purpose: 'BIOS El Torito loader' },
  ldlinux: { path: '/usr/lib/syslinux/modules/bios/ldlinux.c32', package: 'syslinux-common', purpose: 'isolinux core module' },
} satisfies Record<string, HostFile>;

export class MissingHostFiles extends Error {
  constructor(readonly missing: HostFile[]) {
    const pkgs = [...new Set(missing.map((m) => m.package))].sort();
    super(
      `missing host files: ${missing.map((m) => `${m.path} (package ${m.package}: ${m.purpose})`).join('; ')}. ` +
        `Install with: sudo apt-get install ${pkgs.join(' ')}   (or scripts/setup-host.sh; kubedos doctor lists everything)`,
    );
  }
}

export function requireHostFiles(files: readonly HostFile[]): void {
  const missing = files.filter((f) => !existsSync(f.path));
  if (missing.length) throw new MissingHostFiles(missing);
}
