// USB sticks on real loop devices (root): write a portable stick, verify it, flip one byte on the
// device and see verify name the range, run the CLI from the mounted stick, and the refusals — a
// mounted device, a device smaller than the image, a stick pulled mid-write. (Fake-capacity
// detection is proven in main/usb/usb.test.ts against a wrapping device in memory: this kernel has
// no device-mapper to build a wrapping block device.)
//
// Loop devices are shown as removable only through the test's explicit device list
// (main/usb/testing.ts loopAsStick); the production rule never lists a loop device.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleFixture, writeFakeBuild } from '../../main/bundle/testing';
import type { BundleFixture } from '../../main/bundle/testing';
import { writeBundle } from '../../main/bundle/write';
import { DeviceRefused, listUsbDevices, openReceipt, receiptsDir, StickError, usbVerify, usbWrite } from '../../main/usb/index';
import type { UsbProgress, UsbWriteResult } from '../../main/usb/index';
import { loopAsStick } from '../../main/usb/testing';

const MIB = 1024 * 1024;
const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8' }).trim();

let root: string;
let fx: BundleFixture;
let artifact: string;
let bundle: string;
const loops: string[] = [];
const mounts: string[] = [];

function backing(name: string, mib: number): string {
  const f = join(root, `${name}.img`);
  writeFileSync(f, '');
  truncateSync(f, mib * MIB);
  return f;
}
function attach(file: string): string {
  const dev = sh('losetup', ['-f', '--show', file]);
  loops.push(dev);
  return dev;
}
const sha256Of = (path: string, bytes: number): string => createHash('sha256').update(readFileSync(path).subarray(0, bytes)).digest('hex');

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'kubedos-usb-lab-'));
  fx = await bundleFixture(join(root, 'ws'));
  bundle = writeBundle(fx).dir;
  artifact = join(root, 'artifact');
  writeFakeBuild(artifact, fx.plan, fx.specText, fx.signingKey, true);
});

afterAll(() => {
  // By the names and paths this file created, whatever happened above.
  for (const m of mounts.reverse()) {
    try {
      execFileSync('umount', [m], { stdio: 'ignore' });
    } catch {
      /* not mounted */
    }
  }
  for (const l of loops) {
    try {
      execFileSync('losetup', ['-d', l], { stdio: 'ignore' });
    } catch {
      /* already detached */
    }
  }
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('kubedos usb on loop devices', () => {
  let stick: string;
  let stickFile: string;
  let written: UsbWriteResult;

  it('writes a stick: probe, O_DIRECT write and read-back, progress with MB/s and ETA, a signed receipt', async () => {
    stickFile = backing('stick', 400);
    stick = attach(stickFile);
    const source = loopAsStick([stick]);
    expect((await listUsbDevices({ source })).map((d) => d.identity.path)).toContain(stick);
    expect((await listUsbDevices()).map((d) => d.identity.path)).not.toContain(stick); // the production rule
    const events: UsbProgress[] = [];
    written = await usbWrite({ device: stick, artifact, bundle, env: fx.env, source, onProgress: (p) => events.push(p) });
    const size = written.receipt.image.size;
    expect(written.ranges.length).toBe(Math.ceil(size / (64 * MIB)));
    expect(events.map((e) => e.phase)).toEqual(expect.arrayContaining(['probe', 'write', 'done']));
    expect(events.some((e) => e.phase === 'write' && e.mbPerSec > 0 && e.etaSeconds !== undefined)).toBe(true);
    expect(events.at(-1)).toMatchObject({ phase: 'done', written: size, verified: size });
    // The device holds the image: the receipt's digest is the sha256 of the device's first `size` bytes.
    expect(sha256Of(stickFile, size)).toBe(written.imageSha256);
    const opened = openReceipt(readFileSync(written.receiptPath, 'utf8'), { publicKeyPem: fx.signingKey.publicKeyPem });
    expect(opened.receipt.image.sha256).toBe(written.imageSha256);
    expect(opened.receipt.device).toMatchObject({ path: stick, name: stick.split('/').pop(), size: 400 * MIB });
    expect(opened.receipt.checks.capacityProbe.offsets).toBe(16 + 9); // spread + 1…256 MiB
  });

  it('the stick mounts and its CLI verifies the artifact and the bundle on it', () => {
    const mnt = mkdtempSync(join(root, 'mnt-'));
    sh('mount', ['-o', 'ro,loop,offset=1048576', stick, mnt]);
    mounts.push(mnt);
    expect(readdirSync(mnt).sort()).toEqual(['README.txt', 'STICK.json', 'artifact', 'bundle', 'kubedos', 'lost+found']);
    const cli = join(mnt, 'kubedos/bin/kubedos.mjs');
    expect(sh('node', [cli, 'verify', join(mnt, 'artifact')])).toMatch(/^verify ok: \d+ files match/m);
    expect(sh('node', [cli, 'verify', join(mnt, 'bundle')])).toMatch(/verify ok: recovery bundle of lab-3/);
    sh('umount', [mnt]);
    mounts.pop();
  });

  it('verify passes on the untouched stick, then names the range holding one flipped byte (engine and CLI)', async () => {
    const source = loopAsStick([stick]);
    const ok = await usbVerify({ device: stick, env: fx.env, source });
    expect(ok).toMatchObject({ ok: true, bad: [] });
    expect(ok.checked).toBe(written.ranges.length);
    // The CLI, with lsblk's real list (verify reads; it does not need a removable disk).
    const cli = (args: string[]): { status: number | null; stdout: string; stderr: string } => spawnSync('node', [join(process.cwd(), 'bin/kubedos.mjs'), ...args], { encoding: 'utf8', env: { ...process.env, ...fx.env } });
    const listed = JSON.parse(cli(['usb', 'list', '--all', '--json']).stdout) as { identity: { path: string }; refusals: string[] }[];
    expect(listed.find((d) => d.identity.path === stick)?.refusals).toContain('it is a loop, not a whole disk');
    const good = cli(['usb', 'verify', stick, '--receipt', written.receiptPath]);
    expect(good.stdout).toMatch(new RegExp(`usb verify ok: ${stick} .*: ${written.ranges.length} ranges match the receipt`));
    expect(good.status).toBe(0);
    const at = 64 * MIB + 12345; // inside range 1
    const old = readFileSync(stickFile).subarray(at, at + 1)[0]!;
    execFileSync('dd', [`of=${stick}`, 'bs=1', `seek=${at}`, 'count=1', 'conv=notrunc', 'status=none'], { input: Buffer.from([old ^ 0xff]) });
    const bad = await usbVerify({ device: stick, env: fx.env, source });
    expect(bad.ok).toBe(false);
    expect(bad.bad.map((b) => b.index)).toEqual([1]);
    expect(bad.bad[0]).toMatchObject({ offset: 64 * MIB, expected: written.ranges[1]!.sha256 });
    const failed = cli(['usb', 'verify', stick]); // the receipt kept in the workspace for this stick
    expect(failed.stderr).toContain(`usb verify FAILED: ${stick}`);
    expect(failed.stderr).toContain('1 range differs: range 1 (bytes 67108864–');
    expect(failed.status).toBe(1);
  });

  it('refuses a mounted device, even with --force, before writing anything', async () => {
    // ext4 on the first 32 MiB (mounting writes its superblock); a pattern on the rest, which a
    // write (its capacity probe covers the whole device) would change.
    const file = backing('mounted', 64);
    writeFileSync(file, Buffer.alloc(64 * MIB, 0x5a));
    sh('mkfs.ext4', ['-q', '-F', file, '32M']);
    const dev = attach(file);
    const mnt = mkdtempSync(join(root, 'mnt-'));
    sh('mount', [dev, mnt]);
    mounts.push(mnt);
    const source = loopAsStick([dev]);
    expect((await listUsbDevices({ source })).map((d) => d.identity.path)).not.toContain(dev);
    for (const force of [false, true]) {
      await expect(usbWrite({ device: dev, artifact, bundle, env: fx.env, source, force })).rejects.toThrow(new RegExp(`refusing to write ${dev}.*it is mounted \\(${mnt}\\): unmount it first`));
    }
    sh('umount', [mnt]);
    mounts.pop();
    expect(readFileSync(file).subarray(32 * MIB).every((b) => b === 0x5a)).toBe(true);
  });

  it('refuses a device smaller than the image before writing anything', async () => {
    const file = backing('small', 48);
    writeFileSync(file, Buffer.alloc(48 * MIB, 0x5a));
    const dev = attach(file);
    const err = await usbWrite({ device: dev, artifact, bundle, env: fx.env, source: loopAsStick([dev]) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceRefused);
    expect((err as Error).message).toMatch(/is too small: the image is \d+ MB, the stick 50 MB\. Nothing was written/);
    expect(readFileSync(file).every((b) => b === 0x5a)).toBe(true);
  });

  it('a stick pulled mid-write fails the write and gets no receipt', async () => {
    const file = backing('pulled', 400);
    const dev = attach(file);
    const receipts = readdirSync(receiptsDir(fx.env)).sort();
    // `losetup -d` on an open loop device only marks it for removal when closed (writes go on), so
    // the pull is simulated by shrinking the device to nothing: every later I/O fails, as on a
    // stick that is gone.
    const err = await usbWrite({
      device: dev,
      artifact,
      bundle,
      env: fx.env,
      source: loopAsStick([dev]),
      afterBytes: {
        bytes: 32 * MIB,
        fn: async () => {
          truncateSync(file, 0);
          execFileSync('losetup', ['-c', dev]);
        },
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StickError);
    expect((err as Error).message).toMatch(new RegExp(`writing ${dev} failed at \\d+ MB of \\d+ MB \\((ENOSPC|EIO)[^)]*\\): the stick was removed or has failed\\. The stick is NOT good: no receipt was written`));
    expect(readdirSync(receiptsDir(fx.env)).sort()).toEqual(receipts);
  });
});
