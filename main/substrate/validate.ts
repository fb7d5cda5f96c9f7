// Every value that ends up in a remote command is validated here first, against the grammar
// Proxmox itself applies (pve-storage-id, pve-tag, pve-bridge-id, dns-name, MAC). Invalid input
// is rejected before any command runs; quoting (shell.ts) is the second, independent wall.
import { PROXMOX_ID, PROXMOX_TAG } from '../../common/spec/schema';

export class SubstrateInputError extends Error {
  readonly field: string;
  readonly value: unknown;
  constructor(field: string, value: unknown, rule: string) {
    super(`invalid ${field} ${JSON.stringify(value)}: ${rule}`);
    this.name = 'SubstrateInputError';
    this.field = field;
    this.value = value;
  }
}

const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const NODE_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const BRIDGE = /^[A-Za-z][A-Za-z0-9_.]{0,14}$/;
const MAC = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$/;
const CPU_TYPE = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$/;
/** Names of files we upload into a storage (ISO / import content). */
const VOLUME_FILE = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,200}\.(iso|qcow2|img|raw)$/;
/** Remote absolute paths we read or hash: no shell or property-string metacharacters at all. */
const REMOTE_PATH = /^\/[A-Za-z0-9_.+@/-]{0,4095}$/;
/** Guest paths for the agent's file-read. */
// eslint-disable-next-line no-control-regex
const GUEST_PATH = /^\/[^\u0000-\u001f\u007f]{0,4095}$/;

export function vmid(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 100 || value > 999_999_999) {
    throw new SubstrateInputError('VMID', value, 'must be an integer from 100 to 999999999');
  }
  return value;
}

export function storageId(value: unknown): string {
  if (typeof value !== 'string' || value.length > 64 || !PROXMOX_ID.test(value)) {
    throw new SubstrateInputError('storage id', value, 'a letter, then letters, digits, "-", "_" or "." (pve-storage-id)');
  }
  return value;
}

export function bridgeName(value: unknown): string {
  if (typeof value !== 'string' || !BRIDGE.test(value)) throw new SubstrateInputError('bridge', value, 'a Linux bridge name: a letter, then up to 14 letters, digits, "_" or "."');
  return value;
}

export function tag(value: unknown): string {
  if (typeof value !== 'string' || value.length > 128 || !PROXMOX_TAG.test(value)) {
    throw new SubstrateInputError('tag', value, 'Proxmox tags hold only a-z, 0-9, "_", "+", "." and "-" and start with a-z, 0-9 or "_"');
  }
  return value;
}

export function vmName(value: unknown): string {
  if (typeof value !== 'string' || !DNS_NAME.test(value)) throw new SubstrateInputError('VM name', value, 'must be a DNS name (letters, digits, "-", dots between labels)');
  return value;
}

export function nodeName(value: unknown): string {
  if (typeof value !== 'string' || !NODE_NAME.test(value)) throw new SubstrateInputError('Proxmox node name', value, 'must be a DNS label');
  return value;
}

export function macAddress(value: unknown): string {
  if (typeof value !== 'string' || !MAC.test(value)) throw new SubstrateInputError('MAC address', value, 'six hex pairs separated by ":"');
  if ((parseInt(value.slice(0, 2), 16) & 1) === 1) throw new SubstrateInputError('MAC address', value, 'must be unicast (first octet even)');
  return value.toUpperCase();
}

export function vlanTag(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 4094) throw new SubstrateInputError('VLAN', value, 'must be 1..4094');
  return value;
}

export function positiveInt(field: string, value: unknown, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) throw new SubstrateInputError(field, value, `must be an integer from 0 to ${max}`);
  return value;
}

export function cpuType(value: unknown): string {
  if (typeof value !== 'string' || !CPU_TYPE.test(value)) throw new SubstrateInputError('CPU type', value, 'letters, digits, "_", ".", "+" and "-"');
  return value;
}

export function volumeFileName(value: unknown): string {
  if (typeof value !== 'string' || !VOLUME_FILE.test(value) || value.includes('..')) {
    throw new SubstrateInputError('artifact file name', value, 'letters, digits, "_", ".", "+", "-", ending in .iso, .qcow2, .img or .raw');
  }
  return value;
}

export function remotePath(value: unknown): string {
  if (typeof value !== 'string' || !REMOTE_PATH.test(value) || value.split('/').includes('..')) {
    throw new SubstrateInputError('remote path', value, 'an absolute path of letters, digits and "_.+@/-"');
  }
  return value;
}

export function guestPath(value: unknown): string {
  if (typeof value !== 'string' || !GUEST_PATH.test(value)) throw new SubstrateInputError('guest path', value, 'an absolute path without control characters');
  return value;
}

/** A storage volume id as we use them: STORAGE:iso/FILE, STORAGE:import/FILE. */
export function volumeId(value: unknown): string {
  if (typeof value !== 'string') throw new SubstrateInputError('volume id', value, 'STORAGE:CONTENT/FILE');
  const m = /^([^:]+):(iso|import)\/(.+)$/.exec(value);
  if (!m) throw new SubstrateInputError('volume id', value, 'STORAGE:iso/FILE or STORAGE:import/FILE');
  storageId(m[1]);
  volumeFileName(m[3]);
  return value;
}

/**
 * A guest path we write a file to: absolute, no control characters, no empty, "." or ".."
 * segment, not a directory path (no trailing "/"), and a last name short enough that the
 * staging name beside it (NAME.kubedos-tmp) still fits NAME_MAX.
 */
export function guestFilePath(value: unknown): string {
  const rule = 'an absolute file path without control characters, "//", "." or ".." segments or a trailing "/"';
  guestPath(value);
  const p = value as string;
  const segments = p.split('/').slice(1);
  if (p.length > 3900 || segments.some((s) => s === '' || s === '.' || s === '..')) throw new SubstrateInputError('guest file path', value, rule);
  if ((segments[segments.length - 1] as string).length > 200) throw new SubstrateInputError('guest file path', value, 'the file name must be at most 200 characters');
  return p;
}

/** Permission bits for a file we write (no setuid/setgid/sticky): 0 to 0o777. */
export function fileMode(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0o777) throw new SubstrateInputError('file mode', value, 'permission bits from 0 to 0o777 (e.g. 0o600, 0o644)');
  return value;
}

/**
 * The local directory qemu-local keeps VMs in (spec.substrate.qemu.stateDir, resolved): absolute,
 * no control characters, no "," (QEMU and swtpm split option strings on it) and no ".." segment.
 */
// eslint-disable-next-line no-control-regex
const LOCAL_DIR = /^\/[^,\u0000-\u001f\u007f]{0,4000}$/;
export function localStateDir(value: unknown): string {
  if (typeof value !== 'string' || !LOCAL_DIR.test(value) || value.split('/').includes('..')) {
    throw new SubstrateInputError('qemu stateDir', value, 'an absolute directory path without ",", control characters or ".." segments');
  }
  return value;
}

/**
 * A value inside a QEMU option string (`-drive file=VALUE,…`): QEMU splits on "," and reads ",,"
 * as a literal comma, so every comma is doubled. Control characters are refused outright.
 */
export function qemuOptionValue(value: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new SubstrateInputError('QEMU option value', value, 'no control characters');
  return value.replace(/,/g, ',,');
}
