// The root CA is offline: clusterTrust() keeps its key only encrypted to the recovery recipient.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { plan as planOf } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { certFingerprint, issueNodeIdentity, verifyChain } from '../trust/ca';
import { ageIdentity, createRootCa, openSecretStore } from '../trust/index';
import { createRecoveryKey, decryptWithRecovery, recoveryIdentityFileText, RECOVERY_FILES, writeRecoveryRecipient } from '../trust/recovery';
import { clusterWorkspace } from '../workspace';
import { clusterTrust } from './trust';

const spec = parseSpec(TEMPLATES['lab-3'].text).spec!;
const plan = planOf(spec);
let root: string;
let env: NodeJS.ProcessEnv;
let ws: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'kd-h15-trust-'));
  env = { KUBEDOS_WORKSPACE: root };
  ws = clusterWorkspace(plan.cluster.name, env);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** Every file under the workspace that the workspace's own identity can open. */
async function workspaceSecrets(): Promise<string[]> {
  const store = await openSecretStore(join(ws, 'secrets'), await ageIdentity(env));
  return Promise.all((await store.list()).map((n) => store.getText(n)));
}

describe('clusterTrust: offline root CA', () => {
  it('keeps the root key only encrypted to the recovery recipient; the recovery identity gives it back; node certs need only the intermediate', async () => {
    const rec = await createRecoveryKey();
    writeRecoveryRecipient(ws, rec.recipient);
    const t = await clusterTrust(ws, plan, env);
    expect(t.recoveryRecipient).toBe(rec.recipient);
    expect('keyPem' in t.root).toBe(false);

    // The workspace holds no root key: nothing its identity opens is the root key, and no
    // plaintext private key sits anywhere in the workspace.
    const opened = await workspaceSecrets();
    const rootKeyFile = join(ws, 'recovery', RECOVERY_FILES.rootKey);
    const rootKeyPem = new TextDecoder().decode(await decryptWithRecovery(rec.identity, readFileSync(rootKeyFile), rootKeyFile));
    expect(rootKeyPem).toMatch(/BEGIN PRIVATE KEY/);
    expect(opened).not.toContain(rootKeyPem);
    expect(await (await openSecretStore(join(ws, 'secrets'), await ageIdentity(env))).has('ca/root.key')).toBe(false);
    await expect(decryptWithRecovery(await ageIdentity(env), readFileSync(rootKeyFile), rootKeyFile)).rejects.toThrow(/cannot decrypt/);

    // The decrypted key is the root's key: it signs an intermediate that chains to root-ca.crt.
    const { createClusterIntermediate } = await import('../trust/ca');
    const again = await createClusterIntermediate({ ...t.root, keyPem: rootKeyPem }, { cluster: plan.cluster.name, now: new Date() });
    expect(await verifyChain(again.certPem, [], t.root.certPem, new Date())).toBe(true);

    // Issuing node certificates needs only the intermediate.
    const node = await issueNodeIdentity(t.intermediate, { cluster: plan.cluster.name, node: 'worker-1', role: 'worker', now: new Date() });
    expect(await verifyChain(node.certPem, [t.intermediate.certPem], t.root.certPem, new Date())).toBe(true);

    // Reused on the next run, without the recovery identity (same CA fingerprint, same hub pin).
    const t2 = await clusterTrust(ws, plan, env);
    expect(t2.root.fingerprint).toBe(t.root.fingerprint);
    expect(t2.intermediate.fingerprint).toBe(t.intermediate.fingerprint);
    expect(t2.hubTls.fingerprint).toBe(t.hubTls.fingerprint);
    expect(t2.created).toEqual([]);
  });

  it('a new intermediate needs the recovery identity, and works with it', async () => {
    const rec = await createRecoveryKey();
    writeRecoveryRecipient(ws, rec.recipient);
    const t = await clusterTrust(ws, plan, env);
    const store = await openSecretStore(join(ws, 'secrets'), await ageIdentity(env));
    await store.delete('ca/cluster.key');
    await expect(clusterTrust(ws, plan, env)).rejects.toThrow(/needs the offline root CA key .*KUBEDOS_RECOVERY_IDENTITY_FILE/);
    const idFile = join(root, 'recovery-identity.txt');
    writeFileSync(idFile, recoveryIdentityFileText(plan.cluster.name, rec.identity, rec.recipient), { mode: 0o600 });
    chmodSync(idFile, 0o600);
    const t2 = await clusterTrust(ws, plan, { ...env, KUBEDOS_RECOVERY_IDENTITY_FILE: idFile });
    expect(t2.root.fingerprint).toBe(t.root.fingerprint);
    expect(t2.intermediate.fingerprint).not.toBe(t.intermediate.fingerprint);
    expect(await verifyChain(t2.intermediate.certPem, [], t.root.certPem, new Date())).toBe(true);
    // A wrong recovery identity is named as such.
    await store.delete('ca/cluster.key');
    const wrong = await createRecoveryKey();
    writeFileSync(idFile, recoveryIdentityFileText(plan.cluster.name, wrong.identity, wrong.recipient), { mode: 0o600 });
    await expect(clusterTrust(ws, plan, { ...env, KUBEDOS_RECOVERY_IDENTITY_FILE: idFile })).rejects.toThrow(/cannot decrypt .*root-ca\.key\.age with this recovery identity/);
  });

  it('moves a root key left in the SecretStore by an older workspace out of it, keeping the same root', async () => {
    const rec = await createRecoveryKey();
    writeRecoveryRecipient(ws, rec.recipient);
    const old = await createRootCa({ name: plan.cluster.name, now: new Date() });
    const store = await openSecretStore(join(ws, 'secrets'), await ageIdentity(env));
    await store.put('ca/root.key', old.keyPem);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(ws, 'trust'), { recursive: true });
    writeFileSync(join(ws, 'trust', 'root-ca.crt'), old.certPem);
    const t = await clusterTrust(ws, plan, env);
    expect(t.root.fingerprint).toBe(certFingerprint(old.certPem));
    expect(t.notes.join('\n')).toMatch(/moved the root CA key out of the SecretStore/);
    expect(await store.has('ca/root.key')).toBe(false);
    const file = join(ws, 'recovery', RECOVERY_FILES.rootKey);
    expect(new TextDecoder().decode(await decryptWithRecovery(rec.identity, readFileSync(file), file))).toBe(old.keyPem);
  });

  it('with no recipient named, creates a recovery key and says to move its identity offline', async () => {
    const t = await clusterTrust(ws, plan, env);
    const idFile = join(ws, 'recovery', RECOVERY_FILES.generatedIdentity);
    expect(existsSync(idFile)).toBe(true);
    expect(t.notes.join('\n')).toMatch(/move .*OFFLINE/);
    expect(readFileSync(join(ws, 'recovery', RECOVERY_FILES.recipient), 'utf8')).toContain(t.recoveryRecipient);
  });
});
