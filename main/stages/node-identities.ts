// Node identity certificates, issued at enrollment from the cluster intermediate (main/trust/ca.ts
// issueNodeIdentity): CN = node, O = role, OU = cluster, client + server auth. The certificate is
// public and kept in <workspace>/trust/node-<name>.crt, where the trust inventory (`kubedos trust
// list`) judges it against security.keyRotation; the private key lives only encrypted in the
// SecretStore (nodes/<name>.key) and on the node (/etc/kubedos/identity/node.key, 0600).
// A certificate is reissued when it is missing, no longer chains to the current intermediate, or
// is within ROTATION_WARNING_DAYS of its kubeCertDays rotation day or of its expiry.
import 'reflect-metadata';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import type { Plan } from '../../common/plan/index';
import type { CertifiedKey, NodeFile, SecretStore } from '../trust/index';
import { certFingerprint, issueNodeIdentity } from '../trust/index';
import { ROTATION_WARNING_DAYS } from '../trust/inventory';

const DAY_MS = 86_400_000;
export const IDENTITY_DIR = '/etc/kubedos/identity';
export const IDENTITY_PATHS = { cert: `${IDENTITY_DIR}/node.crt`, key: `${IDENTITY_DIR}/node.key`, ca: `${IDENTITY_DIR}/ca.crt` } as const;

export const nodeIdentityFile = (node: string): string => `node-${node}.crt`;
const keyName = (node: string): string => `nodes/${node}.key`;

export interface NodeIdentity {
  node: string;
  cert: CertifiedKey;
  serial: string;
  notAfter: string;
  /** Issued by this call (else reused). */
  issued: boolean;
  /** Why it was issued, when it was. */
  why?: string;
}

/** Why a node's certificate must be (re)issued at `now`, or undefined when it is good. Pure. */
export function identityDue(certPem: string | undefined, intermediatePem: string, kubeCertDays: number, now: Date): string | undefined {
  if (certPem === undefined) return 'none issued yet';
  const c = new x509.X509Certificate(certPem);
  const ca = new x509.X509Certificate(intermediatePem);
  if (c.issuer !== ca.subject) return 'issued by another cluster CA';
  const warn = ROTATION_WARNING_DAYS * DAY_MS;
  if (c.notAfter.getTime() - now.getTime() <= warn) return `it expires on ${c.notAfter.toISOString().slice(0, 10)}`;
  const rotateBy = c.notBefore.getTime() + kubeCertDays * DAY_MS;
  if (rotateBy - now.getTime() <= warn) return `it is due for rotation on ${new Date(rotateBy).toISOString().slice(0, 10)} (security.keyRotation.kubeCertDays ${kubeCertDays})`;
  return undefined;
}

/** For the enroll stage's probe: which nodes need a certificate (re)issued, read from the workspace only. */
export function identitiesDue(trustDir: string, plan: Plan, intermediatePem: string | undefined, kubeCertDays: number, now: Date): string[] {
  if (intermediatePem === undefined) return plan.nodes.map((n) => n.name);
  return plan.nodes.filter((n) => {
    const p = join(trustDir, nodeIdentityFile(n.name));
    return identityDue(existsSync(p) ? readFileSync(p, 'utf8') : undefined, intermediatePem, kubeCertDays, now) !== undefined;
  }).map((n) => n.name);
}

/** Every planned node's identity: reused when still good, else issued from `intermediate` and saved. */
export async function ensureNodeIdentities(o: { plan: Plan; trustDir: string; store: SecretStore; intermediate: CertifiedKey; kubeCertDays: number; now: Date }): Promise<NodeIdentity[]> {
  const out: NodeIdentity[] = [];
  for (const n of o.plan.nodes) {
    const certPath = join(o.trustDir, nodeIdentityFile(n.name));
    const have = existsSync(certPath) && (await o.store.has(keyName(n.name))) ? readFileSync(certPath, 'utf8') : undefined;
    const why = identityDue(have, o.intermediate.certPem, o.kubeCertDays, o.now);
    let cert: CertifiedKey;
    if (why === undefined && have !== undefined) {
      cert = { certPem: have, keyPem: await o.store.getText(keyName(n.name)), fingerprint: certFingerprint(have) };
    } else {
      cert = await issueNodeIdentity(o.intermediate, { cluster: o.plan.cluster.name, node: n.name, role: n.role, now: o.now, days: Math.max(365, o.kubeCertDays + ROTATION_WARNING_DAYS) });
      // Key first: a certificate on disk always has its key in the store.
      await o.store.put(keyName(n.name), cert.keyPem);
      writeFileSync(certPath, cert.certPem, { mode: 0o644 });
    }
    const c = new x509.X509Certificate(cert.certPem);
    out.push({ node: n.name, cert, serial: c.serialNumber, notAfter: c.notAfter.toISOString(), issued: why !== undefined, ...(why !== undefined ? { why } : {}) });
  }
  return out;
}

/** The files a node gets: its certificate, its key (0600) and the CA chain it chains to. */
export function identityFiles(id: NodeIdentity, caChainPem: string): NodeFile[] {
  return [
    { path: IDENTITY_PATHS.cert, mode: 0o644, content: id.cert.certPem },
    { path: IDENTITY_PATHS.key, mode: 0o600, content: id.cert.keyPem },
    { path: IDENTITY_PATHS.ca, mode: 0o644, content: caChainPem },
  ];
}
