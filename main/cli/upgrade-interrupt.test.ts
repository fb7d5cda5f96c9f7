// `kubedos upgrade` interrupted after it cut a slot image (docs/upgrades.md, "kubedos upgrade"):
// its parent (a test runner, a terminal) died, so its stdout and stderr lost their reader, then it
// got SIGINT, SIGTERM or SIGHUP. A real child process (upgrade-interrupt.child.ts: the CLI's main()
// running VmNodeOps' slot write on a node that never reads) with a real slot image cut by
// qemu-img from a small A/B qcow2. Whatever the signal, the slot image and its folder go, in the
// workspace and in TMPDIR; a second signal (the cleanup itself stuck) still removes them. The
// signals come as soon as the node's script started: a cancel before the image's first chunk
// once ended the process as an unhandled rejection (pumpFile, stream.ts).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import { abDiskBytes, abPartitions, renderAbPartitionTable, type AbLayoutInput } from '../upgrade/ab-layout';
import { keepWorkerManifest } from '../upgrade/testing';

const REPO = join(import.meta.dirname, '../..');
const CHILD = join(import.meta.dirname, 'upgrade-interrupt.child.ts');
const have = (cmd: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const tools = ['qemu-img', 'sfdisk', 'mkfs.ext4'].every(have);

afterAll(removeTempDirs);

/** Every file and folder under `dir` whose name is a slot image's or its folder's. */
function slotLeftovers(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true }) as string[]).filter((p) => /(^|\/)(kubedos-slot-[^/]*|root-b\.ext4|disk\.raw|n1\.qcow2)$/.test(p)).sort();
}

describe.skipIf(!tools)('kubedos upgrade interrupted with its slot image cut (a real child process)', () => {
  let artifactDir: string;

  beforeAll(() => {
    // N+1's A/B qcow2 of w-1's role, small: the partition table the build writes, slot B an ext4 labelled kubedos-root-B.
    const dir = tempDir('kd-h18s-n1-');
    const layout: AbLayoutInput = { cluster: 'lab-3', role: 'worker', espMiB: 1, rootMiB: 8, dataMiB: 1 };
    const raw = join(dir, 'disk.raw');
    writeFileSync(raw, '');
    execFileSync('truncate', ['-s', String(abDiskBytes(layout)), raw]);
    execFileSync('sfdisk', ['--quiet', raw], { input: renderAbPartitionTable(layout) });
    const b = abPartitions(layout).find((p) => p.name === 'root-b')!;
    const fs = join(dir, 'root-b.img');
    execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'kubedos-root-B', fs, '8M']);
    execFileSync('dd', [`if=${fs}`, `of=${raw}`, 'bs=512', `seek=${b.startSector}`, 'conv=notrunc', 'status=none']);
    artifactDir = join(dir, 'n1');
    mkdirSync(join(artifactDir, 'images'), { recursive: true });
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, join(artifactDir, 'images/lab-3-worker.qcow2')]);
  });

  /** Starts the child, waits until it cut the image and writes, closes its pipes, sends `signals` 300 ms apart. */
  async function interrupt(signals: NodeJS.Signals[], stuck = false): Promise<{ code: number | null; signal: NodeJS.Signals | null; during: string[]; workspace: string; tmp: string }> {
    const workspace = tempDir('kd-h18s-ws-');
    const tmp = tempDir('kd-h18s-tmp-');
    // N+1's signed manifest as the run keeps it before any node is touched (keepVerifiedBuild): the cut checks the qcow2 against it.
    const { digest } = keepWorkerManifest({ KUBEDOS_WORKSPACE: workspace }, join(artifactDir, 'images/lab-3-worker.qcow2'));
    const child = spawn(process.execPath, [join(REPO, 'bin/run-ts.mjs'), CHILD, artifactDir, digest, ...(stuck ? ['stuck'] : [])], { cwd: REPO, env: { ...process.env, KUBEDOS_WORKSPACE: workspace, TMPDIR: tmp }, stdio: ['pipe', 'pipe', 'pipe'] });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`the child never started its write: ${out} ${err}`)), 60_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('writing\n')) {
          clearTimeout(t);
          resolve();
        }
      });
      void exited.then(() => reject(new Error(`the child ended before its write: ${out} ${err}`)));
    });
    const during = [...slotLeftovers(workspace), ...slotLeftovers(tmp)];
    // The parent is gone: nobody reads the child's output any more.
    child.stdout.destroy();
    child.stderr.destroy();
    child.stdin.destroy();
    for (const [i, sig] of signals.entries()) {
      if (i) await new Promise((r) => setTimeout(r, 300));
      child.kill(sig);
    }
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    try {
      return { ...(await exited), during, workspace, tmp };
    } finally {
      clearTimeout(killer);
    }
  }

  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    it(`${sig} with stdout and stderr closed: the command stops as a cancel (its own exit 130, no crash), the slot image and its folder are gone`, async () => {
      const r = await interrupt([sig]);
      // The image was cut into this run's private folder of the workspace, not into TMPDIR.
      expect(r.during).toEqual([expect.stringMatching(/^clusters\/lab-3\/upgrade-scratch\/run-\d+\/kubedos-slot-\w+$/), expect.stringMatching(/^clusters\/lab-3\/upgrade-scratch\/run-\d+\/kubedos-slot-\w+\/root-b\.ext4$/)]);
      expect({ code: r.code, signal: r.signal }).toEqual({ code: 130, signal: null });
      expect(slotLeftovers(r.workspace)).toEqual([]);
      expect(slotLeftovers(r.tmp)).toEqual([]);
      expect(readdirSync(join(r.workspace, 'clusters/lab-3/upgrade-scratch'))).toEqual([]);
    }, 90_000);
  }

  it('a cleanup that hangs (the node\'s port never goes), then SIGTERM: exit 143 at once, the slot image still removed', async () => {
    const r = await interrupt(['SIGINT', 'SIGTERM'], true);
    expect(r.during).toHaveLength(2);
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 143, signal: null });
    expect(slotLeftovers(r.workspace)).toEqual([]);
    expect(slotLeftovers(r.tmp)).toEqual([]);
  }, 90_000);
});
