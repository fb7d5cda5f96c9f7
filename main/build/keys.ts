// Signing keys of a cluster's builds. ONE place handles key material: the ed25519 key that signs
// DSSE envelopes (manifest, SBOM, provenance, recovery bundle), the darksite repository key (gpg)
// and the operator SSH key whose public half goes into every image.
//
// At rest they live ONLY in the cluster's age-encrypted SecretStore (main/trust/secret-store.ts,
// <workspace>/clusters/<name>/secrets/, the same store and identity the trust stage uses):
//   build/signing-key.pem          PKCS#8 PEM (ed25519)
//   build/repo-key.asc             `gpg --export-secret-keys --armor` of the darksite key
//   build/operator-ssh-key(.pub)   OpenSSH private key and its public line
// The gpg key is imported into a fresh private GNUPGHOME (0700, under the OS temp dir) for each
// use and removed afterwards; its fingerprint and public keyring do not change across imports.
// Older workspaces kept these keys as plaintext files in the same directory; the first call
// moves such a file into the store (same key, so signatures and pins stay valid) and deletes it.
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../exec/runner';
import type { SecretStore } from '../trust/index';
import { ageIdentity, ageIdentityPath, openSecretStore } from '../trust/index';
import { clusterWorkspace, WORKSPACE_LAYOUT } from '../workspace';
import { sha256Of } from './files';

export interface BuildSigningKey {
  privateKey: KeyObject;
  publicKeyPem: string;
  /** sha256 of the SPKI DER: the DSSE keyid. */
  keyid: string;
}

export interface KeyOptions {
  signal?: AbortSignal;
  /** Told when an old plaintext key file is moved into the SecretStore (default: stderr). */
  log?: (line: string) => void;
}

/** Names of the build keys in the SecretStore (files `<name>.age`). */
export const BUILD_KEY_NAMES = {
  signing: 'build/signing-key.pem',
  repo: 'build/repo-key.asc',
  ops: 'build/operator-ssh-key',
  opsPublic: 'build/operator-ssh-key.pub',
} as const;

/** Where older workspaces kept the keys in plaintext (relative to the secrets directory). */
export const LEGACY_KEY_FILES = { signing: 'build-signing-ed25519.pem', repo: 'repo-gnupg', ops: 'ops_ed25519' } as const;

// Created at a fixed past time so signatures made at any SOURCE_DATE_EPOCH after it are valid.
const REPO_KEY_CREATED = '1577836800!';

export function secretsDir(cluster: string, env: NodeJS.ProcessEnv = process.env): string {
  const dir = join(clusterWorkspace(cluster, env), WORKSPACE_LAYOUT.secrets);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return dir;
}

export function keyidOf(publicKeyPem: string): string {
  return sha256Of(createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' }));
}

const defaultLog = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

async function buildKeyStore(cluster: string, env: NodeJS.ProcessEnv): Promise<SecretStore> {
  return openSecretStore(secretsDir(cluster, env), await ageIdentity(env));
}

/** store.get with a message that says which identity failed and what to do. */
async function readKey(store: SecretStore, name: string, env: NodeJS.ProcessEnv): Promise<Uint8Array> {
  try {
    return await store.get(name);
  } catch (err) {
    const msg = (err as Error).message;
    if (!msg.includes('cannot decrypt')) throw err;
    throw new Error(
      `build keys: cannot decrypt ${join(store.dir, `${name}.age`)} with the age identity in ${ageIdentityPath(env)} (${msg}). ` +
        `Set KUBEDOS_AGE_IDENTITY_FILE to the identity this workspace's secrets were encrypted to (the copy you keep offline), or decrypt it with the recovery identity (age -d -i IDENTITY FILE.age). ` +
        `Do not delete the .age file to get a new key: that changes the build signing key id / darksite repository fingerprint that earlier builds and installed nodes trust.`,
      { cause: err },
    );
  }
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

interface Legacy {
  /** Plaintext path, for messages. */
  path: string;
  value: Uint8Array;
  remove(): Promise<void>;
}

/**
 * The secret `name` from the store. An old plaintext copy (`legacy`) is imported when the store
 * has none, or deleted when the store already holds the same key (`identityOf` compares them);
 * a new key is made by `create` only when neither exists.
 */
async function loadKey(
  store: SecretStore,
  env: NodeJS.ProcessEnv,
  k: {
    name: string;
    what: string;
    legacy?: Legacy;
    identityOf: (value: Uint8Array) => Promise<string>;
    create: () => Promise<Uint8Array>;
    log: (line: string) => void;
  },
): Promise<Uint8Array> {
  const file = join(store.dir, `${k.name}.age`);
  if (await store.has(k.name)) {
    const value = await readKey(store, k.name, env);
    if (k.legacy) {
      const [stored, old] = [await k.identityOf(value), await k.identityOf(k.legacy.value)];
      if (stored !== old) {
        throw new Error(
          `build keys: the ${k.what} exists twice with different keys: ${file} (${stored}) and the old plaintext ${k.legacy.path} (${old}). ` +
            `Keep the one your builds and nodes trust (kubedos verify BUILD_DIR names the build signing key id; nodes carry the darksite fingerprint and the ops key): move the other out of ${store.dir}, then build again.`,
        );
      }
      await k.legacy.remove();
      k.log(`keys: ${k.what}: ${file} already holds this key; deleted the old plaintext ${k.legacy.path}`);
    }
    return value;
  }
  if (k.legacy) {
    await store.put(k.name, k.legacy.value);
    if (!sameBytes(await readKey(store, k.name, env), k.legacy.value)) throw new Error(`build keys: ${file} does not read back as written; the plaintext ${k.legacy.path} was kept`);
    await k.legacy.remove();
    k.log(`keys: moved the ${k.what} from the plaintext ${k.legacy.path} into the SecretStore as ${file} (same key: ${await k.identityOf(k.legacy.value)}) and deleted the plaintext file`);
    return k.legacy.value;
  }
  const value = await k.create();
  await store.put(k.name, value);
  return value;
}

function signingKeyOf(pem: string): BuildSigningKey {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`build keys: the build signing key is ${privateKey.asymmetricKeyType}, expected ed25519`);
  const publicKeyPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }) as string;
  return { privateKey, publicKeyPem, keyid: keyidOf(publicKeyPem) };
}

/** The cluster's build signing key (ed25519), created on first use. */
export async function buildSigningKey(cluster: string, env: NodeJS.ProcessEnv = process.env, o: KeyOptions = {}): Promise<BuildSigningKey> {
  const store = await buildKeyStore(cluster, env);
  const legacyPath = join(store.dir, LEGACY_KEY_FILES.signing);
  const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');
  const pem = await loadKey(store, env, {
    name: BUILD_KEY_NAMES.signing,
    what: 'build signing key',
    legacy: existsSync(legacyPath)
      ? {
          path: legacyPath,
          value: readFileSync(legacyPath),
          remove: async () => rmSync(legacyPath, { force: true }),
        }
      : undefined,
    identityOf: async (b) => `key id ${signingKeyOf(text(b)).keyid}`,
    create: async () => Buffer.from(generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string),
    log: o.log ?? defaultLog,
  });
  return signingKeyOf(text(pem));
}

export interface RepoKey {
  gnupgHome: string;
  fingerprint: string;
  /** Binary (non-armored) public keyring for apt's signed-by and d-i. */
  publicKeyring: Uint8Array;
}

export type RepoPublicKey = Omit<RepoKey, 'gnupgHome'>;

const gpgEnvOf = (gnupgHome: string): Record<string, string> => ({ GNUPGHOME: gnupgHome, LC_ALL: 'C' });

async function secretFingerprint(gnupgHome: string, signal?: AbortSignal): Promise<string | undefined> {
  const r = await run(['gpg', '--batch', '--with-colons', '--list-secret-keys'], { env: gpgEnvOf(gnupgHome), okExitCodes: [0, 2], signal });
  return r.stdout.split('\n').find((l) => l.startsWith('fpr:'))?.split(':')[9];
}

/** A fresh private GNUPGHOME (0700) for `fn`; its agent is stopped and the directory removed afterwards. */
async function withGnupgHome<T>(fn: (gnupgHome: string) => Promise<T>): Promise<T> {
  // Under the OS temp dir: short enough for the agent's socket path, never inside the workspace.
  const home = mkdtempSync(join(tmpdir(), 'kubedos-gpg-'));
  chmodSync(home, 0o700);
  try {
    return await fn(home);
  } finally {
    await stopGpgAgent(home);
    rmSync(home, { recursive: true, force: true });
  }
}

async function importRepoKey(gnupgHome: string, armored: Uint8Array, signal?: AbortSignal): Promise<RepoKey> {
  const env = gpgEnvOf(gnupgHome);
  await run(['gpg', '--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--import'], { env, input: armored, signal, hint: 'gpg (package gnupg) imports the darksite repository key' });
  const fingerprint = await secretFingerprint(gnupgHome, signal);
  if (!fingerprint) throw new Error(`build keys: ${BUILD_KEY_NAMES.repo} holds no gpg secret key (gpg --import found none)`);
  const exported = await run(['gpg', '--batch', '--export', fingerprint], { env, binary: true, signal });
  return { gnupgHome, fingerprint, publicKeyring: new Uint8Array(exported.stdoutBytes ?? Buffer.alloc(0)) };
}

async function exportSecretKey(gnupgHome: string, fingerprint: string, signal?: AbortSignal): Promise<Uint8Array> {
  const r = await run(['gpg', '--batch', '--pinentry-mode', 'loopback', '--passphrase', '', '--armor', '--export-secret-keys', fingerprint], { env: gpgEnvOf(gnupgHome), binary: true, signal });
  const out = new Uint8Array(r.stdoutBytes ?? Buffer.alloc(0));
  if (!Buffer.from(out).toString('utf8').includes('BEGIN PGP PRIVATE KEY BLOCK')) throw new Error(`build keys: gpg exported no secret key ${fingerprint} from ${gnupgHome}`);
  return out;
}

async function armoredRepoKey(cluster: string, env: NodeJS.ProcessEnv, o: KeyOptions): Promise<Uint8Array> {
  const store = await buildKeyStore(cluster, env);
  const signal = o.signal;
  const log = o.log ?? defaultLog;
  const legacyHome = join(store.dir, LEGACY_KEY_FILES.repo);
  let legacy: Legacy | undefined;
  if (existsSync(legacyHome)) {
    const removeLegacy = async (): Promise<void> => {
      await stopGpgAgent(legacyHome);
      rmSync(legacyHome, { recursive: true, force: true });
    };
    try {
      const fpr = existsSync(join(legacyHome, 'pubring.kbx')) ? await secretFingerprint(legacyHome, signal) : undefined;
      if (fpr) legacy = { path: legacyHome, value: await exportSecretKey(legacyHome, fpr, signal), remove: removeLegacy };
    } finally {
      await stopGpgAgent(legacyHome);
    }
    if (!legacy) {
      await removeLegacy();
      log(`keys: deleted ${legacyHome}: an old darksite GnuPG home without a secret key`);
    }
  }
  return loadKey(store, env, {
    name: BUILD_KEY_NAMES.repo,
    what: 'darksite repository key',
    legacy,
    identityOf: async (armored) => `fingerprint ${(await withGnupgHome((home) => importRepoKey(home, armored, signal))).fingerprint}`,
    create: () =>
      withGnupgHome(async (home) => {
        await run(['gpg', '--batch', '--faked-system-time', REPO_KEY_CREATED, '--pinentry-mode', 'loopback', '--passphrase', '', '--quick-generate-key', `Kube'd'OS ${cluster} darksite <darksite@${cluster}.kubedos.invalid>`, 'ed25519', 'sign', 'never'], {
          env: gpgEnvOf(home),
          signal,
          hint: 'gpg (package gnupg) creates the darksite repository key',
        });
        const fpr = await secretFingerprint(home, signal);
        if (!fpr) throw new Error(`build keys: gpg created no darksite secret key in ${home}`);
        return exportSecretKey(home, fpr, signal);
      }),
    log,
  });
}

/**
 * The darksite repository key (ed25519, created on first use): its fingerprint and public keyring.
 * Signing needs the secret key: use withRepoKey.
 */
export async function repoKey(cluster: string, env: NodeJS.ProcessEnv = process.env, o: KeyOptions = {}): Promise<RepoPublicKey> {
  return withRepoKey(cluster, env, async (k) => ({ fingerprint: k.fingerprint, publicKeyring: k.publicKeyring }), o);
}

/**
 * Runs `fn` with the darksite repository key imported into a fresh private GNUPGHOME, which is
 * removed (agent stopped) when `fn` settles.
 */
export async function withRepoKey<T>(cluster: string, env: NodeJS.ProcessEnv, fn: (key: RepoKey) => Promise<T>, o: KeyOptions = {}): Promise<T> {
  const armored = await armoredRepoKey(cluster, env, o);
  return withGnupgHome(async (home) => fn(await importRepoKey(home, armored, o.signal)));
}

/** gpg starts an agent per home; stop ours so no daemon outlives the build. */
export async function stopGpgAgent(gnupgHome: string): Promise<void> {
  if (!existsSync(gnupgHome)) return;
  await run(['gpgconf', '--homedir', gnupgHome, '--kill', 'all'], { okExitCodes: [0, 1, 2], timeoutMs: 10_000 }).catch(() => undefined);
}

/**
 * The operator's SSH key pair (ed25519, created on first use); the public half goes into every
 * payload. The private half stays in the SecretStore: `age -d -i IDENTITY secrets/build/operator-ssh-key.age`.
 */
export async function opsSshKey(cluster: string, env: NodeJS.ProcessEnv = process.env, o: KeyOptions = {}): Promise<{ publicKey: string }> {
  const store = await buildKeyStore(cluster, env);
  const signal = o.signal;
  const log = o.log ?? defaultLog;
  const legacyPath = join(store.dir, LEGACY_KEY_FILES.ops);
  const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');
  const publicOf = async (privateKey: Uint8Array): Promise<string> => {
    // ssh-keygen -y reads a file; a temporary 0600 one in a 0700 temp dir, removed at once.
    const dir = mkdtempSync(join(tmpdir(), 'kubedos-ssh-'));
    try {
      writeFileSync(join(dir, 'key'), privateKey, { mode: 0o600 });
      const r = await run(['ssh-keygen', '-y', '-f', join(dir, 'key')], { signal, hint: 'ssh-keygen (package openssh-client) reads the operator SSH key' });
      return r.stdout.trim();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  /** "ssh-ed25519 AAAA…" without the comment: what identifies the key. */
  const keyOf = (line: string): string => line.split(/\s+/).slice(0, 2).join(' ');
  let knownPublic: string | undefined;
  let changed = false; // created or migrated now: (re)write the public line
  const privateKey = await loadKey(store, env, {
    name: BUILD_KEY_NAMES.ops,
    what: 'operator SSH key',
    legacy: existsSync(legacyPath)
      ? {
          path: legacyPath,
          value: readFileSync(legacyPath),
          remove: async () => {
            changed = true;
            knownPublic = existsSync(`${legacyPath}.pub`) ? readFileSync(`${legacyPath}.pub`, 'utf8').trim() : undefined;
            rmSync(legacyPath, { force: true });
            rmSync(`${legacyPath}.pub`, { force: true });
          },
        }
      : undefined,
    identityOf: async (b) => keyOf(await publicOf(b)),
    create: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'kubedos-ssh-'));
      try {
        await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `ops@${cluster}`, '-f', join(dir, 'key')], { signal, hint: 'ssh-keygen (package openssh-client) creates the operator SSH key' });
        changed = true;
        knownPublic = readFileSync(join(dir, 'key.pub'), 'utf8').trim();
        return readFileSync(join(dir, 'key'));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    log,
  });
  // The public line (with its ops@<cluster> comment) is stored beside the key, so images stay
  // byte-identical and no build writes the private key anywhere to derive it.
  if (!changed && (await store.has(BUILD_KEY_NAMES.opsPublic))) return { publicKey: (await readKey(store, BUILD_KEY_NAMES.opsPublic, env).then(text)).trim() };
  const derived = await publicOf(privateKey);
  // Keep the old .pub line (comment included) when it is this key's: images stay byte-identical.
  const line = knownPublic && keyOf(knownPublic) === keyOf(derived) ? knownPublic : derived;
  const publicKey = line.split(/\s+/).length > 2 ? line : `${keyOf(line)} ops@${cluster}`;
  await store.put(BUILD_KEY_NAMES.opsPublic, `${publicKey}\n`);
  return { publicKey };
}

/**
 * The operator SSH private key (OpenSSH PEM) the built images authorize for the spec's first
 * `security.ssh.allowUsers` user. Read only, never created: no build, no key (the node terminal
 * logs in with it).
 */
export async function readOpsPrivateKey(cluster: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const store = await buildKeyStore(cluster, env);
  if (!(await store.has(BUILD_KEY_NAMES.ops))) {
    throw new Error(`no operator SSH key for cluster ${cluster} in ${store.dir}: it is made by the first build (kubedos build SPEC) and baked into the images; a cluster built elsewhere needs that workspace's secrets`);
  }
  return Buffer.from(await readKey(store, BUILD_KEY_NAMES.ops, env)).toString('utf8');
}
