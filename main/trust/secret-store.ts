// Secrets at rest (seed 003 §6.4). A SecretStore is a directory of age-encrypted files, one per
// secret, each mode 0600 in a 0700 directory; names are `[a-z0-9._/-]` paths (no `..`).
//
//   const store = await openSecretStore(join(clusterWorkspace(c), 'secrets'), identity);
//   await store.put('enrollment-hmac', bytes);     // writes enrollment-hmac.age atomically
//   const key = await store.get('enrollment-hmac'); // Uint8Array, or throws if missing
//   await store.list();                             // ['enrollment-hmac', ...] sorted
//   await store.has(name); await store.delete(name);
//
// `identity` is an age X25519 identity string (AGE-SECRET-KEY-1…). Files are readable with
// Debian's `age -d -i identity.txt NAME.age`, which is the offline recovery path (docs/secrets.md).
// Create an identity with `createAgeIdentity()`; keep it out of the workspace (USB / safe / TPM).
import { chmod, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { registerSecret } from '../exec/secrets';

export interface SecretStore {
  readonly dir: string;
  /** The age recipient (public key) files are encrypted to. */
  readonly recipient: string;
  put(name: string, value: Uint8Array | string): Promise<void>;
  get(name: string): Promise<Uint8Array>;
  getText(name: string): Promise<string>;
  has(name: string): Promise<boolean>;
  list(): Promise<string[]>;
  delete(name: string): Promise<void>;
}

const SUFFIX = '.age';
const NAME = /^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/;

export async function createAgeIdentity(): Promise<string> {
  return generateX25519Identity();
}

export async function openSecretStore(dir: string, identity: string, extraRecipients: readonly string[] = []): Promise<SecretStore> {
  if (!identity.startsWith('AGE-SECRET-KEY-1')) throw new Error('secret store: identity must be an age X25519 identity (AGE-SECRET-KEY-1…)');
  const recipient = await identityToRecipient(identity);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const pathOf = (name: string): string => {
    if (!NAME.test(name) || name.split('/').some((p) => p === '..' || p === '.')) throw new Error(`secret store: invalid secret name ${JSON.stringify(name)}`);
    return join(dir, `${name}${SUFFIX}`);
  };
  const store: SecretStore = {
    dir,
    recipient,
    async put(name, value) {
      const path = pathOf(name);
      const e = new Encrypter();
      for (const r of [recipient, ...extraRecipients]) e.addRecipient(r);
      registerSecret(value);
      const data = await e.encrypt(typeof value === 'string' ? new TextEncoder().encode(value) : value);
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      const tmp = `${path}.tmp-${process.pid}`;
      await writeFile(tmp, data, { mode: 0o600 });
      await chmod(tmp, 0o600);
      await rename(tmp, path);
    },
    async get(name) {
      const path = pathOf(name);
      let data: Buffer;
      try {
        data = await readFile(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`secret store: no secret "${name}" in ${dir}`, { cause: err });
        throw err;
      }
      const mode = (await stat(path)).mode & 0o777;
      if (mode & 0o077) throw new Error(`secret store: ${path} has mode ${mode.toString(8)}; expected 600 (chmod 600 it, and check who read it)`);
      const d = new Decrypter();
      d.addIdentity(identity);
      try {
        const value = await d.decrypt(data);
        // From now on the exec runner redacts it from every command's output and errors.
        registerSecret(value);
        return value;
      } catch (err) {
        throw new Error(`secret store: cannot decrypt "${name}" with this identity (${(err as Error).message}); is it the workspace's age identity?`, { cause: err });
      }
    },
    async getText(name) {
      return new TextDecoder().decode(await store.get(name));
    },
    async has(name) {
      try {
        await stat(pathOf(name));
        return true;
      } catch {
        return false;
      }
    },
    async list() {
      const out: string[] = [];
      const walk = async (d: string): Promise<void> => {
        for (const ent of await readdir(d, { withFileTypes: true })) {
          const p = join(d, ent.name);
          if (ent.isDirectory()) await walk(p);
          else if (ent.name.endsWith(SUFFIX)) out.push(relative(dir, p).split(sep).join('/').slice(0, -SUFFIX.length));
        }
      };
      await walk(dir);
      return out.sort();
    },
    async delete(name) {
      await rm(pathOf(name), { force: true });
    },
  };
  return store;
}
