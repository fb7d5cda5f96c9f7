// What identities a cluster's workspace holds, with their expiry, judged against the spec's
// `security.keyRotation`: the certificates under <workspace>/trust (root CA, cluster
// intermediate, the hub's enrollment TLS certificate, node identities when issued) and the
// revocation list. Leaf certificates must be rotated every kubeCertDays; a warning starts
// ROTATION_WARNING_DAYS before that day or before expiry. Read-only: nothing is contacted.
import 'reflect-metadata';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import type { TrustIdentity, TrustInventory, WireguardKeyAge } from '../../common/trust/inventory';
import { WireguardKeyRecord } from '../../common/trust/inventory';
import { canonicalJson } from '../../common/canonical';
import { makePrivateDir, writePrivateFile } from '../workspace';
import type { ClusterSpec } from '../../common/spec/index';
import { WORKSPACE_LAYOUT } from '../workspace';
import { certFingerprint } from './ca';
import { RevocationList } from './revocation';

export const ROTATION_WARNING_DAYS = 7;
const DAY_MS = 86_400_000;

export { IdentityStatus, TrustIdentity, TrustInventory } from '../../common/trust/inventory';

const KINDS: Record<string, TrustIdentity['kind']> = { 'root-ca.crt': 'root-ca', 'cluster-ca.crt': 'cluster-ca', 'hub.crt': 'hub-tls' };

function kindOf(file: string): TrustIdentity['kind'] {
  return KINDS[file] ?? (file.startsWith('node-') ? 'node' : 'other');
}

/** Pure: one certificate judged at `now` under the spec's rotation days. */
export function judgeCertificate(file: string, certPem: string, kubeCertDays: number, now: Date): TrustIdentity {
  const c = new x509.X509Certificate(certPem);
  const kind = kindOf(file);
  const daysLeft = Math.floor((c.notAfter.getTime() - now.getTime()) / DAY_MS);
  const leaf = kind === 'hub-tls' || kind === 'node' || kind === 'other';
  const rotateBy = leaf ? new Date(c.notBefore.getTime() + kubeCertDays * DAY_MS) : undefined;
  const warn = ROTATION_WARNING_DAYS * DAY_MS;
  let status: TrustIdentity['status'] = 'ok';
  if (c.notAfter <= now) status = 'expired';
  else if (rotateBy && rotateBy <= now) status = 'rotation-due';
  else if (c.notAfter.getTime() - now.getTime() <= warn) status = 'expires-soon';
  else if (rotateBy && rotateBy.getTime() - now.getTime() <= warn) status = 'rotate-soon';
  return {
    file,
    kind,
    subject: c.subject,
    fingerprint: certFingerprint(certPem),
    serial: c.serialNumber,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    daysLeft,
    ...(rotateBy ? { rotateBy: rotateBy.toISOString() } : {}),
    status,
  };
}

const WHY: Record<Exclude<TrustIdentity['status'], 'ok'>, (i: TrustIdentity) => string> = {
  expired: (i) => `${i.file} (${i.subject}) expired on ${i.notAfter.slice(0, 10)}`,
  'rotation-due': (i) => `${i.file} (${i.subject}) was due for rotation on ${i.rotateBy!.slice(0, 10)} (security.keyRotation.kubeCertDays)`,
  'expires-soon': (i) => `${i.file} (${i.subject}) expires on ${i.notAfter.slice(0, 10)}, in ${i.daysLeft} days`,
  'rotate-soon': (i) => `${i.file} (${i.subject}) is due for rotation on ${i.rotateBy!.slice(0, 10)} (security.keyRotation.kubeCertDays)`,
};

export const WIREGUARD_KEYS_FILE = 'wireguard-keys.json';

/** Pure: one node's keys, first seen at `since`, judged at `now` against wireguardDays. */
export function judgeWireguardKeys(node: string, since: string, wireguardDays: number, now: Date): WireguardKeyAge {
  const t = new Date(since).getTime();
  const rotateBy = t + wireguardDays * DAY_MS;
  const warn = ROTATION_WARNING_DAYS * DAY_MS;
  const status: WireguardKeyAge['status'] = rotateBy <= now.getTime() ? 'rotation-due' : rotateBy - now.getTime() <= warn ? 'rotate-soon' : 'ok';
  return { node, since, ageDays: Math.floor((now.getTime() - t) / DAY_MS), rotateBy: new Date(rotateBy).toISOString(), status };
}

/**
 * Records each node's WireGuard public keys in <workspace>/trust/wireguard-keys.json with the time
 * they were first seen: unchanged keys keep their time, new keys start now. Returns the nodes whose
 * keys are new.
 */
export function recordWireguardKeys(workspace: string, cluster: string, keys: Record<string, { wg1: string; wg2: string; wg3: string }>, now: Date, o: { others?: 'keep' } = {}): string[] {
  const dir = join(workspace, WORKSPACE_LAYOUT.trust);
  const path = join(dir, WIREGUARD_KEYS_FILE);
  const before = existsSync(path) ? WireguardKeyRecord.safeParse(JSON.parse(readFileSync(path, 'utf8'))) : undefined;
  const old = before?.success ? before.data.nodes : {};
  const nodes: WireguardKeyRecord['nodes'] = {};
  // `keys` of some nodes only (a scoped deploy run): the others' records stay as they are.
  if (o.others === 'keep') for (const [node, rec] of Object.entries(old)) if (!(node in keys)) nodes[node] = rec;
  const fresh: string[] = [];
  for (const [node, k] of Object.entries(keys).sort(([a], [b]) => a.localeCompare(b))) {
    const prev = old[node];
    const same = prev && prev.keys.wg1 === k.wg1 && prev.keys.wg2 === k.wg2 && prev.keys.wg3 === k.wg3;
    nodes[node] = { keys: { wg1: k.wg1, wg2: k.wg2, wg3: k.wg3 }, since: same ? prev.since : now.toISOString() };
    if (!same) fresh.push(node);
  }
  if (fresh.length || Object.keys(old).length !== Object.keys(nodes).length) {
    makePrivateDir(dir);
    writePrivateFile(path, `${canonicalJson({ cluster, nodes }, 2)}\n`);
  }
  return fresh;
}

const WG_WHY = {
  'rotation-due': (w: WireguardKeyAge) => `WireGuard keys of ${w.node} (${w.ageDays} days old) were due for rotation on ${w.rotateBy.slice(0, 10)} (security.keyRotation.wireguardDays): rotate them (kubedos trust rotate)`,
  'rotate-soon': (w: WireguardKeyAge) => `WireGuard keys of ${w.node} (${w.ageDays} days old) are due for rotation on ${w.rotateBy.slice(0, 10)} (security.keyRotation.wireguardDays)`,
};

export function trustInventory(workspace: string, spec: ClusterSpec, now: Date = new Date()): TrustInventory {
  const dir = join(workspace, WORKSPACE_LAYOUT.trust);
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.crt')).sort() : [];
  const identities = files.map((f) => judgeCertificate(f, readFileSync(join(dir, f), 'utf8'), spec.spec.security.keyRotation.kubeCertDays, now));
  const warnings = identities.filter((i) => i.status !== 'ok').map((i) => WHY[i.status as Exclude<TrustIdentity['status'], 'ok'>](i));
  const wgPath = join(dir, WIREGUARD_KEYS_FILE);
  let wireguard: WireguardKeyAge[] = [];
  if (existsSync(wgPath)) {
    const parsed = WireguardKeyRecord.safeParse(JSON.parse(readFileSync(wgPath, 'utf8')));
    if (parsed.success) {
      wireguard = Object.entries(parsed.data.nodes).map(([node, r]) => judgeWireguardKeys(node, r.since, spec.spec.security.keyRotation.wireguardDays, now));
      for (const w of wireguard) if (w.status !== 'ok') warnings.push(WG_WHY[w.status](w));
    } else warnings.push(`${wgPath} is not a WireGuard key record (${parsed.error.issues[0]?.message ?? 'invalid'}): key ages cannot be judged`);
  }
  let revoked: TrustInventory['revoked'] = [];
  const revPath = join(dir, 'revoked.json');
  if (existsSync(revPath)) {
    const parsed = RevocationList.safeParse(JSON.parse(readFileSync(revPath, 'utf8')));
    if (parsed.success) revoked = parsed.data.revoked;
    else warnings.push(`${revPath} is not a revocation list (${parsed.error.issues[0]?.message ?? 'invalid'}): revoked nodes cannot be listed`);
  }
  return { cluster: spec.metadata.name, dir, identities, wireguard, revoked, warnings };
}
