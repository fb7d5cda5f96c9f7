// The recovery material the seal puts in the bundle: the root CA key as the workspace keeps it
// (already encrypted to the recovery recipient only), the workspace SecretStore's secrets and an
// optional etcd snapshot, each encrypted to the recovery recipient only.
//
// age encryption is randomised, so sealing the same secrets twice would give new bytes every
// time (and a bundle that "changed" on every rerun). The sha256 of what was encrypted is kept in
// the SecretStore (`bundle/sealed-digests`, itself encrypted); when the plaintext and recipient are
// unchanged, the file of the bundle in place is reused byte for byte.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson, sha256Hex } from '../../common/canonical';
import type { SecretStore } from '../trust/secret-store';
import { encryptTo, readRecoveryRecipient, recoveryDir, RECOVERY_FILES } from '../trust/recovery';
import { BUNDLE_API_VERSION, BUNDLE_PATHS } from './schema';
import type { RecoverySecrets } from './schema';
import type { BundleRecoveryInput } from './write';
import { BundleInputError } from './write';
import { RESTORE_REQUIRED_SECRETS } from './restorable';

/** SecretStore entries that are the seal's own bookkeeping, not cluster secrets. */
export const SEAL_BOOKKEEPING_PREFIX = 'bundle/';
const DIGESTS = `${SEAL_BOOKKEEPING_PREFIX}sealed-digests`;

export interface RecoveryInputResult {
  input: BundleRecoveryInput;
  /** Call after the bundle is in place: records what was sealed so the next seal can reuse it. */
  remember(): Promise<void>;
  /** Files encrypted anew (not reused from the bundle in place). */
  fresh: string[];
}

export async function recoveryInput(o: {
  workspace: string;
  cluster: string;
  env: NodeJS.ProcessEnv;
  store: SecretStore;
  /** The bundle in place (its files are reused when their plaintext is unchanged). */
  previousBundleDir?: string;
  etcdSnapshot?: { node: string; data: Uint8Array };
}): Promise<RecoveryInputResult> {
  const recipient = readRecoveryRecipient(o.workspace, o.env);
  if (!recipient) throw new BundleInputError('the workspace names no recovery recipient, so the bundle could not restore this cluster', 'name one with kubedos recovery-key SPEC --out FILE (or --recipient age1…), then deploy again');
  const rootKeyFile = join(recoveryDir(o.workspace), RECOVERY_FILES.rootKey);
  if (!existsSync(rootKeyFile)) throw new BundleInputError(`${rootKeyFile} is missing: the bundle would not carry the root CA key`, 'the enroll stage creates it with the cluster\'s root CA; run kubedos deploy again, or copy it back from the last recovery bundle (recovery/root-ca.key.age)');

  const names = (await o.store.list()).filter((n) => !n.startsWith(SEAL_BOOKKEEPING_PREFIX));
  const missing = RESTORE_REQUIRED_SECRETS.filter((n) => !names.includes(n));
  if (missing.length) throw new BundleInputError(`the SecretStore ${o.store.dir} lacks ${missing.join(', ')}: the bundle could not resume this cluster's identity`, 'run kubedos deploy again so enroll creates them');
  const secrets: RecoverySecrets = { apiVersion: BUNDLE_API_VERSION, kind: 'RecoverySecrets', cluster: o.cluster, secrets: {} };
  for (const n of names) secrets.secrets[n] = Buffer.from(await o.store.get(n)).toString('base64');
  const secretsText = `${canonicalJson(secrets, 2)}\n`;

  const before: Record<string, string> = (await o.store.has(DIGESTS)) ? (JSON.parse(await o.store.getText(DIGESTS)) as Record<string, string>) : {};
  const after: Record<string, string> = {};
  const fresh: string[] = [];
  const sealed = async (path: string, plain: Uint8Array | string): Promise<Uint8Array> => {
    const digest = sha256Hex(`${recipient}\n${sha256Hex(plain)}`);
    after[path] = digest;
    const prev = o.previousBundleDir ? join(o.previousBundleDir, path) : undefined;
    if (before[path] === digest && prev && existsSync(prev)) return readFileSync(prev);
    fresh.push(path);
    return encryptTo([recipient], plain);
  };
  const input: BundleRecoveryInput = {
    recipient,
    rootKeyAge: readFileSync(rootKeyFile),
    secretsAge: await sealed(BUNDLE_PATHS.recoverySecrets, secretsText),
    ...(o.etcdSnapshot
      ? { etcdSnapshot: { age: await sealed(BUNDLE_PATHS.etcdSnapshot, o.etcdSnapshot.data), node: o.etcdSnapshot.node, sha256: sha256Hex(o.etcdSnapshot.data), size: o.etcdSnapshot.data.length } }
      : {}),
  };
  return { input, fresh, remember: () => o.store.put(DIGESTS, canonicalJson(after)) };
}
