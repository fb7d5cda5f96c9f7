// The slot image streamed to a node over wg1, for real (root; namespace lab, no VM): the node
// terminal's two-node lab (hub + w-1, wireguard-go, nftables with SSH open on wg1 only, host keys
// pinned from a first-boot record) with a loop-device A/B disk for w-1 (the partition table the
// build writes, both slots ext4 with their labels), the real payload/upgrade/kubedos-slot-write and
// kubedos-boot on w-1, the GRUB environment block at its real path in w-1's private /boot. The
// foundry side (this process, a wg1 peer of the hub) runs main/upgrade/stream.ts: hub, tunnel,
// exec, the image on stdin.
// - a good stream: progress, the node's read-back passes, `kubedos-boot status` shows the try of B;
// - a corrupt stream (an announced sha256 that does not match): refused, the environment untouched;
// - the connection closed mid-stream by the foundry (its cancel): the foundry names the cut (bytes
//   sent of the total); the node's writer, its output without a reader, ends on the short stream
//   with exit 1 and removes its scratch folder, and w-1 stays on its active slot with no try pending;
// - a node without kubedos-slot-write (the hub here: a one-root node): one message saying so.
// The lab logs in as root: the namespace nodes have no sudo (the images give the ops user
// passwordless sudo, and the stream then runs `sudo -n kubedos-slot-write …`).
// Not in CI: `npm run test:upgrade-stream`.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readOpsPrivateKey } from '../../main/build/keys';
import { terminalRoute } from '../../main/terminal/pins';
import { abDiskBytes, renderAbPartitionTable, type AbLayoutInput } from '../../main/upgrade/ab-layout';
import type { StreamProgress, StreamedImage } from '../../main/upgrade/stream';
import { SlotStreamError, streamSlotImage } from '../../main/upgrade/stream';
import { UPGRADE_BOOT_TRIES } from '../../main/upgrade/slot-image';
import type { TerminalLab } from '../terminal/terminal-lab';
import { createTerminalLab } from '../terminal/terminal-lab';

const UPGRADE = join(import.meta.dirname, '../../payload/upgrade');
const MiB = 1024 * 1024;
const ROOT_MIB = 64;
const ENV_PATH = '/boot/efi/EFI/debian/kubedos.env';
const isRoot = process.getuid?.() === 0;

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe.skipIf(!isRoot)('slot image streamed over wg1 into a loop-device A/B disk (namespace lab, root)', () => {
  let t: TerminalLab;
  let dir: string;
  let dev: string | undefined;
  let image: StreamedImage;
  let privateKey: string;
  const started = Date.now();

  const onW1 = async (argv: string[]): Promise<string> => (await t.lab.exec('w-1', argv)).stdout;
  const status = async (): Promise<Record<string, string>> => Object.fromEntries((await onW1(['/usr/local/sbin/kubedos-boot', 'status'])).trim().split('\n').map((l) => l.split('=') as [string, string]));
  const envBytes = async (): Promise<string> => sha(Buffer.from(await onW1(['od', '-An', '-tx1', ENV_PATH])));
  const freshEnv = async (): Promise<void> => {
    await onW1(['rm', '-f', ENV_PATH, '/etc/kd18e/last-exit']);
    await onW1(['grub-editenv', ENV_PATH, 'create']);
    await onW1(['grub-editenv', ENV_PATH, 'set', 'kubedos_active=A']);
  };
  const part = (i: number): string => `${dev}p${i}`;
  const slotB = (): string => sha(readFileSync(part(3)).subarray(0, image.size));
  const stream = (o: { node?: string; image?: StreamedImage; signal?: AbortSignal; onProgress?: (p: StreamProgress) => void; progressEveryMs?: number } = {}) =>
    streamSlotImage({ route: terminalRoute(t.workspace, t.plan, o.node ?? 'w-1'), user: 'root', privateKey, image: o.image ?? image, timeoutMs: 120_000, ...(o.signal ? { signal: o.signal } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}), ...(o.progressEveryMs !== undefined ? { progressEveryMs: o.progressEveryMs } : {}) });

  beforeAll(async () => {
    t = await createTerminalLab((l) => console.log(l), {
      cluster: 'kd18e-up',
      tag: 'kd18e',
      lan: { cidr: '10.232.0.0/20', apiVip: '10.232.0.10', operator: '10.232.15.250' },
      planes: { wg1: '10.233.0.0/24', wg2: '10.234.0.0/24', wg3: '10.235.0.0/24' },
      operatorWg1: '10.233.0.250',
    });
    privateKey = await readOpsPrivateKey(t.spec.metadata.name, t.env);
    dir = mkdtempSync(join(tmpdir(), 'kd18e-stream-'));
    // N+1's slot B image: an ext4 labelled kubedos-root-B with 24 MiB of incompressible content.
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'etc'), { recursive: true });
    writeFileSync(join(tree, 'etc/kubedos-build'), 'N+1\n');
    writeFileSync(join(tree, 'payload.bin'), randomBytes(24 * MiB));
    const path = join(dir, 'root-b.ext4');
    execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'kubedos-root-B', '-d', tree, path, `${ROOT_MIB}M`]);
    image = { slot: 'B', path, sha256: sha(readFileSync(path)), size: ROOT_MIB * MiB };
    // w-1's disk: the A/B partition table on a loop device, both slots ext4 with their labels.
    const layout: AbLayoutInput = { cluster: 'kd18e-up', role: 'worker', espMiB: 64, rootMiB: ROOT_MIB, dataMiB: 8 };
    const disk = join(dir, 'w-1.raw');
    writeFileSync(disk, '');
    execFileSync('truncate', ['-s', String(abDiskBytes(layout)), disk]);
    execFileSync('sfdisk', ['--quiet', disk], { input: renderAbPartitionTable(layout) });
    dev = execFileSync('losetup', ['--find', '--show', disk], { encoding: 'utf8' }).trim();
    execFileSync('partx', ['--add', dev]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'kubedos-root-A', part(2)]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'kubedos-root-B', part(3)]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'kubedos-data', part(4)]);
    // The node's scripts, unchanged, plus thin wrappers at the image's paths that name this
    // lab's disk (other A/B loop disks may exist on this machine) and the booted slot (the
    // namespace shares the host's /proc/cmdline), give it a scratch parent of its own (TMPDIR) and
    // record the writer's exit status.
    await onW1(['mkdir', '-p', '/usr/local/lib/kd18e', '/etc/kd18e/tmp', '/boot/efi/EFI/debian', '/usr/local/sbin']);
    for (const f of ['kubedos-slot-write', 'kubedos-boot']) await t.lab.writeFile('w-1', `/usr/local/lib/kd18e/${f}`, readFileSync(join(UPGRADE, f)), 0o755);
    await t.lab.writeFile('w-1', '/etc/kd18e/cmdline', 'BOOT_IMAGE=/vmlinuz root=LABEL=kubedos-root-A rw panic=10 kubedos.slot=A\n');
    await t.lab.writeFile('w-1', '/usr/local/sbin/kubedos-slot-write', `#!/bin/sh\nexport KUBEDOS_CMDLINE=/etc/kd18e/cmdline KUBEDOS_DATA=/etc/kd18e/data TMPDIR=/etc/kd18e/tmp\n/usr/local/lib/kd18e/kubedos-slot-write --disk ${dev} "$@"\nrc=$?\necho $rc > /etc/kd18e/last-exit\nexit $rc\n`, 0o755);
    await t.lab.writeFile('w-1', '/usr/local/sbin/kubedos-boot', '#!/bin/sh\nexport KUBEDOS_CMDLINE=/etc/kd18e/cmdline\nexec /usr/local/lib/kd18e/kubedos-boot "$@"\n', 0o755);
    console.log(`stream lab up in ${Math.round((Date.now() - started) / 1000)} s (w-1's disk ${dev})`);
  }, 180_000);

  afterAll(() => {
    if (dev) {
      // Exactly the device this suite attached.
      spawnSync('partx', ['--delete', dev]);
      spawnSync('losetup', ['-d', dev]);
    }
    t?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
    console.log(`stream lab suite: ${Math.round((Date.now() - started) / 1000)} s`);
  });

  it('streams N+1 into slot B through the hub over wg1: the node reads it back, `kubedos-boot status` shows the try of B pending', async () => {
    await freshEnv();
    const progress: StreamProgress[] = [];
    const t0 = performance.now();
    const r = await stream({ onProgress: (p) => progress.push(p), progressEveryMs: 100 });
    const secs = (performance.now() - t0) / 1000;
    console.log(`streamed ${ROOT_MIB} MiB to w-1 in ${secs.toFixed(1)} s (${(ROOT_MIB / secs).toFixed(1)} MiB/s, write + fsync + O_DIRECT read-back on the node included)`);
    expect(r).toMatchObject({ node: 'w-1', slot: 'B', bytes: image.size });
    expect(r.output).toContain(`holds ${image.size} bytes with sha256 ${image.sha256}, read back from the device`);
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toMatchObject({ node: 'w-1', slot: 'B', bytes: image.size, total: image.size });
    expect(progress.at(-1)!.rate).toBeGreaterThan(0);
    expect(progress.map((p) => p.bytes)).toEqual([...progress.map((p) => p.bytes)].sort((a, b) => a - b));
    expect(await status()).toMatchObject({ booted: 'A', active: 'A', try: 'B', tries: String(UPGRADE_BOOT_TRIES), failed: '' });
    expect(slotB()).toBe(image.sha256);
  }, 120_000);

  it('a corrupt stream (the bytes do not match the announced sha256) is refused with the node, the slot and the hashes; the boot environment is untouched', async () => {
    await freshEnv();
    const before = await envBytes();
    const wrong = 'f'.repeat(64);
    const err = await stream({ image: { ...image, sha256: wrong } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SlotStreamError);
    const e = err as SlotStreamError;
    expect(e.code).toBe('refused');
    expect(e.exitCode).toBe(1);
    expect(e.message).toMatch(/^w-1: writing N\+1 into slot B failed \(kubedos-slot-write exit 1\): /);
    expect(e.message).toContain(`reads back sha256 ${image.sha256} over ${image.size} bytes, expected ${wrong}`);
    expect(e.message).toMatch(/its next boot is still its active slot; fix the cause and rerun the upgrade$/);
    expect(await envBytes()).toBe(before);
    expect(await status()).toMatchObject({ active: 'A', try: '' });
  }, 120_000);

  it('the connection closed mid-stream: the foundry names the cut; the node\'s writer ends on the short stream (exit 1, its scratch folder gone), w-1 stays on slot A with no try pending', async () => {
    await freshEnv();
    execFileSync('dd', ['if=/dev/zero', `of=${part(3)}`, 'bs=1M', `count=${ROOT_MIB}`, 'conv=fsync', 'status=none']);
    const before = await envBytes();
    const ctl = new AbortController();
    const err = await stream({ signal: ctl.signal, progressEveryMs: 0, onProgress: (p) => p.bytes >= 16 * MiB && ctl.abort() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SlotStreamError);
    expect((err as SlotStreamError).code).toBe('aborted');
    expect((err as Error).message).toMatch(/^w-1: writing N\+1 into slot B: stopped after 1\d\.\d MiB of 64\.0 MiB \(cancelled\); the node keeps booting its active slot/);
    // The node's side: the writer saw its input end early and stopped.
    let exit = '';
    for (let i = 0; i < 100 && !exit; i++) {
      exit = (await t.lab.try('w-1', ['cat', '/etc/kd18e/last-exit'])).stdout.trim();
      if (!exit) await new Promise((r) => setTimeout(r, 200));
    }
    // 1: the short stream, its own verdict. Its message had no reader left (the connection gone);
    // that write fails and nothing more (before, a SIGPIPE trap re-raised itself until dash crashed).
    console.log(`the node's writer exited ${exit} after the connection closed`);
    expect(exit).toBe('1');
    expect((await onW1(['ls', '-A', '/etc/kd18e/tmp'])).trim()).toBe('');
    expect(await envBytes()).toBe(before);
    expect(await status()).toMatchObject({ booted: 'A', active: 'A', try: '' });
    expect(slotB()).not.toBe(image.sha256);
    // The next stream of the same image completes.
    await stream();
    expect(await status()).toMatchObject({ try: 'B' });
  }, 120_000);

  it('a node without kubedos-slot-write (deployed with one root partition) gets one message saying so; nothing is written', async () => {
    const err = await stream({ node: 'master' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SlotStreamError);
    expect((err as SlotStreamError).exitCode).toBe(127);
    expect((err as Error).message).toMatch(/^master: writing N\+1 into slot B failed before the write \(exit 127\): .*kubedos-slot-write: No such file or directory.*was it deployed from an A\/B image \(spec\.upgrades\.diskLayout: ab\)/);
  }, 60_000);
});
