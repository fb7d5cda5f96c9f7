// The age identity that opens a workspace's SecretStore (secret-store.ts). One function finds it
// for every user of the store (trust stage, build keys): $KUBEDOS_AGE_IDENTITY_FILE (e.g. on a
// USB key), else <workspace root>/age-identity.txt, created 0600 on first use.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
    const line = readFileSync(path, 'utf8').split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-1'));
    if (!line) throw new Error(`${path} holds no age identity (AGE-SECRET-KEY-1…)`);
    return line.trim();
  }
  if (env.KUBEDOS_AGE_IDENTITY_FILE) throw new Error(`KUBEDOS_AGE_IDENTITY_FILE=${path} does not exist`);
  const id = await createAgeIdentity();
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `# Kube'd'OS secret store identity: keep a copy offline; without it the cluster's CA keys are lost\n${id}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return id;
}
