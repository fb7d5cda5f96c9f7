// The age identity that opens a workspace's SecretStore (secret-store.ts). One function finds it
// for every user of the store (trust stage, build keys): $KUBEDOS_AGE_IDENTITY_FILE (e.g. on a
// USB key), else <workspace root>/age-identity.txt, created 0600 on first use.
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { registerSecret } from '../exec/secrets';
import { dirname, join } from 'node:path';
import { workspaceRoot } from '../workspace';
import { createAgeIdentity } from './secret-store';

/** Where ageIdentity() reads (or creates) the identity; for messages that name it. */
export function ageIdentityPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.KUBEDOS_AGE_IDENTITY_FILE ?? join(workspaceRoot(env), 'age-identity.txt');
}

/**
 * The age identity that opens the SecretStore: $KUBEDOS_AGE_IDENTITY_FILE (e.g. on a USB key),
 * else <workspace root>/age-identity.txt, created 0600 on first use.
 */
export async function ageIdentity(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const path = ageIdentityPath(env);
  if (existsSync(path)) {
    // The identity opens every secret of the cluster: refuse one other users could have read.
    const st = lstatSync(path);
    if (st.isSymbolicLink() || !st.isFile()) throw new Error(`${path} is not a regular file; point KUBEDOS_AGE_IDENTITY_FILE at the identity file itself`);
    if (st.mode & 0o077) throw new Error(`${path} has mode ${(st.mode & 0o777).toString(8)}; the age identity must be readable by you only: chmod 600 ${path} (and consider who may have copied it)`);
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) throw new Error(`${path} belongs to uid ${st.uid}, not to you (uid ${uid}); an identity someone else owns could be theirs — use your own`);
    const line = readFileSync(path, 'utf8').split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-1'));
    if (!line) throw new Error(`${path} holds no age identity (AGE-SECRET-KEY-1…)`);
    registerSecret(line.trim());
    return line.trim();
  }
  if (env.KUBEDOS_AGE_IDENTITY_FILE) throw new Error(`KUBEDOS_AGE_IDENTITY_FILE=${path} does not exist`);
  const id = await createAgeIdentity();
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `# Kube'd'OS secret store identity: keep a copy offline; without it the cluster's CA keys are lost\n${id}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  registerSecret(id);
  return id;
}
