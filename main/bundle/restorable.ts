// Is a recovery bundle complete for a restore? verifyBundle (verify.ts) proves the bundle is
// intact and signed; this checks that it carries what a rebuild of the SAME cluster identity
// needs: the recovery recipient, the root CA key, the SecretStore's secrets (intermediate CA,
// hub TLS, enrollment HMAC, build keys) and, when the seal took one, an etcd snapshot, every one
// encrypted to the recovery recipient. With the recovery identity it decrypts each and checks
// the keys are the keys of the bundle's certificates; without it, it checks their structure only
// (what the seal can do when the identity is offline, as it should be).
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256Hex } from '../../common/canonical';
import { decryptWithRecovery, looksAgeEncrypted } from '../trust/recovery';
import type { BundleManifest as BundleManifestType } from './schema';
import { BUNDLE_PATHS, BundleManifest, RecoverySecrets, RESTORE_REQUIRED_FILES } from './schema';

export interface RestorableResult {
  ok: boolean;
  file?: string;
  reason?: string;
  checks: string[];
  /** 'decrypted': every file opened with the identity; 'structure': checked without it. */
  level?: 'decrypted' | 'structure';
  recipient?: string;
}

/** What the recovery identity opens in a bundle. */
export interface OpenedRecovery {
  recipient: string;
  rootKeyPem: string;
  secrets: Record<string, Buffer>;
  etcdSnapshot?: { node: string; data: Buffer };
}

/** SecretStore names a restore cannot resume the same identity without. */
export const RESTORE_REQUIRED_SECRETS = ['ca/cluster.key', 'enroll/hub-tls.key', 'enroll/hmac.key'] as const;

const spkiOfKey = (pem: string): string => sha256Hex(createPublicKey(createPrivateKey(pem)).export({ type: 'spki', format: 'der' }));
const spkiOfCert = (pem: string): string => sha256Hex(new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' }));

function readManifest(dir: string): BundleManifestType {
  return BundleManifest.parse(JSON.parse(readFileSync(join(dir, BUNDLE_PATHS.manifest), 'utf8')));
}

/** Checks completeness for a restore; decrypts everything when `identity` is given. Run verifyBundle first. */
export async function checkRestorable(dir: string, o: { identity?: string } = {}): Promise<RestorableResult> {
  const checks: string[] = [];
  const fail = (file: string, reason: string, recipient?: string): RestorableResult => ({ ok: false, file, reason, checks, ...(recipient ? { recipient } : {}) });
  let manifest: BundleManifestType;
  try {
    manifest = readManifest(dir);
  } catch (err) {
    return fail(BUNDLE_PATHS.manifest, `not a bundle manifest: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!manifest.recovery) return fail(BUNDLE_PATHS.manifest, 'names no recovery recipient: this bundle was sealed without the material a restore needs (seal again with this version)');
  const { recipient } = manifest.recovery;
  const listed = new Set(manifest.files.map((f) => f.path));
  for (const f of RESTORE_REQUIRED_FILES) if (!listed.has(f) || !existsSync(join(dir, f))) return fail(f, 'missing: a restore needs it', recipient);
  for (const f of manifest.recovery.encrypted) if (!listed.has(f) || !existsSync(join(dir, f))) return fail(f, 'listed as encrypted recovery material but missing', recipient);
  const named = readFileSync(join(dir, BUNDLE_PATHS.recoveryRecipient), 'utf8').trim();
  if (named !== recipient) return fail(BUNDLE_PATHS.recoveryRecipient, `says ${named}, bundle.json says ${recipient}`, recipient);
  for (const f of [BUNDLE_PATHS.recoveryRootKey, BUNDLE_PATHS.recoverySecrets, ...manifest.recovery.encrypted]) {
    if (!looksAgeEncrypted(readFileSync(join(dir, f)))) return fail(f, 'is not an age-encrypted file', recipient);
  }
  if (manifest.recovery.etcdSnapshot && !listed.has(BUNDLE_PATHS.etcdSnapshot)) return fail(BUNDLE_PATHS.etcdSnapshot, 'bundle.json describes an etcd snapshot the bundle does not hold', recipient);
  checks.push(`recovery: root CA key, secrets${manifest.recovery.etcdSnapshot ? ' and etcd snapshot' : ''} present, age-encrypted to ${recipient}`);
  if (!o.identity) return { ok: true, checks, level: 'structure', recipient };

  let opened: OpenedRecovery;
  try {
    opened = await openRecovery(dir, o.identity, manifest);
  } catch (err) {
    const e = err as Error & { file?: string };
    return fail(e.file ?? BUNDLE_PATHS.recoverySecrets, e.message, recipient);
  }
  checks.push(`recovery: the recovery identity opens ${manifest.recovery.encrypted.length} files; root and cluster CA keys are the keys of root-ca.crt and cluster-ca.crt`);
  const missing = RESTORE_REQUIRED_SECRETS.filter((n) => !opened.secrets[n]);
  if (missing.length) return fail(BUNDLE_PATHS.recoverySecrets, `lacks ${missing.join(', ')}: a restore could not resume the same identity`, recipient);
  checks.push(`recovery: ${Object.keys(opened.secrets).length} secrets, including ${RESTORE_REQUIRED_SECRETS.join(', ')}`);
  return { ok: true, checks, level: 'decrypted', recipient };
}

/** Decrypts the bundle's recovery material and checks the keys against the bundle's certificates. */
export async function openRecovery(dir: string, identity: string, manifest: BundleManifestType = readManifest(dir)): Promise<OpenedRecovery> {
  if (!manifest.recovery) throw Object.assign(new Error('this bundle names no recovery recipient; it cannot restore an identity'), { file: BUNDLE_PATHS.manifest });
  const dec = async (f: string): Promise<Buffer> => {
    try {
      return Buffer.from(await decryptWithRecovery(identity, readFileSync(join(dir, f)), f));
    } catch (err) {
      throw Object.assign(new Error(`${(err as Error).message}; the bundle is encrypted to ${manifest.recovery!.recipient}`), { file: f });
    }
  };
  const rootKeyPem = (await dec(BUNDLE_PATHS.recoveryRootKey)).toString('utf8');
  const rootCert = readFileSync(join(dir, BUNDLE_PATHS.rootCa), 'utf8');
  try {
    if (spkiOfKey(rootKeyPem) !== spkiOfCert(rootCert)) throw new Error('mismatch');
  } catch {
    throw Object.assign(new Error(`the decrypted root CA key is not the key of ${BUNDLE_PATHS.rootCa}`), { file: BUNDLE_PATHS.recoveryRootKey });
  }
  const parsed = RecoverySecrets.safeParse(JSON.parse((await dec(BUNDLE_PATHS.recoverySecrets)).toString('utf8')));
  if (!parsed.success) throw Object.assign(new Error(`not a RecoverySecrets record: ${parsed.error.issues[0]?.message ?? 'invalid'}`), { file: BUNDLE_PATHS.recoverySecrets });
  if (parsed.data.cluster !== manifest.cluster) throw Object.assign(new Error(`holds the secrets of cluster ${parsed.data.cluster}, the bundle is ${manifest.cluster}'s`), { file: BUNDLE_PATHS.recoverySecrets });
  const secrets = Object.fromEntries(Object.entries(parsed.data.secrets).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
  const clusterKey = secrets['ca/cluster.key'];
  if (clusterKey) {
    const clusterCert = readFileSync(join(dir, BUNDLE_PATHS.clusterCa), 'utf8');
    let same: boolean;
    try {
      same = spkiOfKey(clusterKey.toString('utf8')) === spkiOfCert(clusterCert);
    } catch {
      same = false;
    }
    if (!same) throw Object.assign(new Error(`the cluster CA key in the secrets is not the key of ${BUNDLE_PATHS.clusterCa}`), { file: BUNDLE_PATHS.recoverySecrets });
  }
  let etcdSnapshot: OpenedRecovery['etcdSnapshot'];
  if (manifest.recovery.etcdSnapshot) {
    const data = await dec(BUNDLE_PATHS.etcdSnapshot);
    if (sha256Hex(data) !== manifest.recovery.etcdSnapshot.sha256) throw Object.assign(new Error(`the decrypted snapshot's sha256 is ${sha256Hex(data)}, bundle.json says ${manifest.recovery.etcdSnapshot.sha256}`), { file: BUNDLE_PATHS.etcdSnapshot });
    etcdSnapshot = { node: manifest.recovery.etcdSnapshot.node, data };
  }
  return { recipient: manifest.recovery.recipient, rootKeyPem, secrets, ...(etcdSnapshot ? { etcdSnapshot } : {}) };
}
