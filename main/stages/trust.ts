// The cluster's trust material for a deploy: offline root CA, cluster intermediate, the hub's
// enrollment TLS certificate and the enrollment HMAC key. Private keys live only in the
// age-encrypted SecretStore (<workspace>/secrets); certificates (public) in <workspace>/trust,
// which is what the recovery bundle copies. Created once, then reused: a rerun must not change
// the hub pin that enrolled nodes trust.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hubOf } from '../../common/plan/index';
import * as x509 from '@peculiar/x509';
import type { Plan } from '../../common/plan/index';
import type { CertifiedKey, SecretStore } from '../trust/index';
import { ageIdentity, certFingerprint, createClusterIntermediate, createRootCa, generateHmacKey, issueHubTlsCert, openSecretStore } from '../trust/index';
import { WORKSPACE_LAYOUT } from '../workspace';

export interface ClusterTrust {
  root: CertifiedKey;
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

export async function clusterTrust(workspace: string, plan: Plan, env: NodeJS.ProcessEnv, now: Date = new Date()): Promise<ClusterTrust & { created: string[] }> {
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
  let root = await load('ca/root.key', TRUST_FILES.root);
  if (!root) {
    root = await createRootCa({ name: plan.cluster.name, now });
    await save('ca/root.key', TRUST_FILES.root, root);
  }
  let intermediate = await load('ca/cluster.key', TRUST_FILES.intermediate);
  if (!intermediate || !validAt(intermediate.certPem, now, 7) || created.includes(TRUST_FILES.root)) {
    intermediate = await createClusterIntermediate(root, { cluster: plan.cluster.name, now });
    await save('ca/cluster.key', TRUST_FILES.intermediate, intermediate);
  }
  let hubTls = await load('enroll/hub-tls.key', TRUST_FILES.hub);
  if (!hubTls || !validAt(hubTls.certPem, now, 1) || !hubMatches(hubTls.certPem, hub.lan.address) || created.includes(TRUST_FILES.intermediate)) {
    hubTls = await issueHubTlsCert(intermediate, { cluster: plan.cluster.name, hub: hub.name, lanAddress: hub.lan.address, now });
    await save('enroll/hub-tls.key', TRUST_FILES.hub, hubTls);
  }
  writeFileSync(join(dir, TRUST_FILES.pin), `${hubTls.fingerprint}\n`);
  if (!(await store.has('enroll/hmac.key'))) {
    await store.put('enroll/hmac.key', generateHmacKey());
    created.push('enrollment HMAC key');
  }
  const hmacKey = await store.get('enroll/hmac.key');
  return { root, intermediate, hubTls, hmacKey, store, dir, created };
}
