// A full unattended install from a role ISO, then the installed system's first boot, as one
// measured run (used by the slow test and the bench). Phase 1 boots the ISO (Secure Boot, swtpm)
// with the darksite served from loopback; the installer partitions, installs base + packages
// from the darksite, runs late_command and powers off (the lab builds with poweroff). Phase 2
// boots the disk with the same OVMF variables and TPM state and waits for the first-boot marker
// and guest-ping. Every process is stopped by PID, also when a phase fails.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { DarksiteServer, Vm } from './vm';
import { guestAgent, serveDirectory, startVm, waitForAgent } from './vm';

export interface IsoInstallTimes {
  /** ms since the installer VM started */
  preseedMs: number;
  lateCommandMs: number;
  powerOffMs: number;
  /** ms since the installed system's VM started */
  firstBootMs: number;
  guestPingMs: number;
}

export interface IsoInstallResult {
  times: IsoInstallTimes;
  /** Every request the darksite server saw, in order. */
  requests: string[];
  installSerial: string;
  bootSerial: string;
}

export interface IsoInstallOptions {
  /** Build output with darksite/ and iso/<cluster>-<role>.iso */
  out: string;
  iso: string;
  /** Scratch dir for the VM (OVMF vars, TPM state, serial logs, disk). */
  dir: string;
  node: { name: string; mac: string };
  installTimeoutMs?: number;
  bootTimeoutMs?: number;
  /** Progress lines (phase boundaries). */
  log?: (line: string) => void;
}

/** The installer draws dialogs on ttyS0; a "[!!]" title means it asks a question the preseed did not answer. */
// eslint-disable-next-line no-control-regex -- the dialog title ends at the next ANSI escape
export const INSTALLER_QUESTION = /\[!!\] [^\x1b\r\n]{3,80}/;

export async function installFromIso(o: IsoInstallOptions): Promise<IsoInstallResult> {
  const log = o.log ?? (() => undefined);
  let server: DarksiteServer | undefined;
  let vm: Vm | undefined;
  rmSync(o.dir, { recursive: true, force: true });
  const disk = join(o.dir, 'disk.qcow2');
  try {
    mkdirSync(o.dir, { recursive: true });
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '8G']);
    server = await serveDirectory(join(o.out, 'darksite'), '/darksite');
    vm = await startVm({ dir: o.dir, cdrom: o.iso, disk: { file: disk, format: 'qcow2' }, mac: o.node.mac, memoryMiB: 1024, darksitePort: server.port, bootFrom: 'cdrom' });
    const installTimeout = o.installTimeoutMs ?? 90 * 60_000;
    await vm.waitForSerial(/Secure boot enabled/i, 300_000);
    const preseedMs = await vm.waitForSerial(/KUBEDOS-PRESEED-READ/, 600_000);
    log(`iso install: preseed read ${(preseedMs / 1000).toFixed(0)} s after VM start`);
    const lateCommandMs = await vm.waitForSerial(/KUBEDOS-LATE-COMMAND-DONE/, installTimeout, INSTALLER_QUESTION);
    log(`iso install: late_command done ${(lateCommandMs / 1000).toFixed(0)} s after VM start`);
    const powerOffMs = await vm.waitForExit(10 * 60_000);
    const installSerial = vm.serial();
    copyFileSync(vm.serialLog, join(o.dir, 'install-serial.log'));
    await vm.stop();
    // Phase 2: the installed disk, same NVRAM (boot entries) and TPM state.
    vm = await startVm({ dir: o.dir, disk: { file: disk, format: 'qcow2' }, mac: o.node.mac, memoryMiB: 1024, bootFrom: 'disk' });
    await vm.waitForSerial(/Secure boot enabled/i, 300_000);
    const firstBootMs = await vm.waitForSerial(new RegExp(`KUBEDOS-FIRSTBOOT-COMPLETE node=${o.node.name}`), o.bootTimeoutMs ?? 900_000, /kubedos-firstboot: FAILED[^\n]*/);
    log(`iso install: first boot complete ${(firstBootMs / 1000).toFixed(0)} s after the installed system started`);
    await waitForAgent(vm.qgaSocket, 180_000, vm);
    const pong = await guestAgent(vm.qgaSocket, 'guest-ping');
    if (JSON.stringify(pong) !== '{}') throw new Error(`guest-ping answered ${JSON.stringify(pong)}`);
    const guestPingMs = Date.now() - vm.startedAt;
    return { times: { preseedMs, lateCommandMs, powerOffMs, firstBootMs, guestPingMs }, requests: [...server.requests], installSerial, bootSerial: vm.serial() };
  } finally {
    await vm?.stop();
    await server?.close();
    if (existsSync(disk)) rmSync(disk, { force: true });
  }
}
