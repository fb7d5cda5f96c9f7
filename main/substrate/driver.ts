// One interface for every substrate. The provision logic (provision.ts) only talks to this;
// proxmox-ssh.ts and qemu-local.ts implement it. Every operation takes an AbortSignal and
// reports what it does through events, so the CLI, the pipeline journal and the UI see the
// same stream.
import type { Writable } from 'node:stream';
import type { VmShape } from '../../common/plan/schema';
import type { BootArtifact } from './qm';

export type SubstrateEvent =
  | { kind: 'command'; host: string; node?: string; command: string }
  | { kind: 'log'; node?: string; level: 'info' | 'warn'; message: string }
  | { kind: 'progress'; node?: string; what: string; fraction: number; message?: string }
  | { kind: 'vm'; node: string; vmid: number; state: 'creating' | 'created' | 'starting' | 'running' | 'stopping' | 'stopped' | 'destroying' | 'destroyed' | 'updated' | 'resetting' };

export interface OpOptions {
  signal?: AbortSignal;
  onEvent?: (event: SubstrateEvent) => void;
}

export interface InventoryVm {
  vmid: number;
  name: string;
  tags: string[];
  status: 'running' | 'stopped' | 'unknown';
  /** Raw config (qm config / our own state) when the driver read it. */
  config?: Record<string, string>;
}

export interface Inventory {
  host: string;
  /** Proxmox node name, or "local". */
  node: string;
  vms: InventoryVm[];
  storages: { name: string; type: string; availableBytes: number; totalBytes: number }[];
}

export interface ArtifactFile {
  /** Local path of the file to upload. */
  path: string;
  /** sha256 hex of the file. */
  sha256: string;
  sizeBytes: number;
  kind: 'iso' | 'disk-image';
  /** Name on the substrate (validated: letters, digits, "_.+-", .iso/.qcow2). */
  name: string;
}

/** A boot image on a storage of the substrate, or an interrupted upload of one. */
export interface StoredImage {
  /** Volume id ("local:import/x.qcow2"); for an interrupted upload, the volume it was becoming. */
  volid: string;
  /** Its path on the host. */
  path: string;
  sizeBytes: number;
  /** An interrupted upload (".kubedos-part" file): not a volume yet, removed as a file. */
  partial: boolean;
  /** Every VM on the host whose configuration names this volume (CD-ROM, disk, import source). */
  usedBy: { vmid: number; name: string }[];
}

export interface UploadResult {
  volid: string;
  remotePath: string;
  action: 'skipped' | 'uploaded' | 'resumed';
  bytesSent: number;
}

export interface GuestExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface SubstrateDriver {
  readonly kind: 'proxmox' | 'qemu';
  /** Where commands go, for messages ("proxmox://pve1", "qemu-local"). */
  readonly target: string;
  inventory(options?: OpOptions): Promise<Inventory>;
  upload(artifact: ArtifactFile, storage: string, options?: OpOptions): Promise<UploadResult>;
  create(shape: VmShape, artifact: BootArtifact | undefined, options?: OpOptions): Promise<void>;
  /** Apply in-place changes (`qm set`-able keys). */
  update(vmid: number, changes: Record<string, string>, options?: OpOptions): Promise<void>;
  start(vmid: number, options?: OpOptions): Promise<void>;
  stop(vmid: number, options?: OpOptions): Promise<void>;
  destroy(vmid: number, options?: OpOptions & { allowDestroy: boolean }): Promise<void>;
  status(vmid: number, options?: OpOptions): Promise<'running' | 'stopped' | 'absent'>;
  guestPing(vmid: number, options?: OpOptions): Promise<boolean>;
  /** Runs argv in the guest (no shell); `input` (at most 1 MiB) is its stdin. */
  guestExec(vmid: number, argv: readonly string[], options?: OpOptions & { timeoutS?: number; input?: Uint8Array | string }): Promise<GuestExecResult>;
  guestFileRead(vmid: number, path: string, options?: OpOptions): Promise<Buffer>;
  /**
   * Writes a file into a VM of this cluster (guest-file.ts): parents created, the file appears
   * atomically, owned by root, with `mode` (default 0o644), after its sha256 was checked in the
   * guest. Absolute paths only; at most 64 MiB. The content never appears in a command line.
   */
  guestFileWrite(vmid: number, path: string, data: Uint8Array | string, options?: OpOptions & { mode?: number }): Promise<void>;
  /**
   * Images on `storage` (import and ISO content) whose file name starts with `prefix`, with the
   * VMs that use them. Only drivers that keep uploaded images apart from their VMs have it
   * (Proxmox); qemu-local keeps them in its state folder, which goes with the cluster.
   */
  storedImages?(storage: string, prefix: string, options?: OpOptions): Promise<StoredImage[]>;
  /** Removes one image (`pvesm free`) or an interrupted upload (its file). */
  removeImage?(image: StoredImage, options?: OpOptions): Promise<void>;
  /**
   * The last `maxBytes` of the VM's serial console (what the guest kernel printed). Only drivers
   * that keep a console log have it (qemu-local); the first-boot wait reads it to tell a hung
   * kernel from a slow one.
   */
  consoleTail?(vmid: number, maxBytes?: number, options?: OpOptions): Promise<string>;
  /** Hard reset of a running VM (the reset button: no shutdown in the guest). */
  reset?(vmid: number, options?: OpOptions): Promise<void>;
  /**
   * A byte channel from this machine into a running guest, for bulk data the guest agent carries
   * too slowly (a slot image): qemu-local hot-plugs a virtio-serial port. Only drivers whose host
   * can reach the VM's devices have it (qemu-local); Proxmox writes slots over wg1 instead.
   */
  guestChannel?(vmid: number, name: string, options?: OpOptions): Promise<GuestChannel>;
  /** The commands a step would run, for --dry-run (no side effects). */
  preview(step: PlannedStep): string[];
  close(): Promise<void>;
}

/** A channel `guestChannel` opened: connect the host end, have the guest read `guestPath`, close. */
export interface GuestChannel {
  /** Where a reader in the guest gets the bytes (a character device: it reads end of file once the host end is closed). */
  readonly guestPath: string;
  /** The host end: what is written reaches a reader of guestPath in order, with backpressure; ending it ends the guest's stream. Connect before the guest starts reading. */
  connect(options?: OpOptions): Promise<Writable>;
  /** Removes the channel from the VM (idempotent; a channel left by a foundry that died is removed by the next guestChannel of that name). */
  close(): Promise<void>;
}

export type PlannedStep =
  | { kind: 'upload'; artifact: ArtifactFile; storage: string }
  | { kind: 'create'; shape: VmShape; artifact: BootArtifact | undefined }
  | { kind: 'update'; vmid: number; changes: Record<string, string> }
  | { kind: 'start'; vmid: number; shape?: VmShape; artifact?: BootArtifact | undefined }
  | { kind: 'destroy'; vmid: number }
  | { kind: 'guest-file-write'; vmid: number; path: string; sizeBytes: number; mode?: number };

/** A failure with what to do next; `vmid` names a VM left behind for cleanup, if any. */
export class SubstrateError extends Error {
  readonly hint: string | undefined;
  readonly node: string | undefined;
  readonly command: string | undefined;
  readonly stderrTail: string | undefined;
  readonly leftBehind: number | undefined;
  readonly code: string;
  constructor(code: string, message: string, detail: { hint?: string; node?: string; command?: string; stderrTail?: string; leftBehind?: number } = {}) {
    super(message);
    this.name = 'SubstrateError';
    this.code = code;
    this.hint = detail.hint;
    this.node = detail.node;
    this.command = detail.command;
    this.stderrTail = detail.stderrTail;
    this.leftBehind = detail.leftBehind;
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new SubstrateError('aborted', `aborted: ${String(signal.reason ?? 'cancelled')}`);
}
