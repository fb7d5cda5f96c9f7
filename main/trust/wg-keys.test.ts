import { describe, expect, it } from 'vitest';
import { run } from '../exec/runner';
import { isWgKey, wgKeyPair, wgPublicKey } from './wg-keys';

describe('WireGuard keys', () => {
  it('derives the same public key as `wg pubkey`', async () => {
    for (let i = 0; i < 5; i++) {
      const kp = wgKeyPair();
      expect(isWgKey(kp.privateKey) && isWgKey(kp.publicKey)).toBe(true);
      const r = await run(['wg', 'pubkey'], { input: `${kp.privateKey}\n` });
      expect(r.stdout.trim()).toBe(kp.publicKey);
    }
  });

  it('rejects text that is not a 32-byte key', () => {
    expect(isWgKey('abc')).toBe(false);
    expect(() => wgPublicKey('x'.repeat(44))).toThrow(/not a WireGuard private key/);
  });
});
