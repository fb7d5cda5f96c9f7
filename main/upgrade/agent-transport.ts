// Writing N+1's slot image into a node through its substrate's guest agent (docs/upgrades.md,
// "Writing the passive slot"), for a foundry with no route to the hub's wg1: on qemu-local the VMs'
// L2 is a userspace switch this machine is not on, and the guest agent is the way in. The node runs
// the same script as with the wg1 stream (`kubedos-slot-write SLOT SHA256 SIZE`, the image on its
// standard input: size, label, read-back sha256, only then `kubedos-boot try`); only the way the
// bytes arrive differs:
//   1. a private staging file on the node's data partition, made sparse at the image's size once
//      the partition is known to have room for the image's non-zero chunks;
//   2. the image in chunks of at most 1 MiB (what one guest exec carries on stdin, guest-file.ts),
//      each `dd … seek=N conv=notrunc` with the chunk on its standard input; chunks of zeros are not
//      sent (the sparse file reads them back as zeros, and the script's sha256 checks the whole);
//   3. kubedos-slot-write with the staging file on its standard input; the file removed whatever
//      the outcome (by that same command, and once more on a failure before it).
import { open } from 'node:fs/promises';
import type { Slot } from '../../common/upgrade/agent';
import type { GuestExecResult, OpOptions } from '../substrate/driver';
import { GUEST_INPUT_MAX_BYTES } from '../substrate/guest-file';
import { tailOf } from './stream';

/** Where the image is staged on the node: the data partition (payload/upgrade/kubedos-persist), never a slot. */
export const AGENT_STAGING_DIR = '/var/lib/kubedos/upgrade/incoming';

export type AgentExec = (argv: readonly string[], options: OpOptions & { timeoutS?: number; input?: Uint8Array }) => Promise<GuestExecResult>;

export interface AgentSlotWriteOptions {
  exec: AgentExec;
  node: string;
  image: { slot: Slot; path: string; sha256: string; size: number; argv: readonly string[] };
  stagingDir?: string;
  /** Bytes per guest exec (default and most: 1 MiB). */
  chunkBytes?: number;
  signal?: AbortSignal;
  /** After each chunk: bytes through (sent or skipped as zeros), bytes sent, and the send rate (bytes/s) so far. */
  onProgress?: (p: { bytes: number; total: number; sent: number; rate: number }) => void;
}

const PREPARE = [
  'set -eu',
  'umask 077',
  'mkdir -p "$1"',
  'rm -f "$2"',
  // Free KiB on the staging file system against what will be written (the non-zero chunks).
  'free=$(df -Pk "$1" | awk "NR==2 {print \\$4}")',
  'if [ "$free" -lt "$4" ]; then echo "kubedos: $1 has $((free / 1024)) MiB free, the slot image needs $(($4 / 1024)) MiB there" >&2; exit 5; fi',
  'truncate -s "$3" "$2"',
].join('; ');

const CHUNK = 'dd of="$1" bs="$2" seek="$3" conv=notrunc status=none';

const tail = (r: GuestExecResult): string => tailOf(r.stderr || r.stdout) || 'no output';

type ImageFile = Awaited<ReturnType<typeof open>>;

/** Chunk `index` of the image (the last one shorter), read into `buf`. */
async function readChunk(fh: ImageFile, path: string, buf: Buffer, index: number, size: number): Promise<Buffer> {
  const off = index * buf.length;
  const want = Math.min(buf.length, size - off);
  const { bytesRead } = await fh.read(buf, 0, want, off);
  if (bytesRead !== want) throw new Error(`${path}: read ${bytesRead} of ${want} bytes at offset ${off} (the slot image changed while it was sent?)`);
  return buf.subarray(0, want);
}

/**
 * The slot write through the guest agent. Throws one message naming the node, the slot, the step,
 * the command's stderr tail and what to do; the node's boot environment is untouched unless
 * kubedos-slot-write itself succeeded (it stages the try only after its read-back).
 */
export async function writeSlotThroughAgent(o: AgentSlotWriteOptions): Promise<{ sent: number; output: string }> {
  const chunkBytes = o.chunkBytes ?? GUEST_INPUT_MAX_BYTES;
  if (chunkBytes <= 0 || chunkBytes > GUEST_INPUT_MAX_BYTES || chunkBytes % 512 !== 0) throw new Error(`chunkBytes ${chunkBytes}: a multiple of 512 up to ${GUEST_INPUT_MAX_BYTES}`);
  const dir = o.stagingDir ?? AGENT_STAGING_DIR;
  const file = `${dir}/slot-${o.image.slot}.img`;
  const what = `${o.node}: writing N+1 into slot ${o.image.slot} through the guest agent`;
  const signal = o.signal ? { signal: o.signal } : {};
  const run = async (step: string, argv: readonly string[], extra: { timeoutS?: number; input?: Uint8Array } = {}): Promise<GuestExecResult> => {
    const r = await o.exec(argv, { timeoutS: 120, ...extra, ...signal });
    if (r.exitCode !== 0) throw new Error(`${what}: ${step} exited ${r.exitCode}: ${tail(r)}`);
    return r;
  };
  const remove = (): Promise<unknown> => o.exec(['rm', '-f', file], { timeoutS: 60 }).catch(() => undefined);

  const fh = await open(o.image.path, 'r');
  try {
    // One pass finds the chunks that hold data (what the staging file needs room for); the send
    // reads those again, one at a time: the image is never held whole.
    const buf = Buffer.alloc(chunkBytes);
    const count = Math.ceil(o.image.size / chunkBytes);
    const data = new Set<number>();
    let need = 0;
    for (let i = 0; i < count; i++) {
      const c = await readChunk(fh, o.image.path, buf, i, o.image.size);
      if (c.some((b) => b !== 0)) {
        data.add(i);
        need += c.length;
      }
    }
    await run('staging', ['sh', '-c', PREPARE, 'sh', dir, file, String(o.image.size), String(Math.ceil(need / 1024) + 1024)]);
    const t0 = performance.now();
    let sent = 0;
    for (let i = 0; i < count; i++) {
      if (data.has(i)) {
        const c = await readChunk(fh, o.image.path, buf, i, o.image.size);
        await run(`sending bytes ${i * chunkBytes}-${i * chunkBytes + c.length - 1}`, ['sh', '-c', CHUNK, 'sh', file, String(chunkBytes), String(i)], { input: c, timeoutS: 60 });
        sent += c.length;
      }
      const elapsedS = (performance.now() - t0) / 1000;
      o.onProgress?.({ bytes: Math.min((i + 1) * chunkBytes, o.image.size), total: o.image.size, sent, rate: elapsedS > 0 ? sent / elapsedS : 0 });
    }
    // The script reads the staged file as it reads the stream; the file goes whatever its exit.
    const r = await o.exec(['sh', '-c', '"$@" < "$0"; rc=$?; rm -f "$0"; exit $rc', file, ...o.image.argv], { timeoutS: 30 * 60, ...signal });
    if (r.exitCode !== 0) {
      throw new Error(`${what}: ${o.image.argv.join(' ')} exited ${r.exitCode}: ${tail(r)}; the node keeps booting its active slot (the script stages a try only after its read-back); fix the cause and rerun the upgrade`);
    }
    return { sent, output: r.stdout.trim().split('\n').slice(-2).join('\n') };
  } catch (err) {
    await remove();
    throw err;
  } finally {
    await fh.close();
  }
}
