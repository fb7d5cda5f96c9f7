// A guest kernel that hung before it ever started init, read from its serial console.
//
// Seen on qemu-local under TCG on a loaded 2-core host (2026-12-04): a control-plane guest stuck
// at `alg_test` in the kernel's crypto self-test thread, "watchdog: BUG: soft lockup - CPU#1
// stuck for 26s … 1256s!" every ~28 s for 20 minutes, never reaching the initramfs; the other
// two guests of the same deploy booted normally. Nothing of the node's first boot has run at that
// point, so resetting the VM once is safe and is what an operator would do by hand. A lockup
// after init started is left alone: first-boot work may be under way, and a slow guest is not a
// hung one. A boot that stopped below init after a warm reset (the firmware, or the initramfs
// before udev) is bootStall's.
import { existsSync, openSync, readSync, closeSync, statSync } from 'node:fs';

/** The last kernel boot of a console log: everything from its last "Linux version" banner. */
export function lastBoot(consoleText: string): string {
  const i = consoleText.lastIndexOf('Linux version ');
  return i < 0 ? consoleText : consoleText.slice(i);
}

export interface BootHang {
  /** One line for the operator, e.g. "soft lockup in cryptomgr_test (CPU#1 stuck for 64s), 2 reports, before init". */
  why: string;
}

const LOCKUP = /watchdog: BUG: soft lockup - (CPU#\d+) stuck for (\d+)s! \[([^\]:]+)/g;
/** Lines that show userspace (the initramfs or init) started in this boot. */
const INIT_STARTED = /Run \/init as init process|Run \/sbin\/init as init process|systemd\[1\]: /;

/**
 * Pure: the hang of the LAST boot in a console log, when the kernel reported a soft lockup at
 * least `minReports` times before any userspace started; undefined otherwise.
 */
export function bootHang(consoleText: string, minReports = 2): BootHang | undefined {
  const boot = lastBoot(consoleText.replace(/\r/g, ''));
  if (INIT_STARTED.test(boot)) return undefined;
  const reports = [...boot.matchAll(LOCKUP)];
  if (reports.length < minReports) return undefined;
  const last = reports[reports.length - 1]!;
  return { why: `soft lockup in ${last[3]} (${last[1]} stuck for ${last[2]}s), ${reports.length} reports, before init started` };
}

/**
 * Pure: a console's text as readable lines: colour codes and other control characters gone, each
 * line trimmed, empty lines dropped (a serial log mixes CR, CRLF and the boot loader's escapes).
 */
export function consoleLines(consoleText: string): string[] {
  return (
    consoleText
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
      .split(/\r?\n|\r/)
      // eslint-disable-next-line no-control-regex
      .map((l) => l.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '').trim())
      .filter((l) => l !== '')
  );
}

/**
 * The kernel's last words before a warm reset: systemd's reboot (`reboot: Restarting system`,
 * `reboot: machine restart`) and a panic's (`Rebooting in N seconds..`). After them the console
 * is silent until the boot loader prints (GRUB on the serial console).
 */
const RESTART_LINE = /(?:reboot: (?:machine restart|Restarting system)|Rebooting in \d+ seconds)\.*$/;

/**
 * Pure: the console ends at the kernel's restart, nothing after it (the firmware has not reached
 * the boot loader yet): that line, else undefined. Silence after it is normal for a few seconds;
 * for minutes it is the stall seen on qemu-local under TCG (2026-12-05): OVMF polling the TPM's
 * TIS registers after the guest's warm reset, for good (a QMP system_reset did not help; stopping
 * QEMU and its swtpm and starting them again did). The caller decides how long is too long.
 */
export function firmwareStall(consoleText: string): string | undefined {
  const last = consoleLines(consoleText).at(-1);
  return last !== undefined && RESTART_LINE.test(last) ? last.replace(/^\[\s*[\d.]+\]\s*/, '') : undefined;
}

/** initramfs-tools' banner, printed by its /init before it starts udev (the next line, within seconds). */
const INITRAMFS_BANNER = 'Loading, please wait...';

/** Root slots the kernel booted, in boot order: the kernel prints its command line once per boot, with grub-ab.cfg's `kubedos.slot=`. */
export function bootedSlots(consoleText: string): ('A' | 'B')[] {
  return [...consoleText.matchAll(/Command line: [^\n]*kubedos\.slot=([AB])/g)].map((m) => m[1] as 'A' | 'B');
}

/**
 * Where a rebooting node's console stopped, when it stopped at one of the two places a stall was
 * seen on qemu-local under TCG after a warm reset, each answered by powering the VM off and on:
 * - `firmware`: the kernel's restart line, nothing after it (firmwareStall: OVMF never reached GRUB;
 *   GRUB has not run, so the slot the node was rebooting into is still the one it tries);
 * - `initramfs`: the last boot's last line is initramfs-tools' banner, nothing after it (seen
 *   2026-12-05: w-1 falling back to slot A after a failed gate printed the banner 6 s into its
 *   boot, then nothing for 300 s — not udev's start, not a kernel line; its boot into slot B
 *   minutes before had printed udev's start right after the banner). GRUB ran: this boot counted.
 *   `slot` is the root slot that boot was started with (its command line's `kubedos.slot=`), when
 *   the console still holds the command line: the slot whose try the stall spent, if it was tried.
 * Undefined for any other console: a slow guest is not a stalled one. The caller decides how long is too long.
 */
export function bootStall(consoleText: string): { at: 'firmware' | 'initramfs'; line: string; slot?: 'A' | 'B' } | undefined {
  const restart = firmwareStall(consoleText);
  if (restart) return { at: 'firmware', line: restart };
  const boot = lastBoot(consoleText);
  const last = consoleLines(boot).at(-1);
  if (last !== INITRAMFS_BANNER) return undefined;
  const slot = bootedSlots(boot).at(-1);
  return { at: 'initramfs', line: last, ...(slot ? { slot } : {}) };
}

/**
 * How long a console may stay at one of bootStall's places before the VM counts as stalled. A
 * warm reset under TCG prints GRUB's first line within tens of seconds, and udev's start follows
 * the initramfs banner within seconds; the stalls of 2026-12-05 lasted until the VM was powered off.
 */
export const BOOT_STALL_MS = 120_000;

/**
 * The same for the firmware (the console at the kernel's restart line): shorter, because powering
 * the VM off and on there costs nothing (GRUB has not run: no try of a slot is spent) and the
 * firmware's part is short. w-1's console clock (2026-12-06, the upgrade VM test): OVMF reached
 * the boot loader 1, 8, 14 and 27 s after warm resets under TCG, and the one stall there sat 135 s
 * until the foundry power-cycled it. 45 s is 1.7× the slowest seen; a false positive costs a cold
 * boot of the firmware (~15 s).
 */
export const FIRMWARE_STALL_MS = 45_000;

/** The last `maxBytes` of a file (a console log); '' when it does not exist. */
export function fileTail(path: string, maxBytes = 64 * 1024): string {
  if (!existsSync(path)) return '';
  const size = statSync(path).size;
  const len = Math.min(size, maxBytes);
  const buf = Buffer.alloc(len);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, len, size - len);
  } finally {
    closeSync(fd);
  }
  return buf.toString('utf8');
}
