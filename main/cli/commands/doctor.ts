import { existsSync } from 'node:fs';
import { findOnPath } from '../../exec/find-on-path';
import { run } from '../../exec/runner';
import { HOST_TOOLS } from '../../exec/tools';
import type { CliCommand } from '../command';
import { parseCommandArgs } from '../command';
import { renderTable } from '../../../common/text/table';

/** Files (not programs) the foundry needs, and the package that ships each. */
export const HOST_FILES: readonly { path: string; package: string; purpose: string }[] = [
  { path: '/usr/share/OVMF/OVMF_CODE_4M.secboot.fd', package: 'ovmf', purpose: 'UEFI firmware with Secure Boot' },
  { path: '/usr/share/OVMF/OVMF_VARS_4M.ms.fd', package: 'ovmf', purpose: 'UEFI variables with Microsoft keys enrolled' },
  { path: '/usr/lib/shim/shimx64.efi.signed', package: 'shim-signed', purpose: 'signed shim for Secure Boot media' },
  { path: '/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed', package: 'grub-efi-amd64-signed', purpose: 'signed GRUB for Secure Boot media' },
  { path: '/usr/lib/ISOLINUX/isohdpfx.bin', package: 'isolinux', purpose: 'hybrid MBR of installer ISOs' },
  { path: '/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/initrd.gz', package: 'debian-installer-12-netboot-amd64', purpose: 'Debian installer kernel and initrd' },
];

export const doctorCommand: CliCommand = {
  name: 'doctor',
  summary: 'check the host tools the foundry uses, what each is for, and how to install the missing ones',
  usage: 'kubedos doctor [--json] [--versions]',
  help: 'Exit status 0 when everything is present, 1 when something is missing.\n  --versions   also run each tool to print its version (slower)',
  async run(argv, io) {
    const { values } = parseCommandArgs(argv, { json: { type: 'boolean' }, versions: { type: 'boolean' } }, false);
    const rows: { tool: string; package: string; area: string; purpose: string; path?: string; version?: string }[] = [];
    for (const t of HOST_TOOLS) {
      const path = findOnPath(t, io.env);
      let version: string | undefined;
      if (path && values.versions && t.versionArgs) {
        try {
          const r = await run([path, ...t.versionArgs], { timeoutMs: 5000, okExitCodes: [0, 1], signal: io.signal });
          version = (r.stdout || r.stderr).split('\n').find((l) => l.trim())?.trim().slice(0, 60);
        } catch {
          version = '?';
        }
      }
      rows.push({ tool: t.name, package: t.package, area: t.area, purpose: t.purpose, ...(path ? { path } : {}), ...(version ? { version } : {}) });
    }
    const files = HOST_FILES.map((f) => ({ ...f, present: existsSync(f.path) }));
    const nodeMajor = Number(process.versions.node.split('.')[0]);
    const missingPkgs = [...new Set([...rows.filter((r) => !r.path).map((r) => r.package), ...files.filter((f) => !f.present).map((f) => f.package)])].sort();
    if (values.json) {
      io.out(JSON.stringify({ node: process.versions.node, tools: rows, files, missingPackages: missingPkgs }, null, 2));
      return missingPkgs.length || nodeMajor < 20 ? 1 : 0;
    }
    io.out(`node ${process.versions.node} ${nodeMajor >= 20 ? 'ok' : 'TOO OLD (need 20+)'}`);
    io.out('');
    io.out(renderTable(['', 'TOOL', 'PACKAGE', 'FOR', ...(values.versions ? ['VERSION'] : [])], rows.map((r) => [r.path ? 'ok' : 'MISSING', r.tool, r.package, r.purpose, ...(values.versions ? [r.version ?? ''] : [])])));
    io.out('');
    io.out(renderTable(['', 'FILE', 'PACKAGE', 'FOR'], files.map((f) => [f.present ? 'ok' : 'MISSING', f.path, f.package, f.purpose])));
    const kvm = existsSync('/dev/kvm');
    io.out('');
    io.out(`/dev/kvm ${kvm ? 'exists (the qemu-local driver still probes it with a real boot; TCG is used if that fails)' : 'absent: VMs run under TCG (slow but works)'}`);
    if (missingPkgs.length) {
      io.out('');
      io.out(`missing: install with\n  sudo apt-get install ${missingPkgs.join(' ')}\nor run scripts/setup-host.sh`);
      return 1;
    }
    io.out('\nall host tools present');
    return 0;
  },
};
