// The A/B image's pure parts and the root-tree preparation (main/build/image/ab.ts). The whole
// disk booted under QEMU is e2e/upgrade/ab-boot.slow.test.ts (npm run test:ab-boot).
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ClusterSpecBody } from '../../../common/spec/schema';
import { sha256File } from '../files';
import { sha256Hex } from '../../../common/canonical';
import { abPartitions } from '../../upgrade/ab-layout';
import { AB_DATA_MOUNT, AB_ESP_FILES, AB_NODE_SCRIPTS, AB_PERSIST_UNITS, AB_SLOT_ARGS_DIR, abRootFiles, abSbomFiles, prepareAbRootfs, readAbEspSources, readAbFiles, readSlotArgs, renderAbFstab, renderGrubEnvBlock, renderHealthGateUnit, renderPersistUnit, renderSlotCfg, writeAbDisk } from './ab';
import { espVolumeIds } from './index';
import { gateConfig } from '../../../common/upgrade/gate-config';
import { plan } from '../../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../../common/spec/index';

const UPGRADE = join(import.meta.dirname, '../../../payload/upgrade');
const LAB3 = parseSpec(TEMPLATES['lab-3'].text).spec!;
const GATE = gateConfig(LAB3, plan(LAB3), 'worker');
const root = mkdtempSync(join(tmpdir(), 'h18-ab-image-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('GRUB environment block', () => {
  it('is byte for byte what grub-editenv writes, and grub-editenv reads it back', () => {
    const ours = join(root, 'ours.env');
    writeFileSync(ours, renderGrubEnvBlock({ kubedos_active: 'A' }));
    const theirs = join(root, 'theirs.env');
    execFileSync('grub-editenv', [theirs, 'create']);
    execFileSync('grub-editenv', [theirs, 'set', 'kubedos_active=A']);
    expect(readFileSync(ours).equals(readFileSync(theirs))).toBe(true);
    expect(statSync(ours).size).toBe(1024);
    execFileSync('grub-editenv', [ours, 'set', 'kubedos_try=B']);
    expect(execFileSync('grub-editenv', [ours, 'list'], { encoding: 'utf8' })).toBe('kubedos_active=A\nkubedos_try=B\n');
  });

  it('refuses what GRUB could not store: a bad name, a newline, more than 1024 bytes', () => {
    expect(() => renderGrubEnvBlock({ 'bad name': 'x' })).toThrow(/cannot store/);
    expect(() => renderGrubEnvBlock({ a: 'x\ny' })).toThrow(/cannot store/);
    expect(() => renderGrubEnvBlock({ a: 'x'.repeat(1100) })).toThrow(/1024-byte block/);
  });
});

describe('the A/B root tree', () => {
  it('fstab names the ESP and the data partition, never the root (one fstab fits both slots)', () => {
    const f = renderAbFstab('B642-D538');
    expect(f).toBe(`UUID=B642-D538 /boot/efi vfat umask=0077 0 1\nLABEL=kubedos-data ${AB_DATA_MOUNT} ext4 defaults,nofail 0 2\n`);
    expect(f).not.toMatch(/\s\/\s/);
  });

  it('the gate unit runs the installed gate once per boot, after the ESP is mounted, with its lines on the console', () => {
    const u = renderHealthGateUnit();
    expect(u).toMatch(/^ExecStart=\/usr\/local\/sbin\/kubedos-health-gate$/m);
    expect(u).toMatch(/^Type=oneshot$/m);
    expect(u).toMatch(/^RequiresMountsFor=\/boot\/efi$/m);
    expect(u).toMatch(/^StandardOutput=journal\+console$/m);
    expect(u).toMatch(/^WantedBy=multi-user.target$/m);
    // Ordered after every unit a role's gate-units lists.
    const after = /^After=(.*)$/m.exec(u)![1]!.split(' ');
    const hubPlan = plan(LAB3);
    for (const role of ['master', 'control-plane', 'worker'] as const) {
      for (const unit of gateConfig(LAB3, hubPlan, role).units) {
        expect(after, `${role}: ${unit}`).toContain(unit);
      }
    }
  });

  it('the persist units run kubedos-persist early (before local-fs, journald on /var/log and first boot) and late (after first boot, before sshd, the planes and the role)', () => {
    const early = renderPersistUnit('early');
    expect(early).toMatch(/^DefaultDependencies=no$/m);
    expect(early).toMatch(/^After=.*\bvar-lib-kubedos\.mount\b/m);
    expect(early).toMatch(/^Wants=var-lib-kubedos\.mount$/m);
    for (const u of ['local-fs.target', 'sysinit.target', 'systemd-journal-flush.service', 'kubedos-firstboot.service', AB_PERSIST_UNITS.late]) expect(early).toMatch(new RegExp(`^Before=.*(?<=[= ])${u.replace('.', '\\.')}(?= |$)`, 'm'));
    expect(early).toMatch(/^ExecStart=\/usr\/local\/sbin\/kubedos-persist early$/m);
    expect(early).toMatch(/^WantedBy=local-fs.target$/m);
    const late = renderPersistUnit('late');
    expect(late).toMatch(/^After=.*\bkubedos-firstboot\.service\b/m);
    for (const u of ['ssh.service', 'kubedos-backplane.service', 'etcd.service', 'containerd.service', 'kubelet.service', 'kubedos-health-gate.service']) expect(late).toMatch(new RegExp(`^Before=.*(?<=[= ])${u.replace('.', '\\.')}(?= |$)`, 'm'));
    // Not before the network: first boot reloads systemd-networkd itself (a cycle otherwise).
    expect(late).not.toMatch(/^Before=.*networkd/m);
    expect(late).toMatch(/^ExecStart=\/usr\/local\/sbin\/kubedos-persist late$/m);
    expect(late).toMatch(/^StandardOutput=journal\+console$/m);
    expect(late).toMatch(/^WantedBy=multi-user.target$/m);
  });

  it('prepareAbRootfs installs the scripts, the unit, fstab, the slot arguments and kernel links to this build', () => {
    const rootfs = join(root, 'rootfs');
    for (const d of ['etc', 'boot']) mkdirSync(join(rootfs, d), { recursive: true });
    writeFileSync(join(rootfs, 'boot/vmlinuz-6.1.0-57-amd64'), 'k');
    writeFileSync(join(rootfs, 'boot/initrd.img-6.1.0-57-amd64'), 'i');
    writeFileSync(join(rootfs, 'vmlinuz'), 'an old file in the way');
    const { espMountId } = espVolumeIds('lab-3', 'worker');
    prepareAbRootfs({ rootfs, files: abRootFiles({ upgradeDir: UPGRADE, gate: GATE }), espMountId, kernel: 'vmlinuz-6.1.0-57-amd64', initrd: 'initrd.img-6.1.0-57-amd64' });
    for (const s of AB_NODE_SCRIPTS) {
      const p = join(rootfs, 'usr/local/sbin', s);
      expect(readFileSync(p, 'utf8')).toBe(readFileSync(join(UPGRADE, s), 'utf8'));
      expect(statSync(p).mode & 0o777).toBe(0o755);
    }
    expect(readFileSync(join(rootfs, 'etc/systemd/system/kubedos-health-gate.service'), 'utf8')).toBe(renderHealthGateUnit());
    expect(readlinkSync(join(rootfs, 'etc/systemd/system/multi-user.target.wants/kubedos-health-gate.service'))).toBe('/etc/systemd/system/kubedos-health-gate.service');
    expect(readFileSync(join(rootfs, 'etc/fstab'), 'utf8')).toBe(renderAbFstab(espMountId));
    expect(AB_NODE_SCRIPTS).toContain('kubedos-persist');
    for (const [phase, target] of [['early', 'local-fs.target'], ['late', 'multi-user.target']] as const) {
      const name = AB_PERSIST_UNITS[phase];
      expect(readFileSync(join(rootfs, 'etc/systemd/system', name), 'utf8')).toBe(renderPersistUnit(phase));
      expect(readlinkSync(join(rootfs, `etc/systemd/system/${target}.wants`, name))).toBe(`/etc/systemd/system/${name}`);
    }
    expect(lstatSync(join(rootfs, 'vmlinuz')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(rootfs, 'vmlinuz'))).toBe('boot/vmlinuz-6.1.0-57-amd64');
    expect(readlinkSync(join(rootfs, 'initrd.img'))).toBe('boot/initrd.img-6.1.0-57-amd64');
    expect(readFileSync(join(rootfs, 'boot/kubedos-slot.cfg'), 'utf8')).toBe(renderSlotCfg());
    expect(existsSync(join(rootfs, AB_DATA_MOUNT.slice(1)))).toBe(true);
    // The gate's configuration from the plan (gateConfig): the units and checks, one per line.
    expect(readFileSync(join(rootfs, 'etc/kubedos/upgrade/gate-units'), 'utf8')).toBe(`${GATE.units.join('\n')}\n`);
    expect(readFileSync(join(rootfs, 'etc/kubedos/upgrade/gate-checks'), 'utf8')).toBe('planes\nservices\n');
    expect(readFileSync(join(rootfs, 'etc/kubedos/upgrade/gate-window'), 'utf8')).toBe('planes 60\nservices 60\ninterval 5\n');
    // The A/B units it lists are the ones this function enables.
    for (const u of GATE.units.filter((x) => x.startsWith('kubedos-persist-'))) expect(existsSync(join(rootfs, 'etc/systemd/system', u)), u).toBe(true);
    // GRUB sources the slot file: it must be valid GRUB script.
    execFileSync('grub-script-check', [join(rootfs, 'boot/kubedos-slot.cfg')]);
  });

  it('a role\'s slot kernel arguments come from payload/upgrade/slot-args/ROLE into the slot\'s kubedos-slot.cfg; GRUB-unsafe ones are refused', () => {
    const up = join(root, 'upgrade-args');
    mkdirSync(join(up, AB_SLOT_ARGS_DIR), { recursive: true });
    expect(readSlotArgs(up, 'worker')).toBe('');
    writeFileSync(join(up, AB_SLOT_ARGS_DIR, 'worker'), 'rdinit=/kubedos-broken\n');
    expect(readSlotArgs(up, 'worker')).toBe('rdinit=/kubedos-broken');
    expect(readSlotArgs(up, 'master')).toBe('');
    writeFileSync(join(up, AB_SLOT_ARGS_DIR, 'master'), 'quiet "x"\n');
    expect(() => readSlotArgs(up, 'master')).toThrow(/cannot go into GRUB's set kubedos_args/);
    const rootfs = join(root, 'rootfs-args');
    for (const d of ['etc', 'boot']) mkdirSync(join(rootfs, d), { recursive: true });
    const { espMountId } = espVolumeIds('lab-3', 'worker');
    prepareAbRootfs({ rootfs, files: abRootFiles({ upgradeDir: UPGRADE, gate: GATE, slotArgs: 'rdinit=/kubedos-broken' }), espMountId, kernel: 'vmlinuz-6.1.0-57-amd64', initrd: 'initrd.img-6.1.0-57-amd64' });
    expect(readFileSync(join(rootfs, 'boot/kubedos-slot.cfg'), 'utf8')).toMatch(/^set kubedos_args="rdinit=\/kubedos-broken"$/m);
    execFileSync('grub-script-check', [join(rootfs, 'boot/kubedos-slot.cfg')]);
  });

  it('abSbomFiles lists, by sha256, every file prepareAbRootfs puts in the root (root/PATH) and each ESP place (esp/PLACE); a changed gate changes its one line', () => {
    const rootfs = join(root, 'rootfs-sbom');
    for (const d of ['etc', 'boot']) mkdirSync(join(rootfs, d), { recursive: true });
    const { espMountId } = espVolumeIds('lab-3', 'worker');
    prepareAbRootfs({ rootfs, files: abRootFiles({ upgradeDir: UPGRADE, gate: GATE }), espMountId, kernel: 'vmlinuz-6.1.0-57-amd64', initrd: 'initrd.img-6.1.0-57-amd64' });
    const esp = readAbEspSources(UPGRADE);
    const listed = abSbomFiles(abRootFiles({ upgradeDir: UPGRADE, gate: GATE }), esp);
    expect(listed.map((f) => f.path)).toEqual([...listed.map((f) => f.path)].sort());
    const inRoot = listed.filter((f) => f.path.startsWith('root/'));
    expect(inRoot.map((f) => f.path)).toEqual(expect.arrayContaining(AB_NODE_SCRIPTS.map((x) => `root/usr/local/sbin/${x}`)));
    for (const f of inRoot) expect(f.sha256, f.path).toBe(sha256Hex(readFileSync(join(rootfs, f.path.slice('root/'.length)))));
    expect(listed.filter((f) => f.path.startsWith('esp/')).map((f) => f.path)).toEqual(['esp/EFI/BOOT/grub.cfg', 'esp/EFI/debian/boot-select.cfg', 'esp/EFI/debian/grub.cfg']);
    const copy = join(root, 'upgrade-sbom');
    mkdirSync(copy);
    for (const f of [...AB_NODE_SCRIPTS, ...AB_ESP_FILES]) writeFileSync(join(copy, f), readFileSync(join(UPGRADE, f)));
    writeFileSync(join(copy, 'kubedos-health-gate'), `${readFileSync(join(UPGRADE, 'kubedos-health-gate'), 'utf8')}# N+1\n`);
    const after = abSbomFiles(abRootFiles({ upgradeDir: copy, gate: GATE }), esp);
    expect(after.filter((f, i) => f.sha256 !== listed[i]!.sha256).map((f) => f.path)).toEqual(['root/usr/local/sbin/kubedos-health-gate']);
    // An ESP file changed: its place's line (the image's cache key takes these same lines).
    writeFileSync(join(copy, 'boot-select.cfg'), `${esp['boot-select.cfg']}# changed\n`);
    const espAfter = abSbomFiles(abRootFiles({ upgradeDir: UPGRADE, gate: GATE }), readAbEspSources(copy));
    expect(espAfter.filter((f, i) => f.sha256 !== listed[i]!.sha256).map((f) => f.path)).toEqual(['esp/EFI/debian/boot-select.cfg']);
  });

  it('readAbFiles reads payload/upgrade/ once: the root files and the ESP sources, as the image, installer and SBOM take them', () => {
    const f = readAbFiles({ upgradeDir: UPGRADE, gate: GATE, slotArgs: 'quiet' });
    expect(f.root).toEqual(abRootFiles({ upgradeDir: UPGRADE, gate: GATE, slotArgs: 'quiet' }));
    expect(f.esp).toEqual(readAbEspSources(UPGRADE));
    expect(Object.keys(f.esp).sort()).toEqual([...AB_ESP_FILES].sort());
  });
});

describe('the A/B raw disk (writeAbDisk, small tree)', () => {
  // A tiny stand-in for the role's root tree: the disk's bytes depend on its content, not on when
  // it was written (build/ext4.ts pins every inode's times, ctimes and symbolic links included).
  function stage(name: string, kernelBytes: string): string {
    const rootfs = join(root, name);
    for (const d of ['etc', 'boot', 'usr/bin']) mkdirSync(join(rootfs, d), { recursive: true });
    writeFileSync(join(rootfs, 'boot/vmlinuz-6.1.0-57-amd64'), kernelBytes);
    writeFileSync(join(rootfs, 'boot/initrd.img-6.1.0-57-amd64'), 'i');
    writeFileSync(join(rootfs, 'usr/bin/tool'), '#!/bin/sh\n');
    symlinkSync('usr/bin', join(rootfs, 'bin'));
    const { espMountId } = espVolumeIds('lab-3', 'worker');
    prepareAbRootfs({ rootfs, files: abRootFiles({ upgradeDir: UPGRADE, gate: GATE }), espMountId, kernel: 'vmlinuz-6.1.0-57-amd64', initrd: 'initrd.img-6.1.0-57-amd64' });
    return rootfs;
  }
  async function disk(name: string, kernelBytes: string): Promise<string> {
    const rawOut = join(root, `${name}.raw`);
    const workDir = join(root, `${name}-work`);
    mkdirSync(workDir);
    const { espVolId } = espVolumeIds('lab-3', 'worker');
    await writeAbDisk({ rootfs: stage(`${name}-rootfs`, kernelBytes), esp: readAbEspSources(UPGRADE), workDir, cluster: 'lab-3', role: 'worker', espVolId, rootMiB: 16, dataMiB: 16, sourceDateEpoch: 1_700_000_000, rawOut });
    if (name === 'd1') {
      // Both slots carry the persist script and its units (read back from the disk's ext4s).
      const parts = abPartitions({ cluster: 'lab-3', role: 'worker', espMiB: 64, rootMiB: 16, dataMiB: 16 });
      for (const slot of ['root-a', 'root-b'] as const) {
        const at = `${rawOut}?offset=${parts.find((p) => p.name === slot)!.startSector * 512}`;
        const cat = (p: string): string => execFileSync('debugfs', ['-R', `cat ${p}`, at], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
        expect(cat('/usr/local/sbin/kubedos-persist')).toBe(readFileSync(join(UPGRADE, 'kubedos-persist'), 'utf8'));
        expect(cat(`/etc/systemd/system/${AB_PERSIST_UNITS.early}`)).toBe(renderPersistUnit('early'));
        expect(cat(`/etc/systemd/system/${AB_PERSIST_UNITS.late}`)).toBe(renderPersistUnit('late'));
      }
    }
    const digest = await sha256File(rawOut);
    rmSync(rawOut);
    return digest;
  }

  it('is byte for byte the same when the same tree is staged a second later; another kernel gives another disk', async () => {
    const first = await disk('d1', 'kernel');
    await new Promise((r) => setTimeout(r, 1100));
    expect(await disk('d2', 'kernel')).toBe(first);
    expect(await disk('d3', 'kernal')).not.toBe(first);
  });
});

describe('spec.upgrades.diskLayout', () => {
  it('is optional (absent: the single-root image of today) and accepts single or ab only', () => {
    const shape = ClusterSpecBody.shape.upgrades;
    expect(shape.parse(undefined)).toBeUndefined();
    expect(shape.parse({})).toEqual({ diskLayout: 'single' });
    expect(shape.parse({ diskLayout: 'ab' })).toEqual({ diskLayout: 'ab' });
    expect(shape.safeParse({ diskLayout: 'abc' }).success).toBe(false);
    expect(shape.safeParse({ diskLayout: 'ab', extra: 1 }).success).toBe(false);
  });
});
