import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../exec/runner';
import { ageIdentity, openSecretStore } from '../trust/index';
import { signDsse, verifyDsse } from './attest';
import { BUILD_KEY_NAMES, buildSigningKey, keyidOf, LEGACY_KEY_FILES, opsSshKey, repoKey, secretsDir, withRepoKey } from './keys';

const CLUSTER = 'lab-3';
let root: string;
let env: NodeJS.ProcessEnv;
let logs: string[];
const log = (line: string): void => {
  logs.push(line);
};

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'kubedos-keys-'));
  env = { KUBEDOS_WORKSPACE: root };
  logs = [];
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

/** Every file under the secrets directory, relative to it. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else out.push(relative(dir, join(d, e.name)));
    }
  };
  walk(dir);
  return out.sort();
}

const gpgSign = async (gnupgHome: string, fingerprint: string, file: string, epoch: number): Promise<string> => {
  const out = `${file}.${Math.random().toString(36).slice(2)}.asc`;
  await run(['gpg', '--batch', '--yes', '--faked-system-time', `${epoch}!`, '--local-user', fingerprint, '--digest-algo', 'SHA512', '--armor', '--detach-sign', '--output', out, file], { env: { GNUPGHOME: gnupgHome, LC_ALL: 'C' } });
  return readFileSync(out, 'utf8');
};

describe('build keys in the SecretStore', () => {
  it('keeps all three keys only as age files and returns the same keys on every call', async () => {
    const s1 = await buildSigningKey(CLUSTER, env, { log });
    const r1 = await repoKey(CLUSTER, env, { log });
    const o1 = await opsSshKey(CLUSTER, env, { log });
    const dir = secretsDir(CLUSTER, env);
    const files = filesUnder(dir);
    expect(files).toEqual(Object.values(BUILD_KEY_NAMES).map((n) => `${n}.age`).sort());
    for (const f of files) {
      expect(f.endsWith('.age')).toBe(true);
      expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
      // Nothing readable: no PEM, no armored key, no OpenSSH key in any file.
      expect(readFileSync(join(dir, f), 'utf8')).not.toMatch(/PRIVATE KEY|BEGIN PGP|ssh-ed25519/);
    }
    expect(statSync(dir).mode & 0o777).toBe(0o700);

    const s2 = await buildSigningKey(CLUSTER, env, { log });
    const r2 = await repoKey(CLUSTER, env, { log });
    const o2 = await opsSshKey(CLUSTER, env, { log });
    expect(s2.keyid).toBe(s1.keyid);
    expect(s2.publicKeyPem).toBe(s1.publicKeyPem);
    expect(r2.fingerprint).toMatch(/^[0-9A-F]{40}$/);
    expect(r2.fingerprint).toBe(r1.fingerprint);
    expect(Buffer.from(r2.publicKeyring).equals(Buffer.from(r1.publicKeyring))).toBe(true);
    expect(o2.publicKey).toBe(o1.publicKey);
    expect(o1.publicKey).toMatch(/^ssh-ed25519 [A-Za-z0-9+/=]+ ops@lab-3$/);
    expect(filesUnder(dir)).toEqual(files);
    expect(logs).toEqual([]);

    // The store holds what was returned: the workspace identity decrypts it (as `age -d` would).
    const store = await openSecretStore(dir, await ageIdentity(env));
    expect(keyidOf(await store.getText(BUILD_KEY_NAMES.signing))).toBe(s1.keyid);
    const opsPrivate = await store.getText(BUILD_KEY_NAMES.ops);
    expect(opsPrivate).toContain('BEGIN OPENSSH PRIVATE KEY');
    const tmp = mkdtempSync(join(root, 'ssh-'));
    writeFileSync(join(tmp, 'k'), opsPrivate, { mode: 0o600 });
    const derived = (await run(['ssh-keygen', '-y', '-f', join(tmp, 'k')])).stdout.trim();
    expect(derived.split(' ').slice(0, 2)).toEqual(o1.publicKey.split(' ').slice(0, 2));
  });

  it('signs identically with the same key at the same SOURCE_DATE_EPOCH (DSSE and gpg)', async () => {
    const a = await buildSigningKey(CLUSTER, env);
    const b = await buildSigningKey(CLUSTER, env);
    const payload = Buffer.from('{"cluster":"lab-3"}');
    const ea = signDsse('application/vnd.in-toto+json', payload, a.privateKey, a.keyid);
    expect(signDsse('application/vnd.in-toto+json', payload, b.privateKey, b.keyid)).toEqual(ea);
    expect(verifyDsse(ea, b.publicKeyPem, b.keyid).equals(payload)).toBe(true);

    const data = join(root, 'Release');
    writeFileSync(data, 'Origin: kubedos\n');
    const homes: string[] = [];
    const sign = (epoch = 1_700_000_000): Promise<string> =>
      withRepoKey(CLUSTER, env, async (k) => {
        homes.push(k.gnupgHome);
        expect(k.gnupgHome.startsWith(secretsDir(CLUSTER, env))).toBe(false);
        expect(statSync(k.gnupgHome).mode & 0o777).toBe(0o700);
        return gpgSign(k.gnupgHome, k.fingerprint, data, epoch);
      });
    const s1 = await sign();
    const s2 = await sign();
    expect(s2).toBe(s1);
    expect(homes[0]).not.toBe(homes[1]);
    for (const h of homes) expect(existsSync(h)).toBe(false);
    // A later epoch signs differently (the epoch is in the signature); the signature verifies against the public keyring.
    expect(await sign(1_700_000_100)).not.toBe(s1);
    const keyring = join(root, 'keyring.gpg');
    writeFileSync(keyring, (await repoKey(CLUSTER, env)).publicKeyring);
    writeFileSync(`${data}.asc`, s1);
    await run(['gpgv', '--keyring', keyring, `${data}.asc`, data], { env: { LC_ALL: 'C' } });
  });

  it('moves old plaintext key files into the store, same keys, and deletes them', async () => {
    const dir = secretsDir(CLUSTER, env);
    // What older builds left behind: PEM, a GnuPG home and an OpenSSH key pair, all plaintext.
    const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    writeFileSync(join(dir, LEGACY_KEY_FILES.signing), pem, { mode: 0o600 });
    const oldKeyid = keyidOf(pem);
    const home = join(dir, LEGACY_KEY_FILES.repo);
    mkdirSync(home, { mode: 0o700 });
    const gpgEnv = { GNUPGHOME: home, LC_ALL: 'C' };
    await run(['gpg', '--batch', '--faked-system-time', '1577836800!', '--pinentry-mode', 'loopback', '--passphrase', '', '--quick-generate-key', 'old <old@lab-3.kubedos.invalid>', 'ed25519', 'sign', 'never'], { env: gpgEnv });
    const oldFpr = (await run(['gpg', '--batch', '--with-colons', '--list-secret-keys'], { env: gpgEnv })).stdout.split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9];
    const oldKeyring = (await run(['gpg', '--batch', '--export', oldFpr!], { env: gpgEnv, binary: true })).stdoutBytes!;
    const data = join(root, 'Release');
    writeFileSync(data, 'Origin: kubedos\n');
    const oldSig = await gpgSign(home, oldFpr!, data, 1_700_000_000);
    await run(['gpgconf', '--homedir', home, '--kill', 'all']);
    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'ops@lab-3', '-f', join(dir, LEGACY_KEY_FILES.ops)]);
    const oldOps = readFileSync(join(dir, `${LEGACY_KEY_FILES.ops}.pub`), 'utf8').trim();

    expect((await buildSigningKey(CLUSTER, env, { log })).keyid).toBe(oldKeyid);
    const r = await repoKey(CLUSTER, env, { log });
    expect(r.fingerprint).toBe(oldFpr);
    expect(Buffer.from(r.publicKeyring).equals(oldKeyring)).toBe(true);
    expect(await withRepoKey(CLUSTER, env, (k) => gpgSign(k.gnupgHome, k.fingerprint, data, 1_700_000_000))).toBe(oldSig);
    expect((await opsSshKey(CLUSTER, env, { log })).publicKey).toBe(oldOps);

    expect(filesUnder(dir)).toEqual(Object.values(BUILD_KEY_NAMES).map((n) => `${n}.age`).sort());
    expect(logs).toHaveLength(3);
    expect(logs.join('\n')).toContain(`moved the build signing key from the plaintext ${join(dir, LEGACY_KEY_FILES.signing)}`);
    expect(logs.join('\n')).toContain(`fingerprint ${oldFpr}`);
    expect(logs.join('\n')).toContain('operator SSH key');
    for (const l of logs) expect(l).toContain('deleted the plaintext file');

    // Later calls find nothing to migrate and keep the keys.
    logs = [];
    expect((await buildSigningKey(CLUSTER, env, { log })).keyid).toBe(oldKeyid);
    expect((await repoKey(CLUSTER, env, { log })).fingerprint).toBe(oldFpr);
    expect((await opsSshKey(CLUSTER, env, { log })).publicKey).toBe(oldOps);
    expect(logs).toEqual([]);
  });

  it('deletes a leftover plaintext copy of the stored key, refuses a different one', async () => {
    const dir = secretsDir(CLUSTER, env);
    const k = await buildSigningKey(CLUSTER, env);
    const store = await openSecretStore(dir, await ageIdentity(env));
    const legacy = join(dir, LEGACY_KEY_FILES.signing);
    writeFileSync(legacy, await store.getText(BUILD_KEY_NAMES.signing), { mode: 0o600 });
    expect((await buildSigningKey(CLUSTER, env, { log })).keyid).toBe(k.keyid);
    expect(existsSync(legacy)).toBe(false);
    expect(logs.join('\n')).toContain('already holds this key; deleted the old plaintext');

    const other = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    writeFileSync(legacy, other, { mode: 0o600 });
    await expect(buildSigningKey(CLUSTER, env, { log })).rejects.toThrow(/exists twice with different keys.*move the other out/s);
    expect(existsSync(legacy)).toBe(true);
    expect(keyidOf(await store.getText(BUILD_KEY_NAMES.signing))).toBe(k.keyid);
  });

  it('fails with an actionable message under the wrong age identity and keeps the key', async () => {
    const idA = join(root, 'a.txt');
    const idB = join(root, 'b.txt');
    const made = await buildSigningKey(CLUSTER, { ...env, KUBEDOS_AGE_IDENTITY_FILE: idA.replace('a.txt', 'missing.txt') }).catch((e: Error) => e);
    expect(made).toBeInstanceOf(Error);
    expect((made as Error).message).toMatch(/KUBEDOS_AGE_IDENTITY_FILE=.*does not exist/);

    // Identity A made the keys; identity B cannot open them.
    writeFileSync(idA, `${await ageIdentity({ KUBEDOS_WORKSPACE: join(root, 'wa') })}\n`, { mode: 0o600 });
    writeFileSync(idB, `${await ageIdentity({ KUBEDOS_WORKSPACE: join(root, 'wb') })}\n`, { mode: 0o600 });
    const envA = { ...env, KUBEDOS_AGE_IDENTITY_FILE: idA };
    const envB = { ...env, KUBEDOS_AGE_IDENTITY_FILE: idB };
    const k = await buildSigningKey(CLUSTER, envA);
    const r = await repoKey(CLUSTER, envA);
    const o = await opsSshKey(CLUSTER, envA);
    const file = join(secretsDir(CLUSTER, env), `${BUILD_KEY_NAMES.signing}.age`);
    const before = readFileSync(file);
    for (const call of [() => buildSigningKey(CLUSTER, envB), () => repoKey(CLUSTER, envB), () => opsSshKey(CLUSTER, envB)]) {
      const err = (await call().catch((e: Error) => e)) as Error;
      expect(err).toBeInstanceOf(Error);
      expect(err.message).toContain(`with the age identity in ${idB}`);
      expect(err.message).toContain('Set KUBEDOS_AGE_IDENTITY_FILE to the identity');
      expect(err.message).toContain('Do not delete the .age file');
    }
    expect(readFileSync(file).equals(before)).toBe(true);
    expect((await buildSigningKey(CLUSTER, envA)).keyid).toBe(k.keyid);
    expect((await repoKey(CLUSTER, envA)).fingerprint).toBe(r.fingerprint);
    expect((await opsSshKey(CLUSTER, envA)).publicKey).toBe(o.publicKey);
  });
});
