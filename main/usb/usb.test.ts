import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { keyidOf } from '../build/keys';
import type { LsblkDevice } from './devices';
import { eligibility, listUsbDevices, LsblkOutput, pickDevice } from './devices';
import type { UsbReceipt } from './receipt';
import { openReceipt, receiptFileName, signReceipt } from './receipt';
import type { ProbeIo } from './write';
import { describeBad, probeCapacity, StickError } from './write';

const GB = 1_000_000_000;
const disk = (over: Partial<LsblkDevice>): LsblkDevice => ({ name: 'sdb', path: '/dev/sdb', type: 'disk', size: 16 * GB, rm: true, hotplug: true, ro: false, tran: 'usb', model: 'Cruzer', serial: 'ABC123', mountpoints: [null], 'log-sec': 512, ...over });

describe('which disks may be written', () => {
  it('parses lsblk --json of both util-linux styles (booleans, and "0"/"1" strings)', () => {
    const out = LsblkOutput.parse({ blockdevices: [{ name: 'sdb', path: '/dev/sdb', type: 'disk', size: '1000', rm: '1', hotplug: '0', ro: '0', tran: 'usb', model: 'X  ', serial: null, vendor: null, wwn: null, mountpoints: [null], 'log-sec': 512 }] });
    expect(out.blockdevices[0]).toMatchObject({ size: 1000, rm: true, hotplug: false, model: 'X' });
    expect(out.blockdevices[0]!.serial).toBeUndefined();
  });

  it('a removable, unmounted USB disk may be written', () => {
    expect(eligibility(disk({})).refusals).toEqual([]);
    expect(eligibility(disk({ rm: false, hotplug: true, tran: 'usb' })).removable).toBe(true);
  });

  it('the system disk, a mounted disk (through a partition or an LVM child), a read-only or empty one are refused even with force', async () => {
    const root = disk({ name: 'sda', path: '/dev/sda', rm: false, hotplug: false, tran: 'sata', children: [{ ...disk({ name: 'sda1', path: '/dev/sda1', type: 'part' }), mountpoints: ['/'] }] });
    const mounted = disk({ children: [{ ...disk({ name: 'sdb1', path: '/dev/sdb1', type: 'part' }), children: [{ ...disk({ name: 'vg-x', path: '/dev/mapper/vg-x', type: 'lvm' }), mountpoints: ['/media/x'] }] }] });
    const ro = disk({ name: 'sdc', path: '/dev/sdc', ro: true });
    const empty = disk({ name: 'sdd', path: '/dev/sdd', size: 0 });
    const source = async (): Promise<LsblkDevice[]> => [root, mounted, ro, empty];
    expect(eligibility(root).hardRefusals).toEqual(['it holds the running system (/ is mounted from it)']);
    expect(eligibility(mounted).hardRefusals).toEqual(['it is mounted (/media/x): unmount it first']);
    expect(await listUsbDevices({ source })).toEqual([]);
    expect((await listUsbDevices({ source, all: true })).map((d) => d.identity.path)).toEqual(['/dev/sda', '/dev/sdb', '/dev/sdc', '/dev/sdd']);
    for (const [path, why] of [
      ['/dev/sda', /holds the running system/],
      ['/dev/sdb', /it is mounted \(\/media\/x\)/],
      ['/dev/sdc', /read-only/],
      ['/dev/sdd', /no medium/],
    ] as const) {
      await expect(pickDevice(path, { source, force: true })).rejects.toThrow(why);
    }
  });

  it('a fixed disk needs --force; a loop device or a partition is never a stick', async () => {
    const fixed = disk({ name: 'sde', path: '/dev/sde', rm: false, hotplug: false, tran: 'sata' });
    const loop = disk({ name: 'loop0', path: '/dev/loop0', type: 'loop', rm: false, hotplug: false, tran: undefined });
    const source = async (): Promise<LsblkDevice[]> => [fixed, loop];
    await expect(pickDevice('/dev/sde', { source })).rejects.toThrow(/not a removable disk.*pass --force/);
    expect((await pickDevice('/dev/sde', { source, force: true })).identity.path).toBe('/dev/sde');
    await expect(pickDevice('/dev/loop0', { source, force: true })).rejects.toThrow(/it is a loop, not a whole disk/);
    await expect(pickDevice('/dev/sde1', { source })).rejects.toThrow(/not a disk lsblk knows/);
  });
});

function receipt(keyid: string): UsbReceipt {
  return {
    apiVersion: 'kubedos.ca/v1alpha1',
    kind: 'UsbWriteReceipt',
    cluster: 'lab-3',
    image: { sha256: 'a'.repeat(64), size: 128 * 1024 * 1024, layout: 'mbr+ext4/v1', workbench: 'cli' },
    device: { path: '/dev/sdb', name: 'sdb', size: 16 * GB, model: 'Cruzer', serial: 'ABC123', logicalSectorSize: 512 },
    rangeSize: 64 * 1024 * 1024,
    ranges: [0, 1].map((i) => ({ index: i, offset: i * 64 * 1024 * 1024, length: 64 * 1024 * 1024, sha256: String(i).repeat(64) })),
    checks: { capacityProbe: { offsets: 16, ok: true }, readBack: 'O_DIRECT, every byte compared with the image, after a flush', firstRegionWrittenLast: true },
    signingKeyId: keyid,
  };
}

describe('the write receipt', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const key = { privateKey, publicKeyPem, keyid: keyidOf(publicKeyPem) };

  it('signs deterministically and opens with its key', () => {
    const a = signReceipt(receipt(key.keyid), key);
    expect(signReceipt(receipt(key.keyid), key)).toEqual(a);
    expect(openReceipt(JSON.stringify(a), { publicKeyPem }).receipt.ranges[1]!.sha256).toBe('1'.repeat(64));
  });

  it('refuses a changed range hash, another key, and garbage', () => {
    const file = signReceipt(receipt(key.keyid), key);
    const payload = JSON.parse(Buffer.from(file.envelope.payload, 'base64').toString('utf8')) as UsbReceipt;
    payload.ranges[1]!.sha256 = '2'.repeat(64);
    const forged = { ...file, envelope: { ...file.envelope, payload: Buffer.from(JSON.stringify(payload)).toString('base64') } };
    expect(() => openReceipt(JSON.stringify(forged))).toThrow(/signature does not verify/);
    const other = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string;
    expect(() => openReceipt(JSON.stringify(file), { publicKeyPem: other })).toThrow(/not by the key given/);
    expect(() => openReceipt('{"kind":"nope"}', { file: 'r.json' })).toThrow(/^r.json is not a USB write receipt/);
  });

  it('is kept under a name that says which stick', () => {
    expect(receiptFileName({ name: 'sdb', size: 1, model: 'Cruzer Blade', serial: '4C53/0001' })).toBe('Cruzer_Blade-4C53_0001.receipt.json');
    expect(receiptFileName({ name: 'sdb', size: 16 * GB })).toBe(`sdb-${16 * GB}.receipt.json`);
  });
});

describe('fake-capacity probe', () => {
  const dev = { path: '/dev/sdx', name: 'sdx', size: 0, logicalSectorSize: 512 };
  /** A stick that claims `claimed` bytes but stores `real`: addresses wrap (or writes past it are dropped). */
  function fakeStick(real: number, wrap: boolean): ProbeIo {
    const mem = Buffer.alloc(real);
    return {
      write: async (b, at) => {
        if (wrap) b.copy(mem, at % real);
        else if (at < real) b.copy(mem, at);
      },
      read: async (b, at) => {
        if (wrap) mem.copy(b, 0, at % real, (at % real) + b.length);
        else if (at < real) mem.copy(b, 0, at, at + b.length);
        else b.fill(0);
      },
      flush: async () => undefined,
    };
  }
  const bufs = (): [Buffer, Buffer] => [Buffer.alloc(4096), Buffer.alloc(4096)];

  it('passes an honest stick', async () => {
    const claimed = 64 * 1024 * 1024;
    expect(await probeCapacity(fakeStick(claimed, false), dev, claimed, ...bufs())).toBe(16 + 6); // spread + 1…32 MiB
  });

  it('names a stick that wraps its addresses', async () => {
    const claimed = 64 * 1024 * 1024;
    for (const real of [claimed / 4, claimed / 2]) {
      await expect(probeCapacity(fakeStick(real, true), dev, claimed, ...bufs())).rejects.toThrow(
        /claims 67 MB, but the block written at 0 MB reads back as what was written at \d+ MB \(the stick wraps its addresses\): a fake-capacity stick.*Nothing of the image was written/,
      );
    }
  });

  it('names a stick that drops writes past its real size', async () => {
    const claimed = 64 * 1024 * 1024;
    const err = await probeCapacity(fakeStick(claimed / 2, false), dev, claimed, ...bufs()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StickError);
    expect((err as Error).message).toMatch(/reads back as zeros: a fake-capacity stick \(its real size is below 34 MB\)/);
  });
});

describe('bad ranges in messages', () => {
  it('names the first five and counts the rest', () => {
    const bad = Array.from({ length: 7 }, (_, i) => ({ index: i, offset: i * 64 * 1024 * 1024, length: 64 * 1024 * 1024, expected: 'a', actual: 'b' }));
    expect(describeBad(bad.slice(1, 2))).toBe('1 range differs: range 1 (bytes 67108864–134217727, 67 MB–134 MB)');
    expect(describeBad(bad)).toMatch(/^7 ranges differ: range 0 .*range 4 \(.*\) and 2 more$/);
  });
});
