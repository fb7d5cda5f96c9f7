// The cluster's trust material for a deploy: offline root CA, cluster intermediate, the hub's
// enrollment TLS certificate and the enrollment HMAC key. The root CA key is created once and
// kept ONLY encrypted to the cluster's recovery recipient (<workspace>/recovery/root-ca.key.age,
// main/trust/recovery.ts): the workbench cannot open it. The other private keys live in the
// age-encrypted SecretStore (<workspace>/secrets); certificates (public) in <workspace>/trust,
// which is what the recovery bundle copies. Created once, then reused: a rerun must not change
// the hub pin that enrolled nodes trust. Only a new intermediate needs the root key, and so the
// recovery identity (KUBEDOS_RECOVERY_IDENTITY_FILE).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hubOf } from '../../common/plan/index';
import * as x509 from '@peculiar/x509';
import type { Plan } from '../../common/plan/index';
import type { CertifiedKey, SecretStore } from '../trust/index';
import { ageIdentity, certFingerprint, ENROLL_HMAC_SECRET, createClusterIntermediate, createRootCa, generateHmacKey, issueHubTlsCert, openSecretStore } from '../trust/index';
import { decryptWithRecovery, encryptTo, ensureRecoveryRecipient, recoveryDir, recoveryIdentity, RECOVERY_FILES } from '../trust/recovery';
import { makePrivateDir, WORKSPACE_LAYOUT, writePrivateFile } from '../workspace';

/** The root CA as the workbench holds it: the certificate only (its key is offline). */
export interface PublicCert {
  certPem: string;
  fingerprint: string;
}

export interface ClusterTrust {
  root: PublicCert;
  /** The recovery recipient the root key (and the bundle's secrets) are encrypted to. */
  recoveryRecipient: string;
  intermediate: CertifiedKey;
  hubTls: CertifiedKey;
  hmacKey: Uint8Array;
  store: SecretStore;
  /** Files under <workspace>/trust: root-ca.crt, cluster-ca.crt, hub.crt, hub.pin. */
  dir: string;
}

export const TRUST_FILES = { root: 'root-ca.crt', intermediate: 'cluster-ca.crt', hub: 'hub.crt', pin: 'hub.pin' } as const;

export { ageIdentity } from '../trust/index';

function validAt(certPem: string, at: Date, marginDays: number): boolean {
  const c = new x509.X509Certificate(certPem);
  return c.notBefore <= at && c.notAfter.getTime() - marginDays * 86_400_000 > at.getTime();
}

function hubMatches(certPem: string, lanAddress: string): boolean {
  const c = new x509.X509Certificate(certPem);
  const san = c.getExtension(x509.SubjectAlternativeNameExtension);
  return Boolean(san?.names.items.some((n) => n.type === 'ip' && n.value === lanAddress));
}

/** SecretStore name where workspaces made before the root went offline kept the root CA key. */
const LEGACY_ROOT_KEY = 'ca/root.key';

export async function clusterTrust(workspace: string, plan: Plan, env: NodeJS.ProcessEnv, now: Date = new Date()): Promise<ClusterTrust & { created: string[]; notes: string[] }> {
  const store = await openSecretStore(join(workspace, WORKSPACE_LAYOUT.secrets), await ageIdentity(env));
  const dir = join(workspace, WORKSPACE_LAYOUT.trust);
  mkdirSync(dir, { recursive: true });
  const created: string[] = [];
  const hub = hubOf(plan);
  const load = async (name: string, certFile: string): Promise<CertifiedKey | undefined> => {
    const p = join(dir, certFile);
    if (!existsSync(p) || !(await store.has(name))) return undefined;
    const certPem = readFileSync(p, 'utf8');
    return { certPem, keyPem: await store.getText(name), fingerprint: certFingerprint(certPem) };
  };
  const save = async (name: string, certFile: string, ck: CertifiedKey): Promise<void> => {
    await store.put(name, ck.keyPem);
    writeFileSync(join(dir, certFile), ck.certPem);
    created.push(certFile);
  };
  const notes: string[] = [];
  const recipient = await ensureRecoveryRecipient(workspace, plan.cluster.name, env, notes);
  const rootKeyFile = join(recoveryDir(workspace), RECOVERY_FILES.rootKey);
  const rootCertFile = join(dir, TRUST_FILES.root);
  let rootKeyPem: string | undefined;
  let root: PublicCert | undefined = existsSync(rootCertFile) ? { certPem: readFileSync(rootCertFile, 'utf8'), fingerprint: certFingerprint(readFileSync(rootCertFile, 'utf8')) } : undefined;
  const sealRootKey = async (keyPem: string): Promise<void> => {
    makePrivateDir(recoveryDir(workspace));
    writePrivateFile(rootKeyFile, await encryptTo([recipient], keyPem));
  };
  if (root && !existsSync(rootKeyFile) && (await store.has(LEGACY_ROOT_KEY))) {
    // A workspace from before: the root key sat in the SecretStore beside its own identity.
    // It is in hand once more, for this run only (an intermediate due now is issued with it).
    rootKeyPem = await store.getText(LEGACY_ROOT_KEY);
    await sealRootKey(rootKeyPem);
    await store.delete(LEGACY_ROOT_KEY);
    notes.push(`moved the root CA key out of the SecretStore: it is now ${rootKeyFile}, encrypted to the recovery recipient ${recipient} only`);
  }
  if (!root || !existsSync(rootKeyFile)) {
    const fresh = await createRootCa({ name: plan.cluster.name, now });
    await sealRootKey(fresh.keyPem);
    writeFileSync(rootCertFile, fresh.certPem);
    rootKeyPem = fresh.keyPem;
    root = { certPem: fresh.certPem, fingerprint: fresh.fingerprint };
    created.push(TRUST_FILES.root);
    notes.push(`created the cluster's root CA ${fresh.fingerprint}; its key is only in ${rootKeyFile}, encrypted to the recovery recipient ${recipient}`);
  }
  let intermediate = await load('ca/cluster.key', TRUST_FILES.intermediate);
  if (!intermediate || !validAt(intermediate.certPem, now, 7) || created.includes(TRUST_FILES.root)) {
    if (rootKeyPem === undefined) {
      const identity = recoveryIdentity(workspace, env);
      if (!identity) {
        throw new Error(
          `the cluster intermediate CA ${intermediate ? 'expires within 7 days' : 'is missing'} and a new one needs the offline root CA key (${rootKeyFile}); set KUBEDOS_RECOVERY_IDENTITY_FILE to your recovery identity for this run, then remove it again`,
        );
      }
      rootKeyPem = new TextDecoder().decode(await decryptWithRecovery(identity, readFileSync(rootKeyFile), rootKeyFile));
    }
    intermediate = await createClusterIntermediate({ ...root, keyPem: rootKeyPem }, { cluster: plan.cluster.name, now });
    await save('ca/cluster.key', TRUST_FILES.intermediate, intermediate);
  }
  let hubTls = await load('enroll/hub-tls.key', TRUST_FILES.hub);
  if (!hubTls || !validAt(hubTls.certPem, now, 1) || !hubMatches(hubTls.certPem, hub.lan.address) || created.includes(TRUST_FILES.intermediate)) {
    hubTls = await issueHubTlsCert(intermediate, { cluster: plan.cluster.name, hub: hub.name, lanAddress: hub.lan.address, now });
    await save('enroll/hub-tls.key', TRUST_FILES.hub, hubTls);
  }
  writeFileSync(join(dir, TRUST_FILES.pin), `${hubTls.fingerprint}\n`);
  if (!(await store.has(ENROLL_HMAC_SECRET))) {
    await store.put(ENROLL_HMAC_SECRET, generateHmacKey());
    created.push('enrollment HMAC key');
  }
  const hmacKey = await store.get(ENROLL_HMAC_SECRET);
  return { root, recoveryRecipient: recipient, intermediate, hubTls, hmacKey, store, dir, created, notes };
}
