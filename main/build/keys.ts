// Signing keys of a cluster's builds. ONE place handles key material at rest: the ed25519 key
// that signs DSSE envelopes and the GnuPG home holding the darksite repository key.
// Until main/trust/secret-store.ts (age-encrypted) lands, keys are plain files with mode 0600
// inside <workspace>/clusters/<name>/secrets/ (directories 0700). Switching to the SecretStore
// changes only this file.
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../exec/runner';
import { clusterWorkspace, WORKSPACE_LAYOUT } from '../workspace';
import { sha256Of, writeFileAtomic } from './files';

export interface BuildSigningKey {
  privateKey: KeyObject;
  publicKeyPem: string;
  /** sha256 of the SPKI DER: the DSSE keyid. */
  keyid: string;
}

export function secretsDir(cluster: string, env: NodeJS.ProcessEnv = process.env): string {
  const dir = join(clusterWorkspace(cluster, env), WORKSPACE_LAYOUT.secrets);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return dir;
}

export function keyidOf(publicKeyPem: string): string {
  return sha256Of(createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' }));
}

/** The cluster's build signing key (ed25519), created on first use. */
export function buildSigningKey(cluster: string, env: NodeJS.ProcessEnv = process.env): BuildSigningKey {
  const path = join(secretsDir(cluster, env), 'build-signing-ed25519.pem');
  if (!existsSync(path)) {
    const { privateKey } = generateKeyPairSync('ed25519');
    writeFileAtomic(path, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
  }
  chmodSync(path, 0o600);
  const privateKey = createPrivateKey(readFileSync(path));
  const publicKeyPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }) as string;
  return { privateKey, publicKeyPem, keyid: keyidOf(publicKeyPem) };
}

export interface RepoKey {
  gnupgHome: string;
  fingerprint: string;
  /** Binary (non-armored) public keyring for apt's signed-by and d-i. */
  publicKeyring: Uint8Array;
}

/** The darksite repository key: ed25519 in a private GNUPGHOME, created on first use. */
export async function repoKey(cluster: string, env: NodeJS.ProcessEnv = process.env, signal?: AbortSignal): Promise<RepoKey> {
  const gnupgHome = join(secretsDir(cluster, env), 'repo-gnupg');
  const gpgEnv = { GNUPGHOME: gnupgHome, LC_ALL: 'C' };
  const list = async (): Promise<string | undefined> => {
    if (!existsSync(join(gnupgHome, 'pubring.kbx'))) return undefined;
    const r = await run(['gpg', '--batch', '--with-colons', '--list-secret-keys'], { env: gpgEnv, okExitCodes: [0, 2], signal });
    return r.stdout.split('\n').find((l) => l.startsWith('fpr:'))?.split(':')[9];
  };
  try {
    let fpr = await list();
    if (!fpr) {
      rmSync(gnupgHome, { recursive: true, force: true });
      mkdirSync(gnupgHome, { recursive: true, mode: 0o700 });
      await run(
        // Created at a fixed past time so signatures made at any SOURCE_DATE_EPOCH after it are valid.
        ['gpg', '--batch', '--faked-system-time', '1577836800!', '--pinentry-mode', 'loopback', '--passphrase', '', '--quick-generate-key', `Kube'd'OS ${cluster} darksite <darksite@${cluster}.kubedos.invalid>`, 'ed25519', 'sign', 'never'],
        { env: gpgEnv, signal, hint: 'gpg (package gnupg) creates the darksite repository key' },
      );
      fpr = await list();
      if (!fpr) throw new Error(`darksite key: gpg created no secret key in ${gnupgHome}`);
    }
    const exported = await run(['gpg', '--batch', '--export', fpr], { env: gpgEnv, binary: true, signal });
    return { gnupgHome, fingerprint: fpr, publicKeyring: new Uint8Array(exported.stdoutBytes ?? Buffer.alloc(0)) };
  } finally {
    await stopGpgAgent(gnupgHome);
  }
}

/** gpg starts an agent per home; stop ours so no daemon outlives the build. */
export async function stopGpgAgent(gnupgHome: string): Promise<void> {
  if (!existsSync(gnupgHome)) return;
  await run(['gpgconf', '--homedir', gnupgHome, '--kill', 'all'], { okExitCodes: [0, 1, 2], timeoutMs: 10_000 }).catch(() => undefined);
}

/** The operator's SSH key pair (ed25519); the public half goes into every payload. */
export async function opsSshKey(cluster: string, env: NodeJS.ProcessEnv = process.env, signal?: AbortSignal): Promise<{ privateKeyPath: string; publicKey: string }> {
  const path = join(secretsDir(cluster, env), 'ops_ed25519');
  if (!existsSync(path) || !existsSync(`${path}.pub`)) {
    rmSync(path, { force: true });
    rmSync(`${path}.pub`, { force: true });
    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `ops@${cluster}`, '-f', path], { signal });
  }
  chmodSync(path, 0o600);
  return { privateKeyPath: path, publicKey: readFileSync(`${path}.pub`, 'utf8').trim() };
}
