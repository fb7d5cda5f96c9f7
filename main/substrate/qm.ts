// Builds `qm`, `pvesm` and `pvesh` argv arrays from a VmShape, and reads their output back.
// Option names and property-string grammar follow the qm(1) manual of Proxmox VE 8
// ("qm create", "qm set", "qm disk import/resize", "qm guest cmd/exec", "qm destroy"),
// pvesm(1) ("pvesm status/path") and the API viewer for /nodes/{node}/qemu/{vmid}/agent/file-read.
// Everything that goes into an argv passes a validator from validate.ts first.
import type { VmShape } from '../../common/plan/schema';
import * as v from './validate';
import { changesInPlace, IN_PLACE_VM_KEYS } from '../../common/plan/in-place';

export type Argv = string[];

/** What boots the VM: an imported disk image (qcow2) or an installer ISO on a CD-ROM. */
export type BootArtifact = { kind: 'disk-image'; volid: string } | { kind: 'iso'; volid: string };

/** Tags are ';'-separated in Proxmox; sorted and de-duplicated like Proxmox itself stores them. */
export function tagList(tags: readonly string[]): string {
  return [...new Set(tags.map(v.tag))].sort().join(';');
}

/** Property strings: `key=value` pairs joined by commas (pve property-string format). */
function props(pairs: readonly (readonly [string, string | number | undefined])[]): string {
  return pairs
    .filter((p): p is readonly [string, string | number] => p[1] !== undefined)
    .map(([k, val]) => (k === '' ? String(val) : `${k}=${val}`))
    .join(',');
}

export function checkShape(shape: VmShape): void {
  v.vmid(shape.vmid);
  v.vmName(shape.name);
  v.storageId(shape.efidisk.pool);
  v.storageId(shape.tpm.pool);
  v.cpuType(shape.cpu.type);
  v.positiveInt('cores', shape.cpu.cores, 512);
  v.positiveInt('memory', shape.memoryMiB, 4 * 1024 * 1024);
  v.positiveInt('balloon', shape.balloon, 4 * 1024 * 1024);
  for (const d of shape.disks) {
    v.storageId(d.pool);
    v.positiveInt('disk size', d.sizeGiB, 65536);
    v.positiveInt('disk index', d.index, 30);
  }
  for (const n of shape.nics) {
    v.macAddress(n.mac);
    v.bridgeName(n.bridge);
    if (n.vlan !== undefined) v.vlanTag(n.vlan);
    v.positiveInt('nic index', n.index, 31);
  }
  shape.tags.forEach(v.tag);
  for (const b of shape.bootOrder) if (!/^(scsi|ide|net|virtio|sata)\d{1,2}$/.test(b)) throw new v.SubstrateInputError('boot device', b, 'like scsi0 or ide2');
}

/** The .conf values Proxmox keeps for the parts of the shape we own (keys sorted). */
export interface ExpectedConfig {
  /** key -> expected property map ('' is the default key) */
  [key: string]: Record<string, string>;
}

export function diskProps(d: VmShape['disks'][number]): [string, string][] {
  return [
    ['discard', d.discard ? 'on' : 'ignore'],
    ['iothread', d.iothread ? '1' : '0'],
  ];
}

function netValue(n: VmShape['nics'][number]): string {
  return props([
    ['virtio', v.macAddress(n.mac)],
    ['bridge', n.bridge],
    ['firewall', n.firewall ? 1 : 0],
    ['tag', n.vlan],
  ]);
}

function bootOrder(shape: VmShape, artifact: BootArtifact | undefined): string {
  const order = shape.bootOrder.filter((b) => b !== 'ide2' || artifact?.kind === 'iso');
  return `order=${order.join(';')}`;
}

/**
 * `qm create` for a shape. With a disk image the first disk is imported in the same call
 * (`import-from=`, Proxmox VE >= 7.2): if the import fails, Proxmox removes the half-created VM
 * itself, so no orphan is left. Other disks are allocated empty (`STORAGE:SIZE_GiB`).
 */
export function qmCreate(shape: VmShape, artifact: BootArtifact | undefined): Argv {
  checkShape(shape);
  if (artifact) v.volumeId(artifact.volid);
  const a: Argv = ['qm', 'create', String(shape.vmid)];
  a.push('--name', shape.name);
  a.push('--machine', shape.machine);
  a.push('--bios', shape.bios);
  a.push('--efidisk0', props([['', `${shape.efidisk.pool}:1`], ['efitype', shape.efidisk.efitype], ['pre-enrolled-keys', shape.efidisk.preEnrolledKeys ? 1 : 0]]));
  a.push('--tpmstate0', props([['', `${shape.tpm.pool}:1`], ['version', shape.tpm.version]]));
  a.push('--agent', props([['enabled', shape.agent.enabled ? 1 : 0], ['fstrim_cloned_disks', shape.agent.fstrimClonedDisks ? 1 : 0]]));
  a.push('--ostype', shape.ostype);
  a.push('--cpu', shape.cpu.type);
  a.push('--sockets', String(shape.cpu.sockets));
  a.push('--cores', String(shape.cpu.cores));
  a.push('--memory', String(shape.memoryMiB));
  a.push('--balloon', String(shape.balloon));
  a.push('--scsihw', shape.scsihw);
  a.push('--serial0', shape.serial0);
  a.push('--vga', shape.vga);
  if (shape.rng) a.push('--rng0', 'source=/dev/urandom');
  a.push('--onboot', shape.onboot ? '1' : '0');
  for (const d of shape.disks) {
    const first = d.index === 0 && artifact?.kind === 'disk-image';
    const source = first ? [['', `${d.pool}:0`], ['import-from', artifact.volid]] : [['', `${d.pool}:${d.sizeGiB}`]];
    a.push(`--scsi${d.index}`, props([...(source as [string, string][]), ...diskProps(d)]));
  }
  for (const n of shape.nics) a.push(`--net${n.index}`, netValue(n));
  if (artifact?.kind === 'iso') a.push('--ide2', props([['', artifact.volid], ['media', 'cdrom']]));
  a.push('--boot', bootOrder(shape, artifact));
  a.push('--tags', tagList(shape.tags));
  return a;
}

/** `qm set` with the drifted settable keys, given as `--key value` pairs. */
export function qmSet(id: number, changes: Readonly<Record<string, string>>): Argv {
  v.vmid(id);
  const keys = Object.keys(changes).sort();
  if (keys.length === 0) throw new Error('qm set without changes');
  const a: Argv = ['qm', 'set', String(id)];
  for (const k of keys) {
    if (!changesInPlace(k)) throw new v.SubstrateInputError('qm set key', k, `one of ${[...SETTABLE].join(', ')}, netN`);
    a.push(`--${k}`, changes[k] as string);
  }
  return a;
}

/** Keys that `qm set` can change in place without re-creating the VM (common/plan/in-place.ts). */
export const SETTABLE = new Set<string>(IN_PLACE_VM_KEYS);

export const qmStart = (id: number): Argv => ['qm', 'start', String(v.vmid(id))];
export const qmStop = (id: number, timeoutS?: number): Argv => ['qm', 'stop', String(v.vmid(id)), ...(timeoutS !== undefined ? ['--timeout', String(v.positiveInt('timeout', timeoutS, 86400))] : [])];
export const qmShutdown = (id: number, timeoutS: number): Argv => ['qm', 'shutdown', String(v.vmid(id)), '--timeout', String(v.positiveInt('timeout', timeoutS, 86400))];
export const qmDestroy = (id: number): Argv => ['qm', 'destroy', String(v.vmid(id)), '--purge', '1', '--destroy-unreferenced-disks', '1'];
export const qmConfig = (id: number): Argv => ['qm', 'config', String(v.vmid(id))];
export const qmStatus = (id: number): Argv => ['qm', 'status', String(v.vmid(id))];
export const qmResize = (id: number, disk: string, sizeGiB: number): Argv => {
  if (!/^scsi\d{1,2}$/.test(disk)) throw new v.SubstrateInputError('disk', disk, 'scsiN');
  return ['qm', 'disk', 'resize', String(v.vmid(id)), disk, `${v.positiveInt('size', sizeGiB, 65536)}G`];
};
export const qmGuestPing = (id: number): Argv => ['qm', 'guest', 'cmd', String(v.vmid(id)), 'ping'];
const SHELLS = new Set(['sh', '/bin/sh', 'bash', '/bin/bash']);

/**
 * Pure: a `sh -c SCRIPT …` whose script spans lines, as one line. `qm guest exec` is reached
 * through a remote shell, whose command line never carries a newline (substrate/shell.ts refuses
 * them), while the engine's node scripts (the converge fingerprint, the wiring probes) are
 * written over several lines. The script travels base64-encoded and the same shell evaluates it,
 * with the same $0 and positional parameters, exit status and `set` options. Anything else with
 * a control character is left as is (and refused by the quoting, as before).
 */
export function singleLineScript(argv: readonly string[]): string[] {
  const [shell, flag, script, ...rest] = argv;
  if (shell === undefined || !SHELLS.has(shell) || flag !== '-c' || script === undefined || !/[\n\r]/.test(script)) return [...argv];
  return [shell, '-c', `eval "$(printf %s ${Buffer.from(script, 'utf8').toString('base64')} | base64 -d)"`, ...rest];
}

/** `qm guest exec`; with passStdin the SSH channel's stdin becomes the process's stdin (`--pass-stdin 1`, at most 1 MiB). */
export function qmGuestExec(id: number, argv: readonly string[], timeoutS: number, passStdin = false): Argv {
  if (argv.length === 0) throw new v.SubstrateInputError('guest command', argv, 'at least a program');
  for (const w of argv) if (typeof w !== 'string' || w.includes('\u0000')) throw new v.SubstrateInputError('guest command word', w, 'a string without NUL');
  return ['qm', 'guest', 'exec', String(v.vmid(id)), '--timeout', String(v.positiveInt('timeout', timeoutS, 86400)), ...(passStdin ? ['--pass-stdin', '1'] : []), '--', ...singleLineScript(argv)];
}
export const pveshFileRead = (node: string, id: number, path: string): Argv => [
  'pvesh',
  'get',
  `/nodes/${v.nodeName(node)}/qemu/${v.vmid(id)}/agent/file-read`,
  '--file',
  v.guestPath(path),
  '--output-format',
  'json',
];
export const pveshResources = (): Argv => ['pvesh', 'get', '/cluster/resources', '--type', 'vm', '--output-format', 'json'];
export const pvesmStatus = (storage: string): Argv => ['pvesm', 'status', '--storage', v.storageId(storage)];
export const pvesmPath = (volid: string): Argv => ['pvesm', 'path', v.volumeId(volid)];
export const pvesmFree = (volid: string): Argv => ['pvesm', 'free', v.volumeId(volid)];

// ---------------------------------------------------------------- reading output back

/** `qm config` / .conf text → key → raw value (snapshot sections and comments ignored). */
export function parseVmConfig(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line.startsWith('[')) break;
    const m = /^([a-z][a-z0-9_-]*):\s?(.*)$/.exec(line);
    if (m) out[m[1] as string] = m[2] as string;
  }
  return out;
}

/** Property string → map; the default key (first value without '=') is stored under ''. */
export function parsePropertyString(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  value.split(',').forEach((part, i) => {
    const eq = part.indexOf('=');
    if (eq < 0 && i === 0) out[''] = part;
    else if (eq > 0) out[part.slice(0, eq)] = part.slice(eq + 1);
    else out[part] = '';
  });
  return out;
}

export interface ConfigDifference {
  key: string;
  expected: string;
  actual: string;
  /** true when `qm set` can fix it in place; false needs destroy + create. */
  settable: boolean;
}

function storageOf(volume: string | undefined): string | undefined {
  return volume?.split(':')[0];
}

function sizeGiB(size: string | undefined): number | undefined {
  if (!size) return undefined;
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)$/.exec(size);
  if (!m) return undefined;
  const n = Number(m[1]);
  const f = { '': 1 / 1024 ** 3, K: 1 / 1024 ** 2, M: 1 / 1024, G: 1, T: 1024 }[m[2] as '' | 'K' | 'M' | 'G' | 'T'];
  return n * f;
}

/** How an existing VM's config differs from the plan's shape (empty = converged). */
export function compareConfig(shape: VmShape, config: Record<string, string>): ConfigDifference[] {
  const diffs: ConfigDifference[] = [];
  const want = (key: string, expected: string, actual: string | undefined): void => {
    if ((actual ?? '') !== expected) diffs.push({ key, expected, actual: actual ?? '(absent)', settable: changesInPlace(key) });
  };
  const prop = (key: string): Record<string, string> => parsePropertyString(config[key] ?? '');
  want('name', shape.name, config.name);
  want('machine', shape.machine, parsePropertyString(config.machine ?? '')[''] ?? config.machine);
  want('bios', shape.bios, config.bios);
  const efi = prop('efidisk0');
  want('efidisk0', `${shape.efidisk.pool}:*,efitype=${shape.efidisk.efitype},pre-enrolled-keys=1`, config.efidisk0 ? `${storageOf(efi[''])}:*,efitype=${efi.efitype},pre-enrolled-keys=${efi['pre-enrolled-keys']}` : undefined);
  const tpm = prop('tpmstate0');
  want('tpmstate0', `${shape.tpm.pool}:*,version=${shape.tpm.version}`, config.tpmstate0 ? `${storageOf(tpm[''])}:*,version=${tpm.version}` : undefined);
  const agent = prop('agent');
  want('agent', `enabled=1,fstrim_cloned_disks=${shape.agent.fstrimClonedDisks ? 1 : 0}`, config.agent ? `enabled=${agent.enabled ?? agent['']},fstrim_cloned_disks=${agent.fstrim_cloned_disks ?? 0}` : undefined);
  want('cpu', shape.cpu.type, prop('cpu')[''] ?? prop('cpu').cputype);
  want('sockets', String(shape.cpu.sockets), config.sockets ?? '1');
  want('cores', String(shape.cpu.cores), config.cores);
  want('memory', String(shape.memoryMiB), prop('memory')[''] ?? prop('memory').current);
  want('balloon', String(shape.balloon), config.balloon);
  want('scsihw', shape.scsihw, config.scsihw);
  want('ostype', shape.ostype, config.ostype);
  want('serial0', shape.serial0, config.serial0);
  want('vga', shape.vga, config.vga);
  want('onboot', shape.onboot ? '1' : '0', config.onboot ?? '0');
  want('tags', tagList(shape.tags), (config.tags ?? '').split(/[;, ]/).filter(Boolean).sort().join(';'));
  if (shape.rng) want('rng0', 'source=/dev/urandom', config.rng0);
  for (const d of shape.disks) {
    const key = `scsi${d.index}`;
    const p = prop(key);
    const size = sizeGiB(p.size);
    want(key, `${d.pool}:*,discard=${d.discard ? 'on' : 'ignore'},iothread=${d.iothread ? 1 : 0},size>=${d.sizeGiB}G`, config[key] ? `${storageOf(p[''])}:*,discard=${p.discard ?? 'ignore'},iothread=${p.iothread ?? 0},${size !== undefined && size >= d.sizeGiB ? `size>=${d.sizeGiB}G` : `size=${p.size ?? '?'}`}` : undefined);
  }
  for (const n of shape.nics) {
    const key = `net${n.index}`;
    const p = prop(key);
    const actual = config[key] ? props([['virtio', p.virtio?.toUpperCase()], ['bridge', p.bridge], ['firewall', p.firewall ?? '0'], ['tag', p.tag]]) : undefined;
    want(key, netValue(n), actual);
  }
  return diffs;
}

export interface StorageStatus {
  name: string;
  type: string;
  active: boolean;
  totalBytes: number;
  usedBytes: number;
  availableBytes: number;
}

/** `pvesm status` table (sizes in KiB, like Proxmox prints them). */
export function parsePvesmStatus(text: string): StorageStatus[] {
  const rows = text.trim().split('\n').slice(1);
  return rows
    .map((r) => r.trim().split(/\s+/))
    .filter((c) => c.length >= 6)
    .map((c) => ({
      name: c[0] as string,
      type: c[1] as string,
      active: c[2] === 'active',
      totalBytes: Number(c[3]) * 1024,
      usedBytes: Number(c[4]) * 1024,
      availableBytes: Number(c[5]) * 1024,
    }));
}
