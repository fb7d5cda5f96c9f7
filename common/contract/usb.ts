// Writing and checking a portable stick from the workbench: the same engine service as
// `kubedos usb write|verify` (main/usb/index.ts), its progress streamed on usb.progress, one write
// or verify at a time, cancellable. The artifact and the bundle are the cluster's own (its
// workspace's build/ and bundle/): the browser names a cluster and a device, never a path.
import { z } from 'zod';

const ClusterName = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'a cluster name (DNS label)');
const DevicePath = z.string().regex(/^\/dev\/[A-Za-z0-9._-]{1,64}$/, 'a device path (/dev/NAME)');
const Sha256 = z.string().regex(/^[0-9a-f]{64}$/);

export const UsbProgressEvent = z
  .object({
    op: z.enum(['write', 'verify']),
    device: z.string(),
    phase: z.enum(['probe', 'write', 'verify', 'done']),
    written: z.number().min(0),
    verified: z.number().min(0),
    total: z.number().min(0),
    mbPerSec: z.number().min(0),
    etaSeconds: z.number().min(0).optional(),
  })
  .strict();
export type UsbProgressEvent = z.infer<typeof UsbProgressEvent>;

export const UsbDeviceIdentityView = z.object({
  path: z.string(),
  name: z.string(),
  size: z.number().int().min(0),
  model: z.string().optional(),
  serial: z.string().optional(),
  vendor: z.string().optional(),
  wwn: z.string().optional(),
  tran: z.string().optional(),
});

/** The signed write receipt as the dialog shows it. */
export const UsbReceiptView = z.object({
  /** Where the workbench keeps it (<workspace root>/usb/receipts/…). */
  path: z.string(),
  cluster: z.string(),
  imageSha256: Sha256,
  imageSize: z.number().int().min(0),
  workbench: z.string(),
  device: UsbDeviceIdentityView,
  rangeSize: z.number().int().min(1),
  ranges: z.array(z.object({ index: z.number().int().min(0), offset: z.number().int().min(0), length: z.number().int().min(1), sha256: Sha256 })),
  signingKeyId: z.string(),
  capacityProbeOffsets: z.number().int().min(0),
});
export type UsbReceiptView = z.infer<typeof UsbReceiptView>;

export const UsbBadRange = z.object({ index: z.number().int().min(0), offset: z.number().int().min(0), length: z.number().int().min(1), expected: z.string(), actual: z.string() });

export const UsbWriteOutcome = z.object({
  receipt: UsbReceiptView,
  timings: z.object({ probeMs: z.number(), writeMs: z.number(), verifyTailMs: z.number(), totalMs: z.number() }),
});
export type UsbWriteOutcome = z.infer<typeof UsbWriteOutcome>;

export const UsbVerifyOutcome = z.object({
  ok: z.boolean(),
  checked: z.number().int().min(0),
  bad: z.array(UsbBadRange),
  /** The ranges that differ, in words (the same sentence as kubedos usb verify). */
  summary: z.string(),
  identityMismatch: z.string().optional(),
  receipt: UsbReceiptView,
  keyid: z.string(),
});
export type UsbVerifyOutcome = z.infer<typeof UsbVerifyOutcome>;

export const USB_REQUESTS = {
  /**
   * Writes the cluster's artifact and recovery bundle to DEVICE as a portable stick (read back,
   * signed receipt kept in the workspace); progress on usb.progress; refused before anything is
   * written for a device the rule refuses (force lifts only "not removable"), one too small, a
   * build or bundle that does not verify.
   */
  'usb.write': { request: z.object({ cluster: ClusterName, device: DevicePath, force: z.boolean().optional() }).strict(), result: UsbWriteOutcome },
  /** Reads a stick back against the receipt kept for it; names the ranges that differ. */
  'usb.verify': { request: z.object({ device: DevicePath }).strict(), result: UsbVerifyOutcome },
  /** Stops the running write or verify (a stopped write leaves no receipt: the stick is not good). */
  'usb.cancel': { request: z.object({}).strict(), result: z.object({ cancelled: z.boolean() }) },
} as const;

export const USB_EVENTS = {
  'usb.progress': UsbProgressEvent,
} as const;
