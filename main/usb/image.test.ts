import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MANIFEST_FILE } from '../build/attest';
import { buildStickImage, FIRST_REGION_BYTES } from './image';

const root = mkdtempSync(join(tmpdir(), 'kubedos-stick-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const EPOCH = 1_700_000_000;

/** A small stand-in for a build directory (the stick only reads its manifest's cluster and epoch). */
function artifact(name: string, iso: string, times: [number, number]): string {
  const dir = join(root, name);
  mkdirSync(join(dir, 'isos'), { recursive: true });
  writeFileSync(join(dir, MANIFEST_FILE), `${JSON.stringify({ cluster: 'lab-1', sourceDateEpoch: EPOCH, artifactVersion: '1.0.0' })}\n`);
  writeFileSync(join(dir, 'isos/control.iso'), iso);
  writeFileSync(join(dir, 'isos/worker.iso'), 'worker '.repeat(10_000));
  for (const p of [MANIFEST_FILE, 'isos/control.iso', 'isos/worker.iso', 'isos']) utimesSync(join(dir, p), ...times);
  return dir;
}

describe('buildStickImage (the stick filesystem through build/ext4.ts)', () => {
  it('is byte for byte the same for the same inputs built a second later from other copies; another file gives another image', async () => {
    const appImage = join(root, 'Kubedos-1.0.0.AppImage');
    writeFileSync(appImage, 'not really an AppImage\n');
    chmodSync(appImage, 0o755);
    const first = await buildStickImage({ artifact: artifact('a1', 'control', [EPOCH - 5, EPOCH - 9]), appImage });
    await new Promise((r) => setTimeout(r, 1100)); // every file of the second stick's tree is made a second later
    const second = await buildStickImage({ artifact: artifact('a2', 'control', [1_000_000, 2_000_000]), appImage });
    const other = await buildStickImage({ artifact: artifact('a3', 'contrOl', [EPOCH, EPOCH]), appImage });
    try {
      expect(second.size).toBe(first.size);
      expect(second.sha256).toBe(first.sha256);
      expect(other.sha256).not.toBe(first.sha256);
      // The filesystem inside is clean and its files carry the artifact's epoch as their change time.
      const fs = join(root, 'part1.ext4');
      execFileSync('dd', [`if=${first.path}`, `of=${fs}`, 'bs=1M', `skip=${FIRST_REGION_BYTES / (1024 * 1024)}`, 'status=none']);
      execFileSync('e2fsck', ['-fn', fs], { stdio: 'pipe' });
      const stat = execFileSync('debugfs', ['-R', 'stat /artifact/isos/control.iso', fs], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
      expect(stat).toMatch(new RegExp(`^ *ctime: 0x${EPOCH.toString(16)}:00000000 `, 'm'));
    } finally {
      for (const s of [first, second, other]) s.dispose();
    }
  });
});
