// USB sticks: the services the CLI (`kubedos usb …`) and the workbench call.
//   usbList    removable disks that may be written (devices.ts holds the rule)
//   usbWrite   check the artifact and the bundle offline, build the stick image (image.ts), write
//              it with read-back (write.ts), sign and keep the receipt (receipt.ts)
//   usbVerify  read a stick back against its receipt, naming the ranges that differ
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyBundle } from '../bundle/verify';
import { buildSigningKey } from '../build/keys';
import { verifyBuild } from '../build/verify';
import type { DeviceSource, UsbDevice } from './devices';
import { eligibility, listUsbDevices, lsblkSource, pickDevice } from './devices';
import { buildStickImage } from './image';
import type { UsbReceipt } from './receipt';
import { openReceipt, receiptFileName, receiptsDir, saveReceipt } from './receipt';
import type { UsbProgress, VerifyStickResult, WriteStickResult } from './write';
import { StickError, verifyStick, writeStick } from './write';

export * from './devices';
export * from './receipt';
export type { UsbProgress, BadRange, VerifyStickResult, WriteStickResult } from './write';
export { describeBad, StickError } from './write';

export async function usbList(o: { all?: boolean; source?: DeviceSource; signal?: AbortSignal } = {}): Promise<UsbDevice[]> {
  return listUsbDevices(o);
}

export interface UsbWriteInput {
  device: string;
  artifact?: string;
  bundle?: string;
  appImage?: string;
  force?: boolean;
  env?: NodeJS.ProcessEnv;
  source?: DeviceSource;
  signal?: AbortSignal;
  onProgress?: (p: UsbProgress) => void;
  log?: (line: string) => void;
  /** See WriteStickOptions.afterBytes (tests pull the stick mid-write with it). */
  afterBytes?: { bytes: number; fn: () => Promise<void> };
}

export interface UsbWriteResult extends WriteStickResult {
  receiptPath: string;
  receipt: UsbReceipt;
}

/** Everything that can be refused is refused before the stick is touched: the artifact and the
 * bundle must verify, the device must pass the rule and be large enough. */
export async function usbWrite(i: UsbWriteInput): Promise<UsbWriteResult> {
  const env = i.env ?? process.env;
  if (i.artifact) {
    const v = await verifyBuild(i.artifact);
    if (!v.ok) throw new StickError(`the artifact ${i.artifact} does not verify: ${v.file}: ${v.reason}. Nothing was written`);
  }
  if (i.bundle) {
    const v = await verifyBundle(i.bundle);
    if (!v.ok) throw new StickError(`the recovery bundle ${i.bundle} does not verify: ${v.file}: ${v.reason}. Nothing was written`);
  }
  // Refuse a wrong device before spending time on the image.
  await pickDevice(i.device, { force: i.force, source: i.source, signal: i.signal });
  const image = await buildStickImage({ artifact: i.artifact, bundle: i.bundle, appImage: i.appImage, signal: i.signal, log: i.log });
  try {
    const signingKey = await buildSigningKey(image.contents.cluster, env, { log: i.log });
    const r = await writeStick({ device: i.device, image, signingKey, force: i.force, source: i.source, signal: i.signal, onProgress: i.onProgress, afterBytes: i.afterBytes });
    const receiptPath = saveReceipt(r.receiptFile!, r.device, env);
    return { ...r, receipt: r.receipt!, receiptPath };
  } finally {
    image.dispose();
  }
}

export interface UsbVerifyResult extends VerifyStickResult {
  receiptPath: string;
  receipt: UsbReceipt;
  keyid: string;
}

/** Checks a stick against its receipt (default: the one kept for this stick in the workspace). */
export async function usbVerify(i: { device: string; receiptPath?: string; publicKeyPem?: string; env?: NodeJS.ProcessEnv; source?: DeviceSource; signal?: AbortSignal; onProgress?: (p: UsbProgress) => void }): Promise<UsbVerifyResult> {
  const env = i.env ?? process.env;
  let receiptPath = i.receiptPath;
  if (!receiptPath) {
    const d = (await (i.source ?? lsblkSource)(i.signal)).map(eligibility).find((x) => x.identity.path === i.device || `/dev/${x.identity.name}` === i.device);
    if (!d) throw new StickError(`${i.device} is not a disk lsblk knows (unplugged?)`);
    receiptPath = join(receiptsDir(env), receiptFileName(d.identity));
    if (!existsSync(receiptPath)) throw new StickError(`no receipt for ${d.identity.path} in ${receiptsDir(env)} (looked for ${receiptFileName(d.identity)}): pass the one written with the stick, --receipt FILE`);
  }
  const { receipt, keyid } = openReceipt(readFileSync(receiptPath, 'utf8'), { file: receiptPath, ...(i.publicKeyPem ? { publicKeyPem: i.publicKeyPem } : {}) });
  const r = await verifyStick({ device: i.device, receipt, source: i.source, signal: i.signal, onProgress: i.onProgress });
  return { ...r, receiptPath, receipt, keyid };
}
