// The slot write, both halves, on real block devices without a VM (docs/upgrades.md, "Writing
// the passive slot"):
// - the engine (slot-image.ts) cuts slot B's file system image out of an N+1 A/B qcow2 written by
//   the build's own writeAbDisk (a tiny tree) and converted with qemu-img;
// - the node's payload/upgrade/kubedos-slot-write writes it into partition root-b of a real loop
//   device carrying the A/B partition table (renderAbPartitionTable), slots made with mkfs.ext4,
//   an ESP made with mkfs.fat. The GRUB environment block is a file made by `grub-editenv create`
//   beside the disk (this host's kernel cannot mount vfat); KUBEDOS_GRUBENV points at it.
// After each write, boot-select.cfg (GRUB's side, through the bash simulator of
// boot-counting.test.ts) says which slot the next boot takes.
// Needs root and loop devices (losetup, partx); skipped with the reason otherwise.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { abRootFiles, prepareAbRootfs, readAbEspSources, writeAbDisk } from '../build/image/ab';
import { espVolumeIds } from '../build/image/index';
import { abDiskBytes, abPartitions, renderAbPartitionTable, type AbLayoutInput } from './ab-layout';
import { cutSlotImage, ext4Label, findSlotPartition, removeSlotImage, type SlotImage, type SfdiskTable } from './slot-image';
import { grubBootSelect, keepWorkerManifest, killSlotWriteMidWrite } from './testing';
import type { BuildRef } from '../../common/upgrade/agent';
import { writeSlotThroughChannel, type ChannelExec } from './channel-transport';
import type { GuestChannel } from '../substrate/driver';
import { VmNodeOps } from './vm-ops';
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import type { SubstrateDriver } from '../substrate/driver';
import { gateWindow } from '../../common/upgrade/gate-config';
import { slotWriteDetail } from '../../common/upgrade/progress';

const UPGRADE = join(import.meta.dirname, '../../payload/upgrade');
const WRITE = join(UPGRADE, 'kubedos-slot-write');
const MiB = 1024 * 1024;
const ROOT_MIB = 16;

const root = mkdtempSync(join(tmpdir(), 'kd-h18w-slot-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function stage(name: string, marker: string): string {
  const rootfs = join(root, name);
  for (const d of ['etc', 'boot', 'usr/bin']) mkdirSync(join(rootfs, d), { recursive: true });
  writeFileSync(join(rootfs, 'boot/vmlinuz-6.1.0-57-amd64'), 'k');
  writeFileSync(join(rootfs, 'boot/initrd.img-6.1.0-57-amd64'), 'i');
  writeFileSync(join(rootfs, 'etc/kubedos-build'), `${marker}\n`);
  symlinkSync('usr/bin', join(rootfs, 'bin'));
  prepareAbRootfs({ rootfs, files: abRootFiles({ upgradeDir: UPGRADE, gate: { units: ['ssh.service'], checks: ['services'], window: gateWindow(['services']) } }), espMountId: espVolumeIds('lab-3', 'worker').espMountId, kernel: 'vmlinuz-6.1.0-57-amd64', initrd: 'initrd.img-6.1.0-57-amd64' });
  return rootfs;
}

/** N+1's A/B qcow2 of a role, as `kubedos build` writes it (writeAbDisk, then qemu-img convert). */
async function buildQcow2(name: string, marker: string): Promise<{ qcow2: string; raw: string }> {
  const raw = join(root, `${name}.raw`);
  const workDir = join(root, `${name}-work`);
  mkdirSync(workDir);
  await writeAbDisk({ rootfs: stage(`${name}-rootfs`, marker), esp: readAbEspSources(UPGRADE), workDir, cluster: 'lab-3', role: 'worker', espVolId: espVolumeIds('lab-3', 'worker').espVolId, rootMiB: ROOT_MIB, dataMiB: 8, sourceDateEpoch: 1_700_000_000, rawOut: raw });
  const qcow2 = join(root, `${name}.qcow2`);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
  return { qcow2, raw };
}

function region(file: string, offset: number, bytes: number): Buffer {
  const buf = Buffer.alloc(bytes);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buf, 0, bytes, offset);
  } finally {
    closeSync(fd);
  }
  return buf;
}

/** A file's size and sha256, as a signed manifest would list it. */
function signedAs(file: string): { sha256: string; size: number } {
  return { sha256: sha(readFileSync(file)), size: statSync(file).size };
}

/** A workspace of its own that keeps N+1's signed manifest listing `qcow2` (keepWorkerManifest): the env pointing at it and N+1's reference. */
function keptN1(qcow2: string): { env: NodeJS.ProcessEnv; target: BuildRef } {
  const env = { ...process.env, KUBEDOS_WORKSPACE: mkdtempSync(join(root, 'ws-')) };
  return { env, target: keepWorkerManifest(env, qcow2) };
}

let n1: { qcow2: string; raw: string };
let imageB: SlotImage;

describe('engine: the slot image from N+1\'s A/B qcow2 (slot-image.ts)', () => {
  beforeAll(async () => {
    n1 = await buildQcow2('n1', 'N+1');
    imageB = await cutSlotImage({ qcow2: n1.qcow2, expected: signedAs(n1.qcow2), slot: 'B', tmpParent: root });
  }, 60_000);

  it('cuts partition root-b: its bytes, size and sha256, labelled kubedos-root-B, private, with the node\'s command', () => {
    const layout: AbLayoutInput = { cluster: 'lab-3', role: 'worker', espMiB: 64, rootMiB: ROOT_MIB, dataMiB: 8 };
    const b = abPartitions(layout).find((p) => p.name === 'root-b')!;
    const want = region(n1.raw, b.startSector * 512, b.sectors * 512);
    const got = readFileSync(imageB.path);
    expect(got.equals(want)).toBe(true);
    expect(imageB).toMatchObject({ slot: 'B', size: ROOT_MIB * MiB, sha256: sha(want), label: 'kubedos-root-B', partition: { name: 'root-b', offset: b.startSector * 512, bytes: ROOT_MIB * MiB, uuid: b.uuid.toUpperCase() } });
    expect(imageB.argv).toEqual(['/usr/local/sbin/kubedos-slot-write', '--tries', '1', 'B', sha(want), String(ROOT_MIB * MiB)]);
    expect(statSync(imageB.path).mode & 0o777).toBe(0o600);
    expect(statSync(imageB.dir).mode & 0o777).toBe(0o700);
    expect(existsSync(join(imageB.dir, 'disk.raw'))).toBe(false);
    expect(existsSync(join(imageB.dir, 'n1.qcow2'))).toBe(false);
    // N+1's tree, with the node's scripts the build installs in both slots.
    const cat = (path: string): string => execFileSync('debugfs', ['-R', `cat ${path}`, imageB.path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(cat('/etc/kubedos-build')).toBe('N+1\n');
    expect(cat('/usr/local/sbin/kubedos-slot-write')).toBe(readFileSync(WRITE, 'utf8'));
  });

  it('is deterministic (the same qcow2, the same bytes); slot A is cut from root-a with its own label', async () => {
    const again = await cutSlotImage({ qcow2: n1.qcow2, expected: signedAs(n1.qcow2), slot: 'B', tmpParent: root });
    const a = await cutSlotImage({ qcow2: n1.qcow2, expected: signedAs(n1.qcow2), slot: 'A', tmpParent: root });
    try {
      expect(again.sha256).toBe(imageB.sha256);
      expect(again.dir).not.toBe(imageB.dir);
      expect(a.label).toBe('kubedos-root-A');
      expect(a.sha256).not.toBe(imageB.sha256); // another label and UUID: the reason each slot gets its own cut
    } finally {
      removeSlotImage(again);
      removeSlotImage(a);
    }
    expect(existsSync(again.dir)).toBe(false);
  });

  it('refuses a qcow2 that is not the one N+1 signed (changed after the preflight), and leaves nothing behind', async () => {
    const signed = signedAs(n1.qcow2);
    const changed = join(root, 'changed.qcow2');
    copyFileSync(n1.qcow2, changed);
    const fd = openSync(changed, 'r+');
    try {
      writeSync(fd, Buffer.from('not signed'), 0, 10, statSync(changed).size - 4096);
    } finally {
      closeSync(fd);
    }
    const before = readdirSync(root).length;
    await expect(cutSlotImage({ qcow2: changed, expected: signed, slot: 'B', tmpParent: root })).rejects.toThrow(/changed\.qcow2 is not the disk image N\+1 signed \(sha256 [0-9a-f]{12}…, N\+1's signed manifest says [0-9a-f]{12}…\): it changed since the preflight verified the build; nothing was written to a node/);
    await expect(cutSlotImage({ qcow2: n1.qcow2, expected: { ...signed, size: signed.size + 1 }, slot: 'B', tmpParent: root })).rejects.toThrow(/\(\d+ bytes, N\+1's signed manifest says \d+\)/);
    expect(readdirSync(root).length).toBe(before);
  });

  it('refuses a disk that is not an A/B disk, and reads labels only from ext4 superblocks', async () => {
    const single: SfdiskTable = { label: 'gpt', partitions: [{ node: 'x1', start: 2048, size: 131072, type: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B', name: 'esp' }, { node: 'x2', start: 133120, size: 4194304, type: '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709', name: 'root' }] };
    expect(() => findSlotPartition(single, 'B', 'n1.qcow2')).toThrow(/n1\.qcow2: 0 partitions named root-b \(the disk has: esp, root\): not an A\/B disk \(spec\.upgrades\.diskLayout: ab\)/);
    expect(() => findSlotPartition({ label: 'dos', partitions: [] }, 'A', 'd')).toThrow(/a dos partition table, not GPT/);
    const wrongType = { label: 'gpt', partitions: [{ node: 'x', start: 2048, size: 8, type: '0FC63DAF-8483-4772-8E79-3D69D8477DE4', name: 'root-a' }] };
    expect(() => findSlotPartition(wrongType, 'A', 'd')).toThrow(/type 0FC63DAF.*expected the Linux root type/);
    expect(ext4Label(new Uint8Array(4096))).toBeUndefined();
    expect(ext4Label(readFileSync(imageB.path).subarray(0, 2048))).toBe('kubedos-root-B');
    const notAb = join(root, 'plain.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', notAb, '8M']);
    await expect(cutSlotImage({ qcow2: notAb, expected: signedAs(notAb), slot: 'B', tmpParent: root })).rejects.toThrow(/sfdisk|partition/);
  });
});

// ---- the node: kubedos-slot-write on a loop device ----

const isRoot = process.getuid?.() === 0;
const loopTools = spawnSync('losetup', ['--version']).status === 0 && spawnSync('partx', ['--version']).status === 0;
const skipReason = !isRoot ? 'they need root (losetup, partx, writing a block device)' : !existsSync('/dev/loop-control') ? 'this machine has no loop devices (/dev/loop-control)' : !loopTools ? 'losetup or partx is missing (package mount / util-linux)' : undefined;
const hasLoop = skipReason === undefined;
if (skipReason) console.warn(`slot-write: the loop-device tests are skipped: ${skipReason}`);

interface Node {
  dev: string;
  env: string;
  cmdline: string;
}
let node: Node;
let envN = 0;

function freshEnv(): void {
  node.env = join(root, `kubedos-${envN++}.env`);
  execFileSync('grub-editenv', [node.env, 'create']);
  execFileSync('grub-editenv', [node.env, 'set', 'kubedos_active=A']);
  writeFileSync(node.cmdline, 'BOOT_IMAGE=/vmlinuz root=LABEL=kubedos-root-A rw panic=10 kubedos.slot=A\n');
}

// The writer's scratch folders (mktemp -d) go to a folder of this test's own, counted below.
const scratch = (): string => join(root, 'scratch');
const DATA = join(root, 'data');
const childEnv = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, KUBEDOS_GRUBENV: node.env, KUBEDOS_CMDLINE: node.cmdline, KUBEDOS_DATA: DATA, TMPDIR: scratch() });
const leftovers = (): string[] => readdirSync(scratch());

/** The guest agent as this machine: the command run with the node's environment, asynchronously (the channel is read meanwhile). */
function guestAsThisMachine(argv: readonly string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(argv[0]!, argv.slice(1), { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (code) => resolve({ exitCode: code ?? -1, stdout, stderr }));
  });
}

/**
 * The driver's channel as a FIFO in this test's folder (a virtio-serial port reads end of file when
 * the host end closes, as a FIFO does when its writer does); `mangle` sees each chunk the host writes.
 */
function fifoChannel(mangle?: (chunk: Buffer) => Buffer): { open: () => Promise<GuestChannel>; opened: number; left: () => string[] } {
  const dir = mkdtempSync(join(root, 'port-'));
  const state = {
    opened: 0,
    left: () => readdirSync(dir),
    open: async (): Promise<GuestChannel> => {
      state.opened++;
      const path = join(dir, 'org.kubedos.slot');
      execFileSync('mkfifo', ['-m', '600', path]);
      return {
        guestPath: path,
        connect: async () => {
          const out = createWriteStream(path);
          if (!mangle) return out;
          out.on('error', () => undefined); // a reader gone: the transform's writes then stall, as a port's do
          const t = new Transform({ transform: (c: Buffer, _e, cb) => cb(null, mangle(c)) });
          t.pipe(out);
          t.on('close', () => out.destroy());
          return t;
        },
        close: async () => rmSync(path, { force: true }),
      };
    },
  };
  return state;
}

function slotWrite(args: string[], input?: Uint8Array): { status: number; out: string } {
  const r = spawnSync(WRITE, ['--disk', node.dev, ...args], { input: input ?? Buffer.alloc(0), encoding: 'utf8', env: childEnv(), timeout: 60_000, maxBuffer: 1 << 20 });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

function bootStatus(): Record<string, string> {
  const out = execFileSync(join(UPGRADE, 'kubedos-boot'), ['status'], { encoding: 'utf8', env: childEnv() });
  return Object.fromEntries(out.trim().split('\n').map((l) => l.split('=') as [string, string]));
}

const part = (i: number): string => `${node.dev}p${i}`;
const readPart = (i: number, bytes = ROOT_MIB * MiB): Buffer => region(part(i), 0, bytes);
const boot = (): string => grubBootSelect(node.env, join(UPGRADE, 'boot-select.cfg'));

describe.skipIf(!hasLoop)('node: kubedos-slot-write on a real loop-device A/B disk', () => {
  let image: Buffer;
  let disk: string;
  let attached: string | undefined;

  beforeAll(() => {
    image = readFileSync(imageB.path);
    const layout: AbLayoutInput = { cluster: 'lab-3', role: 'worker', espMiB: 64, rootMiB: ROOT_MIB, dataMiB: 8 };
    disk = join(root, 'node-disk.raw');
    writeFileSync(disk, '');
    execFileSync('truncate', ['-s', String(abDiskBytes(layout)), disk]);
    execFileSync('sfdisk', ['--quiet', disk], { input: renderAbPartitionTable(layout) });
    attached = execFileSync('losetup', ['--find', '--show', disk], { encoding: 'utf8' }).trim();
    // This machine's loop driver does not scan partitions (max_part=0): partx adds them.
    execFileSync('partx', ['--add', attached]);
    node = { dev: attached, env: '', cmdline: join(root, 'cmdline') };
    mkdirSync(scratch());
    execFileSync('mkfs.fat', ['-F', '32', '-n', 'ESP', part(1)], { stdio: 'ignore' });
    execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'kubedos-root-A', part(2)]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'kubedos-root-B', part(3)]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'kubedos-data', part(4)]);
  }, 60_000);

  afterAll(() => {
    if (!attached) return;
    // Exactly the device this test attached: its partitions first, then the loop device itself.
    spawnSync('partx', ['--delete', attached]);
    spawnSync('losetup', ['-d', attached]);
  });

  it('writes N+1 into slot B from its standard input, reads it back, then the next boot tries B (3 tries)', () => {
    freshEnv();
    const aBefore = sha(readPart(2));
    // kubedos-persist's records: slot B's goes with the write (first boot runs on it again), A's stays.
    mkdirSync(join(DATA, 'slots'), { recursive: true });
    for (const x of ['A', 'B']) writeFileSync(join(DATA, `slots/${x}.personalised`), 'sha256-of-its-payload\n');
    // A failed gate of B's earlier build (kubedos-health-gate's copy on data) must not be read as this build's.
    mkdirSync(join(DATA, 'upgrade'), { recursive: true });
    for (const x of ['A', 'B']) writeFileSync(join(DATA, `upgrade/gate-${x}.prom`), 'kubedos_boot_success 0\n');
    const r = slotWrite(['B', imageB.sha256, String(imageB.size)], image);
    expect(existsSync(join(DATA, 'slots/B.personalised'))).toBe(false);
    expect(existsSync(join(DATA, 'slots/A.personalised'))).toBe(true);
    expect(existsSync(join(DATA, 'upgrade/gate-B.prom'))).toBe(false);
    expect(existsSync(join(DATA, 'upgrade/gate-A.prom'))).toBe(true);
    expect(r).toMatchObject({ status: 0, out: expect.stringMatching(new RegExp(`slot B \\(${part(3)}\\) holds ${imageB.size} bytes with sha256 ${imageB.sha256}, read back from the device`)) });
    expect(r.out).toMatch(/the next boot tries slot B \(3 tries, then slot A again\)/);
    expect(readPart(3).equals(image)).toBe(true);
    expect(sha(readPart(2))).toBe(aBefore);
    expect(execFileSync('blkid', ['-c', '/dev/null', '-p', '-s', 'LABEL', '-o', 'value', part(3)], { encoding: 'utf8' }).trim()).toBe('kubedos-root-B');
    expect(execFileSync('debugfs', ['-R', 'cat /etc/kubedos-build', part(3)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })).toBe('N+1\n');
    expect(bootStatus()).toMatchObject({ active: 'A', try: 'B', tries: '3', failed: '' });
    expect([boot(), boot(), boot(), boot()]).toEqual(['B', 'B', 'B', 'A']);
  });

  it('--from FILE writes the same; a slot still waiting for its try is withdrawn before the write starts', () => {
    freshEnv();
    execFileSync(join(UPGRADE, 'kubedos-boot'), ['try', 'B', '2'], { env: childEnv() });
    const r = slotWrite(['--from', imageB.path, '--tries', '1', 'B', imageB.sha256, String(imageB.size)]);
    expect(r.status).toBe(0);
    expect(bootStatus()).toMatchObject({ try: 'B', tries: '1' });
    expect([boot(), boot()]).toEqual(['B', 'A']);
  });

  it('through a virtio-serial port (no route to wg1): the same script reads the image from the port; the port goes', async () => {
    freshEnv();
    const ch = fifoChannel();
    const argv = [WRITE, '--disk', node.dev, ...imageB.argv.slice(1)];
    const progress: number[] = [];
    const r = await writeSlotThroughChannel({ node: 'w-1', open: ch.open, exec: guestAsThisMachine, image: { ...imageB, argv }, onProgress: (p) => progress.push(p.bytes) });
    expect(r.output).toMatch(/the next boot tries slot B/);
    expect(progress.at(-1)).toBe(imageB.size);
    expect(readPart(3).equals(image)).toBe(true);
    // The engine's command stages the upgrade's one try (UPGRADE_BOOT_TRIES).
    expect(bootStatus()).toMatchObject({ active: 'A', try: 'B', tries: '1' });
    expect(ch.opened).toBe(1);
    expect(ch.left()).toEqual([]);
  });

  it('VmNodeOps reads the qcow2 only as N+1\'s kept signed manifest gives it: a changed image or no kept manifest stops before the node is asked anything', async () => {
    const artifactDir = join(root, 'n1-changed');
    mkdirSync(join(artifactDir, 'images'), { recursive: true });
    const qcow2 = join(artifactDir, 'images/lab-3-worker.qcow2');
    copyFileSync(n1.qcow2, qcow2);
    const { env, target } = keptN1(qcow2);
    // After the preflight: someone writes the build directory's image again.
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', qcow2, '8M']);
    const spec = parseSpec(TEMPLATES['lab-3'].text).spec!;
    const asked: string[] = [];
    const driver = {
      target: 'qemu-local',
      guestExec: (_vmid: number, argv: readonly string[]) => Promise.reject(new Error(`asked ${asked.push(argv.join(' '))}`)),
      guestChannel: () => Promise.reject(new Error(`asked ${asked.push('channel')}`)),
    } as unknown as SubstrateDriver;
    const ops = new VmNodeOps({ spec, plan: plan(spec), driver, env, artifactDir, tmpParent: root, converge: async () => undefined });
    try {
      await expect(ops.writeSlot('w-1', 'B', target, {})).rejects.toThrow(/images\/lab-3-worker\.qcow2 is not the disk image N\+1 signed \(\d+ bytes, N\+1's signed manifest says \d+\)/);
      await expect(ops.writeSlot('w-1', 'B', { ...target, digest: 'f'.repeat(64) }, {})).rejects.toThrow(/^the workspace keeps no signed manifest of 0\.1\.1 \(.*upgrade\/builds\/f{64}\/manifest\.json\)/);
    } finally {
      await ops.close();
    }
    expect(asked).toEqual([]);
  });

  it('VmNodeOps on a qemu substrate writes the slot through the driver\'s channel (this machine has no route to wg1): the image cut from N+1\'s role qcow2, the node\'s script run by it', async () => {
    freshEnv();
    const artifactDir = join(root, 'n1-build');
    mkdirSync(join(artifactDir, 'images'), { recursive: true });
    copyFileSync(n1.qcow2, join(artifactDir, 'images/lab-3-worker.qcow2'));
    const spec = parseSpec(TEMPLATES['lab-3'].text).spec!;
    expect(spec.spec.substrate.type).toBe('qemu');
    const p = plan(spec);
    const guests: number[] = [];
    const channels: { vmid: number; name: string }[] = [];
    const ch = fifoChannel();
    // w-1 as this machine: its script at the node's path is the checkout's, on this test's loop device.
    const driver = {
      target: 'qemu-local',
      guestExec(vmid: number, argv: readonly string[]) {
        guests.push(vmid);
        return guestAsThisMachine(argv.flatMap((x) => (x === '/usr/local/sbin/kubedos-slot-write' ? [WRITE, '--disk', node.dev] : [x])));
      },
      guestChannel(vmid: number, name: string) {
        channels.push({ vmid, name });
        return ch.open();
      },
    } as unknown as SubstrateDriver;
    const { env, target } = keptN1(join(artifactDir, 'images/lab-3-worker.qcow2'));
    const ops = new VmNodeOps({ spec, plan: p, driver, env, artifactDir, tmpParent: root, converge: async () => undefined });
    const progress: string[] = [];
    try {
      await ops.writeSlot('w-1', 'B', target, { onProgress: (d) => progress.push(slotWriteDetail(d)) });
    } finally {
      await ops.close();
    }
    const vmid = p.nodes.find((n) => n.name === 'w-1')!.vmid;
    expect(new Set(guests)).toEqual(new Set([vmid]));
    expect(channels).toEqual([{ vmid, name: 'org.kubedos.slot' }]);
    expect(progress.at(-1)).toMatch(/^16 of 16 MiB through a virtio-serial port, [\d.]+ MiB\/s$/);
    expect(readPart(3).equals(image)).toBe(true);
    expect(bootStatus()).toMatchObject({ active: 'A', try: 'B' });
    expect(ch.left()).toEqual([]);
  });

  it('through the port, bytes that arrive wrong: the script\'s read-back refuses them, the port goes, the boot environment is untouched', async () => {
    freshEnv();
    const before = readFileSync(node.env);
    let n = 0;
    // The host end corrupts 16 bytes of the fourth MiB on its way.
    const ch = fifoChannel((b) => (n++ === 3 ? Buffer.from(b).fill(0x5a, 0, 16) : b));
    const argv = [WRITE, '--disk', node.dev, ...imageB.argv.slice(1)];
    await expect(writeSlotThroughChannel({ node: 'w-1', open: ch.open, exec: guestAsThisMachine, image: { ...imageB, argv } })).rejects.toThrow(/^w-1: writing N\+1 into slot B through a virtio-serial port: .*kubedos-slot-write .* exited 1: .*expected [0-9a-f]{64}.*the node keeps booting its active slot/);
    expect(n).toBe(16);
    expect(ch.left()).toEqual([]);
    expect(readFileSync(node.env).equals(before)).toBe(true);
    expect(boot()).toBe('A');
  });

  it('through the port, a script that refuses before reading (the active slot named): the send ends at once with the script\'s own message', async () => {
    freshEnv();
    const before = readFileSync(node.env);
    const ch = fifoChannel();
    const argv = [WRITE, '--disk', node.dev, 'A', imageB.sha256, String(imageB.size)];
    await expect(writeSlotThroughChannel({ node: 'w-1', open: ch.open, exec: guestAsThisMachine, image: { ...imageB, slot: 'A', argv } })).rejects.toThrow(/^w-1: writing N\+1 into slot A through a virtio-serial port: .*kubedos-slot-write .* exited \d+ \(it stopped reading after \d+ of \d+ bytes\): .*active/);
    expect(ch.left()).toEqual([]);
    expect(readFileSync(node.env).equals(before)).toBe(true);
  });

  it('through the port, a refusal seen first as a broken port still says how many bytes the node took', async () => {
    // The port breaks (EPIPE) on the second chunk; the script's refusal arrives just after: the
    // message is the same as when its exit is seen first (was: "before the image was through").
    let took = 0;
    let broke!: () => void;
    const broken = new Promise<void>((r) => (broke = r));
    const host = new Writable({
      write(chunk: Buffer, _e, cb) {
        if (took > 0) {
          broke();
          cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
          return;
        }
        took += chunk.length;
        cb();
      },
    });
    const channel: GuestChannel = { guestPath: '/dev/virtio-ports/org.kubedos.slot', connect: async () => host, close: async () => undefined };
    let calls = 0;
    const exec: ChannelExec = async () => {
      if (++calls === 1) return { exitCode: 0, stdout: '', stderr: '' };
      await broken;
      await new Promise((r) => setTimeout(r, 50));
      return { exitCode: 1, stdout: '', stderr: 'kubedos-slot-write: refused: slot A is the active slot' };
    };
    const argv = [WRITE, 'A', imageB.sha256, String(imageB.size)];
    const err = (await writeSlotThroughChannel({ node: 'w-1', open: async () => channel, exec, image: { ...imageB, slot: 'A', argv } }).catch((e: unknown) => e)) as Error;
    // The count is what was handed to the port (its second chunk, refused, included), never unknown.
    const m = new RegExp(`^w-1: writing N\\+1 into slot A through a virtio-serial port: .* exited 1 \\(it stopped reading after (\\d+) of ${imageB.size} bytes\\): .*active slot`).exec(err.message);
    expect(m, err.message).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(took);
    expect(Number(m![1])).toBeLessThan(imageB.size);
  });

  it('through the port, a cancel mid-send: the script reads a short stream and stages nothing, the port goes', async () => {
    freshEnv();
    const before = readFileSync(node.env);
    const ac = new AbortController();
    let n = 0;
    const ch = fifoChannel((b) => {
      if (++n === 5) ac.abort();
      return b;
    });
    const scripts: Promise<unknown>[] = [];
    const exec: ChannelExec = (argv, o) => {
      const r = guestAsThisMachine(argv);
      scripts.push(r);
      return o.signal ? Promise.race([r, new Promise<never>((_, reject) => o.signal!.addEventListener('abort', () => reject(new Error('aborted')), { once: true }))]) : r;
    };
    const argv = [WRITE, '--disk', node.dev, ...imageB.argv.slice(1)];
    await expect(writeSlotThroughChannel({ node: 'w-1', open: ch.open, exec, image: { ...imageB, argv }, signal: ac.signal })).rejects.toThrow(/^w-1: writing N\+1 into slot B: stopped after [\d.]+ MiB of [\d.]+ MiB \(cancelled\); the node keeps booting its active slot/);
    const script = (await scripts[1]) as { exitCode: number; stderr: string };
    expect(script.exitCode).not.toBe(0);
    expect(script.stderr).toMatch(/short|bytes/);
    expect(ch.left()).toEqual([]);
    expect(readFileSync(node.env).equals(before)).toBe(true);
    expect(boot()).toBe('A');
  });

  it('a corrupt stream: the read-back hash differs, the message names the slot, expected and got; the boot environment is untouched', () => {
    freshEnv();
    const before = readFileSync(node.env);
    const bad = Buffer.from(image);
    bad[5 * MiB + 7] = bad[5 * MiB + 7]! ^ 0xff;
    const r = slotWrite(['B', imageB.sha256, String(imageB.size)], bad);
    expect(r.status).toBe(1);
    expect(r.out).toContain(`slot B (${part(3)}) reads back sha256 ${sha(bad)} over ${imageB.size} bytes, expected ${imageB.sha256}`);
    expect(r.out).toMatch(/the boot environment is unchanged: the next boot is slot A/);
    expect(readFileSync(node.env).equals(before)).toBe(true);
    expect(boot()).toBe('A');
  });

  it('a short stream: the bytes that came and the bytes expected; a pending try of B was withdrawn first, so the next boot is A', () => {
    freshEnv();
    execFileSync(join(UPGRADE, 'kubedos-boot'), ['try', 'B'], { env: childEnv() });
    const r = slotWrite(['B', imageB.sha256, String(imageB.size)], image.subarray(0, 6 * MiB));
    expect(r.status).toBe(1);
    expect(r.out).toContain(`the image of slot B ended after ${6 * MiB} bytes, expected ${imageB.size} (a short stream); the pending try of slot B was withdrawn before the write: the next boot is slot A`);
    expect(bootStatus()).toMatchObject({ try: '', tries: '0' });
    expect(boot()).toBe('A');
  });

  it('a stream longer than announced, is not switched to; an image cut from the wrong partition (root-a\'s label into B) or not ext4 is refused before a byte is written', async () => {
    freshEnv();
    const before = readFileSync(node.env);
    const longer = slotWrite(['B', imageB.sha256, String(imageB.size)], Buffer.concat([image, Buffer.alloc(4096, 1)]));
    expect(longer).toMatchObject({ status: 1, out: expect.stringMatching(/the stream for slot B carries more than the \d+ bytes announced/) });
    const a = await cutSlotImage({ qcow2: n1.qcow2, expected: signedAs(n1.qcow2), slot: 'A', tmpParent: root });
    const b = sha(readPart(3));
    try {
      const r = slotWrite(['--from', a.path, 'B', a.sha256, String(a.size)]);
      expect(r.status).toBe(1);
      expect(r.out).toMatch(/the image for slot B carries the file system label 'kubedos-root-A', expected kubedos-root-B .*: it was cut from the wrong partition of N\+1; nothing was written/);
      const notExt4 = slotWrite(['B', imageB.sha256, String(imageB.size)], Buffer.alloc(imageB.size));
      expect(notExt4.out).toMatch(/the image for slot B is not an ext4 file system \(no superblock magic\); nothing was written/);
      expect(sha(readPart(3))).toBe(b);
    } finally {
      removeSlotImage(a);
    }
    expect(readFileSync(node.env).equals(before)).toBe(true);
  });

  it('refuses before writing anything: the active slot, the booted slot, a mounted slot, an image larger than the partition, bad arguments', () => {
    freshEnv();
    const before = readFileSync(node.env);
    const a = sha(readPart(2));
    const b = sha(readPart(3));
    mkdirSync(join(DATA, 'slots'), { recursive: true });
    writeFileSync(join(DATA, 'slots/B.personalised'), 'sha256-of-its-payload\n');
    expect(slotWrite(['A', imageB.sha256, String(imageB.size)], image)).toMatchObject({ status: 1, out: expect.stringMatching(/slot A is the active slot \(what every boot falls back to\): write the passive slot instead; nothing was written/) });
    expect(slotWrite(['B', imageB.sha256, String(imageB.size + 512)], image)).toMatchObject({ status: 1, out: expect.stringMatching(new RegExp(`the image of slot B is ${imageB.size + 512} bytes, its partition ${part(3)} only ${imageB.size}`)) });
    expect(slotWrite(['B', 'abc', String(MiB)]).out).toMatch(/SHA256 must be 64 lower-case hex digits/);
    expect(slotWrite(['B', imageB.sha256, '1000']).out).toMatch(/SIZE 1000 is not a multiple of 512/);
    expect(slotWrite(['C', imageB.sha256, String(MiB)]).out).toMatch(/SLOT must be A or B/);
    expect(slotWrite(['B', imageB.sha256, '1024']).out).toMatch(/SIZE 1024 is too small/);
    expect(slotWrite(['--from', join(root, 'absent'), 'B', imageB.sha256, String(MiB)]).out).toMatch(/--from .*absent: no such file/);
    expect(readFileSync(node.env).equals(before)).toBe(true);
    // Refused before the write: slot B keeps its personalisation record.
    expect(existsSync(join(DATA, 'slots/B.personalised'))).toBe(true);
    // The node booted B to try it: B is running, A is the fallback; neither may be written.
    execFileSync(join(UPGRADE, 'kubedos-boot'), ['try', 'B'], { env: childEnv() });
    expect(boot()).toBe('B');
    writeFileSync(node.cmdline, 'BOOT_IMAGE=/vmlinuz root=LABEL=kubedos-root-B rw panic=10 kubedos.slot=B\n');
    expect(slotWrite(['B', imageB.sha256, String(imageB.size)], image)).toMatchObject({ status: 1, out: expect.stringMatching(/slot B is the slot this system booted from/) });
    expect(sha(readPart(2))).toBe(a);
    expect(sha(readPart(3))).toBe(b);
    writeFileSync(node.cmdline, 'BOOT_IMAGE=/vmlinuz root=LABEL=kubedos-root-A rw panic=10 kubedos.slot=A\n');
    // Mounted (here read-only, in a private mount namespace the writer runs in).
    const mnt = mkdtempSync(join(root, 'mnt-'));
    const mounted = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -o ro "$1" "$2" || exit 9; shift 2; "$@" </dev/null; rc=$?; umount "$0"; exit $rc', mnt, part(3), mnt, WRITE, '--disk', node.dev, 'B', imageB.sha256, String(imageB.size)], { encoding: 'utf8', env: childEnv() });
    expect(mounted.status).toBe(1);
    expect(mounted.stderr).toMatch(new RegExp(`slot B \\(${part(3)}, \\d+:\\d+\\) is mounted: unmount it first; nothing was written`));
    expect(sha(readPart(2))).toBe(a);
    expect(sha(readPart(3))).toBe(b);
  });

  it('a writer killed mid-write (SIGKILL): the slot is half written, the boot environment untouched, the next boot is A', async () => {
    freshEnv();
    const before = readFileSync(node.env);
    execFileSync('dd', ['if=/dev/zero', `of=${part(3)}`, 'bs=1M', `count=${ROOT_MIB}`, 'conv=fsync', 'status=none']);
    const { signal, out } = await killSlotWriteMidWrite([WRITE, '--disk', node.dev, 'B', imageB.sha256, String(imageB.size)], childEnv(), image, () => readPart(3, MiB));
    expect(signal).toBe('SIGKILL');
    expect(leftovers()).toHaveLength(1); // SIGKILL cannot be trapped: its scratch folder stays
    rmSync(join(scratch(), leftovers()[0]!), { recursive: true });
    expect(out).toMatch(/writing \d+ bytes into slot B/);
    expect(out).not.toMatch(/holds/);
    expect(sha(readPart(3))).not.toBe(imageB.sha256); // half written
    expect(readFileSync(node.env).equals(before)).toBe(true);
    expect(bootStatus()).toMatchObject({ active: 'A', try: '' });
    expect([boot(), boot()]).toEqual(['A', 'A']);
    // The next write of the same image repairs the slot.
    expect(slotWrite(['B', imageB.sha256, String(imageB.size)], image).status).toBe(0);
    expect(boot()).toBe('B');
  });

  it('a writer stopped mid-write (SIGTERM, SIGHUP: a cancel, a dropped session) says so, leaves no scratch folder, stages nothing', async () => {
    for (const sig of ['SIGTERM', 'SIGHUP'] as const) {
      freshEnv();
      const before = readFileSync(node.env);
      execFileSync('dd', ['if=/dev/zero', `of=${part(3)}`, 'bs=1M', `count=${ROOT_MIB}`, 'conv=fsync', 'status=none']);
      const r = await killSlotWriteMidWrite([WRITE, '--disk', node.dev, 'B', imageB.sha256, String(imageB.size)], childEnv(), image, () => readPart(3, MiB), sig);
      expect(r.code, sig).toBe(sig === 'SIGTERM' ? 143 : 129);
      expect(r.out).toMatch(new RegExp(`interrupted by ${sig} while writing slot B; the boot environment is unchanged: the next boot is slot A`));
      expect(leftovers(), sig).toEqual([]);
      expect(readFileSync(node.env).equals(before)).toBe(true);
      expect([boot(), boot()]).toEqual(['A', 'A']);
    }
    // Every successful or refused run before this one removed its scratch folder too.
    expect(leftovers()).toEqual([]);
  });

  it('the connection closed mid-write (input ends short, no reader left for its output, no signal): exit 1 on the short stream, no scratch folder, nothing staged', async () => {
    freshEnv();
    const before = readFileSync(node.env);
    execFileSync('dd', ['if=/dev/zero', `of=${part(3)}`, 'bs=1M', `count=${ROOT_MIB}`, 'conv=fsync', 'status=none']);
    const r = await killSlotWriteMidWrite([WRITE, '--disk', node.dev, 'B', imageB.sha256, String(imageB.size)], childEnv(), image, () => readPart(3, MiB), 'drop');
    // Its verdict, not a signal: the SIGPIPE of a message nobody reads no longer ends (or loops) the writer.
    expect({ code: r.code, signal: r.signal }, r.out).toEqual({ code: 1, signal: null });
    expect(leftovers()).toEqual([]);
    expect(sha(readPart(3))).not.toBe(imageB.sha256);
    expect(readFileSync(node.env).equals(before)).toBe(true);
    expect(bootStatus()).toMatchObject({ active: 'A', try: '' });
    expect([boot(), boot()]).toEqual(['A', 'A']);
  });
});
