import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { renderUdebSourcesList } from './apt-sources';
import { udebLockStale } from './index';
import type { InstallerInfo, Stanza, UdebLock } from './udebs';
import { extrasSha256, installerInfo, installerInfoFromStatus, kernelAbiOf, parseExtras, parseStanzas, readNewc, selectUdebs } from './udebs';

/** A newc archive built by hand (the format the kernel and cpio -H newc use). */
function newc(files: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  const pad = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);
  let ino = 1;
  const entry = (name: string, data: Buffer, mode: number): void => {
    const hex = (n: number): string => n.toString(16).padStart(8, '0');
    const nameBytes = Buffer.from(`${name}\0`);
    const header = `070701${hex(ino++)}${hex(mode)}${hex(0)}${hex(0)}${hex(1)}${hex(0)}${hex(data.length)}${hex(0)}${hex(0)}${hex(0)}${hex(0)}${hex(nameBytes.length)}${hex(0)}`;
    parts.push(Buffer.from(header, 'latin1'), nameBytes, pad(110 + nameBytes.length), data, pad(data.length));
  };
  for (const [name, text] of Object.entries(files)) entry(name, Buffer.from(text), 0o100644);
  entry('TRAILER!!!', Buffer.alloc(0), 0);
  const body = Buffer.concat(parts);
  return Buffer.concat([body, Buffer.alloc((512 - (body.length % 512)) % 512)]);
}

const SHA = (c: string): string => c.repeat(64);
const pkg = (name: string, extra: Partial<Stanza> = {}): Stanza => ({
  Package: name,
  Version: '1.0',
  Architecture: 'amd64',
  Priority: 'optional',
  Filename: `pool/main/x/${name}/${name}_1.0_amd64.udeb`,
  Size: '100',
  SHA256: SHA('a'),
  ...extra,
});

const info: InstallerInfo = { kernelAbi: '6.1.0-50-amd64', kernelVersion: '6.1.176-1', installed: { 'kernel-image-6.1.0-50-amd64-di': '6.1.176-1', 'libc6-udeb': '2.36', anna: '1.91' }, provides: ['installed-virtual'] };

describe('installer udebs', () => {
  it('parses deb822 stanzas with continuation lines', () => {
    const s = parseStanzas('Package: a\nVersion: 1\nDescription: x\n more\n\nPackage: b\nDepends: a, c | d\n\n\n');
    expect(s).toEqual([
      { Package: 'a', Version: '1', Description: 'x\n more' },
      { Package: 'b', Depends: 'a, c | d' },
    ]);
  });

  it('reads one member out of concatenated newc archives and rejects non-cpio data', () => {
    const a = newc({ 'init': '#!/bin/sh\n', 'var/lib/dpkg/status': 'first' });
    const b = newc({ './preseed.cfg': 'd-i x\n' });
    const got = readNewc(Buffer.concat([a, b]), (n) => n === 'var/lib/dpkg/status' || n === 'preseed.cfg');
    expect(got.get('var/lib/dpkg/status')?.toString()).toBe('first');
    expect(got.get('preseed.cfg')?.toString()).toBe('d-i x\n');
    expect(got.has('init')).toBe(false);
    expect(() => readNewc(Buffer.from('not a cpio archive at all'.repeat(10)), () => true)).toThrow(/not a newc cpio/);
  });

  it('takes the kernel ABI and installed udebs from the initrd dpkg status', () => {
    const status = 'Package: anna\nStatus: install ok installed\nVersion: 1.91\n\nPackage: kernel-image-6.1.0-50-amd64-di\nVersion: 6.1.176-1\nProvides: kernel-image\n\nPackage: ext4-modules-6.1.0-50-amd64-di\nVersion: 6.1.176-1\nProvides: ext2-modules, ext4-modules\n';
    const i = installerInfo(gzipSync(newc({ 'var/lib/dpkg/status': status })));
    expect(i.kernelAbi).toBe('6.1.0-50-amd64');
    expect(i.kernelVersion).toBe('6.1.176-1');
    expect(i.installed.anna).toBe('1.91');
    expect(i.provides).toEqual(['ext2-modules', 'ext4-modules', 'kernel-image']);
    expect(() => installerInfoFromStatus('Package: anna\nVersion: 1\n')).toThrow(/no kernel-image/);
    expect(() => installerInfo(gzipSync(newc({ init: '' })))).toThrow(/no var\/lib\/dpkg\/status/);
  });

  it('knows the kernel ABI of a module udeb from Kernel-Version or its name', () => {
    expect(kernelAbiOf(pkg('ext4-modules-6.1.0-47-amd64-di', { 'Kernel-Version': '6.1.0-47-amd64' }))).toBe('6.1.0-47-amd64');
    expect(kernelAbiOf(pkg('nic-modules-6.1.0-50-amd64-di'))).toBe('6.1.0-50-amd64');
    expect(kernelAbiOf(pkg('partman-base'))).toBeUndefined();
  });

  it('selects standard+ udebs of the installer kernel, extras and their dependencies, minus the initrd', () => {
    const index = [
      pkg('partman-base', { Priority: 'standard', Depends: 'libparted2-udeb, partman-utils (>= 1)' }),
      pkg('libparted2-udeb'),
      pkg('partman-utils', { Depends: 'libc6-udeb' }),
      pkg('anna', { Priority: 'standard' }),
      pkg('ext4-modules-6.1.0-50-amd64-di', { Priority: 'standard', 'Kernel-Version': '6.1.0-50-amd64', Depends: 'kernel-image-6.1.0-50-amd64-di, crc-modules-6.1.0-50-amd64-di' }),
      pkg('crc-modules-6.1.0-50-amd64-di', { 'Kernel-Version': '6.1.0-50-amd64' }),
      pkg('ext4-modules-6.1.0-47-amd64-di', { Priority: 'standard', 'Kernel-Version': '6.1.0-47-amd64' }),
      pkg('apt-mirror-setup', { Architecture: 'all', Depends: 'apt-setup-udeb' }),
      pkg('apt-setup-udeb', { Priority: 'standard', Depends: 'missing-thing | installed-virtual' }),
      pkg('grub-installer', { Priority: 'standard', Depends: 'fs-tools | e2fsprogs-udeb' }),
      pkg('e2fsprogs-udeb', { Provides: 'fs-tools' }),
      pkg('xfsprogs-udeb', { Provides: 'fs-tools' }),
      pkg('unwanted-udeb'),
      pkg('i386-only', { Priority: 'standard', Architecture: 'i386' }),
    ];
    const sel = selectUdebs(index, info, ['apt-mirror-setup', 'anna', 'no-such-udeb']);
    expect(sel.udebs.map((u) => `${u.name}:${u.reason}`)).toEqual([
      'apt-mirror-setup:extra',
      'apt-setup-udeb:priority',
      'crc-modules-6.1.0-50-amd64-di:dependency',
      'e2fsprogs-udeb:dependency',
      'ext4-modules-6.1.0-50-amd64-di:priority',
      'grub-installer:priority',
      'libparted2-udeb:dependency',
      'partman-base:priority',
      'partman-utils:dependency',
    ]);
    expect(sel.missingExtras).toEqual(['no-such-udeb']);
    expect(sel.unsatisfied).toEqual([]);
    expect(sel.udebs[0]).toMatchObject({ filename: 'apt-mirror-setup_1.0_amd64.udeb', sha256: SHA('a'), size: 100, version: '1.0', architecture: 'all' });
  });

  it('reports dependencies nothing satisfies and index records without hashes', () => {
    expect(selectUdebs([pkg('a', { Priority: 'required', Depends: 'ghost' })], info, []).unsatisfied).toEqual(['a → ghost']);
    expect(() => selectUdebs([pkg('a', { Priority: 'required', SHA256: 'x' })], info, [])).toThrow(/a has no SHA256/);
  });

  it('parses the extras list and names a bad line', () => {
    expect(parseExtras('# c\napt-mirror-setup\n\n  partman-lvm # why\n')).toEqual(['apt-mirror-setup', 'partman-lvm']);
    expect(() => parseExtras('ok\nBad Name\n')).toThrow(/installer-udebs\.txt:2: "Bad Name"/);
  });

  it('knows when a lock no longer fits the installer or the extras', () => {
    const lock: UdebLock = { apiVersion: 'kubedos.ca/v1alpha1', kind: 'InstallerUdebLock', codename: 'bookworm', architecture: 'amd64', installer: { initrdSha256: SHA('1'), kernelAbi: '6.1.0-50-amd64', kernelVersion: '6.1.176-1' }, extrasSha256: extrasSha256('a\n'), udebs: [] };
    expect(udebLockStale(lock, SHA('1'), 'a\n')).toBeUndefined();
    expect(udebLockStale(lock, SHA('2'), 'a\n')).toMatch(/installer initrd changed \(lock: kernel 6\.1\.0-50-amd64/);
    expect(udebLockStale(lock, SHA('1'), 'b\n')).toMatch(/installer-udebs\.txt changed/);
    expect(udebLockStale(undefined, SHA('1'), '')).toMatch(/no lock/);
  });

  it('points the private apt at the codename main/debian-installer index only', () => {
    const text = renderUdebSourcesList(
      [
        { uri: 'http://mirror.invalid/debian', suite: 'bookworm-updates', components: ['main'] },
        { uri: 'http://mirror.invalid/debian', suite: 'bookworm', components: ['main'], signedBy: '/k.gpg' },
      ],
      'bookworm',
    );
    expect(text).toBe('deb [arch=amd64 signed-by=/k.gpg] http://mirror.invalid/debian bookworm main/debian-installer\n');
    expect(() => renderUdebSourcesList([{ uri: 'http://mirror.invalid/debian', suite: 'bookworm-security', components: ['main'] }], 'bookworm')).toThrow(/no apt source/);
  });
});
