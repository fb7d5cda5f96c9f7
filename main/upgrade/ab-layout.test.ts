import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AB_ESP_MIB, AB_MIN_DATA_MIB, AB_MIN_DISK_GIB, abDataMiB, ROOT_MIB } from '../../common/upgrade/ab-size';
import { abDiskBytes, abPartitions, GPT_TYPES, renderAbPartitionTable } from './ab-layout';

const root = mkdtempSync(join(tmpdir(), 'h18-ab-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const input = { cluster: 'lab-3', role: 'worker', espMiB: 64, rootMiB: 2048, dataMiB: 256 };

describe('A/B disk layout', () => {
  it('fills the first disk exactly: the image of a role is the size of its smallest disk, never larger (a truncated GPT leaves the kernel no partitions)', () => {
    for (const gib of [AB_MIN_DISK_GIB, 8, 10, 12, 64]) {
      const layout = { cluster: 'lab-3', role: 'master', espMiB: AB_ESP_MIB, rootMiB: ROOT_MIB, dataMiB: abDataMiB(gib) };
      expect(abDiskBytes(layout), `${gib} GiB`).toBe(gib * 1024 ** 3);
      expect(abDataMiB(gib)).toBeGreaterThanOrEqual(AB_MIN_DATA_MIB);
    }
    // lab-3's master has 8 GiB: the data partition is what is left after ESP and the two slots.
    expect(abDataMiB(8)).toBe(8192 - 2 - 64 - 2 * 2048);
    expect(AB_MIN_DISK_GIB).toBe(6);
    expect(abDataMiB(AB_MIN_DISK_GIB - 1)).toBeLessThan(AB_MIN_DATA_MIB);
  });

  it('sfdisk writes it to a sparse disk and reads back ESP, root A, root B, data, aligned and back to back', () => {
    const disk = join(root, 'disk.raw');
    const fd = openSync(disk, 'w');
    ftruncateSync(fd, abDiskBytes(input));
    closeSync(fd);
    execFileSync('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', disk], { input: renderAbPartitionTable(input) });
    const table = JSON.parse(execFileSync('sfdisk', ['--json', disk], { encoding: 'utf8' })).partitiontable;
    expect(table.label).toBe('gpt');
    const parts = table.partitions as { start: number; size: number; type: string; name: string; uuid: string }[];
    expect(parts.map((p) => p.name)).toEqual(['esp', 'root-a', 'root-b', 'data']);
    expect(parts.map((p) => p.type)).toEqual([GPT_TYPES.esp, GPT_TYPES.root, GPT_TYPES.root, GPT_TYPES.data]);
    expect(parts.map((p) => p.size / 2048)).toEqual([64, 2048, 2048, 256]);
    for (let i = 0; i < parts.length; i++) {
      expect(parts[i]!.start % 2048).toBe(0);
      if (i) expect(parts[i]!.start).toBe(parts[i - 1]!.start + parts[i - 1]!.size);
    }
    expect(parts.map((p) => p.uuid.toLowerCase())).toEqual(abPartitions(input).map((p) => p.uuid));
  });

  it('is deterministic per cluster and role, and different across roles', () => {
    expect(renderAbPartitionTable(input)).toBe(renderAbPartitionTable({ ...input }));
    expect(renderAbPartitionTable({ ...input, role: 'master' })).not.toBe(renderAbPartitionTable(input));
    expect(new Set(abPartitions(input).map((p) => p.uuid)).size).toBe(4);
  });
});
