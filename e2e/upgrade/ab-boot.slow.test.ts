// The A/B boot counter on a real boot (issue 18): an A/B disk written by the image build's own
// code (prepareAbRootfs + writeAbDisk, main/build/image/ab.ts) from the base root file system of
// a build, booted under QEMU (TCG, q35, OVMF Secure Boot with Microsoft keys: shim → Debian's
// signed GRUB). Opt-in: `npm run test:ab-boot` (minutes of TCG; one VM at a time).
//
//  1. Slot A boots; the health gate (its systemd unit) passes and writes its metrics.
//  2. With the VM off, slot B gets a build whose kernel command line never comes up
//     (rdinit=/kubedos-broken in B's /boot/kubedos-slot.cfg: no such init in the initramfs, so the
//     kernel mounts the root itself, cannot resolve root=LABEL=…, and panics; panic=10 reboots it.
//     init=… would not do: Debian's initramfs falls back to /sbin/init),
//     and the real kubedos-boot runs `try B` on the ESP's environment block.
//  3. One power-on: GRUB counts B down three times, then falls back to A for good; the gate on A
//     reports it, and its metrics (read from A's file system afterwards) show the rollback.
//  4. B fixed and tried once more (`try B 1`): it boots, its gate runs `kubedos-boot mark-good`
//     in the VM (GRUB's block on the ESP written by Linux), and B is the active slot.
//
// Input: the base root file system tar of a build (`rootfs.tar`, the one every role's image starts
// from): $KUBEDOS_AB_ROOTFS_TAR, else the newest in e2e/output/shared-build's cache (any lab build
// leaves one). The disk is modified with mtools and debugfs at partition offsets: no loop device,
// no mount.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { abRootFiles, prepareAbRootfs, readAbEspSources, renderSlotCfg, writeAbDisk } from '../../main/build/image/ab';
import { espVolumeIds } from '../../main/build/image/index';
import { abPartitions } from '../../main/upgrade/ab-layout';
import { abDataMiB } from '../../common/upgrade/ab-size';
import { gateWindow } from '../../common/upgrade/gate-config';
import { bootedSlots } from '../../main/substrate/boot-hang';
import { startVm, type Vm } from '../build/vm';

const REPO = resolve(import.meta.dirname, '../..');
const UPGRADE = join(REPO, 'payload/upgrade');
const CLUSTER = 'ab-boot';
const ROLE = 'worker';
const ROOT_MIB = 2048;
const EPOCH = 1_700_000_000;

function findRootfsTar(): string {
  const env = process.env.KUBEDOS_AB_ROOTFS_TAR;
  if (env) {
    if (!existsSync(env)) throw new Error(`KUBEDOS_AB_ROOTFS_TAR=${env} does not exist`);
    return env;
  }
  const cache = join(REPO, 'e2e/output/shared-build/cache/artifacts');
  const found: string[] = [];
  if (existsSync(cache)) for (const a of readdirSync(cache)) for (const b of readdirSync(join(cache, a))) {
    const t = join(cache, a, b, 'files/rootfs.tar');
    if (existsSync(t)) found.push(t);
  }
  const newest = found.sort((x, y) => statSync(y).mtimeMs - statSync(x).mtimeMs)[0];
  if (!newest) throw new Error(`no base root file system: set KUBEDOS_AB_ROOTFS_TAR to a build's rootfs.tar, or run a lab build first (npm run test:deploy leaves one under ${cache})`);
  return newest;
}

const work = mkdtempSync(join(tmpdir(), 'kubedos-ab-boot-'));
let vm: Vm | undefined;
afterAll(async () => {
  await vm?.stop();
  if (!process.env.KUBEDOS_AB_KEEP) rmSync(work, { recursive: true, force: true });
});

const MT = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
const layout = { cluster: CLUSTER, role: ROLE, espMiB: 64, rootMiB: ROOT_MIB, dataMiB: 256 };
const part = (name: 'esp' | 'root-a' | 'root-b' | 'data'): number => abPartitions(layout).find((p) => p.name === name)!.startSector * 512;

/** The ESP's environment block as key=value pairs (read with mtools, listed by grub-editenv). */
function readEnv(disk: string): Record<string, string> {
  const local = join(work, 'kubedos.env');
  rmSync(local, { force: true });
  execFileSync('mcopy', ['-i', `${disk}@@${part('esp')}`, '::/EFI/debian/kubedos.env', local], { env: MT });
  const out = execFileSync('grub-editenv', [local, 'list'], { encoding: 'utf8' });
  return Object.fromEntries(out.trim().split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

function debugfs(disk: string, slot: 'root-a' | 'root-b', request: string, write = false): string {
  const r = spawnSync('debugfs', [...(write ? ['-w'] : []), '-R', request, `${disk}?offset=${part(slot)}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`debugfs ${request}: ${r.stderr}`);
  return r.stdout;
}

/** The A/B disk, as `kubedos build` writes it (minus the role's packages and payload). */
async function writeDisk(disk: string): Promise<void> {
  const rootfs = join(work, 'rootfs');
  mkdirSync(rootfs);
  execFileSync('tar', ['--numeric-owner', '--xattrs', '-xpf', findRootfsTar(), '-C', rootfs]);
  const boot = readdirSync(join(rootfs, 'boot'));
  const kernel = boot.filter((f) => f.startsWith('vmlinuz-')).sort().pop()!;
  const initrd = boot.filter((f) => f.startsWith('initrd.img-')).sort().pop()!;
  const { espVolId, espMountId } = espVolumeIds(CLUSTER, ROLE);
  // This disk is the base root file system, not a role image (no planes, no payload, no persist
  // units' data): its gate checks the one service the base brings up.
  prepareAbRootfs({ rootfs, files: abRootFiles({ upgradeDir: UPGRADE, gate: { units: ['prometheus-node-exporter.service'], checks: ['services'], window: gateWindow(['services']) } }), espMountId, kernel, initrd });
  writeFileSync(join(rootfs, 'etc/hostname'), `${ROLE}\n`);
  writeFileSync(join(rootfs, 'etc/machine-id'), '');
  await writeAbDisk({ rootfs, esp: readAbEspSources(UPGRADE), workDir: work, cluster: CLUSTER, role: ROLE, espVolId, rootMiB: ROOT_MIB, dataMiB: abDataMiB(10), sourceDateEpoch: EPOCH, rawOut: disk, log: (l) => console.log(l) });
}

describe('A/B boot counter on a real boot (TCG, Secure Boot)', () => {
  it('boots A, then a broken B three times, then falls back to A with the rollback in the metrics', async () => {
    const t0 = Date.now();
    const times: Record<string, number> = {};
    const lap = (name: string, since: number): void => {
      times[name] = Math.round((Date.now() - since) / 1000);
      console.log(`ab-boot: ${name} ${times[name]} s`);
    };

    // The disk, as `kubedos build` writes an A/B image (minus the role's packages and payload).
    // KUBEDOS_AB_DISK=FILE with KUBEDOS_AB_PREPARE_ONLY=1 writes it there and stops (no VM); a later
    // run with KUBEDOS_AB_DISK=FILE boots that disk (and changes it), so a machine whose VMs take
    // turns holds its VM lock only for the boots.
    const diskEnv = process.env.KUBEDOS_AB_DISK;
    const prepareOnly = process.env.KUBEDOS_AB_PREPARE_ONLY === '1';
    const disk = diskEnv ?? join(work, 'disk.raw');
    if (prepareOnly || !diskEnv || !existsSync(diskEnv)) await writeDisk(disk);
    else console.log(`ab-boot: booting the disk written earlier: ${disk}`);
    lap('disk (tar + two slots + data)', t0);
    expect(readEnv(disk)).toEqual({ kubedos_active: 'A' });
    if (prepareOnly) return;

    // 1. Slot A boots and passes its gate.
    let t = Date.now();
    vm = await startVm({ dir: join(work, 'vm1'), disk: { file: disk, format: 'raw' }, bootFrom: 'disk', reboot: true });
    await vm.waitForSerial(/gate: pass \(slot A, already active\)/, 8 * 60_000, /Kernel panic|gate: fail/);
    const serial1 = vm.serial();
    await vm.stop();
    vm = undefined;
    lap('boot 1: slot A to its gate', t);
    expect(bootedSlots(serial1)).toEqual(['A']);
    expect(serial1).not.toMatch(/error: [^\n]*(env|save_env|load_env)/i);
    expect(debugfs(disk, 'root-a', 'cat /var/lib/prometheus/node-exporter/kubedos.prom')).toMatch(/kubedos_boot_success 1/);

    // 2. N+1 in slot B never comes up; the node is told to try it (the real kubedos-boot, on the ESP's block).
    const slotCfg = join(work, 'kubedos-slot.cfg');
    writeFileSync(slotCfg, 'set kubedos_args="rdinit=/kubedos-broken"\n');
    debugfs(disk, 'root-b', 'rm /boot/kubedos-slot.cfg', true);
    debugfs(disk, 'root-b', `write ${slotCfg} /boot/kubedos-slot.cfg`, true);
    expect(debugfs(disk, 'root-b', 'cat /boot/kubedos-slot.cfg')).toContain('rdinit=/kubedos-broken');
    const env = join(work, 'kubedos.env');
    readEnv(disk); // leaves the block in `env`
    const cmdline = join(work, 'cmdline');
    writeFileSync(cmdline, 'root=LABEL=kubedos-root-A rw kubedos.slot=A\n');
    const tried = spawnSync(join(UPGRADE, 'kubedos-boot'), ['try', 'B', '3'], { encoding: 'utf8', env: { PATH: process.env.PATH, KUBEDOS_GRUBENV: env, KUBEDOS_CMDLINE: cmdline } });
    expect(tried.status, tried.stderr).toBe(0);
    execFileSync('mcopy', ['-o', '-i', `${disk}@@${part('esp')}`, env, '::/EFI/debian/kubedos.env'], { env: MT });
    expect(readEnv(disk)).toMatchObject({ kubedos_active: 'A', kubedos_try: 'B', kubedos_tries: '3' });

    // 3. One power-on: B, B, B (each panics and reboots), then A for good.
    t = Date.now();
    vm = await startVm({ dir: join(work, 'vm2'), disk: { file: disk, format: 'raw' }, bootFrom: 'disk', reboot: true });
    await vm.waitForSerial(/gate: pass \(slot A, already active\)/, 15 * 60_000, /gate: fail/);
    const serial2 = vm.serial();
    await vm.stop();
    vm = undefined;
    lap('boot 2: three tries of B, then A to its gate', t);
    mkdirSync(join(REPO, 'e2e/output'), { recursive: true });
    writeFileSync(join(REPO, 'e2e/output/ab-boot-serial.log'), serial2);
    expect(bootedSlots(serial2)).toEqual(['B', 'B', 'B', 'A']);
    expect(serial2.match(/Kernel panic - not syncing/g)?.length).toBe(3);
    expect(readEnv(disk)).toMatchObject({ kubedos_active: 'A', kubedos_try: '', kubedos_tries: '0', kubedos_failed: 'B' });
    const prom = debugfs(disk, 'root-a', 'cat /var/lib/prometheus/node-exporter/kubedos.prom');
    console.log(prom);
    expect(prom).toMatch(/^kubedos_boot_slot\{slot="A"\} 1$/m);
    expect(prom).toMatch(/^kubedos_boot_active_slot\{slot="A"\} 1$/m);
    expect(prom).toMatch(/^kubedos_boot_failed_slot\{slot="B"\} 1$/m);
    expect(prom).toMatch(/^kubedos_boot_success 1$/m);
    expect(prom).toMatch(/^kubedos_health_gate_check\{check="services"\} 1$/m);

    // 4. N+1 fixed (B's own arguments back to none) and tried once more: B boots, its gate marks it
    //    good, and B is the active slot (the later rerun after a fix completes; no loop on A).
    writeFileSync(slotCfg, renderSlotCfg());
    debugfs(disk, 'root-b', 'rm /boot/kubedos-slot.cfg', true);
    debugfs(disk, 'root-b', `write ${slotCfg} /boot/kubedos-slot.cfg`, true);
    readEnv(disk);
    const retry = spawnSync(join(UPGRADE, 'kubedos-boot'), ['try', 'B', '1'], { encoding: 'utf8', env: { PATH: process.env.PATH, KUBEDOS_GRUBENV: env, KUBEDOS_CMDLINE: cmdline } });
    expect(retry.status, retry.stderr).toBe(0);
    execFileSync('mcopy', ['-o', '-i', `${disk}@@${part('esp')}`, env, '::/EFI/debian/kubedos.env'], { env: MT });
    t = Date.now();
    vm = await startVm({ dir: join(work, 'vm3'), disk: { file: disk, format: 'raw' }, bootFrom: 'disk', reboot: true });
    await vm.waitForSerial(/gate: pass \(slot B after \d+ s\)/, 8 * 60_000, /Kernel panic|gate: fail/);
    const serial3 = vm.serial();
    await vm.stop();
    vm = undefined;
    lap('boot 3: the fixed B to its gate (mark-good)', t);
    expect(bootedSlots(serial3)).toEqual(['B']);
    expect(serial3).toMatch(/kubedos-boot: slot B is good/);
    expect(readEnv(disk)).toMatchObject({ kubedos_active: 'B', kubedos_try: '', kubedos_failed: '' });
    const promB = debugfs(disk, 'root-b', 'cat /var/lib/prometheus/node-exporter/kubedos.prom');
    expect(promB).toMatch(/^kubedos_boot_slot\{slot="B"\} 1$/m);
    expect(promB).toMatch(/^kubedos_boot_active_slot\{slot="B"\} 1$/m);
    expect(promB).toMatch(/^kubedos_boot_success 1$/m);
    expect(promB).not.toMatch(/^kubedos_boot_failed_slot\{/m);
    lap('total', t0);
    writeFileSync(join(REPO, 'e2e/output/ab-boot-times.json'), `${JSON.stringify(times, null, 2)}\n`);
  }, 40 * 60_000);
});
