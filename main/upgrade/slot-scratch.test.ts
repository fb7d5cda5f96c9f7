// This run's slot image folder in the cluster's workspace (slot-scratch.ts): private, gone on
// close() and on the process's exit, and the folders of dead runs removed by the next run while a
// live run's folder stays.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import { openSlotScratch } from './slot-scratch';

afterAll(removeTempDirs);

/** A pid that was just used and is gone (its process exited and was reaped). */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}

describe('the slot image folder of an upgrade run', () => {
  it('is <workspace>/upgrade-scratch/run-<pid>, 0700; close() removes it; a dead run\'s folder goes, a live run\'s stays', async () => {
    const ws = tempDir('kd-h18s-scratch-');
    const parent = join(ws, 'upgrade-scratch');
    const dead = deadPid();
    const live = spawn('sleep', ['30']);
    try {
      for (const pid of [dead, live.pid!]) {
        mkdirSync(join(parent, `run-${pid}`, 'kubedos-slot-x'), { recursive: true });
        writeFileSync(join(parent, `run-${pid}`, 'kubedos-slot-x', 'root-b.ext4'), 'a slot image');
      }
      mkdirSync(join(parent, 'notes'));
      const s = openSlotScratch(ws);
      expect(s.dir).toBe(join(parent, `run-${process.pid}`));
      expect(statSync(s.dir).mode & 0o777).toBe(0o700);
      expect(statSync(parent).mode & 0o777).toBe(0o700);
      expect(s.removedStale).toEqual([`run-${dead}`]);
      expect(readdirSync(parent).sort()).toEqual(['notes', `run-${live.pid}`, `run-${process.pid}`].sort());
      writeFileSync(join(s.dir, 'x'), 'y');
      s.close();
      s.close();
      expect(existsSync(s.dir)).toBe(false);
      expect(readdirSync(parent).sort()).toEqual(['notes', `run-${live.pid}`].sort());
    } finally {
      live.kill('SIGKILL');
    }
  });

  it('a process that exits without close() (process.exit from a second Ctrl-C) takes its folder with it', () => {
    const ws = tempDir('kd-h18s-scratch-exit-');
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { openSlotScratch } from ${JSON.stringify(join(import.meta.dirname, 'slot-scratch.ts'))}; import { writeFileSync } from 'node:fs'; const s = openSlotScratch(${JSON.stringify(ws)}); writeFileSync(s.dir + '/root-b.ext4', 'x'); console.log(s.dir); process.exit(130);`], { encoding: 'utf8', cwd: join(import.meta.dirname, '../..') });
    expect(child.status, child.stderr).toBe(130);
    const dir = child.stdout.trim();
    expect(dir).toMatch(/\/upgrade-scratch\/run-\d+$/);
    expect(existsSync(dir)).toBe(false);
  });
});
