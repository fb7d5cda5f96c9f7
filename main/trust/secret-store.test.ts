import { readFileSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import { run } from '../exec/runner';
import { createAgeIdentity, openSecretStore } from './secret-store';

afterAll(removeTempDirs);

describe('SecretStore (age at rest)', () => {
  it('puts, gets, lists and deletes secrets as 0600 age files that Debian\'s age decrypts', async () => {
    const dir = join(tempDir('kd-secrets-'), 'secrets');
    const identity = await createAgeIdentity();
    const store = await openSecretStore(dir, identity);
    await store.put('enrollment-hmac', new Uint8Array([1, 2, 3, 250]));
    await store.put('signing/artifact-key', 'PRIVATE KEY TEXT');
    expect(await store.list()).toEqual(['enrollment-hmac', 'signing/artifact-key']);
    expect([...(await store.get('enrollment-hmac'))]).toEqual([1, 2, 3, 250]);
    expect(await store.getText('signing/artifact-key')).toBe('PRIVATE KEY TEXT');
    const file = join(dir, 'signing/artifact-key.age');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readFileSync(file).toString('latin1')).not.toContain('PRIVATE KEY TEXT');
    expect(readFileSync(file).subarray(0, 21).toString()).toBe('age-encryption.org/v1');

    const idFile = join(dir, '..', 'identity.txt');
    writeFileSync(idFile, `${identity}\n`, { mode: 0o600 });
    const r = await run(['age', '-d', '-i', idFile, file]);
    expect(r.stdout).toBe('PRIVATE KEY TEXT');

    await store.delete('enrollment-hmac');
    expect(await store.has('enrollment-hmac')).toBe(false);
    await expect(store.get('enrollment-hmac')).rejects.toThrow(/no secret "enrollment-hmac"/);
  });

  it('refuses another identity, loose file modes and path tricks', async () => {
    const dir = tempDir('kd-secrets-');
    const store = await openSecretStore(dir, await createAgeIdentity());
    await store.put('k', 'v');
    const other = await openSecretStore(dir, await createAgeIdentity());
    await expect(other.get('k')).rejects.toThrow(/cannot decrypt/);
    chmodSync(join(dir, 'k.age'), 0o644);
    await expect(store.get('k')).rejects.toThrow(/mode 644/);
    await expect(store.put('../escape', 'x')).rejects.toThrow(/invalid secret name/);
    await expect(openSecretStore(dir, 'not-an-identity')).rejects.toThrow(/age X25519 identity/);
  });
});
