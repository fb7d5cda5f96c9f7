// Streaming N+1's slot image to a node over wg1 (docs/upgrades.md, "Writing the passive slot"):
// the same pinned route the node terminal uses (main/terminal: SSH to the hub at its wg1 address,
// a tunnel from the hub to the node's wg1 address, both host keys pinned at first boot), one exec
// of `kubedos-slot-write SLOT SHA256 SIZE` (slotWriteArgv, under `sudo -n` unless the login user is
// root), the image file piped to its standard input chunk by chunk with backpressure (never read
// whole), progress events, an AbortSignal and a timeout. The node's script does the safety work
// (size, label, read-back sha256, only then `kubedos-boot try`); this side turns its exit status
// and the tail of its standard error into one message naming the node, the slot and what to do.
import { createReadStream } from 'node:fs';
import { once } from 'node:events';
import type { Slot } from '../../common/upgrade/agent';
import type { TerminalRoute } from '../terminal/pins';
import { TerminalError, TerminalSession } from '../terminal/session';
import { remoteCommand } from '../substrate/shell';
import { slotWriteArgv } from './slot-image';

/** What is streamed: the slot image cut by cutSlotImage (main/upgrade/slot-image.ts). */
export interface StreamedImage {
  slot: Slot;
  path: string;
  sha256: string;
  size: number;
}

export interface StreamProgress {
  node: string;
  slot: Slot;
  bytes: number;
  total: number;
  /** Bytes per second since the stream started (0 before the first chunk). */
  rate: number;
  elapsedMs: number;
}

export interface StreamSlotOptions {
  route: TerminalRoute;
  /** The login user (the spec's first security.ssh.allowUsers); not root: the command runs under `sudo -n`. */
  user: string;
  privateKey: string;
  image: StreamedImage;
  signal?: AbortSignal;
  /** The whole stream, connect to exit (default 30 min). */
  timeoutMs?: number;
  readyTimeoutMs?: number;
  /** At most every `progressEveryMs` (default 500) and once at the end of the input. */
  onProgress?: (p: StreamProgress) => void;
  progressEveryMs?: number;
  /** The clock for rates (tests); default performance.now. */
  now?: () => number;
}

export interface StreamResult {
  node: string;
  slot: Slot;
  bytes: number;
  durationMs: number;
  /** The script's last standard output lines (its "holds … read back from the device" line). */
  output: string;
}

export type StreamFailure = 'connect' | 'refused' | 'dropped' | 'aborted' | 'timeout';

export class SlotStreamError extends Error {
  constructor(
    readonly code: StreamFailure,
    readonly node: string,
    readonly slot: Slot,
    message: string,
    readonly exitCode?: number | null,
  ) {
    super(message);
  }
}

export const DEFAULT_STREAM_TIMEOUT_MS = 30 * 60_000;
const TAIL_LINES = 4;
const TAIL_CHARS = 800;

/** Pure: the command line the node runs (its standard input is the image). */
export function slotWriteCommand(user: string, image: Pick<StreamedImage, 'slot' | 'sha256' | 'size'>): string {
  const argv = slotWriteArgv(image.slot, image.sha256, image.size);
  return remoteCommand(user === 'root' ? argv : ['sudo', '-n', ...argv]);
}

/** Pure: the last few lines of a text, bounded. */
export function tailOf(text: string, lines = TAIL_LINES, chars = TAIL_CHARS): string {
  const t = text.trimEnd().split('\n').slice(-lines).join(' | ');
  return t.length > chars ? `…${t.slice(-chars)}` : t;
}

const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;

/** Pure: the one message for a failed stream. `stderr` is the script's; `sent` what left this side. */
export function streamFailureMessage(f: { code: StreamFailure; node: string; slot: Slot; exitCode?: number | null; stderr: string; sent: number; total: number; timeoutMs?: number; cause?: string }): string {
  const { node, slot } = f;
  const head = `${node}: writing N+1 into slot ${slot}`;
  const tail = tailOf(f.stderr);
  // Before the whole image left this side the node cannot have staged anything; after it, the
  // script may have read back and staged its try before the connection ended: say so, never "untouched".
  const untouched =
    f.sent < f.total
      ? 'the node keeps booting its active slot (kubedos-slot-write asks for a try only after the whole image is written and read back)'
      : `the whole image had been sent, so the node may have read it back and staged its try of slot ${slot}: \`kubedos-boot status\` on ${node} says (try=${slot}: its next boot tries N+1; \`kubedos-boot cancel ${slot}\` withdraws it), and a rerun writes the slot again from the first byte`;
  switch (f.code) {
    case 'connect':
      return `${head}: no connection to the node (${f.cause ?? 'unknown'}); nothing was sent, the node is unchanged. Check the route (kubedos ssh SPEC ${node} -- true) and rerun`;
    case 'refused':
      if (f.exitCode === 127 || /sudo: .*(password|not allowed|command not found)|not found/i.test(tail))
        return `${head} failed before the write (exit ${f.exitCode}): ${tail || 'no output'}. The node cannot run kubedos-slot-write as root: was it deployed from an A/B image (spec.upgrades.diskLayout: ab), and may its login user run sudo without a password? Nothing was written`;
      return `${head} failed (kubedos-slot-write exit ${f.exitCode}): ${tail || 'no output'}. ${/nothing was written|unchanged|withdrawn|still slot/.test(tail) ? 'As the node says, its next boot is still its active slot' : untouched}; fix the cause and rerun the upgrade`;
    case 'dropped':
      return `${head}: the connection ended after ${mib(f.sent)} of ${mib(f.total)} without an exit status${tail ? ` (last from the node: ${tail})` : ''}; ${untouched}. Check wg1 between the foundry, the hub and ${node}, then rerun: the write starts again from the first byte`;
    case 'aborted':
      return `${head}: stopped after ${mib(f.sent)} of ${mib(f.total)} (cancelled); ${untouched}`;
    case 'timeout':
      return `${head}: no end within ${Math.round((f.timeoutMs ?? 0) / 1000)} s (${mib(f.sent)} of ${mib(f.total)} sent); the connection was closed and ${untouched}. A slow wg1 path needs a longer timeout`;
  }
}

/**
 * Pipes a file into `input` 1 MiB at a time with backpressure (the slot image, over wg1 here and
 * through a virtio-serial port in channel-transport.ts): before each chunk it stops once `ended()`
 * says the reader went away, and a wait for `drain` ends when `exited` settles. `onChunk` gets the
 * bytes handed to `input` so far (counted before each write). A read error or `signal` rejects.
 */
export async function pumpFile(path: string, input: NodeJS.WritableStream, o: { ended: () => boolean; exited: Promise<unknown>; signal?: AbortSignal; onChunk?: (sent: number) => void }): Promise<number> {
  // `exited` may reject (a cancel) before any drain wait listens to it: handled here, once, or a
  // cancel before the first chunk would end the process as an unhandled rejection (no cleanup).
  o.exited.catch(() => undefined);
  let sent = 0;
  const src = createReadStream(path, { highWaterMark: 1 << 20, ...(o.signal ? { signal: o.signal } : {}) });
  for await (const chunk of src as AsyncIterable<Buffer>) {
    if (o.ended()) break;
    sent += chunk.length;
    const ok = input.write(chunk);
    o.onChunk?.(sent);
    if (!ok) {
      const drained = new AbortController();
      await Promise.race([once(input, 'drain', { signal: drained.signal }).catch(() => undefined), o.exited.catch(() => undefined)]);
      drained.abort();
    }
  }
  return sent;
}

/**
 * Streams `image` into the node's passive slot through the pinned route and waits for
 * kubedos-slot-write's verdict. Resolves when the node wrote, read back and staged the try;
 * rejects with one SlotStreamError otherwise.
 */
export async function streamSlotImage(o: StreamSlotOptions): Promise<StreamResult> {
  const { route, image } = o;
  const node = route.node;
  const now = o.now ?? (() => performance.now());
  const timeoutMs = o.timeoutMs ?? DEFAULT_STREAM_TIMEOUT_MS;
  const started = now();
  let stdout = '';
  let stderr = '';
  let sent = 0;
  const ctl = new AbortController();
  let why: 'aborted' | 'timeout' | undefined;
  const stopWith = (w: 'aborted' | 'timeout'): void => {
    why ??= w;
    ctl.abort();
  };
  const onAbort = (): void => stopWith('aborted');
  if (o.signal?.aborted) onAbort();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => stopWith('timeout'), timeoutMs);
  const fail = (code: StreamFailure, extra: { exitCode?: number | null; cause?: string } = {}): SlotStreamError =>
    new SlotStreamError(code, node, image.slot, streamFailureMessage({ code, node, slot: image.slot, stderr, sent, total: image.size, timeoutMs, ...extra }), extra.exitCode);
  let session: TerminalSession | undefined;
  try {
    try {
      session = await TerminalSession.open({
        route,
        user: o.user,
        privateKey: o.privateKey,
        command: slotWriteCommand(o.user, image),
        signal: ctl.signal,
        ...(o.readyTimeoutMs ? { readyTimeoutMs: o.readyTimeoutMs } : {}),
        onData: (b, s) => {
          if (s === 'stderr') stderr = (stderr + b.toString('utf8')).slice(-8192);
          else stdout = (stdout + b.toString('utf8')).slice(-8192);
        },
      });
    } catch (err) {
      if (why) throw fail(why);
      throw fail('connect', { cause: err instanceof TerminalError || err instanceof Error ? err.message : String(err) });
    }
    const s = session;
    let ended = false;
    void s.exited.then(() => (ended = true));
    const input = s.input;
    input.on('error', () => undefined); // a dropped channel: the exit (or its absence) tells
    let lastEmit = -Infinity;
    const emit = (force: boolean): void => {
      if (!o.onProgress) return;
      const t = now();
      if (!force && t - lastEmit < (o.progressEveryMs ?? 500)) return;
      lastEmit = t;
      const elapsedMs = t - started;
      o.onProgress({ node, slot: image.slot, bytes: sent, total: image.size, rate: elapsedMs > 0 ? Math.round((sent * 1000) / elapsedMs) : 0, elapsedMs: Math.round(elapsedMs) });
    };
    try {
      // The node stopped reading (a refusal before the write): its exit says why.
      await pumpFile(image.path, input, {
        ended: () => ended,
        exited: s.exited,
        signal: ctl.signal,
        onChunk: (n) => {
          sent = n;
          emit(false);
        },
      });
    } catch (err) {
      if (!why) throw err; // a local read error: not the node's fault; say it as it is
    }
    emit(true);
    if (!why && !ended) s.endInput();
    const stopped = new Promise<undefined>((r) => (ctl.signal.aborted ? r(undefined) : ctl.signal.addEventListener('abort', () => r(undefined), { once: true })));
    const exit = await Promise.race([s.exited, stopped]);
    if (why || !exit) {
      s.close();
      throw fail(why ?? 'aborted');
    }
    if (exit.exitCode === 0) return { node, slot: image.slot, bytes: sent, durationMs: Math.round(now() - started), output: tailOf(stdout, 2) };
    if (exit.exitCode === null) throw fail('dropped', { exitCode: null });
    throw fail('refused', { exitCode: exit.exitCode });
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onAbort);
    session?.close();
  }
}
