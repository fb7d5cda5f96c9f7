// What a guest's warm reset costs under TCG, with QEMU's default translation cache (1 GiB) and with
// the one the qemu-local driver asks for (TCG_TB_SIZE_MIB), measured side by side in one run: the
// same kernel and initrd (Debian's installer, from the debian-installer-12-netboot-amd64 package
// setup-host installs) boot, run for a while, are reset through QMP (what a guest's `reboot` does),
// and boot again. The number is the kernel's own: how long it took to unpack its initrd
// ("Trying to unpack rootfs image" → "Freeing initrd memory"), before and after the reset.
// Nothing is asserted: a table of seconds and ratios. Needs no root; ~4 minutes.
// Run: node bin/run-ts.mjs bench/tcg-reset.bench.ts   (or npm run bench:tcg-reset)
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { renderTable } from '../common/text/table';
import { qmpCommands } from '../main/substrate/qga';
import { TCG_TB_SIZE_MIB } from '../main/substrate/qemu-local';
import { removeTempDirs, tempDir } from '../main/testing/temp-dir';

const DI = '/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64';
/** How long the first boot runs before the reset: the installer has drawn its first screen by then. */
const RUN_BEFORE_RESET_S = 60;
/** The longest an unpack is waited for after the reset. */
const AFTER_RESET_S = 120;

if (!existsSync(join(DI, 'linux'))) {
  console.error(`bench/tcg-reset.bench.ts needs ${DI}/linux and initrd.gz (package debian-installer-12-netboot-amd64; scripts/setup-host.sh installs it)`);
  process.exit(2);
}

/** Seconds from "Trying to unpack" to "Freeing initrd memory" of each boot on the console, by the guest's clock. */
function unpacks(serial: string): number[] {
  const out: number[] = [];
  let start: number | undefined;
  for (const line of serial.split('\n')) {
    const m = /^\[\s*(\d+\.\d+)\] (Trying to unpack rootfs image|Freeing initrd memory)/.exec(line);
    if (!m) continue;
    if (m[2]!.startsWith('Trying')) start = Number(m[1]);
    else if (start !== undefined) {
      out.push(Number(m[1]) - start);
      start = undefined;
    }
  }
  return out;
}

async function measure(accel: string): Promise<{ before: number; after: number; jit: string }> {
  const dir = tempDir('kubedos-bench-tcg-');
  const serial = join(dir, 'serial.log');
  const qmp = join(dir, 'qmp.sock');
  const qemu = spawn('qemu-system-x86_64', ['-accel', accel, '-machine', 'q35', '-m', '1536', '-smp', '1', '-nodefaults', '-display', 'none', '-serial', `file:${serial}`, '-chardev', `socket,id=qmp,path=${qmp},server=on,wait=off`, '-mon', 'chardev=qmp,mode=control', '-kernel', join(DI, 'linux'), '-initrd', join(DI, 'initrd.gz'), '-append', 'console=ttyS0,115200 priority=critical'], { stdio: 'ignore' });
  try {
    await sleep(RUN_BEFORE_RESET_S * 1000);
    const [jit] = await qmpCommands(qmp, [{ execute: 'human-monitor-command', arguments: { 'command-line': 'info jit' } }]);
    await qmpCommands(qmp, [{ execute: 'system_reset' }]);
    for (let i = 0; i < AFTER_RESET_S && unpacks(readFileSync(serial, 'utf8')).length < 2; i++) await sleep(1000);
    const u = unpacks(readFileSync(serial, 'utf8'));
    if (u.length < 2) throw new Error(`${accel}: the boot after the reset did not unpack its initrd within ${AFTER_RESET_S} s`);
    return { before: u[0]!, after: u[1]!, jit: /gen code size\s+(\d+)\/(\d+)/.exec(String(jit))?.slice(1).map((n) => `${Math.round(Number(n) / 2 ** 20)}`).join(' of ') ?? '?' };
  } finally {
    qemu.kill('SIGTERM');
    removeTempDirs();
  }
}

const rows: string[][] = [];
const results: Record<string, { before: number; after: number }> = {};
for (const [name, accel] of [['QEMU default (1 GiB)', 'tcg,thread=multi'], [`kubedos (${TCG_TB_SIZE_MIB} MiB)`, `tcg,thread=multi,tb-size=${TCG_TB_SIZE_MIB}`]] as const) {
  const r = await measure(accel);
  results[name] = r;
  rows.push([name, r.jit, r.before.toFixed(1), r.after.toFixed(1), `${(r.after / r.before).toFixed(1)}×`]);
}
console.log(renderTable(['TRANSLATION CACHE', `CODE AFTER ${RUN_BEFORE_RESET_S} S (MiB)`, 'UNPACK, COLD BOOT (S)', 'UNPACK AFTER RESET (S)', 'AFTER / COLD'], rows));
const [a, b] = Object.values(results);
console.log(`after the reset, the default cache's unpack took ${(a!.after / b!.after).toFixed(1)}× kubedos's`);
