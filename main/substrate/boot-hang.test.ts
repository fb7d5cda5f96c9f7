import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bootHang, bootStall, fileTail, firmwareStall, lastBoot } from './boot-hang';
import type { SubstrateDriver } from './driver';
import { waitForAgents } from './provision';
import { removeTempDirs, tempDir } from '../testing/temp-dir';

afterAll(removeTempDirs);

// A real console: a lab-3 control plane under TCG whose kernel hung in the crypto self-tests.
const HUNG = readFileSync(join(import.meta.dirname, 'fixtures/console-softlockup-before-init.txt'), 'utf8');
const lockupLines = HUNG.split('\n').filter((l) => l.includes('soft lockup'));

// A real console: w-1 rebooted into its new slot and the firmware never reached GRUB.
const STALLED = readFileSync(join(import.meta.dirname, 'fixtures/console-firmware-stall-after-reboot.txt'), 'utf8');

describe('firmwareStall', () => {
  it('recognises the real console of a reboot the firmware never came back from', () => {
    expect(firmwareStall(STALLED)).toBe('reboot: machine restart');
  });

  it('a panic\'s own reboot counts as the restart too', () => {
    expect(firmwareStall('[   12.1] Kernel panic - not syncing: No working init found.\r\n[   12.2] Rebooting in 10 seconds..\r\n')).toBe('Rebooting in 10 seconds..');
  });

  it('anything after the restart (GRUB, the next kernel) is not a stall; nor is a console that never restarted', () => {
    expect(firmwareStall(`${STALLED}\x1b[0m\x1b[2J\x1b[01;01H  GNU GRUB  version 2.06-13+deb12u1\n`)).toBeUndefined();
    expect(firmwareStall(`${STALLED}[    0.000000] Linux version 6.1.0-57-amd64\n`)).toBeUndefined();
    expect(firmwareStall(STALLED.replace(/\[[^\n]*reboot: Restarting system\n[^\n]*reboot: machine restart\n?$/, ''))).toBeUndefined();
    expect(firmwareStall('')).toBeUndefined();
  });
});

// A real console: w-1 falling back to slot A after its gate failed on B; the kernel stopped after initramfs-tools' banner.
const INITRAMFS = readFileSync(join(import.meta.dirname, 'fixtures/console-initramfs-stall-after-fallback.txt'), 'utf8');

describe('bootStall', () => {
  it('the firmware stall and the initramfs stall of real consoles, each with its place', () => {
    expect(bootStall(STALLED)).toEqual({ at: 'firmware', line: 'reboot: machine restart' });
    expect(bootStall(INITRAMFS)).toEqual({ at: 'initramfs', line: 'Loading, please wait...', slot: 'A' });
    // The slot is the stalled boot's own (its command line), not an earlier boot's; none when the console no longer holds it.
    const triedB = `${INITRAMFS.slice(0, INITRAMFS.indexOf('[    0.000000] Linux version'))}${INITRAMFS.slice(INITRAMFS.indexOf('[    0.000000] Linux version')).replace(/kubedos-root-A rw panic=10 kubedos\.slot=A/, 'kubedos-root-B rw panic=10 kubedos.slot=B')}`;
    expect(bootStall(`${INITRAMFS.replace(/Loading, please wait\.\.\.\n?$/, 'Begin: Running /scripts/init-bottom ... done.\n')}${triedB}`)).toEqual({ at: 'initramfs', line: 'Loading, please wait...', slot: 'B' });
    expect(bootStall(INITRAMFS.slice(INITRAMFS.indexOf('[    6.193117]')))).toEqual({ at: 'initramfs', line: 'Loading, please wait...' });
    // With CR LF and a colour reset around it, as QEMU's log keeps it.
    expect(bootStall(INITRAMFS.replace(/\n/g, '\r\n').replace(/Loading, please wait\.\.\.\r\n$/, '\x1b[0mLoading, please wait...\r\n'))).toEqual({ at: 'initramfs', line: 'Loading, please wait...', slot: 'A' });
  });

  it('a boot that went on after the banner, or one that has not reached it, is not a stall', () => {
    expect(bootStall(`${INITRAMFS}Starting systemd-udevd version 252.39-1~deb12u2\n`)).toBeUndefined();
    expect(bootStall(`${INITRAMFS}[    9.397726] clocksource: Long readout interval, skipping watchdog check\n`)).toBeUndefined();
    expect(bootStall(INITRAMFS.replace(/Loading, please wait\.\.\.\n?$/, ''))).toBeUndefined();
    // The banner of an earlier boot, with this boot's kernel still printing: not a stall.
    expect(bootStall(`${INITRAMFS}[    0.000000] Linux version 6.1.0-57-amd64\n[    0.1] Command line: root=LABEL=kubedos-root-A\n`)).toBeUndefined();
    expect(bootStall('')).toBeUndefined();
  });
});

describe('bootHang', () => {
  it('recognises the real console of a kernel hung before init', () => {
    expect(bootHang(HUNG)?.why).toMatch(/^soft lockup in cryptomgr_test \(CPU#1 stuck for \d+s\), 3 reports, before init started$/);
  });

  it('one report is not a hang yet (a slow guest under load can stall once)', () => {
    const firstOnly = HUNG.slice(0, HUNG.indexOf(lockupLines[1]!));
    expect(bootHang(firstOnly)).toBeUndefined();
    expect(bootHang(firstOnly, 1)).toBeDefined();
  });

  it('leaves a guest alone once userspace started in this boot (first-boot work may be under way)', () => {
    expect(bootHang(`${HUNG}\n[   99.1] Run /init as init process\n`)).toBeUndefined();
    const afterInit = HUNG.replace(lockupLines[0]!, `[   30.0] Run /init as init process\n${lockupLines[0]!}`);
    expect(bootHang(afterInit)).toBeUndefined();
  });

  it('judges only the last boot: after a reset the old reports do not count', () => {
    const second = `${HUNG}\n[    0.000000] Linux version 6.1.0-57-amd64 (second boot)\n[    2.0] Freeing initrd memory\n`;
    expect(lastBoot(second)).toMatch(/^Linux version 6.1.0-57-amd64 \(second boot\)/);
    expect(bootHang(second)).toBeUndefined();
  });

  it('fileTail reads the end of a file, and nothing of a missing one', () => {
    const d = tempDir('kubedos-boot-hang-');
    writeFileSync(join(d, 'c.log'), 'abcdefghij');
    expect(fileTail(join(d, 'c.log'), 4)).toBe('ghij');
    expect(fileTail(join(d, 'missing.log'))).toBe('');
  });
});

/** A driver whose VM answers only after a reset; its console shows the real hang until then. */
function hungVm(o: { console: string; answersAfterReset: boolean }) {
  const calls: string[] = [];
  let wasReset = false;
  const driver = {
    guestPing: async () => wasReset && o.answersAfterReset,
    consoleTail: async () => (wasReset ? 'Linux version x (after reset)\n' : o.console),
    reset: async (vmid: number) => {
      calls.push(`reset ${vmid}`);
      wasReset = true;
    },
  } as unknown as SubstrateDriver;
  return { driver, calls };
}

describe('waitForAgents and a hung kernel', () => {
  it('resets a VM whose kernel hung before init once, says why, and waits for its agent again', async () => {
    const { driver, calls } = hungVm({ console: HUNG, answersAfterReset: true });
    const told: string[] = [];
    const answered = await waitForAgents(driver, [3001], { timeoutMs: 5_000, intervalMs: 10, hangCheckAfterMs: 50, onReset: (vmid, why) => told.push(`${vmid}: ${why}`) });
    expect(calls).toEqual(['reset 3001']);
    expect(told).toEqual([expect.stringMatching(/^3001: soft lockup in cryptomgr_test/)]);
    expect(answered.has(3001)).toBe(true);
  });

  it('never resets a VM that is merely slow (no hang on its console), and resets at most once', async () => {
    const slow = hungVm({ console: '[ 1.0] Linux version x\n[ 30.0] Run /init as init process\n', answersAfterReset: true });
    await expect(waitForAgents(slow.driver, [3002], { timeoutMs: 300, intervalMs: 10, hangCheckAfterMs: 50 })).rejects.toThrow(/did not answer within 0 s$/);
    expect(slow.calls).toEqual([]);
    const stuck = hungVm({ console: HUNG, answersAfterReset: false });
    await expect(waitForAgents(stuck.driver, [3001], { timeoutMs: 300, intervalMs: 10, hangCheckAfterMs: 50 })).rejects.toThrow(/of a reset \(its kernel had hung before init: soft lockup in cryptomgr_test/);
    expect(stuck.calls).toEqual(['reset 3001']);
  });

  it('with resetHung: false it only waits', async () => {
    const { driver, calls } = hungVm({ console: HUNG, answersAfterReset: true });
    await expect(waitForAgents(driver, [3001], { timeoutMs: 200, intervalMs: 10, hangCheckAfterMs: 20, resetHung: false })).rejects.toThrow(/did not answer/);
    expect(calls).toEqual([]);
  });
});
