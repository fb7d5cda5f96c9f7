// The trust inventory's shapes (main/trust/inventory.ts fills them): each certificate of the
// cluster's workspace with its expiry judged against security.keyRotation, and the revocation
// list. Shared by `kubedos trust list --json` and the workbench. Pure.
import { z } from 'zod';

export const Revocation = z.object({ node: z.string().min(1), at: z.number().int(), reason: z.string() });
export type Revocation = z.infer<typeof Revocation>;

export const IdentityStatus = z.enum(['ok', 'rotate-soon', 'rotation-due', 'expires-soon', 'expired']);
export type IdentityStatus = z.infer<typeof IdentityStatus>;

export const TrustIdentity = z.object({
  file: z.string(),
  kind: z.enum(['root-ca', 'cluster-ca', 'hub-tls', 'node', 'other']),
  subject: z.string(),
  fingerprint: z.string(),
  /** The certificate's serial number (hex), as the CA issued it. */
  serial: z.string(),
  notBefore: z.string(),
  notAfter: z.string(),
  daysLeft: z.number(),
  /** Leaf certificates: notBefore + security.keyRotation.kubeCertDays. */
  rotateBy: z.string().optional(),
  status: IdentityStatus,
});
export type TrustIdentity = z.infer<typeof TrustIdentity>;

/** Where the enroll stage records when each node's WireGuard keys were first seen (public keys only). */
export const WireguardKeyRecord = z.object({
  cluster: z.string(),
  nodes: z.record(z.string(), z.object({ keys: z.object({ wg1: z.string(), wg2: z.string(), wg3: z.string() }), since: z.string() })),
});
export type WireguardKeyRecord = z.infer<typeof WireguardKeyRecord>;

/** One node's WireGuard keys judged against security.keyRotation.wireguardDays. */
export const WireguardKeyAge = z.object({
  node: z.string(),
  since: z.string(),
  ageDays: z.number().int(),
  rotateBy: z.string(),
  status: z.enum(['ok', 'rotate-soon', 'rotation-due']),
});
export type WireguardKeyAge = z.infer<typeof WireguardKeyAge>;

export const TrustInventory = z.object({
  cluster: z.string(),
  dir: z.string(),
  identities: z.array(TrustIdentity),
  /** Empty until a deploy's enroll stage recorded the keys. */
  wireguard: z.array(WireguardKeyAge),
  revoked: z.array(Revocation),
  warnings: z.array(z.string()),
});
export type TrustInventory = z.infer<typeof TrustInventory>;
