// Writing a stick image, side by side in one run, on a loop device backed by a file
// (losetup --direct-io=on, so the loop device does not sit on the host's page cache):
//   dd              dd if=IMG of=DEV bs=4M oflag=direct conv=fsync — the baseline
//   dd + read-back  the same, then `dd iflag=direct | sha256sum` of the same bytes (a writer that
//                   verifies after the fact, the way most do)
//   write           kubedos's writer without read-back (verify: 'none'): probe, O_DIRECT write,
//                   hashing, first MiB last
//   write+verify    kubedos usb write as shipped: each 64 MiB range flushed and read back with
//                   O_DIRECT while the next one is written
//   write, verify after   the same read-back, but after the whole write
// Each is run RUNS times, interleaved; the table shows medians and ratios. Numbers, not pass/fail.
// Needs root (losetup). Run: npm run bench:usb  (USB_BENCH_MIB=1024 USB_BENCH_RUNS=3 by default)
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderTable } from '../common/text/table';
import { keyidOf } from '../main/build/keys';
import { loopAsStick } from '../main/usb/testing';
import { writeStick } from '../main/usb/write';

const MIB = 1024 * 1024;
const sizeMiB = Number(process.env.USB_BENCH_MIB ?? 1024);
const runs = Number(process.env.USB_BENCH_RUNS ?? 3);
const dir = mkdtempSync(join(process.env.USB_BENCH_DIR ?? tmpdir(), 'kubedos-usb-bench-'));
let loop: string | undefined;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** dd's read-back of the device hashed by sha256sum (a shell pipe: no Node in the data path). */
function ddReadBackSha(dev: string, bytes: number): string {
  return execFileSync('sh', ['-c', 'dd if="$1" iflag=direct bs=4M count="$2" status=none | sha256sum', 'sh', dev, String(bytes / (4 * MIB))], { encoding: 'utf8' }).split(' ')[0]!;
}

try {
  const image = join(dir, 'stick.img');
  const imgHash = createHash('sha256');
  const fd = openSync(image, 'w');
  for (let i = 0; i < sizeMiB; i++) {
    const b = randomBytes(MIB);
    imgHash.update(b);
    writeSync(fd, b);
  }
  closeSync(fd);
  const imageSha = imgHash.digest('hex');
  const backing = join(dir, 'backing.img');
  execFileSync('truncate', ['-s', `${sizeMiB + 64}M`, backing]);
  loop = execFileSync('losetup', ['-f', '--show', '--direct-io=on', backing], { encoding: 'utf8' }).trim();
  const dio = execFileSync('losetup', ['-n', '-O', 'DIO', loop], { encoding: 'utf8' }).trim();
  if (dio !== '1') console.log(`note: ${loop} runs without direct I/O (losetup DIO=${dio})`);
  const source = loopAsStick([loop]);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const signingKey = { privateKey, publicKeyPem, keyid: keyidOf(publicKeyPem) };
  const contents = { cluster: 'bench', workbench: 'cli', kubedosVersion: '0' };
  const bytes = sizeMiB * MIB;
  const dev = loop;

  const methods: { name: string; run: () => Promise<void> }[] = [
    { name: 'dd', run: async () => void execFileSync('dd', [`if=${image}`, `of=${dev}`, 'bs=4M', 'oflag=direct', 'conv=fsync', 'status=none']) },
    {
      name: 'dd + read-back',
      run: async () => {
        execFileSync('dd', [`if=${image}`, `of=${dev}`, 'bs=4M', 'oflag=direct', 'conv=fsync', 'status=none']);
        if (ddReadBackSha(dev, bytes) !== imageSha) throw new Error('dd read-back does not match the image');
      },
    },
    { name: 'write', run: async () => void (await writeStick({ device: dev, image: { path: image, size: bytes, sha256: imageSha, contents }, source, verify: 'none' })) },
    {
      name: 'write+verify',
      run: async () => {
        await writeStick({ device: dev, image: { path: image, size: bytes, sha256: imageSha, contents }, source, signingKey, verify: 'pipelined' });
      },
    },
    { name: 'write, verify after', run: async () => void (await writeStick({ device: dev, image: { path: image, size: bytes, sha256: imageSha, contents }, source, signingKey, verify: 'after' })) },
  ];
  const times = new Map<string, number[]>(methods.map((m) => [m.name, []]));
  for (let i = 0; i < runs; i++) {
    for (const m of methods) {
      const t0 = performance.now();
      await m.run();
      times.get(m.name)!.push((performance.now() - t0) / 1000);
    }
  }
  const med = new Map([...times].map(([k, v]) => [k, median(v)]));
  const dd = med.get('dd')!;
  const w = med.get('write')!;
  console.log(`usb bench: ${sizeMiB} MiB random image, loop device on a file (direct I/O), ${runs} runs each, medians\n`);
  console.log(
    renderTable(
      ['method', 'seconds', 'MB/s', 'vs dd', 'vs write'],
      methods.map((m) => {
        const s = med.get(m.name)!;
        return [m.name, s.toFixed(2), (bytes / 1e6 / s).toFixed(0), `${(s / dd).toFixed(2)}x`, `${(s / w).toFixed(2)}x`];
      }),
    ),
  );
  const pipe = med.get('write+verify')! / w - 1;
  const after = med.get('write, verify after')! / w - 1;
  const ddv = med.get('dd + read-back')! / dd - 1;
  console.log(`\nverification adds: ${(pipe * 100).toFixed(1)} % (pipelined, as shipped; goal <= 15 %), ${(after * 100).toFixed(1)} % (read back after the write), ${(ddv * 100).toFixed(1)} % (dd then dd read-back)`);
  console.log(`all runs (s): ${[...times].map(([k, v]) => `${k}: ${v.map((x) => x.toFixed(2)).join(' ')}`).join('; ')}`);
} finally {
  if (loop) execFileSync('losetup', ['-d', loop]);
  rmSync(dir, { recursive: true, force: true });
}
