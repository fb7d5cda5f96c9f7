// The installer's (ISO) half of the A/B disk (docs/upgrades.md): the partman recipe rendered from
// the plan, the preseed around it, and the late-command script run for real on a loop device with
// the installer's busybox (root only; skipped with the reason otherwise). Partman itself does not
// run here (no installer in this test): what the recipe gives on a real install is not shown.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { plan } from '../../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../../common/spec/index';
import { AB_ESP_MIB, abRoleDataMiB, ROOT_MIB } from '../../../common/upgrade/ab-size';
import { gateConfig } from '../../../common/upgrade/gate-config';
import { AB_LABELS, abDiskBytes, abPartitions, renderAbPartitionTable, type AbLayoutInput } from '../../upgrade/ab-layout';
import { AB_DATA_MOUNT, AB_ENV_FILE, AB_ESP_PLACES, AB_INITIAL_ENV, AB_UNIT_WANTS, abRootFiles, prepareAbRootfs, readAbEspSources, renderAbFstab, renderGrubEnvBlock } from '../image/ab';
import { renderTestPayload } from '../payload/testing';
import { abInstallerFiles, INITRD_AB_DIR, INITRD_AB_SCRIPT, partmanMB, renderAbLateScript, renderAbPartmanRecipe, withAbPreseed } from './ab';
import { isoPayload } from './index';

const repo = join(__dirname, '../../..');
const UPGRADE = join(repo, 'payload/upgrade');
const spec = parseSpec(TEMPLATES['lab-3'].text).spec!;
spec.spec.upgrades = { ...spec.spec.upgrades, diskLayout: 'ab' };
const lab3 = plan(spec);
const layoutOf = (role: 'worker' | 'master' | 'control-plane'): AbLayoutInput => ({ cluster: 'lab-3', role, espMiB: AB_ESP_MIB, rootMiB: ROOT_MIB, dataMiB: abRoleDataMiB(lab3, role) });
const payloadOf = (role: 'worker' | 'control-plane') => renderTestPayload(lab3, role);

const tmp = mkdtempSync(join(tmpdir(), 'kd-h19i-iso-ab-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The recipe's partitions: [min, priority, max, rest of the line]. */
function recipeParts(recipe: string): [number, number, number, string][] {
  const [name, body] = recipe.split(' :: ');
  expect(name).toBe('kubedos-ab');
  return body!.split(' .').map((s) => s.trim()).filter(Boolean).map((s) => {
    const [a, b, c, ...rest] = s.split(' ');
    return [Number(a), Number(b), Number(c), rest.join(' ')];
  });
}

describe('the A/B partman recipe (ISO)', () => {
  it('lays out ESP, root A (/), root B (no mount point), data (the rest, /var/lib/kubedos) with the sizes of abPartitions', () => {
    for (const role of ['worker', 'master', 'control-plane'] as const) {
      const layout = layoutOf(role);
      const parts = recipeParts(renderAbPartmanRecipe(layout));
      const want = abPartitions(layout);
      expect(parts).toHaveLength(4);
      // Each fixed partition holds at least its qcow2 size and less than 1 MB more (partman counts decimal MB).
      for (const i of [0, 1, 2]) {
        const bytes = want[i]!.sectors * 512;
        expect(parts[i]![0]).toBe(parts[i]![2]);
        expect(parts[i]![0] * 1e6).toBeGreaterThanOrEqual(bytes);
        expect(parts[i]![0] * 1e6 - bytes).toBeLessThan(1e6);
      }
      expect(parts[0]![3]).toContain('method{ efi }');
      expect(parts[1]![3]).toContain(`label{ ${AB_LABELS.rootA} }`);
      expect(parts[1]![3]).toContain('mountpoint{ / }');
      expect(parts[2]![3]).toContain(`label{ ${AB_LABELS.rootB} }`);
      expect(parts[2]![3]).not.toContain('mountpoint');
      expect(parts[3]![3]).toContain(`label{ ${AB_LABELS.data} }`);
      expect(parts[3]![3]).toContain(`mountpoint{ ${AB_DATA_MOUNT} }`);
      for (const i of [1, 2, 3]) expect(parts[i]![3]).toContain('filesystem{ ext4 }');
      // Data: the rest of the disk; its priority is the plan's data partition (abDataMiB of the smallest first disk).
      expect(parts[3]![2]).toBe(-1);
      expect(parts[3]![1]).toBe(partmanMB(abRoleDataMiB(lab3, role)));
      expect(parts[3]![1]).toBe(partmanMB(want[3]!.sectors / 2048));
    }
  });

  it('follows the plan: a bigger first disk gives a bigger data priority, the roots unchanged', () => {
    const small = recipeParts(renderAbPartmanRecipe(layoutOf('worker')));
    const big = recipeParts(renderAbPartmanRecipe({ ...layoutOf('worker'), dataMiB: layoutOf('worker').dataMiB + 10 * 1024 }));
    expect(big[3]![1]).toBeGreaterThan(small[3]![1]);
    expect(big.slice(0, 3)).toEqual(small.slice(0, 3));
  });
});

describe('the A/B preseed (ISO)', () => {
  for (const role of ['worker', 'control-plane'] as const) {
    it(`${role}: the role's recipe replaced by the A/B one, the A/B install first in late_command, every other line unchanged`, () => {
      const single = payloadOf(role).preseed;
      const ab = withAbPreseed(single, layoutOf(role));
      const recipe = /^d-i partman-auto\/(expert_recipe|choose_recipe) /;
      const late = /^d-i preseed\/late_command string /;
      const keep = (t: string): string[] => t.split('\n').filter((l) => !recipe.test(l) && !late.test(l) && !l.startsWith('# ') && l !== '' && !l.startsWith('d-i partman-basicfilesystems/no_mount_point'));
      expect(keep(ab)).toEqual(keep(single));
      expect(ab.split('\n').filter((l) => l.startsWith('d-i partman-auto/expert_recipe '))).toEqual([`d-i partman-auto/expert_recipe string ${renderAbPartmanRecipe(layoutOf(role))}`]);
      expect(ab.split('\n').filter((l) => l.startsWith('d-i partman-auto/choose_recipe '))).toEqual(['d-i partman-auto/choose_recipe select kubedos-ab']);
      const lateLine = ab.split('\n').find((l) => late.test(l))!;
      const singleLate = single.split('\n').find((l) => late.test(l))!;
      expect(lateLine).toBe(singleLate.replace(late, `d-i preseed/late_command string sh /${INITRD_AB_SCRIPT} /target /${INITRD_AB_DIR} && `));
      expect(ab).not.toContain('mountpoint{ /var/lib/etcd }');
    });
  }

  it('the single layout: the ISO preseed is the payload\'s, byte for byte', () => {
    const p = payloadOf('worker');
    expect(isoPayload(p)).toBe(p);
    expect(isoPayload(p, undefined, undefined).preseed).toBe(p.preseed);
    expect(p.preseed).toContain('d-i partman-auto/choose_recipe select atomic');
    expect(p.preseed).not.toContain('kubedos-ab');
  });

  it('isoPayload with an A/B disk: the preseed and its copy in the payload carry the A/B recipe', () => {
    const p = payloadOf('worker');
    const out = isoPayload(p, undefined, { layout: layoutOf('worker'), files: [] });
    expect(out.preseed).toBe(withAbPreseed(p.preseed, layoutOf('worker')));
    expect(new TextDecoder().decode(out.files.find((f) => f.path === 'preseed.cfg')!.data)).toBe(out.preseed);
  });

  it("debconf-set-selections --checkonly accepts the A/B preseed and the single one (Debian's own parser)", () => {
    for (const role of ['worker', 'control-plane'] as const) {
      for (const text of [payloadOf(role).preseed, withAbPreseed(payloadOf(role).preseed, layoutOf(role))]) {
        const f = join(tmp, `preseed-${role}.cfg`);
        writeFileSync(f, text);
        const r = spawnSync('debconf-set-selections', ['--checkonly', f], { encoding: 'utf8' });
        expect(r.stderr).toBe('');
        expect(r.status).toBe(0);
      }
    }
  });
});

describe('the A/B files of the installer (shared with the image build)', () => {
  const gate = gateConfig(spec, lab3, 'worker');

  it('are the files prepareAbRootfs puts in a qcow2 slot, byte for byte, plus the ESP files of writeAbDisk', () => {
    const rootfs = join(tmp, 'staged');
    mkdirSync(join(rootfs, 'etc'), { recursive: true });
    mkdirSync(join(rootfs, 'boot'), { recursive: true });
    prepareAbRootfs({ rootfs, files: abRootFiles({ upgradeDir: UPGRADE, gate: gate }), espMountId: 'ABCD-1234', kernel: 'vmlinuz-x', initrd: 'initrd.img-x' });
    const files = abInstallerFiles(abRootFiles({ upgradeDir: UPGRADE, gate }), readAbEspSources(UPGRADE));
    const root = files.filter((f) => f.path.startsWith(`${INITRD_AB_DIR}/root/`));
    for (const f of root) {
      const rel = f.path.slice(`${INITRD_AB_DIR}/root/`.length);
      const want = rel === 'etc/fstab' ? renderAbFstab('@ESP_ID@') : readFileSync(join(rootfs, rel), 'utf8');
      expect(new TextDecoder().decode(f.data), rel).toBe(want);
      if (rel !== 'etc/fstab') expect(f.mode, rel).toBe(lstatSync(join(rootfs, rel)).mode & 0o777);
    }
    for (const p of ['usr/local/sbin/kubedos-boot', 'usr/local/sbin/kubedos-health-gate', 'etc/kubedos/upgrade/gate-units', 'etc/kubedos/upgrade/gate-checks', 'etc/kubedos/upgrade/gate-window', 'etc/systemd/system/kubedos-health-gate.service', 'boot/kubedos-slot.cfg']) {
      expect(root.map((f) => f.path)).toContain(`${INITRD_AB_DIR}/root/${p}`);
    }
    const esp = files.filter((f) => f.path.startsWith(`${INITRD_AB_DIR}/esp/`)).map((f) => f.path.slice(`${INITRD_AB_DIR}/esp/`.length));
    expect(esp).toEqual(AB_ESP_PLACES.map(([, p]) => p).sort());
  });
});

/** A loop device for `disk` with its partitions (this machine's loop driver does not scan them: partx adds them). */
function attach(disk: string): string {
  const loop = execFileSync('losetup', ['--find', '--show', disk], { encoding: 'utf8' }).trim();
  execFileSync('partx', ['--add', loop]);
  return loop;
}
/** Exactly the device attach() made: its partitions first, then the loop device. */
function detach(loop: string): void {
  spawnSync('partx', ['--delete', loop]);
  spawnSync('losetup', ['-d', loop]);
}

describe('the A/B late-command script', () => {
  it('passes shellcheck as POSIX sh (severity style)', () => {
    const f = join(tmp, INITRD_AB_SCRIPT);
    writeFileSync(f, renderAbLateScript(layoutOf('worker')));
    const r = spawnSync('shellcheck', ['--shell=sh', '--severity=style', f], { encoding: 'utf8' });
    expect(r.stdout).toBe('');
    expect(r.status).toBe(0);
  });

  it('checks each partition against the plan\'s sizes (in 512-byte sectors, as /sys reports them)', () => {
    const script = renderAbLateScript(layoutOf('worker'));
    for (const [n, p] of abPartitions(layoutOf('worker')).entries()) expect(script).toContain(`${n + 1} ${p.name} ${p.type} ${p.sectors} `);
  });
});

const isRoot = process.getuid?.() === 0;
const haveTools = ['losetup', 'partx', 'sfdisk', 'mkfs.ext4', 'mkfs.fat', 'blkid', 'e2label', 'grub-editenv', 'busybox'].every((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0);

describe.skipIf(!isRoot || !haveTools)('the A/B late command on a loop device (root; busybox as the installer)', () => {
  it('gives the partitions the qcow2 table\'s types and names, the labels, the slot files, fstab and kubedos.env', () => {
    const layout: AbLayoutInput = { cluster: 'lab-3', role: 'worker', espMiB: 33, rootMiB: 16, dataMiB: 8 };
    const disk = join(tmp, 'disk.raw');
    writeFileSync(disk, '');
    execFileSync('truncate', ['-s', String(abDiskBytes(layout)), disk]);
    // What partman leaves: the same four partitions, none named, every type "Linux file system"
    // but the ESP's, no labels (the script must not rely on partman's label{ }).
    const bare = abPartitions(layout).map((p) => `start=${p.startSector}, size=${p.sectors}, type=${p.name === 'esp' ? p.type : '0FC63DAF-8483-4772-8E79-3D69D8477DE4'}`);
    execFileSync('sfdisk', ['--quiet', disk], { input: ['label: gpt', 'unit: sectors', ...bare, ''].join('\n') });
    const loop = attach(disk);
    const target = join(tmp, 'target');
    let mounted = false;
    try {
      execFileSync('mkfs.fat', ['-F', '32', `${loop}p1`], { stdio: 'ignore' });
      for (const n of [2, 3, 4]) execFileSync('mkfs.ext4', ['-q', '-F', `${loop}p${n}`]);
      mkdirSync(target);
      execFileSync('mount', [`${loop}p2`, target]);
      mounted = true;
      mkdirSync(join(target, 'boot'));
      mkdirSync(join(target, 'etc'));
      writeFileSync(join(target, 'boot/vmlinuz-6.1.0-57-amd64'), 'k');
      writeFileSync(join(target, 'boot/initrd.img-6.1.0-57-amd64'), 'i');
      symlinkSync('boot/vmlinuz-6.1.0-57-amd64', join(target, 'vmlinuz'));
      symlinkSync('boot/initrd.img-6.1.0-57-amd64', join(target, 'initrd.img'));
      writeFileSync(join(target, 'etc/fstab'), 'UUID=partman / ext4 errors=remount-ro 0 1\n');
      // The initrd as the ISO build writes it: the script and /kubedos-ab.
      const initrd = join(tmp, 'initrd');
      const gate = gateConfig(spec, lab3, 'worker');
      const files = abInstallerFiles(abRootFiles({ upgradeDir: UPGRADE, gate }), readAbEspSources(UPGRADE));
      for (const f of files) {
        mkdirSync(join(initrd, f.path, '..'), { recursive: true });
        writeFileSync(join(initrd, f.path), f.data, { mode: f.mode });
      }
      writeFileSync(join(initrd, INITRD_AB_SCRIPT), renderAbLateScript(layout), { mode: 0o755 });
      const bin = join(tmp, 'bb-bin');
      mkdirSync(bin);
      for (const a of ['sh', 'awk', 'sed', 'cat', 'cp', 'ln', 'mkdir', 'rm', 'echo']) symlinkSync('/usr/bin/busybox', join(bin, a));
      const r = spawnSync(join(bin, 'sh'), [join(initrd, INITRD_AB_SCRIPT), target, join(initrd, INITRD_AB_DIR)], {
        encoding: 'utf8',
        env: { PATH: `${bin}:/usr/sbin:/sbin:/usr/bin:/bin`, KUBEDOS_AB_HOST_TOOLS: '1', KUBEDOS_CONSOLE: '/dev/null' },
      });
      expect(r.stderr + r.stdout).toContain(`KUBEDOS-AB-INSTALLED disk=${loop} active=A`);
      expect(r.status).toBe(0);

      // The GPT: the qcow2's table (renderAbPartitionTable) but for the ids partman picks.
      const dump = execFileSync('sfdisk', ['-d', loop], { encoding: 'utf8' });
      const fields = (text: string): string[] => text.split('\n').filter((l) => /start=/.test(l)).map((l) => l.replace(/^\S+ : /, '').replace(/,\s*uuid=[0-9A-F-]+/i, '').replace(/=\s+/g, '=').replace(/\s+/g, ' '));
      expect(fields(dump)).toEqual(fields(renderAbPartitionTable(layout)));
      const label = (n: number): string => execFileSync('blkid', ['-s', 'LABEL', '-o', 'value', `${loop}p${n}`], { encoding: 'utf8' }).trim();
      expect([label(2), label(3), label(4)]).toEqual([AB_LABELS.rootA, AB_LABELS.rootB, AB_LABELS.data]);

      const espId = execFileSync('blkid', ['-s', 'UUID', '-o', 'value', `${loop}p1`], { encoding: 'utf8' }).trim();
      expect(readFileSync(join(target, 'etc/fstab'), 'utf8')).toBe(renderAbFstab(espId));
      for (const f of abRootFiles({ upgradeDir: UPGRADE, gate })) {
        expect(readFileSync(join(target, f.path), 'utf8'), f.path).toBe(f.text);
        expect(lstatSync(join(target, f.path)).mode & 0o777, f.path).toBe(f.mode);
      }
      for (const [unit, t] of AB_UNIT_WANTS) expect(readlinkSync(join(target, `etc/systemd/system/${t}.wants/${unit}`))).toBe(`/etc/systemd/system/${unit}`);
      for (const [file, place] of AB_ESP_PLACES) expect(readFileSync(join(target, 'boot/efi', place), 'utf8')).toBe(readFileSync(join(UPGRADE, file), 'utf8'));
      // grub-editenv's block is the one the image build renders.
      expect(new Uint8Array(readFileSync(join(target, 'boot/efi', AB_ENV_FILE)))).toEqual(renderGrubEnvBlock(AB_INITIAL_ENV));
      expect(existsSync(join(target, AB_DATA_MOUNT.slice(1)))).toBe(true);
    } finally {
      if (mounted) spawnSync('umount', [target]);
      detach(loop);
    }
  });

  /** The late script of `layout` run with busybox on a disk of `table` whose partition `rootPart`
   * is mounted as the target; returns its exit status, stderr, the loop device and the target. */
  function refusal(name: string, bytes: number, table: string, rootPart: number, layout: AbLayoutInput): { status: number | null; stderr: string; loop: string; target: string; installed: boolean } {
    const disk = join(tmp, `${name}.raw`);
    writeFileSync(disk, '');
    execFileSync('truncate', ['-s', String(bytes), disk]);
    execFileSync('sfdisk', ['--quiet', disk], { input: table });
    const loop = attach(disk);
    const target = join(tmp, `${name}-target`);
    let mounted = false;
    try {
      execFileSync('mkfs.ext4', ['-q', '-F', `${loop}p${rootPart}`]);
      mkdirSync(target);
      execFileSync('mount', [`${loop}p${rootPart}`, target]);
      mounted = true;
      const script = join(tmp, `${name}.sh`);
      writeFileSync(script, renderAbLateScript(layout));
      const r = spawnSync('/usr/bin/busybox', ['sh', script, target, join(tmp, 'nothing')], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', KUBEDOS_AB_HOST_TOOLS: '1', KUBEDOS_CONSOLE: '/dev/null' } });
      return { status: r.status, stderr: r.stderr, loop, target, installed: existsSync(join(target, 'usr/local/sbin/kubedos-boot')) };
    } finally {
      if (mounted) spawnSync('umount', [target]);
      detach(loop);
    }
  }

  it('refuses partitions smaller than the layout (a slot write needs the whole slot), naming partition and sizes', () => {
    const small: AbLayoutInput = { cluster: 'lab-3', role: 'worker', espMiB: 33, rootMiB: 16, dataMiB: 8 };
    // The script of a layout whose roots are 32 MiB, on a disk whose roots are 16 MiB.
    const r = refusal('small', abDiskBytes(small), renderAbPartitionTable(small), 2, { ...small, rootMiB: 32 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`KUBEDOS-AB-FAILED: partition 2 (root-a) of ${r.loop} has 32768 sectors, the A/B layout needs 65536`);
    expect(r.installed).toBe(false);
  });

  it('refuses a disk partman laid out otherwise (root A not partition 2), naming the device', () => {
    const r = refusal('one-part', 64 * 1024 * 1024, 'label: gpt\nsize=40M, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n', 1, layoutOf('worker'));
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`KUBEDOS-AB-FAILED: root A (${r.target}) is ${r.loop}p1, not partition 2 of ${r.loop}`);
    expect(r.installed).toBe(false);
  });
});
