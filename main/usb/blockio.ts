// Direct I/O on a block device from Node. fs.constants.O_DIRECT is Linux's flag; what Node does not
// give is an aligned buffer: O_DIRECT needs the buffer's address aligned to the device's DMA
// alignment (512 bytes on most disks and on loop devices), and a Buffer's address is not visible
// from JavaScript. `alignedBuffer` takes the memory of a WebAssembly.Memory, which V8 maps on page
// boundaries (page-aligned like dd's buffers, so requests are not split), and checks it with one
// read; should that be refused (EINVAL), it falls back to a larger Buffer and finds an aligned start
// by trying reads at increasing offsets of 16 bytes: the kernel answers EINVAL until the start is
// aligned. Lengths and file offsets are multiples of 4096 (every logical sector size divides it).
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';

export const ALIGN = 4096;

export function directFlag(): number {
  const f = (constants as Record<string, number | undefined>).O_DIRECT;
  if (!f) throw new Error('this platform has no O_DIRECT (writing sticks is supported on Linux only)');
  return f;
}

/** Opens a block device for O_DIRECT I/O. For writing it is opened exclusively (O_EXCL on a block
 * device: the kernel refuses while it is mounted or held by another exclusive user). */
export async function openDevice(path: string, mode: 'read' | 'write'): Promise<FileHandle> {
  const flags = mode === 'write' ? constants.O_RDWR | constants.O_EXCL | directFlag() : constants.O_RDONLY | directFlag();
  try {
    return await open(path, flags);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EBUSY') throw new Error(`${path} is in use (mounted, or held by another program such as a desktop automounter or LVM): unmount it and try again`, { cause: err });
    if (e.code === 'EACCES' || e.code === 'EPERM') throw new Error(`no permission to open ${path} for ${mode === 'write' ? 'writing' : 'reading'}: run as root or add yourself to the disk group`, { cause: err });
    if (e.code === 'ENOENT' || e.code === 'ENXIO' || e.code === 'ENODEV') throw new Error(`${path} is gone (unplugged?): plug the stick in again and run kubedos usb list`, { cause: err });
    throw new Error(`cannot open ${path}: ${e.message}`, { cause: err });
  }
}

/** A Buffer of `size` bytes (a multiple of 4096) whose address suits O_DIRECT on `fh`. */
export async function alignedBuffer(fh: FileHandle, size: number): Promise<Buffer> {
  if (size % ALIGN !== 0) throw new Error(`direct I/O buffer of ${size} bytes: not a multiple of ${ALIGN}`);
  const pageAligned = Buffer.from(new WebAssembly.Memory({ initial: Math.ceil(size / 65536) }).buffer, 0, size);
  try {
    await fh.read(pageAligned, 0, ALIGN, 0);
    return pageAligned;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
  }
  const raw = Buffer.allocUnsafeSlow(size + ALIGN * 2);
  for (let off = 0; off <= ALIGN; off += 16) {
    const candidate = raw.subarray(off, off + size);
    try {
      await fh.read(candidate, 0, ALIGN, 0);
      return candidate;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    }
  }
  throw new Error('no aligned buffer found for direct I/O (the device refused every alignment up to 4096 bytes)');
}

/** Reads exactly buf.length bytes at `position` (O_DIRECT reads can come back short at the end). */
export async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw Object.assign(new Error(`read past the end of the device at offset ${position + done}`), { code: 'ENOSPC' });
    done += bytesRead;
  }
}

export async function writeFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    if (bytesWritten === 0) throw Object.assign(new Error(`the device took no more data at offset ${position + done}`), { code: 'ENOSPC' });
    done += bytesWritten;
  }
}
