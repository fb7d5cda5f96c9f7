// Writing N+1's slot image into a node through a byte channel of its substrate (docs/upgrades.md,
// "Writing the passive slot"), for a foundry with no route to the hub's wg1: on qemu-local the VMs'
// L2 is a userspace switch this machine is not on. The driver hot-plugs a virtio-serial port
// (SubstrateDriver.guestChannel); the node runs the same script as with the wg1 stream
// (`kubedos-slot-write SLOT SHA256 SIZE`, the image on its standard input: size, label, read-back
// sha256, only then `kubedos-boot try`) with the port as its standard input, started through the
// guest agent. Only the way the bytes arrive differs from the wg1 stream:
//   1. the host end is connected first (a guest reader that opens the port before any host is
//      connected reads end of file at once);
//   2. the script is started in the guest (not awaited), the image is piped into the port with
//      backpressure, and the host end is closed: the script reads end of file and checks;
//   3. a script that exits before the image is through (a refusal) ends the send at once; a
//      cancel closes the host end early, which the script sees as a short stream (nothing staged);
//   4. the port is removed whatever the outcome.
// The guest agent alone carried the same bytes at about 0.5 MiB/s under TCG (base64 inside JSON,
// parsed in the guest); the port carried 256 MiB in 9 s on the same VM.
import type { Writable } from 'node:stream';
import type { Slot } from '../../common/upgrade/agent';
import type { GuestChannel, GuestExecResult, OpOptions } from '../substrate/driver';
import { pumpFile, streamFailureMessage, tailOf } from './stream';

/** The port's name in the guest (/dev/virtio-ports/NAME on qemu-local). */
export const SLOT_CHANNEL = 'org.kubedos.slot';

export type ChannelExec = (argv: readonly string[], options: OpOptions & { timeoutS?: number }) => Promise<GuestExecResult>;

export interface ChannelSlotWriteOptions {
  node: string;
  /** Opens the channel into this node (the driver's guestChannel). */
  open: () => Promise<GuestChannel>;
  /** Runs a command in the node (the driver's guestExec). */
  exec: ChannelExec;
  image: { slot: Slot; path: string; sha256: string; size: number; argv: readonly string[] };
  signal?: AbortSignal;
  /** While sending: bytes sent so far and the rate (bytes/s). */
  onProgress?: (p: { bytes: number; total: number; rate: number }) => void;
  /** Seconds the guest may take to show the port (udev makes the path). */
  portWaitS?: number;
}

const tail = (r: GuestExecResult): string => tailOf(r.stderr || r.stdout) || 'no output';

/** Waits for the port's path in the guest, bounded. */
const WAIT_PORT = 'i=0; while [ ! -e "$0" ]; do i=$((i + 1)); [ "$i" -le "$1" ] || { echo "$0 did not appear in the guest" >&2; exit 1; }; sleep 0.5; done';

/**
 * The slot write through the channel. Throws one message naming the node, the slot, the step,
 * the command's stderr tail and what to do; the node's boot environment is untouched unless
 * kubedos-slot-write itself succeeded (it stages the try only after its read-back).
 */
export async function writeSlotThroughChannel(o: ChannelSlotWriteOptions): Promise<{ output: string }> {
  const what = `${o.node}: writing N+1 into slot ${o.image.slot} through a virtio-serial port`;
  const signal = o.signal ? { signal: o.signal } : {};
  const next = 'the node keeps booting its active slot (the script stages a try only after its read-back); fix the cause and rerun the upgrade';
  const channel = await o.open();
  let host: Writable | undefined;
  try {
    host = await channel.connect(signal);
    const waited = await o.exec(['sh', '-c', WAIT_PORT, channel.guestPath, String(Math.ceil((o.portWaitS ?? 30) * 2))], { timeoutS: (o.portWaitS ?? 30) + 30, ...signal });
    if (waited.exitCode !== 0) throw new Error(`${what}: the port did not appear in the node: ${tail(waited)}; ${next}`);
    const script = o.exec(['sh', '-c', 'exec "$@" < "$0"', channel.guestPath, ...o.image.argv], { timeoutS: 30 * 60, ...signal });
    // The script's end is watched from the start: a refusal ends the send instead of blocking it.
    let ended = false;
    const scriptEnded = script.then(
      (r) => ((ended = true), r),
      (e: unknown) => ((ended = true), Promise.reject(e)),
    );
    scriptEnded.catch(() => undefined);
    // Bytes the port took, kept when the host end breaks too: a refusal reads the same whichever
    // the node's end (its script's exit or the broken port) is noticed first.
    const progress = { sent: 0 };
    let r: GuestExecResult;
    try {
      await pipeImage(o, host, scriptEnded, () => ended, progress);
      r = await scriptEnded;
    } catch (err) {
      // The host end broke (the reader went away): the script's own verdict says why, when it comes.
      if (o.signal?.aborted) throw err;
      r = await Promise.race([scriptEnded, new Promise<never>((_, reject) => setTimeout(() => reject(err), 10_000).unref())]);
    }
    const sent = progress.sent;
    if (r.exitCode !== 0) {
      const short = sent < o.image.size ? ` (it stopped reading after ${sent} of ${o.image.size} bytes)` : '';
      throw new Error(`${what}: ${o.image.argv.join(' ')} exited ${r.exitCode}${short}: ${tail(r)}; ${next}`);
    }
    return { output: r.stdout.trim().split('\n').slice(-2).join('\n') };
  } finally {
    host?.destroy();
    await channel.close().catch(() => undefined);
  }
}

/** Pipes the image into the host end (stream.ts pumpFile); `progress.sent` counts the bytes written, until done or the script ended first. */
async function pipeImage(o: ChannelSlotWriteOptions, host: Writable, scriptEnded: Promise<unknown>, ended: () => boolean, progress: { sent: number }): Promise<void> {
  const t0 = performance.now();
  let sent = 0;
  let lastReport = 0;
  let broken: Error | undefined;
  const hostError = new Promise<never>((_, reject) => host.once('error', (e) => reject((broken = e))));
  hostError.catch(() => undefined);
  // One wording of a cut for both transports (stream.ts): what the node may have staged depends on how much was sent.
  const cancelled = (): Error => new Error(streamFailureMessage({ code: 'aborted', node: o.node, slot: o.image.slot, stderr: '', sent, total: o.image.size }));
  const abort = new Promise<never>((_, reject) => {
    if (!o.signal) return;
    if (o.signal.aborted) reject(cancelled());
    else o.signal.addEventListener('abort', () => reject(cancelled()), { once: true });
  });
  abort.catch(() => undefined);
  try {
    await pumpFile(o.image.path, host, {
      ended: () => ended() || broken !== undefined,
      exited: Promise.race([scriptEnded, hostError, abort]),
      ...(o.signal ? { signal: o.signal } : {}),
      onChunk: (n) => {
        sent = progress.sent = n;
        const now = performance.now();
        if (now - lastReport >= 1000 || sent === o.image.size) {
          lastReport = now;
          const s = (now - t0) / 1000;
          o.onProgress?.({ bytes: sent, total: o.image.size, rate: s > 0 ? sent / s : 0 });
        }
      },
    });
  } catch (err) {
    if (o.signal?.aborted) throw cancelled();
    throw err;
  }
  if (o.signal?.aborted) throw cancelled();
  if (broken) throw broken;
  if (ended()) return;
  if (sent !== o.image.size) throw new Error(`${o.image.path}: read ${sent} bytes, the image has ${o.image.size} (it changed while it was sent?)`);
  await new Promise<void>((res, reject) => {
    host.end(() => res());
    host.once('error', reject);
  });
}
