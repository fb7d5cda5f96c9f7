// WireGuard keys (Curve25519). Node keys are generated ON the node by the payload (`wg genkey`);
// these helpers exist for the workbench side: tests, stand-in peers, and checking a key's shape.
// Keys come from 32 random bytes clamped as X25519 requires (LAB-NOTES: JWK export of many
// generated pairs hung Node 20 once, raw private-key import does not).
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';

const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

export interface WgKeyPair {
  privateKey: string;
  publicKey: string;
}

export function wgKeyPair(): WgKeyPair {
  const raw = randomBytes(32);
  raw[0] = (raw[0] ?? 0) & 248;
  raw[31] = ((raw[31] ?? 0) & 127) | 64;
  const privateKey = raw.toString('base64');
  return { privateKey, publicKey: wgPublicKey(privateKey) };
}

export function wgPublicKey(privateKeyB64: string): string {
  const raw = decodeWgKey(privateKeyB64, 'private key');
  const key = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return spki.subarray(spki.length - 32).toString('base64');
}

/** A WireGuard key is 32 bytes in standard base64 (44 characters ending in "="). */
export function isWgKey(text: string): boolean {
  return /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(text);
}

function decodeWgKey(text: string, what: string): Buffer {
  if (!isWgKey(text)) throw new Error(`not a WireGuard ${what} (want 32 bytes of base64, 44 characters)`);
  return Buffer.from(text, 'base64');
}
