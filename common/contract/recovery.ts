// The Recovery view's shapes: what the cluster's recovery bundle holds, and (on request) the
// offline verification and the restore-completeness check, as `kubedos verify` and the seal run them.
import { z } from 'zod';

const Check = z.object({ ok: z.boolean(), file: z.string().optional(), reason: z.string().optional(), checks: z.array(z.string()) });

export const RecoveryInspection = z.object({
  cluster: z.string(),
  /** <workspace>/clusters/<name>/bundle */
  dir: z.string(),
  present: z.boolean(),
  /** Why the bundle could not be read (present but unreadable). */
  error: z.string().optional(),
  manifest: z
    .object({
      artifactVersion: z.string(),
      signingKeyId: z.string(),
      specSha256: z.string(),
      planSha256: z.string(),
      files: z.array(z.object({ path: z.string(), size: z.number().int(), sha256: z.string() })),
      recovery: z.object({ recipient: z.string(), encrypted: z.array(z.string()), etcdSnapshot: z.object({ node: z.string(), sha256: z.string(), size: z.number().int() }).optional() }).optional(),
    })
    .optional(),
  /** sha256 of bundle.json. */
  bundleSha256: z.string().optional(),
  verify: Check.optional(),
  restorable: Check.extend({ level: z.enum(['decrypted', 'structure']).optional(), recipient: z.string().optional() }).optional(),
});
export type RecoveryInspection = z.infer<typeof RecoveryInspection>;

/** One disk as the USB dialog shows it (main/usb/devices.ts's rule, every disk with its refusals). */
export const UsbDeviceInfo = z.object({
  path: z.string(),
  name: z.string(),
  size: z.number(),
  model: z.string().optional(),
  vendor: z.string().optional(),
  serial: z.string().optional(),
  tran: z.string().optional(),
  removable: z.boolean(),
  mounts: z.array(z.string()),
  /** Why it may not be written; empty when it may. */
  refusals: z.array(z.string()),
  /** Refused only for not being removable: "write it anyway" (force) admits it. */
  forceable: z.boolean().optional(),
});
export type UsbDeviceInfo = z.infer<typeof UsbDeviceInfo>;
