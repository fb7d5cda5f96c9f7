import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkHostKey, fingerprint, keyTypeOf, parseKnownHosts } from './known-hosts';

function blob(type: string, body: Buffer): Buffer {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  return Buffer.concat([len, t, body]);
}

describe('known_hosts', () => {
  const key = blob('ssh-ed25519', randomBytes(36));
  const other = blob('ssh-ed25519', randomBytes(36));
  const b64 = key.toString('base64');

  it('recognises plain, [host]:port, wildcard and hashed entries', () => {
    const salt = randomBytes(20);
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[10.0.0.5]:2222').digest('base64')}`;
    const entries = parseKnownHosts(`# comment\npve1,10.0.0.1 ssh-ed25519 ${b64}\n[127.0.0.1]:2222 ssh-ed25519 ${b64}\n*.lab.example ssh-ed25519 ${b64}\n${hashed} ssh-ed25519 ${b64}\n`);
    expect(checkHostKey(entries, 'pve1', 22, key).status).toBe('known');
    expect(checkHostKey(entries, '10.0.0.1', 22, key).status).toBe('known');
    expect(checkHostKey(entries, '127.0.0.1', 2222, key).status).toBe('known');
    expect(checkHostKey(entries, '127.0.0.1', 22, key).status).toBe('unknown');
    expect(checkHostKey(entries, 'node.lab.example', 22, key).status).toBe('known');
    expect(checkHostKey(entries, '10.0.0.5', 2222, key).status).toBe('known');
  });

  it('reports a different key for a known host as changed, and @revoked as revoked', () => {
    const entries = parseKnownHosts(`pve1 ssh-ed25519 ${b64}\n@revoked * ssh-ed25519 ${other.toString('base64')}\n`);
    expect(checkHostKey(entries, 'pve1', 22, blob('ssh-ed25519', randomBytes(36))).status).toBe('changed');
    expect(checkHostKey(entries, 'pve2', 22, other).status).toBe('revoked');
  });

  it('fingerprints like ssh-keygen -l -E sha256', () => {
    expect(fingerprint(key)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(keyTypeOf(key)).toBe('ssh-ed25519');
  });
});
