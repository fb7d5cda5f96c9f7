// The write receipt: what was put on which stick, range by range, signed with the cluster's build
// signing key (the same ed25519 key and DSSE envelope as the build's manifest and the recovery
// bundle: main/build/attest.ts, main/build/keys.ts). Written only after every range was read back
// from the stick (O_DIRECT) and matched; a failed or interrupted write leaves no receipt.
// The payload holds no time of day: the same image on the same stick gives the same receipt.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { canonicalJson } from '../../common/canonical';
import { UsbDeviceIdentityView } from '../../common/contract/usb';
import type { DsseEnvelope } from '../build/attest';
import { signDsse, verifyDsse } from '../build/attest';
import type { BuildSigningKey } from '../build/keys';
import { keyidOf } from '../build/keys';
import { makePrivateDir, workspaceRoot, writePrivateFile } from '../workspace';
import type { DeviceIdentity } from './devices';

export const RECEIPT_PAYLOAD_TYPE = 'application/vnd.kubedos.usb-receipt+json';
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

export const UsbRange = z.object({ index: z.number().int().min(0), offset: z.number().int().min(0), length: z.number().int().min(1), sha256 });
export type UsbRange = z.infer<typeof UsbRange>;

export const UsbReceipt = z.object({
  apiVersion: z.literal('kubedos.ca/v1alpha1'),
  kind: z.literal('UsbWriteReceipt'),
  cluster: z.string(),
  image: z.object({
    sha256,
    size: z.number().int().min(1),
    layout: z.literal('mbr+ext4/v1'),
    artifactManifestSha256: sha256.optional(),
    bundleSha256: sha256.optional(),
    workbench: z.string(),
  }),
  device: UsbDeviceIdentityView.extend({ logicalSectorSize: z.number().int() }),
  rangeSize: z.number().int().min(1),
  ranges: z.array(UsbRange).min(1),
  checks: z.object({
    capacityProbe: z.object({ offsets: z.number().int().min(1), ok: z.literal(true) }),
    readBack: z.literal('O_DIRECT, every byte compared with the image, after a flush'),
    firstRegionWrittenLast: z.literal(true),
  }),
  signingKeyId: z.string(),
});
export type UsbReceipt = z.infer<typeof UsbReceipt>;

export const ReceiptFile = z.object({
  kind: z.literal('UsbWriteReceiptFile'),
  publicKeyPem: z.string(),
  envelope: z.object({ payloadType: z.string(), payload: z.string(), signatures: z.array(z.object({ keyid: z.string(), sig: z.string() })) }),
});
export type ReceiptFile = z.infer<typeof ReceiptFile>;

export function signReceipt(r: UsbReceipt, key: Pick<BuildSigningKey, 'privateKey' | 'publicKeyPem' | 'keyid'>): ReceiptFile {
  const payload = Buffer.from(`${canonicalJson(UsbReceipt.parse(r), 2)}\n`);
  const envelope: DsseEnvelope = signDsse(RECEIPT_PAYLOAD_TYPE, payload, key.privateKey, key.keyid);
  return { kind: 'UsbWriteReceiptFile', publicKeyPem: key.publicKeyPem, envelope };
}

/** The receipt inside a receipt file, after its signature checks out (with `publicKeyPem`, that key
 * must be the one that signed). Throws one sentence saying what is wrong. */
export function openReceipt(text: string, o: { publicKeyPem?: string; file?: string } = {}): { receipt: UsbReceipt; keyid: string } {
  const where = o.file ?? 'the receipt';
  let file: ReceiptFile;
  try {
    file = ReceiptFile.parse(JSON.parse(text));
  } catch (err) {
    throw new Error(`${where} is not a USB write receipt: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  const embedded = keyidOf(file.publicKeyPem);
  if (o.publicKeyPem !== undefined && keyidOf(o.publicKeyPem) !== embedded) throw new Error(`${where} was signed by key ${embedded}, not by the key given (${keyidOf(o.publicKeyPem)})`);
  if (file.envelope.payloadType !== RECEIPT_PAYLOAD_TYPE) throw new Error(`${where}: payload type ${file.envelope.payloadType}, expected ${RECEIPT_PAYLOAD_TYPE}`);
  let payload: Buffer;
  try {
    payload = verifyDsse(file.envelope, o.publicKeyPem ?? file.publicKeyPem, embedded);
  } catch (err) {
    throw new Error(`${where}: the signature does not verify (the receipt was changed after it was signed, or it is not the key's)`, { cause: err });
  }
  const receipt = UsbReceipt.parse(JSON.parse(payload.toString('utf8')));
  if (receipt.signingKeyId !== embedded) throw new Error(`${where} names signing key ${receipt.signingKeyId} but is signed by ${embedded}`);
  return { receipt, keyid: embedded };
}

/** Where receipts are kept: <workspace>/usb/receipts/, one per stick (the latest write). */
export function receiptsDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(workspaceRoot(env), 'usb', 'receipts');
}

/** A file name that names the stick (serial when it has one, else kernel name and size). */
export function receiptFileName(d: Pick<DeviceIdentity, 'name' | 'size' | 'model' | 'serial'>): string {
  const slug = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80);
  return `${d.serial ? `${slug(d.model ?? 'disk')}-${slug(d.serial)}` : `${slug(d.name)}-${d.size}`}.receipt.json`;
}

export function saveReceipt(file: ReceiptFile, device: DeviceIdentity, env: NodeJS.ProcessEnv = process.env): string {
  const dir = makePrivateDir(receiptsDir(env));
  const path = join(dir, receiptFileName(device));
  writePrivateFile(path, `${canonicalJson(file, 2)}\n`);
  return path;
}

export function readReceiptFile(path: string): string {
  return readFileSync(path, 'utf8');
}
