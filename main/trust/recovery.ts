// The cluster's recovery recipient: an age X25519 public key whose identity the user keeps
// offline (printed, or on a second stick). The offline root CA key and the recovery bundle's
// secrets are encrypted to it ONLY, never to the workspace identity, so the workbench cannot use
// the root key and a bundle found beside a workbench cannot be opened with what sits beside it.
//
//   <cluster workspace>/recovery/recipient.txt   age1…  (public; names the recipient)
//   <cluster workspace>/recovery/root-ca.key.age the root CA key, encrypted to the recipient only
//
// `kubedos recovery-key` creates an identity into a file the user chooses and records its
// recipient here; KUBEDOS_RECOVERY_RECIPIENT overrides the file. The identity is read only when
// the root key is needed (a new cluster intermediate) or for a restore:
// KUBEDOS_RECOVERY_IDENTITY_FILE, or `--recovery-key FILE` on the commands that take one.
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { registerSecret } from '../exec/secrets';
import { makePrivateDir, writePrivateFile } from '../workspace';

export const RECOVERY_DIR = 'recovery';
export const RECOVERY_FILES = {
  recipient: 'recipient.txt',
  rootKey: 'root-ca.key.age',
  /** Only when no recipient was configured: the identity created for you, to be moved offline. */
  generatedIdentity: 'MOVE-OFFLINE-recovery-identity.txt',
} as const;

const RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;
const AGE_HEADER = 'age-encryption.org/v1\n';

export function isAgeRecipient(s: string): boolean {
  return RECIPIENT.test(s);
}

export function recoveryDir(clusterWorkspace: string): string {
  return join(clusterWorkspace, RECOVERY_DIR);
}

/** A new recovery key pair: the identity (secret, keep offline) and its recipient (public). */
export async function createRecoveryKey(): Promise<{ identity: string; recipient: string }> {
  const identity = await generateX25519Identity();
  registerSecret(identity);
  return { identity, recipient: await identityToRecipient(identity) };
}

/** The text of a recovery identity file (what `kubedos recovery-key` writes). */
export function recoveryIdentityFileText(cluster: string, identity: string, recipient: string): string {
  return [
    `# Kube'd'OS recovery identity for cluster ${cluster}. Keep it OFFLINE (print it, or a second stick in a safe).`,
    `# It opens the offline root CA key and the recovery bundle's secrets; nothing else can.`,
    `# recipient: ${recipient}`,
    identity,
    '',
  ].join('\n');
}

/** The recipient the workspace names ($KUBEDOS_RECOVERY_RECIPIENT first), or undefined. */
export function readRecoveryRecipient(clusterWorkspace: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env.KUBEDOS_RECOVERY_RECIPIENT?.trim();
  if (fromEnv) {
    if (!isAgeRecipient(fromEnv)) throw new Error(`KUBEDOS_RECOVERY_RECIPIENT is not an age X25519 recipient (age1…, 62 characters): ${JSON.stringify(fromEnv.slice(0, 70))}`);
    return fromEnv;
  }
  const path = join(recoveryDir(clusterWorkspace), RECOVERY_FILES.recipient);
  if (!existsSync(path)) return undefined;
  const line = readFileSync(path, 'utf8').split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('#'));
  if (!line || !isAgeRecipient(line)) throw new Error(`${path} holds no age recipient (age1…); write the recipient of your recovery identity there, or run kubedos recovery-key`);
  return line;
}

/** Records the recipient in the workspace (refuses to replace a different one unless `force`). */
export function writeRecoveryRecipient(clusterWorkspace: string, recipient: string, o: { force?: boolean } = {}): string {
  if (!isAgeRecipient(recipient)) throw new Error(`not an age X25519 recipient (age1…): ${JSON.stringify(recipient.slice(0, 70))}`);
  const dir = makePrivateDir(recoveryDir(clusterWorkspace));
  const path = join(dir, RECOVERY_FILES.recipient);
  const have = existsSync(path) ? readRecoveryRecipient(clusterWorkspace, {}) : undefined;
  if (have && have !== recipient && !o.force) {
    throw new Error(
      `${path} already names recovery recipient ${have}; the root CA key is encrypted to it. Pass --force to name another one (the root key stays encrypted to the old one until it is re-encrypted with the old identity)`,
    );
  }
  writePrivateFile(path, `# age recipient of this cluster's offline recovery identity (public)\n${recipient}\n`);
  return path;
}

/** Encrypts to the given recipients only (no workspace identity). */
export async function encryptTo(recipients: readonly string[], data: Uint8Array | string): Promise<Uint8Array> {
  if (!recipients.length) throw new Error('encryptTo: no recipient');
  const e = new Encrypter();
  for (const r of recipients) e.addRecipient(r);
  return e.encrypt(typeof data === 'string' ? new TextEncoder().encode(data) : data);
}

/** Decrypts with a recovery identity; the message says which file and what to check. */
export async function decryptWithRecovery(identity: string, data: Uint8Array, what: string): Promise<Uint8Array> {
  const d = new Decrypter();
  d.addIdentity(identity);
  try {
    const out = await d.decrypt(data);
    registerSecret(out);
    return out;
  } catch (err) {
    throw new Error(`cannot decrypt ${what} with this recovery identity (${(err as Error).message}); is it the identity whose recipient the bundle names?`, { cause: err });
  }
}

/** True when the bytes start like an age file (binary header); a cheap structural check without the identity. */
export function looksAgeEncrypted(data: Uint8Array): boolean {
  return Buffer.from(data.subarray(0, AGE_HEADER.length)).toString('latin1') === AGE_HEADER && Buffer.from(data).includes('\n---');
}

/** Reads an identity file (first AGE-SECRET-KEY-1 line), refusing one others can read. */
export function readIdentityFile(path: string): string {
  if (!existsSync(path)) throw new Error(`recovery identity ${path} does not exist`);
  const st = lstatSync(path);
  if (!st.isFile()) throw new Error(`recovery identity ${path} is not a regular file`);
  if (st.mode & 0o077) throw new Error(`recovery identity ${path} has mode ${(st.mode & 0o777).toString(8)}; chmod 600 it (and consider who may have copied it)`);
  const line = readFileSync(path, 'utf8').split('\n').map((l) => l.trim()).find((l) => l.startsWith('AGE-SECRET-KEY-1'));
  if (!line) throw new Error(`${path} holds no age identity (AGE-SECRET-KEY-1…)`);
  registerSecret(line);
  return line;
}

/**
 * The recovery identity when one is at hand: KUBEDOS_RECOVERY_IDENTITY_FILE, else the identity
 * created for a workspace that named no recipient (until the user moves it offline).
 */
export function recoveryIdentity(clusterWorkspace: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.KUBEDOS_RECOVERY_IDENTITY_FILE) return readIdentityFile(env.KUBEDOS_RECOVERY_IDENTITY_FILE);
  const generated = join(recoveryDir(clusterWorkspace), RECOVERY_FILES.generatedIdentity);
  return existsSync(generated) ? readIdentityFile(generated) : undefined;
}

/**
 * The workspace's recovery recipient; when none is named, creates a recovery key, records its
 * recipient and writes the identity to recovery/MOVE-OFFLINE-recovery-identity.txt (0600) with a
 * line in `notes` saying to move it offline.
 */
export async function ensureRecoveryRecipient(clusterWorkspace: string, cluster: string, env: NodeJS.ProcessEnv, notes: string[]): Promise<string> {
  const have = readRecoveryRecipient(clusterWorkspace, env);
  if (have) return have;
  const { identity, recipient } = await createRecoveryKey();
  const dir = makePrivateDir(recoveryDir(clusterWorkspace));
  const idPath = join(dir, RECOVERY_FILES.generatedIdentity);
  writePrivateFile(idPath, recoveryIdentityFileText(cluster, identity, recipient));
  writeRecoveryRecipient(clusterWorkspace, recipient);
  notes.push(
    `no recovery recipient was named, so one was created: move ${idPath} OFFLINE now (print it or put it on a second stick) and delete it here; it opens the root CA key. Next time name your own with kubedos recovery-key`,
  );
  return recipient;
}
