// What the master needs to run the enrollment window, and what every node needs to join it.
// The artifact foundry bakes these files into the images; the lab harness writes them into
// its namespace nodes. Paths are the on-node contract of payload/backplane (see its README).
import { canonicalJson } from '../../common/canonical';
import type { Plan } from '../../common/plan/index';
import { PLANE_NAMES } from '../../common/spec/schema';
import type { CertifiedKey } from './ca';
import type { RevocationList } from './revocation';
import { emptyRevocationList } from './revocation';

export const ENROLL_DIR = '/etc/kubedos/enroll';
export const PATHS = {
  roster: `${ENROLL_DIR}/roster.json`,
  hmacKey: `${ENROLL_DIR}/hmac.key`,
  hubCert: `${ENROLL_DIR}/hub.crt`,
  hubKey: `${ENROLL_DIR}/hub.key`,
  hubPin: `${ENROLL_DIR}/hub.pin`,
  caChain: `${ENROLL_DIR}/ca.crt`,
  revoked: `${ENROLL_DIR}/revoked.json`,
  token: `${ENROLL_DIR}/token`,
} as const;

export interface NodeFile {
  path: string;
  mode: number;
  content: string | Uint8Array;
}

/** Every node the hub may admit: role and the /32 it gets on each plane. */
export interface EnrollmentRoster {
  cluster: string;
  hub: string;
  nodes: Record<string, { role: string; planes: Record<string, string> }>;
}

export function enrollmentRoster(plan: Plan): EnrollmentRoster {
  const hub = plan.nodes.find((n) => n.hub);
  if (!hub) throw new Error('enrollment roster: the plan has no hub');
  const nodes: EnrollmentRoster['nodes'] = {};
  for (const n of plan.nodes) {
    if (n.hub) continue;
    nodes[n.name] = { role: n.role, planes: Object.fromEntries(PLANE_NAMES.map((p) => [p, n.planes[p].address])) };
  }
  return { cluster: plan.cluster.name, hub: hub.name, nodes };
}

/** Files for the master: roster, HMAC key (0600), hub TLS cert and key (0600), revocation list. */
export function hubEnrollmentFiles(plan: Plan, o: { hmacKey: Uint8Array; hubTls: CertifiedKey; revoked?: RevocationList }): NodeFile[] {
  return [
    { path: PATHS.roster, mode: 0o644, content: `${canonicalJson(enrollmentRoster(plan), 2)}\n` },
    { path: PATHS.hmacKey, mode: 0o600, content: `${Buffer.from(o.hmacKey).toString('base64')}\n` },
    { path: PATHS.hubCert, mode: 0o644, content: o.hubTls.certPem },
    { path: PATHS.hubKey, mode: 0o600, content: o.hubTls.keyPem },
    { path: PATHS.revoked, mode: 0o644, content: `${canonicalJson(o.revoked ?? emptyRevocationList(plan.cluster.name), 2)}\n` },
  ];
}

/**
 * Files for a joining node: the hub certificate pin, the cluster CA chain (intermediate + root
 * certificates, public) when given, and its token (0600) when there is one.
 */
export function agentEnrollmentFiles(o: { hubTls: Pick<CertifiedKey, 'fingerprint'>; token?: string; caChainPem?: string }): NodeFile[] {
  return [
    { path: PATHS.hubPin, mode: 0o644, content: `${o.hubTls.fingerprint}\n` },
    ...(o.caChainPem !== undefined ? [{ path: PATHS.caChain, mode: 0o644, content: o.caChainPem }] : []),
    ...(o.token !== undefined ? [{ path: PATHS.token, mode: 0o600, content: `${o.token}\n` }] : []),
  ];
}
