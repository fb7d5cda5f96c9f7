import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ageIdentity, ageIdentityPath } from './identity';
import { openSecretStore } from './secret-store';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'kubedos-identity-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('ageIdentity', () => {
  it('creates <workspace root>/age-identity.txt 0600 once, then reads the same identity', async () => {
    const env = { KUBEDOS_WORKSPACE: join(root, 'ws') };
    expect(ageIdentityPath(env)).toBe(join(root, 'ws', 'age-identity.txt'));
    const id = await ageIdentity(env);
    expect(id).toMatch(/^AGE-SECRET-KEY-1[0-9A-Z]+$/);
    expect(statSync(ageIdentityPath(env)).mode & 0o777).toBe(0o600);
    expect(readFileSync(ageIdentityPath(env), 'utf8')).toContain(id);
    expect(await ageIdentity(env)).toBe(id);
    const store = await openSecretStore(join(root, 's'), id);
    await store.put('x', 'y');
    expect(await (await openSecretStore(join(root, 's'), await ageIdentity(env))).getText('x')).toBe('y');
  });

  it('uses $KUBEDOS_AGE_IDENTITY_FILE and never creates it', async () => {
    const file = join(root, 'usb', 'id.txt');
    const env = { KUBEDOS_WORKSPACE: join(root, 'ws'), KUBEDOS_AGE_IDENTITY_FILE: file };
    expect(ageIdentityPath(env)).toBe(file);
    await expect(ageIdentity(env)).rejects.toThrow(`KUBEDOS_AGE_IDENTITY_FILE=${file} does not exist`);
    const bad = join(root, 'bad.txt');
    writeFileSync(bad, '# nothing here\n', { mode: 0o600 });
    await expect(ageIdentity({ ...env, KUBEDOS_AGE_IDENTITY_FILE: bad })).rejects.toThrow(/holds no age identity/);
    // An identity file other users can read is refused, with the fix in the message.
    const loose = join(root, 'loose.txt');
    writeFileSync(loose, 'AGE-SECRET-KEY-1QQQQ\n');
    chmodSync(loose, 0o644);
    await expect(ageIdentity({ ...env, KUBEDOS_AGE_IDENTITY_FILE: loose })).rejects.toThrow(/mode 644.*chmod 600/);
  });
});
