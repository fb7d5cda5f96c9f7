// Which block devices a stick may be written to. The list comes from `lsblk --json` (which reads
// udev's database: model, serial, transport), run through the one runner. The rule, written once
// here (`eligibility`):
//   - a whole disk (type "disk"), not read-only, not empty;
//   - removable: lsblk says RM (removable media) or HOTPLUG on the USB transport;
//   - nothing on it mounted (the disk itself, a partition, an LVM/dm child), no swap;
//   - never the disk that holds `/`.
// `--force` lifts only the "removable" condition; a mounted disk, the system disk and a
// read-only disk stay refused whatever the flag. Tests inject the device list (`source`) to make a
// loop device look removable; the production rule itself has no test switch.
import { z } from 'zod';
import { run } from '../exec/runner';

const flag = z.preprocess((v) => (v === '1' || v === 1 ? true : v === '0' || v === 0 ? false : v), z.boolean().nullable().optional());
const text = z
  .string()
  .nullable()
  .optional()
  .transform((v) => (v ?? '').trim() || undefined);

export interface LsblkDevice {
  name: string;
  path: string;
  type: string;
  size: number;
  rm?: boolean | null;
  hotplug?: boolean | null;
  ro?: boolean | null;
  tran?: string | undefined;
  model?: string | undefined;
  serial?: string | undefined;
  vendor?: string | undefined;
  wwn?: string | undefined;
  mountpoints?: (string | null)[] | null;
  'log-sec'?: number | null;
  children?: LsblkDevice[] | undefined;
}

export const LsblkDeviceSchema: z.ZodType<LsblkDevice> = z.lazy(() =>
  z.object({
    name: z.string(),
    path: z.string(),
    type: z.string(),
    size: z.preprocess((v) => (typeof v === 'string' ? Number(v) : v), z.number().int().min(0)),
    rm: flag,
    hotplug: flag,
    ro: flag,
    tran: text,
    model: text,
    serial: text,
    vendor: text,
    wwn: text,
    mountpoints: z.array(z.string().nullable()).nullable().optional(),
    'log-sec': z.number().int().nullable().optional(),
    children: z.array(LsblkDeviceSchema).optional(),
  }),
) as z.ZodType<LsblkDevice>;

export const LsblkOutput = z.object({ blockdevices: z.array(LsblkDeviceSchema) });

export const LSBLK_COLUMNS = 'NAME,PATH,TYPE,SIZE,RM,HOTPLUG,RO,TRAN,MODEL,SERIAL,VENDOR,WWN,MOUNTPOINTS,LOG-SEC';

/** Where the device list comes from: lsblk by default; tests pass their own (see file header). */
export type DeviceSource = (signal?: AbortSignal) => Promise<LsblkDevice[]>;

export const lsblkSource: DeviceSource = async (signal) => {
  const r = await run(['lsblk', '--json', '--bytes', '--tree', '-o', LSBLK_COLUMNS], { signal, timeoutMs: 30_000, hint: 'lsblk (package util-linux) lists the block devices' });
  const parsed = LsblkOutput.safeParse(JSON.parse(r.stdout));
  if (!parsed.success) throw new Error(`lsblk --json printed a shape this version does not know: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data.blockdevices;
};

/** What identifies a stick in a receipt. */
export interface DeviceIdentity {
  path: string;
  name: string;
  size: number;
  model?: string;
  serial?: string;
  vendor?: string;
  wwn?: string;
  tran?: string;
  logicalSectorSize: number;
}

export interface UsbDevice {
  identity: DeviceIdentity;
  removable: boolean;
  /** Every mountpoint on the disk or below it (partitions, dm children), sorted. */
  mounts: string[];
  holdsRoot: boolean;
  readOnly: boolean;
  /** Why it may not be written; empty when it may. */
  refusals: string[];
  /** Refusals that --force does not lift. */
  hardRefusals: string[];
}

function mountsOf(d: LsblkDevice): string[] {
  const own = (d.mountpoints ?? []).filter((m): m is string => typeof m === 'string' && m.length > 0);
  return [...own, ...(d.children ?? []).flatMap(mountsOf)];
}

const bytes = (n: number): string => (n >= 1e9 ? `${(n / 1e9).toFixed(1)} GB` : `${(n / 1e6).toFixed(0)} MB`);

/** The rule (see the file header), for one top-level lsblk entry. */
export function eligibility(d: LsblkDevice): UsbDevice {
  const mounts = [...new Set(mountsOf(d))].sort();
  const holdsRoot = mounts.includes('/');
  const removable = d.rm === true || (d.hotplug === true && d.tran === 'usb');
  const readOnly = d.ro === true;
  const hard: string[] = [];
  const soft: string[] = [];
  if (d.type !== 'disk') hard.push(`it is a ${d.type}, not a whole disk`);
  if (holdsRoot) hard.push('it holds the running system (/ is mounted from it)');
  else if (mounts.length > 0) hard.push(`it is mounted (${mounts.slice(0, 3).join(', ')}${mounts.length > 3 ? ` and ${mounts.length - 3} more` : ''}): unmount it first`);
  if (readOnly) hard.push('it is read-only (write-protect switch?)');
  if (d.size === 0) hard.push('it has no medium (size 0)');
  if (!removable) soft.push('it is not a removable disk (lsblk: RM=0 and not hot-pluggable USB)');
  return {
    identity: {
      path: d.path,
      name: d.name,
      size: d.size,
      ...(d.model ? { model: d.model } : {}),
      ...(d.serial ? { serial: d.serial } : {}),
      ...(d.vendor ? { vendor: d.vendor } : {}),
      ...(d.wwn ? { wwn: d.wwn } : {}),
      ...(d.tran ? { tran: d.tran } : {}),
      logicalSectorSize: d['log-sec'] ?? 512,
    },
    removable,
    mounts,
    holdsRoot,
    readOnly,
    refusals: [...hard, ...soft],
    hardRefusals: hard,
  };
}

export interface ListOptions {
  source?: DeviceSource;
  signal?: AbortSignal;
  /** Also return disks that are refused (with their reasons). */
  all?: boolean;
}

/** Removable whole disks, each with its refusals; with `all`, every disk lsblk shows. */
export async function listUsbDevices(o: ListOptions = {}): Promise<UsbDevice[]> {
  const devices = (await (o.source ?? lsblkSource)(o.signal)).map(eligibility);
  const shown = o.all ? devices : devices.filter((d) => d.removable && d.hardRefusals.length === 0);
  return shown.sort((a, b) => (a.identity.path < b.identity.path ? -1 : a.identity.path > b.identity.path ? 1 : 0));
}

export class DeviceRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeviceRefused';
  }
}

/** The device at `path` if it may be written (with `force`, a non-removable disk may); else throws
 * one message saying why and what to do. */
export async function pickDevice(path: string, o: { force?: boolean; source?: DeviceSource; signal?: AbortSignal } = {}): Promise<UsbDevice> {
  const all = (await (o.source ?? lsblkSource)(o.signal)).map(eligibility);
  const d = all.find((x) => x.identity.path === path || `/dev/${x.identity.name}` === path);
  if (!d) {
    const usb = all.filter((x) => x.removable && x.hardRefusals.length === 0).map((x) => x.identity.path);
    throw new DeviceRefused(`${path} is not a disk lsblk knows (a partition, or unplugged?). Removable disks now: ${usb.length ? usb.slice(0, 5).join(', ') : 'none'} (kubedos usb list)`);
  }
  const what = `${d.identity.path} (${[d.identity.vendor, d.identity.model].filter(Boolean).join(' ') || 'no model'}, ${bytes(d.identity.size)})`;
  if (d.hardRefusals.length > 0) throw new DeviceRefused(`refusing to write ${what}: ${d.hardRefusals.join('; ')}`);
  if (!d.removable && !o.force) throw new DeviceRefused(`refusing to write ${what}: ${d.refusals.join('; ')}. If you are sure it is the stick, pass --force`);
  return d;
}

export function describeDevice(d: DeviceIdentity): string {
  return `${d.path} (${[d.vendor, d.model].filter(Boolean).join(' ') || 'no model'}${d.serial ? `, serial ${d.serial}` : ''}, ${bytes(d.size)})`;
}
