// Enrollment tokens: `kdt1.<payload>.<mac>`, both parts base64url (no padding). The MAC is
// HMAC-SHA256 over the ASCII text `kdt1.<payload>` with the cluster's enrollment key, so the
// hub verifies it with python3's stdlib (hmac, hashlib, base64, json) and nothing else.
// A token is bound to one cluster and to one node name or one role, expires, and carries a
// random id the hub records so it works once (payload/backplane/kubedos-enroll-hub).
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

export const TOKEN_PREFIX = 'kdt1';
/** The enrollment HMAC key's name in the cluster's SecretStore. */
export const ENROLL_HMAC_SECRET = 'enroll/hmac.key';
/** Minimum HMAC key length; the hub refuses shorter keys too. */
export const MIN_HMAC_KEY_BYTES = 32;

export const EnrollmentTokenPayload = z
  .object({
    v: z.literal(1),
    cluster: z.string().min(1),
    node: z.string().min(1).optional(),
    role: z.string().min(1).optional(),
    id: z.string().regex(/^[0-9a-f]{32}$/),
    issuedAt: z.number().int(),
    expiresAt: z.number().int(),
  })
  .strict()
  .refine((p) => (p.node === undefined) !== (p.role === undefined), { message: 'a token is bound to exactly one of node or role' });
export type EnrollmentTokenPayload = z.infer<typeof EnrollmentTokenPayload>;

export interface IssueTokenOptions {
  cluster: string;
  /** Bind to one node name … */
  node?: string;
  /** … or to any node of one role. */
  role?: string;
  ttlSeconds: number;
  /** Seconds since the epoch; injected so tests and plans stay deterministic. */
  now: number;
  /** 16 random bytes as hex unless given. */
  id?: string;
}

export function generateHmacKey(): Buffer {
  return randomBytes(MIN_HMAC_KEY_BYTES);
}

export function issueEnrollmentToken(key: Uint8Array, o: IssueTokenOptions): string {
  if (key.length < MIN_HMAC_KEY_BYTES) throw new Error(`enrollment HMAC key is ${key.length} bytes; need at least ${MIN_HMAC_KEY_BYTES}`);
  if (!(o.ttlSeconds > 0)) throw new Error('token TTL must be positive');
  const payload = EnrollmentTokenPayload.parse({
    v: 1,
    cluster: o.cluster,
    ...(o.node !== undefined ? { node: o.node } : {}),
    ...(o.role !== undefined ? { role: o.role } : {}),
    id: o.id ?? randomBytes(16).toString('hex'),
    issuedAt: Math.floor(o.now),
    expiresAt: Math.floor(o.now + o.ttlSeconds),
  });
  const body = `${TOKEN_PREFIX}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return `${body}.${mac(key, body)}`;
}

export type TokenCheck = { ok: true; payload: EnrollmentTokenPayload } | { ok: false; reason: string };

/** The TypeScript twin of the hub's check (the hub also enforces single use and revocation). */
export function verifyEnrollmentToken(key: Uint8Array, token: string, expect: { cluster: string; node: string; role: string; now: number }): TokenCheck {
  const parts = token.trim().split('.');
  if (parts.length !== 3 || parts[0] !== TOKEN_PREFIX) return { ok: false, reason: `malformed token (expected ${TOKEN_PREFIX}.<payload>.<mac>)` };
  const body = `${parts[0]}.${parts[1]}`;
  const given = Buffer.from(parts[2] ?? '', 'base64url');
  const want = Buffer.from(mac(key, body), 'base64url');
  if (given.length !== want.length || !timingSafeEqual(given, want)) return { ok: false, reason: 'token signature does not verify (forged, or made with another cluster key)' };
  let payload: EnrollmentTokenPayload;
  try {
    payload = EnrollmentTokenPayload.parse(JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8')));
  } catch (err) {
    return { ok: false, reason: `token payload invalid: ${(err as Error).message}` };
  }
  if (payload.cluster !== expect.cluster) return { ok: false, reason: `token is for cluster ${payload.cluster}, not ${expect.cluster}` };
  if (payload.node !== undefined && payload.node !== expect.node) return { ok: false, reason: `token is bound to node ${payload.node}, not ${expect.node}` };
  if (payload.role !== undefined && payload.role !== expect.role) return { ok: false, reason: `token is bound to role ${payload.role}, not ${expect.role}` };
  if (expect.now >= payload.expiresAt) return { ok: false, reason: `token expired at ${new Date(payload.expiresAt * 1000).toISOString()}` };
  return { ok: true, payload };
}

function mac(key: Uint8Array, body: string): string {
  return createHmac('sha256', key).update(body, 'ascii').digest('base64url');
}
