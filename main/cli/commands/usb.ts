// `kubedos usb list | write | verify`: thin over main/usb/.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { renderTable } from '../../../common/text/table';
import { describeBad, describeDevice, DeviceRefused, StickError, usbList, usbVerify, usbWrite } from '../../usb/index';
import type { UsbProgress } from '../../usb/index';
import type { CliCommand, CliIo } from '../command';
import { parseCommandArgs, UsageError } from '../command';

const gb = (n: number): string => `${(n / 1e9).toFixed(1)} GB`;

function progressLine(io: CliIo): (p: UsbProgress) => void {
  let last = '';
  return (p) => {
    const done = p.phase === 'verify' ? p.verified : p.written;
    const pct = p.total ? Math.floor((100 * done) / p.total) : 0;
    const eta = p.etaSeconds !== undefined ? `, ${Math.floor(p.etaSeconds / 60)}:${String(p.etaSeconds % 60).padStart(2, '0')} left` : '';
    const line = p.phase === 'probe' ? 'checking the stick\'s real capacity…' : p.phase === 'done' ? '' : `${p.phase === 'write' ? 'writing  ' : 'verifying'} ${String(pct).padStart(3)} %  ${p.mbPerSec.toFixed(1)} MB/s${eta}`;
    if (!line || line === last) return;
    last = line;
    if (io.isTty) io.err(`\r${line}\u001b[K`);
    else if (p.phase === 'probe' || pct % 10 === 0) io.err(line);
  };
}

export const usbCommand: CliCommand = {
  name: 'usb',
  summary: 'list removable sticks, write a portable stick (artifact, bundle, CLI) with read-back and a signed receipt, verify it later',
  usage: 'kubedos usb list [--all] [--json] | usb write DEVICE [--artifact DIR] [--bundle DIR] [--appimage FILE] [--force] | usb verify DEVICE [--receipt FILE] [--key PUB.pem]',
  help: [
    '  list               removable whole disks that may be written (RM=1, or hot-pluggable USB; nothing',
    '                     mounted; not the disk holding /); --all shows every disk with why it is refused',
    '  write DEVICE       writes one image: an MBR partition table and an ext4 partition (label KUBEDOS)',
    '                     holding artifact/, bundle/, the workbench AppImage when one is built (dist/) or',
    '                     else the kubedos CLI (run it with `node kubedos/bin/kubedos.mjs`), README.txt, STICK.json.',
    '                     The artifact and the bundle are verified first. Then: a fake-capacity probe,',
    '                     the write with O_DIRECT and sha256 per 64 MiB range, each range flushed and read',
    '                     back with O_DIRECT, the partition table (first MiB) written last. Only a stick',
    '                     that read back whole gets a receipt, signed with the cluster\'s build key and kept',
    '                     in <workspace>/usb/receipts/.',
    '    --force          write a disk that is not removable (never a mounted one or the system disk)',
    '  verify DEVICE      reads the stick back and checks every range against its receipt (default: the',
    '                     receipt kept for this stick); names the ranges that differ. Exit 1 when any does.',
    '    --key FILE       the receipt must be signed by this ed25519 public key (PEM)',
    'Writing and verifying need root (or the disk group).',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, {
      all: { type: 'boolean' },
      json: { type: 'boolean' },
      artifact: { type: 'string' },
      bundle: { type: 'string' },
      appimage: { type: 'string' },
      force: { type: 'boolean' },
      receipt: { type: 'string' },
      key: { type: 'string' },
    });
    const [sub, device, extra] = positionals;
    if (extra) throw new UsageError(`one DEVICE, not ${positionals.length - 1}`);
    try {
      if (sub === 'list') {
        if (device) throw new UsageError('`usb list` takes no device');
        const devs = await usbList({ all: values.all, signal: io.signal });
        if (values.json) {
          io.out(JSON.stringify(devs, null, 2));
          return 0;
        }
        if (devs.length === 0) {
          io.out(values.all ? 'no disks found' : 'no removable disk found (plug in a stick; `kubedos usb list --all` shows every disk and why it is refused)');
          return 0;
        }
        io.out(
          renderTable(
            ['device', 'size', 'model', 'serial', 'writable'],
            devs.map((d) => [d.identity.path, gb(d.identity.size), [d.identity.vendor, d.identity.model].filter(Boolean).join(' ') || '-', d.identity.serial ?? '-', d.refusals.length === 0 ? 'yes' : `no: ${d.refusals.join('; ')}`]),
          ),
        );
        return 0;
      }
      if (sub === 'write') {
        if (!device) throw new UsageError('usb write needs a DEVICE (see kubedos usb list)');
        if (!values.artifact && !values.bundle) throw new UsageError('usb write needs --artifact DIR, --bundle DIR or both');
        const r = await usbWrite({
          device,
          ...(values.artifact ? { artifact: resolve(io.cwd, values.artifact) } : {}),
          ...(values.bundle ? { bundle: resolve(io.cwd, values.bundle) } : {}),
          ...(values.appimage ? { appImage: resolve(io.cwd, values.appimage) } : {}),
          force: values.force,
          env: io.env,
          signal: io.signal,
          onProgress: progressLine(io),
          log: (l) => io.err(l),
        });
        if (io.isTty) io.err('\n');
        const t = r.timings;
        if (values.json) io.out(JSON.stringify({ receiptPath: r.receiptPath, receipt: r.receipt, timings: t }, null, 2));
        else {
          io.out(`usb write ok: ${describeDevice(r.device)}`);
          io.out(`  image sha256 ${r.imageSha256} (${(r.receipt.image.size / 1e6).toFixed(0)} MB, ${r.ranges.length} ranges read back and matched)`);
          io.out(`  ${((r.receipt.image.size / 1e6) / (t.totalMs / 1000)).toFixed(1)} MB/s overall; probe ${(t.probeMs / 1000).toFixed(1)} s, write ${(t.writeMs / 1000).toFixed(1)} s, last read-back ${(t.verifyTailMs / 1000).toFixed(1)} s`);
          io.out(`  receipt ${r.receiptPath} (signed by key ${r.receipt.signingKeyId})`);
        }
        return 0;
      }
      if (sub === 'verify') {
        if (!device) throw new UsageError('usb verify needs a DEVICE');
        const r = await usbVerify({
          device,
          ...(values.receipt ? { receiptPath: resolve(io.cwd, values.receipt) } : {}),
          ...(values.key ? { publicKeyPem: readFileSync(resolve(io.cwd, values.key), 'utf8') } : {}),
          env: io.env,
          signal: io.signal,
          onProgress: progressLine(io),
        });
        if (io.isTty) io.err('\n');
        if (values.json) io.out(JSON.stringify({ ok: r.ok, device: r.device, bad: r.bad, identityMismatch: r.identityMismatch, receiptPath: r.receiptPath, keyid: r.keyid }, null, 2));
        if (r.identityMismatch) {
          if (!values.json) io.err(`usb verify FAILED: ${r.identityMismatch}`);
          return 1;
        }
        if (!r.ok) {
          if (!values.json) io.err(`usb verify FAILED: ${describeDevice(r.device)}: ${describeBad(r.bad)} (receipt ${r.receiptPath})`);
          return 1;
        }
        if (!values.json) io.out(`usb verify ok: ${describeDevice(r.device)}: ${r.checked} ranges match the receipt (image sha256 ${r.receipt.image.sha256}, signed by key ${r.keyid})`);
        return 0;
      }
      throw new UsageError('expected `list`, `write` or `verify`');
    } catch (err) {
      if (err instanceof StickError || err instanceof DeviceRefused) {
        if (io.isTty) io.err('\n');
        io.err(`usb ${sub} FAILED: ${err.message}`);
        return 1;
      }
      throw err;
    }
  },
};
