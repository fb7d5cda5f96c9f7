// Writing a stick image to a device, and checking a stick later.
//
// writeStick, in order (nothing is written before step 3):
//   1. the device must pass the rule in devices.ts (removable, nothing mounted, not the system disk);
//   2. its real size (BLKGETSIZE64, through `blockdev --getsize64`) must hold the image;
//   3. fake-capacity probe: sentinel blocks (each naming its own offset and this run's nonce) are
//      written at offsets spread over the whole claimed size, flushed, and read back with O_DIRECT;
//      a stick that wraps addresses or drops writes past its real capacity fails here;
//   4. the first MiB is zeroed (no stale partition table survives a failed write), then the image
//      from 1 MiB to its end is written with O_DIRECT, hashed as it goes (the image's sha256 and
//      one sha256 per range of 64 MiB);
//   5. each finished range is flushed and read back with O_DIRECT by a second handle while the next
//      range is being written (pipelined; `verify: 'after'` reads everything back at the end);
//   6. the first MiB (the partition table) is written LAST, flushed, and its range read back;
//   7. only when every range read back matches, a receipt is signed and saved.
// Any error (the stick unplugged, a short write, a range that differs, abort) stops with one
// message and no receipt.
import { createHash } from 'node:crypto';
import type { Hash, KeyObject } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { findOnPath } from '../exec/find-on-path';
import { run } from '../exec/runner';
import { toolFor } from '../exec/tools';
import { alignedBuffer, ALIGN, openDevice, readFully, writeFully } from './blockio';
import type { DeviceIdentity, DeviceSource, UsbDevice } from './devices';
import { describeDevice, DeviceRefused, eligibility, lsblkSource, pickDevice } from './devices';
import { FIRST_REGION_BYTES, MIB } from './image';
import type { StickContents } from './image';
import type { ReceiptFile, UsbRange, UsbReceipt } from './receipt';
import { signReceipt } from './receipt';

export const RANGE_BYTES = 64 * MIB;
export const CHUNK_BYTES = 8 * MIB;
/** Evenly spread probe blocks (the powers of two come on top). */
export const PROBE_COUNT = 16;

export interface UsbProgress {
  phase: 'probe' | 'write' | 'verify' | 'done';
  /** Bytes of the image written / read back so far. */
  written: number;
  verified: number;
  total: number;
  /** Throughput of the current phase, MB/s (10^6 bytes). */
  mbPerSec: number;
  /** Seconds left, estimated from the work done so far; undefined before there is a rate. */
  etaSeconds?: number;
}

export interface SigningKey {
  privateKey: KeyObject;
  publicKeyPem: string;
  keyid: string;
}

export interface WriteStickOptions {
  device: string;
  /** sha256: the image file's digest, taken when the image was made (image.ts); the writer hashes
   * each range as it writes and compares every byte read back with the image. */
  image: { path: string; size: number; sha256: string; contents: StickContents };
  signingKey?: SigningKey;
  force?: boolean;
  /** The device list (default: lsblk). Tests inject one; see devices.ts. */
  source?: DeviceSource;
  signal?: AbortSignal;
  onProgress?: (p: UsbProgress) => void;
  /** 'pipelined' (default): read back each range while the next is written; 'after': read back
   * everything once the write is done; 'none': no read-back and no receipt (benchmarks only). */
  verify?: 'pipelined' | 'after' | 'none';
  rangeBytes?: number;
  /** Called after this many image bytes were written (tests use it to pull the stick mid-write). */
  afterBytes?: { bytes: number; fn: () => Promise<void> };
}

export interface WriteStickResult {
  device: DeviceIdentity;
  imageSha256: string;
  ranges: UsbRange[];
  receipt?: UsbReceipt;
  receiptFile?: ReceiptFile;
  /** Milliseconds per step (measured, for the CLI summary and the bench). */
  timings: { probeMs: number; writeMs: number; verifyTailMs: number; totalMs: number };
}

export class StickError extends Error {
  constructor(message: string, readonly badRanges: readonly BadRange[] = []) {
    super(message);
    this.name = 'StickError';
  }
}

export interface BadRange {
  index: number;
  offset: number;
  length: number;
  expected: string;
  actual: string;
}

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`;

/** BLKGETSIZE64 of the device, through the runner. */
export async function deviceBytes(path: string, signal?: AbortSignal): Promise<number> {
  const tool = toolFor('blockdev');
  const r = await run([(tool && findOnPath(tool, process.env)) ?? 'blockdev', '--getsize64', path], { signal, timeoutMs: 30_000, hint: 'blockdev (package util-linux) reads the device size' });
  const n = Number(r.stdout.trim());
  if (!Number.isSafeInteger(n)) throw new Error(`blockdev --getsize64 ${path} printed ${JSON.stringify(r.stdout.trim())}, not a size`);
  return n;
}

function rangesOf(size: number, rangeBytes: number): { index: number; offset: number; length: number }[] {
  const out = [];
  for (let off = 0, i = 0; off < size; off += rangeBytes, i++) out.push({ index: i, offset: off, length: Math.min(rangeBytes, size - off) });
  return out;
}

function ioFailure(devicePath: string, what: string, offset: number, total: number, err: unknown): StickError {
  const e = err as NodeJS.ErrnoException;
  const gone = e.code === 'ENOSPC' || e.code === 'EIO' || e.code === 'ENXIO' || e.code === 'ENODEV';
  return new StickError(
    `${what} ${devicePath} failed at ${mb(offset)} of ${mb(total)} (${e.code ?? 'error'}: ${e.message})${gone ? ': the stick was removed or has failed' : ''}. The stick is NOT good: no receipt was written; plug it in and write it again (or use another stick)`,
  );
}

/** Step 3: sentinels at spread offsets over the claimed size; throws on a fake-capacity stick. */
/** What the capacity probe needs of a device (an O_DIRECT handle pair; an in-memory fake in tests). */
export interface ProbeIo {
  write(buf: Buffer, offset: number): Promise<void>;
  read(buf: Buffer, offset: number): Promise<void>;
  flush(): Promise<void>;
}

export async function probeCapacity(io: ProbeIo, dev: DeviceIdentity, claimed: number, buf: Buffer, back: Buffer): Promise<number> {
  const nonce = randomBytes(16).toString('hex');
  const last = Math.floor((claimed - ALIGN) / ALIGN) * ALIGN;
  // Spread evenly (a stick that drops writes past its real size), plus every power of two from
  // 1 MiB (a stick that wraps: its controller drops the high address bits, so the block at 2^k
  // lands on block 0 when the real size is 2^k). Written in ascending order, read after all.
  const spread = Array.from({ length: PROBE_COUNT }, (_, i) => Math.floor((last * i) / (PROBE_COUNT - 1) / ALIGN) * ALIGN);
  const powers: number[] = [];
  for (let p = MIB; p <= last; p *= 2) powers.push(p);
  const offsets = [...new Set([...spread, ...powers])].sort((a, b) => a - b);
  const sentinel = (off: number): Buffer => {
    const s = Buffer.alloc(ALIGN, 0);
    const head = `KUBEDOS-CAPACITY-PROBE ${nonce} ${off}\n`;
    for (let i = 0; i < ALIGN; i += head.length) s.write(head, i, Math.min(head.length, ALIGN - i));
    return s;
  };
  const block = buf.subarray(0, ALIGN);
  for (const off of offsets) {
    sentinel(off).copy(block);
    try {
      await io.write(block, off);
    } catch (err) {
      throw ioFailure(dev.path, 'the capacity probe on', off, claimed, err);
    }
  }
  await io.flush();
  const got = back.subarray(0, ALIGN);
  for (const off of offsets) {
    try {
      await io.read(got, off);
    } catch (err) {
      throw ioFailure(dev.path, 'reading back the capacity probe on', off, claimed, err);
    }
    if (!got.equals(sentinel(off))) {
      const text = got.subarray(0, 80).toString('latin1');
      const m = new RegExp(`^KUBEDOS-CAPACITY-PROBE ${nonce} (\\d+)\\n`).exec(text);
      const seen = m ? `what was written at ${mb(Number(m[1]))} (the stick wraps its addresses)` : got.every((b) => b === 0) ? 'zeros' : 'other data';
      throw new StickError(
        `${describeDevice(dev)} claims ${mb(claimed)}, but the block written at ${mb(off)} reads back as ${seen}: a fake-capacity stick (its real size is below ${mb(off)}). Nothing of the image was written; use another stick`,
      );
    }
  }
  return offsets.length;
}

export async function writeStick(o: WriteStickOptions): Promise<WriteStickResult> {
  const started = performance.now();
  const mode = o.verify ?? 'pipelined';
  if (mode !== 'none' && !o.signingKey) throw new Error('writeStick: a signing key is needed for the receipt');
  const rangeBytes = o.rangeBytes ?? RANGE_BYTES;
  if (rangeBytes % MIB !== 0 || rangeBytes < FIRST_REGION_BYTES) throw new Error('rangeBytes must be a whole number of MiB');
  const size = o.image.size;
  if (size % MIB !== 0 || size <= FIRST_REGION_BYTES) throw new Error(`the image ${o.image.path} is ${size} bytes: a stick image is a whole number of MiB above 1 MiB`);

  // 1–2: the rule, then the size; nothing written yet.
  const picked: UsbDevice = await pickDevice(o.device, { force: o.force, source: o.source, signal: o.signal });
  const dev = picked.identity;
  const claimed = await deviceBytes(dev.path, o.signal);
  if (claimed < size) throw new DeviceRefused(`${describeDevice(dev)} is too small: the image is ${mb(size)}, the stick ${mb(claimed)}. Nothing was written; use a stick of at least ${mb(size)}`);

  const w = await openDevice(dev.path, 'write');
  let r: FileHandle | undefined;
  let img: FileHandle | undefined;
  try {
    r = await openDevice(dev.path, 'read');
    img = await open(o.image.path, 'r');
    const chunk = Math.min(CHUNK_BYTES, rangeBytes);
    const bufs = [await alignedBuffer(w, chunk), await alignedBuffer(w, chunk)];
    const vbuf = await alignedBuffer(r, chunk);
    const first = await alignedBuffer(w, FIRST_REGION_BYTES);

    let written = 0;
    let verified = 0;
    let phase: UsbProgress['phase'] = 'probe';
    let phaseStart = performance.now();
    let phaseBytes = 0;
    let lastEmit = 0;
    const emit = (force = false): void => {
      if (!o.onProgress) return;
      const now = performance.now();
      if (!force && now - lastEmit < 250) return;
      lastEmit = now;
      const secs = (now - phaseStart) / 1000;
      const done = phase === 'verify' ? verified : written;
      const rate = secs > 0 ? (done - phaseBytes) / secs : 0;
      const work = mode === 'none' ? size : 2 * size;
      const doneWork = written + (mode === 'none' ? 0 : verified);
      const elapsed = (now - started) / 1000;
      o.onProgress({
        phase,
        written,
        verified,
        total: size,
        mbPerSec: Math.round((rate / 1e6) * 10) / 10,
        ...(doneWork > 0 && phase !== 'done' ? { etaSeconds: Math.round((elapsed * (work - doneWork)) / doneWork) } : {}),
      });
    };
    const checkAbort = (): void => {
      if (o.signal?.aborted) throw new StickError(`aborted while writing ${dev.path} at ${mb(written)} of ${mb(size)}. The stick is NOT good: no receipt was written`);
    };

    // 3: fake capacity.
    emit(true);
    const rr = r;
    const probes = await probeCapacity({ write: (b, at) => writeFully(w, b, at), read: (b, at) => readFully(rr, b, at), flush: () => w.datasync() }, dev, claimed, bufs[0]!, vbuf);
    const probeMs = performance.now() - started;
    checkAbort();

    // 4: zero the first MiB, then the image past it.
    first.fill(0);
    try {
      await writeFully(w, first, 0);
    } catch (err) {
      throw ioFailure(dev.path, 'writing', 0, size, err);
    }
    const ranges = rangesOf(size, rangeBytes);
    const sourceHashes: string[] = [];
    let rangeHash: Hash = createHash('sha256');
    const bad: BadRange[] = [];

    // Read-back compares the device's bytes with the image's, byte for byte (memcmp: no second
    // hash pass); the range's sha256 from the write stands for both when they are equal. A range
    // that differs is hashed from the device once, for the message.
    const sbuf = Buffer.allocUnsafeSlow(chunk);
    const readBack = async (range: { index: number; offset: number; length: number }): Promise<void> => {
      let differs = false;
      for (let off = range.offset; off < range.offset + range.length; off += chunk) {
        const n = Math.min(chunk, range.offset + range.length - off);
        const b = vbuf.subarray(0, n);
        const src = sbuf.subarray(0, n);
        const source = readImage(img!, src, off);
        try {
          await readFully(r!, b, off);
        } catch (err) {
          throw ioFailure(dev.path, 'reading back', off, size, err);
        }
        await source;
        if (!differs && !b.equals(src)) differs = true;
        verified += n;
        emit();
      }
      if (differs) {
        const h = createHash('sha256');
        for (let off = range.offset; off < range.offset + range.length; off += chunk) {
          const b = vbuf.subarray(0, Math.min(chunk, range.offset + range.length - off));
          await readFully(r!, b, off);
          h.update(b);
        }
        bad.push({ ...range, expected: sourceHashes[range.index]!, actual: h.digest('hex') });
      }
    };

    // The first MiB: read and hashed first (range 0's hash is in image order), written last.
    await readImage(img, first, 0);
    rangeHash.update(first);
    written = 0;
    phase = 'write';
    phaseStart = performance.now();
    let pending: Promise<void> = Promise.resolve();
    let pendingError: unknown;
    const writeStart = performance.now();
    let nextRead: Promise<number> | undefined;
    let cur = 0;
    let off = FIRST_REGION_BYTES;
    const readAt = (at: number, into: Buffer): Promise<number> => {
      const n = Math.min(chunk, size - at, rangeEnd(at) - at);
      return readImage(img!, into.subarray(0, n), at).then(() => n);
    };
    const rangeEnd = (at: number): number => Math.min(size, (Math.floor(at / rangeBytes) + 1) * rangeBytes);
    if (off < size) nextRead = readAt(off, bufs[0]!);
    let trigger = o.afterBytes;
    while (off < size) {
      checkAbort();
      if (pendingError) throw pendingError;
      const n = await nextRead!;
      const buf = bufs[cur]!.subarray(0, n);
      const nextOff = off + n;
      cur ^= 1;
      nextRead = nextOff < size ? readAt(nextOff, bufs[cur]!) : undefined;
      // The device write runs in the thread pool; hash the same (unchanging) buffer meanwhile.
      const writing = writeFully(w, buf, off).catch((err: unknown) => {
        throw ioFailure(dev.path, 'writing', off, size, err);
      });
      rangeHash.update(buf);
      await writing;
      written = nextOff;
      emit();
      if (trigger && written >= trigger.bytes) {
        const t = trigger;
        trigger = undefined;
        emit(true); // whoever watches sees where the write stands while the hook runs
        await t.fn();
      }
      if (nextOff === rangeEnd(off)) {
        const index = Math.floor(off / rangeBytes);
        sourceHashes[index] = rangeHash.digest('hex');
        rangeHash = createHash('sha256');
        if (mode === 'pipelined' && index > 0) {
          // The range is complete: flush it, then read it back while the next one is written
          // (at most one read-back in flight, so a slow reader holds the writer, not memory).
          await pending;
          try {
            await w.datasync();
          } catch (err) {
            throw ioFailure(dev.path, 'flushing', nextOff, size, err);
          }
          const range = ranges[index]!;
          pending = readBack(range).catch((err: unknown) => {
            pendingError = err;
          });
        }
      }
      off = nextOff;
    }
    await pending;
    if (pendingError) throw pendingError;
    // 6: the partition table last.
    try {
      await writeFully(w, first, 0);
      await w.datasync();
    } catch (err) {
      throw ioFailure(dev.path, 'writing the first MiB of', 0, size, err);
    }
    written = size;
    // Every phase reports at least once with its throughput: a write shorter than the 250 ms
    // throttle would otherwise go from the probe straight to done.
    emit(true);
    const writeMs = performance.now() - writeStart;
    const imageSha256 = o.image.sha256;
    const rangeRecords: UsbRange[] = ranges.map((x) => ({ ...x, sha256: sourceHashes[x.index]! }));
    const tailStart = performance.now();
    if (mode === 'none') {
      phase = 'done';
      emit(true);
      return { device: dev, imageSha256, ranges: rangeRecords, timings: { probeMs, writeMs, verifyTailMs: 0, totalMs: performance.now() - started } };
    }
    phase = 'verify';
    phaseStart = performance.now();
    phaseBytes = verified;
    for (const range of mode === 'after' ? ranges : [ranges[0]!]) {
      checkAbort();
      await readBack(range);
    }
    emit(true);
    const verifyTailMs = performance.now() - tailStart;
    if (verified !== size) throw new StickError(`internal: read back ${verified} bytes of ${size}`);
    if (bad.length > 0) {
      throw new StickError(`${describeDevice(dev)} does not read back what was written: ${describeBad(bad)}. The stick is NOT good (no receipt was written): write it again, or use another stick`, bad);
    }
    const receipt: UsbReceipt = {
      apiVersion: 'kubedos.ca/v1alpha1',
      kind: 'UsbWriteReceipt',
      cluster: o.image.contents.cluster,
      image: {
        sha256: imageSha256,
        size,
        layout: 'mbr+ext4/v1',
        ...(o.image.contents.artifactManifestSha256 ? { artifactManifestSha256: o.image.contents.artifactManifestSha256 } : {}),
        ...(o.image.contents.bundleSha256 ? { bundleSha256: o.image.contents.bundleSha256 } : {}),
        workbench: o.image.contents.workbench,
      },
      device: { ...dev },
      rangeSize: rangeBytes,
      ranges: rangeRecords,
      checks: { capacityProbe: { offsets: probes, ok: true }, readBack: 'O_DIRECT, every byte compared with the image, after a flush', firstRegionWrittenLast: true },
      signingKeyId: o.signingKey!.keyid,
    };
    const receiptFile = signReceipt(receipt, o.signingKey!);
    phase = 'done';
    emit(true);
    return { device: dev, imageSha256, ranges: rangeRecords, receipt, receiptFile, timings: { probeMs, writeMs, verifyTailMs, totalMs: performance.now() - started } };
  } finally {
    await img?.close().catch(() => undefined);
    await r?.close().catch(() => undefined);
    await w.close().catch(() => undefined);
  }
}

async function readImage(img: FileHandle, into: Buffer, at: number): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await img.read(into, done, into.length - done, at + done);
    if (bytesRead === 0) throw new Error(`the image ended at ${at + done} bytes, before its stated size`);
    done += bytesRead;
  }
}

export function describeBad(bad: readonly BadRange[]): string {
  const shown = bad.slice(0, 5).map((b) => `range ${b.index} (bytes ${b.offset}–${b.offset + b.length - 1}, ${mb(b.offset)}–${mb(b.offset + b.length)})`);
  return `${bad.length} range${bad.length === 1 ? ' differs' : 's differ'}: ${shown.join(', ')}${bad.length > 5 ? ` and ${bad.length - 5} more` : ''}`;
}

export interface VerifyStickResult {
  ok: boolean;
  device: DeviceIdentity;
  checked: number;
  bad: BadRange[];
  /** Receipt fields that do not match the device (another stick, another size). */
  identityMismatch?: string;
}

/** Reads the stick back (O_DIRECT) and compares every range with the receipt. */
export async function verifyStick(o: { device: string; receipt: UsbReceipt; source?: DeviceSource; signal?: AbortSignal; onProgress?: (p: UsbProgress) => void }): Promise<VerifyStickResult> {
  const all = await (o.source ?? lsblkSource)(o.signal);
  const d = all.map(eligibility).find((x) => x.identity.path === o.device || `/dev/${x.identity.name}` === o.device);
  if (!d) throw new DeviceRefused(`${o.device} is not a disk lsblk knows (unplugged?)`);
  const dev = d.identity;
  const want = o.receipt.device;
  const diffs: string[] = [];
  for (const k of ['serial', 'model', 'vendor', 'wwn'] as const) if ((want[k] ?? '') !== (dev[k] ?? '')) diffs.push(`${k} ${JSON.stringify(dev[k] ?? null)} (receipt: ${JSON.stringify(want[k] ?? null)})`);
  if (want.size !== dev.size) diffs.push(`size ${dev.size} (receipt: ${want.size})`);
  if (diffs.length > 0) return { ok: false, device: dev, checked: 0, bad: [], identityMismatch: `${dev.path} is not the stick this receipt is for: ${diffs.join('; ')}` };
  const r = await openDevice(dev.path, 'read');
  const bad: BadRange[] = [];
  const started = performance.now();
  let verified = 0;
  try {
    const buf = await alignedBuffer(r, CHUNK_BYTES);
    for (const range of o.receipt.ranges) {
      if (o.signal?.aborted) throw new StickError(`aborted while verifying ${dev.path}`);
      const h = createHash('sha256');
      for (let off = range.offset; off < range.offset + range.length; off += CHUNK_BYTES) {
        const n = Math.min(CHUNK_BYTES, range.offset + range.length - off);
        const b = buf.subarray(0, n);
        try {
          await readFully(r, b, off);
        } catch (err) {
          throw ioFailure(dev.path, 'reading', off, o.receipt.image.size, err);
        }
        h.update(b);
        verified += n;
        const secs = (performance.now() - started) / 1000;
        o.onProgress?.({ phase: 'verify', written: 0, verified, total: o.receipt.image.size, mbPerSec: Math.round((verified / 1e6 / Math.max(secs, 1e-3)) * 10) / 10, etaSeconds: Math.round((secs * (o.receipt.image.size - verified)) / verified) });
      }
      const actual = h.digest('hex');
      if (actual !== range.sha256) bad.push({ index: range.index, offset: range.offset, length: range.length, expected: range.sha256, actual });
    }
  } finally {
    await r.close().catch(() => undefined);
  }
  return { ok: bad.length === 0, device: dev, checked: o.receipt.ranges.length, bad };
}
