import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inodesInUse, inodesToPin, makeReproducibleExt4, mkfsArgs, renderTimePins } from './ext4';
import { sha256File } from './files';

const root = mkdtempSync(join(tmpdir(), 'kubedos-ext4-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const EPOCH = 1_700_000_000;
const IDS = { uuid: '0b6c3f4e-1d2a-4c5b-8e9f-0a1b2c3d4e5f', hashSeed: '5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b', label: 'kubedos-test' };

type Entry = { path: string; dir?: true; content?: string; mode?: number; symlink?: string; hardlinkOf?: string; owner?: [number, number] };

// Names that sort differently in the C locale and in en_US (B < a < b in C; a < B < b there), a
// space, an empty directory, an executable, a private file, a set-uid one, links of both kinds
// and a file large enough for several extents' worth of blocks.
const ENTRIES: Entry[] = [
  { path: 'etc', dir: true },
  { path: 'etc/B-config', content: 'upper\n' },
  { path: 'etc/a-config', content: 'lower\n' },
  { path: 'etc/with space.conf', content: 'x = 1\n' },
  { path: 'etc/secret', content: 'token\n', mode: 0o600 },
  { path: 'usr', dir: true },
  { path: 'usr/bin', dir: true },
  { path: 'usr/bin/tool', content: '#!/bin/sh\necho tool\n', mode: 0o755 },
  { path: 'usr/bin/suid', content: 'elf', mode: 0o4755 },
  { path: 'usr/share', dir: true },
  { path: 'usr/share/big.bin', content: 'kubedos '.repeat(40_000) },
  { path: 'bin', symlink: 'usr/bin' },
  { path: 'etc/hard', hardlinkOf: 'etc/a-config' },
  { path: 'var', dir: true },
  { path: 'var/empty', dir: true },
  { path: 'home', dir: true },
  { path: 'home/user', dir: true, owner: [1000, 1000] },
  { path: 'home/user/notes', content: 'mine\n', owner: [1000, 1000] },
];

/** Writes the tree in the given order, with its own file times (mtimes, atimes) and therefore its own ctimes. */
function writeTree(dir: string, entries: Entry[], times: (i: number) => [number, number]): void {
  mkdirSync(dir, { mode: 0o755 });
  // Parents first and hard links last whatever the order asked for; everything else in the order given.
  const depth = (e: Entry): number => e.path.split('/').length;
  const ordered = [...entries.filter((e) => e.dir).sort((a, b) => depth(a) - depth(b)), ...entries.filter((e) => !e.dir && !e.hardlinkOf), ...entries.filter((e) => e.hardlinkOf)];
  for (const e of ordered) {
    const p = join(dir, e.path);
    if (e.dir) mkdirSync(p, { mode: 0o755 });
    else if (e.symlink) symlinkSync(e.symlink, p);
    else if (e.hardlinkOf) linkSync(join(dir, e.hardlinkOf), p);
    else writeFileSync(p, e.content ?? '');
    if (e.mode !== undefined) chmodSync(p, e.mode);
    if (e.owner && process.getuid?.() === 0) chownSync(p, e.owner[0], e.owner[1]);
  }
  chmodSync(dir, 0o755);
  let i = 0;
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (!e.isSymbolicLink()) utimesSync(p, ...times(i++));
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
}

async function image(tree: string, name: string, epoch = EPOCH): Promise<string> {
  const out = join(root, `${name}.ext4`);
  await makeReproducibleExt4({ tree, out, sizeMiB: 16, ...IDS, sourceDateEpoch: epoch });
  return out;
}

function plainMkfs(tree: string, name: string): string {
  const out = join(root, `${name}.plain.ext4`);
  const [cmd, ...args] = mkfsArgs({ tree, out, sizeMiB: 16, ...IDS, sourceDateEpoch: EPOCH });
  execFileSync(cmd!, args, { env: { ...process.env, E2FSPROGS_FAKE_TIME: String(EPOCH), LC_ALL: 'C' }, stdio: 'pipe' });
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('inodesInUse / renderTimePins (pure)', () => {
  const dump = [
    'Inode count:              64',
    'First inode:              11',
    'Inodes per group:         32',
    '',
    'Group 0: (Blocks 1-8192) csum 0x8460',
    '  Free inodes: 14, 16-32',
    'Group 1: (Blocks 8193-16383) csum 0xc19e [INODE_UNINIT]',
    '  Free inodes: 33-64',
    '',
  ].join('\n');

  it('takes every inode not listed free, and pins the root directory plus the files (not the reserved ones)', () => {
    const { inUse, firstInode } = inodesInUse(dump);
    expect(inUse).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15]);
    expect(firstInode).toBe(11);
    expect(inodesToPin(inUse, firstInode)).toEqual([2, 11, 12, 13, 15]);
  });

  it('reads a full group (empty free list) and refuses output it cannot read', () => {
    expect(inodesInUse('Inode count: 4\nFirst inode: 3\n  Free inodes: \n').inUse).toEqual([1, 2, 3, 4]);
    expect(() => inodesInUse('nothing')).toThrow(/Inode count/);
    expect(() => inodesInUse('Inode count: 4\nFirst inode: 3\n')).toThrow(/no group/);
    expect(() => inodesInUse('Inode count: 4\nFirst inode: 3\n  Free inodes: 3-9\n')).toThrow(/outside 1-4/);
    expect(() => inodesInUse('Inode count: 64\nFirst inode: 11\nInodes per group: 32\n  Free inodes: 12-32\n')).toThrow(/1 group of 32 inodes for 64 inodes/);
  });

  it('clears the _extra words before setting each time, for every inode given', () => {
    const script = renderTimePins([2, 12], 1234).trim().split('\n');
    expect(script).toHaveLength(16);
    expect(script.slice(0, 8)).toEqual([
      'set_inode_field <2> ctime_extra 0', 'set_inode_field <2> atime_extra 0', 'set_inode_field <2> mtime_extra 0', 'set_inode_field <2> crtime_extra 0',
      'set_inode_field <2> ctime @1234', 'set_inode_field <2> atime @1234', 'set_inode_field <2> mtime @1234', 'set_inode_field <2> crtime @1234',
    ]);
    expect(() => renderTimePins([2], 1.5)).toThrow(/whole number/);
  });
});

describe('makeReproducibleExt4 (mkfs.ext4 -d + debugfs, e2fsprogs on the host)', () => {
  it('gives the same bytes for the same tree written at another time, in another order, with other file times', async () => {
    const a = join(root, 'tree-a');
    writeTree(a, ENTRIES, (i) => [EPOCH - 100 - i, EPOCH - 200 - i]);
    await sleep(1100); // every ctime of tree b is at least a second later than tree a's
    const b = join(root, 'tree-b');
    writeTree(b, [...ENTRIES].reverse(), (i) => [1_000_000 + 7 * i, 2_000_000_000 - i]);

    // The problem this module exists for: plain mkfs.ext4 -d copies the ctimes, so the bytes differ.
    expect(await sha256File(plainMkfs(a, 'a'))).not.toBe(await sha256File(plainMkfs(b, 'b')));

    const imgA = await image(a, 'a');
    const imgB = await image(b, 'b');
    expect(await sha256File(imgA)).toBe(await sha256File(imgB));

    // Clean for e2fsck, and every file's four times are the epoch, with no nanoseconds.
    execFileSync('e2fsck', ['-fn', imgA], { stdio: 'pipe' });
    for (const path of ['/', '/etc/a-config', '/bin', '/usr/share/big.bin', '/home/user/notes', '/lost+found']) {
      const stat = execFileSync('debugfs', ['-R', `stat ${path}`, imgA], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
      for (const f of ['ctime', 'atime', 'mtime', 'crtime']) expect(stat, `${path} ${f}`).toMatch(new RegExp(`^ *${f}: 0x${EPOCH.toString(16)}:00000000 `, 'm'));
    }
    const sb = execFileSync('dumpe2fs', ['-h', imgA], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    expect(sb).toMatch(/^Last write time:\s+Tue Nov 14 22:13:20 2023$/m);
    expect(sb).toMatch(/^Filesystem created:\s+Tue Nov 14 22:13:20 2023$/m);
    if (process.getuid?.() === 0) {
      expect(execFileSync('debugfs', ['-R', 'stat /home/user/notes', imgA], { stdio: ['ignore', 'pipe', 'ignore'] }).toString()).toMatch(/User:\s+1000\s+Group:\s+1000/);
    }
  });

  it('gives other bytes when a file content, a mode or the epoch changes', async () => {
    const base = join(root, 'tree-base');
    writeTree(base, ENTRIES, () => [EPOCH, EPOCH]);
    const reference = await sha256File(await image(base, 'base'));

    const content = join(root, 'tree-content');
    writeTree(content, ENTRIES.map((e) => (e.path === 'etc/a-config' ? { ...e, content: 'lowes\n' } : e)), () => [EPOCH, EPOCH]);
    const mode = join(root, 'tree-mode');
    writeTree(mode, ENTRIES.map((e) => (e.path === 'usr/bin/tool' ? { ...e, mode: 0o750 } : e)), () => [EPOCH, EPOCH]);

    const digests = [await sha256File(await image(content, 'content')), await sha256File(await image(mode, 'mode')), await sha256File(await image(base, 'epoch', EPOCH + 1))];
    expect(new Set([reference, ...digests]).size).toBe(4);
  });
});
