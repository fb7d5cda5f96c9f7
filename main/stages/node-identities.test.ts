// Node identity certificates at enrollment: one per planned node from the cluster intermediate,
// the key only encrypted at rest, reused while good, reissued when kubeCertDays comes near; the
// trust inventory lists them with serial and expiry.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { plan as planOf } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { createRecoveryKey, writeRecoveryRecipient } from '../trust/recovery';
import { verifyChain } from '../trust/ca';
import { trustInventory } from '../trust/inventory';
import { clusterWorkspace } from '../workspace';
import { ensureNodeIdentities, identitiesDue, identityDue, identityFiles, IDENTITY_PATHS, nodeIdentityFile } from './node-identities';
import { clusterTrust } from './trust';

const spec = parseSpec(TEMPLATES['lab-3'].text).spec!; // kubeCertDays 90
const plan = planOf(spec);
const DAY = 86_400_000;
const roots: string[] = [];
afterAll(() => roots.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('node identity certificates', () => {
  it('issues one per node from the intermediate, keeps the key encrypted, reuses it, reissues it before kubeCertDays', async () => {
    const root = mkdtempSync(join(tmpdir(), 'h17-ids-'));
    roots.push(root);
    const env = { KUBEDOS_WORKSPACE: root };
    const ws = clusterWorkspace(plan.cluster.name, env);
    writeRecoveryRecipient(ws, (await createRecoveryKey()).recipient);
    const issuedAt = new Date('2026-03-01T00:00:00Z');
    const t = await clusterTrust(ws, plan, env, issuedAt);
    const kubeCertDays = spec.spec.security.keyRotation.kubeCertDays;
    const args = { plan, trustDir: t.dir, store: t.store, intermediate: t.intermediate, kubeCertDays };
    expect(identitiesDue(t.dir, plan, t.intermediate.certPem, kubeCertDays, issuedAt)).toEqual(['master', 'cp-1', 'w-1']);

    const first = await ensureNodeIdentities({ ...args, now: issuedAt });
    expect(first.map((i) => [i.node, i.issued, i.why])).toEqual([
      ['master', true, 'none issued yet'],
      ['cp-1', true, 'none issued yet'],
      ['w-1', true, 'none issued yet'],
    ]);
    for (const id of first) {
      expect(await verifyChain(id.cert.certPem, [t.intermediate.certPem], t.root.certPem, new Date(issuedAt.getTime() + DAY))).toBe(true);
      expect(readFileSync(join(t.dir, nodeIdentityFile(id.node)), 'utf8')).toBe(id.cert.certPem);
    }
    // The private keys exist only as age files (0600) in the store, never in plain text in the workspace.
    const keyFiles = readdirSync(join(t.store.dir, 'nodes')).sort();
    expect(keyFiles).toEqual(['cp-1.key.age', 'master.key.age', 'w-1.key.age']);
    for (const f of keyFiles) {
      expect(statSync(join(t.store.dir, 'nodes', f)).mode & 0o077).toBe(0);
      expect(readFileSync(join(t.store.dir, 'nodes', f), 'utf8')).not.toContain('PRIVATE KEY');
    }
    expect(identitiesDue(t.dir, plan, t.intermediate.certPem, kubeCertDays, issuedAt)).toEqual([]);

    // A month later: reused as they are.
    const later = new Date(issuedAt.getTime() + 30 * DAY);
    const again = await ensureNodeIdentities({ ...args, now: later });
    expect(again.map((i) => i.issued)).toEqual([false, false, false]);
    expect(again.map((i) => i.serial)).toEqual(first.map((i) => i.serial));
    expect(again[0]!.cert.keyPem).toBe(first[0]!.cert.keyPem);

    // Within a week of kubeCertDays: due, and reissued with a new serial.
    const near = new Date(issuedAt.getTime() + (kubeCertDays - 5) * DAY);
    expect(identityDue(first[2]!.cert.certPem, t.intermediate.certPem, kubeCertDays, near)).toMatch(/due for rotation on 2026-05-30 \(security\.keyRotation\.kubeCertDays 90\)/);
    expect(identitiesDue(t.dir, plan, t.intermediate.certPem, kubeCertDays, near)).toEqual(['master', 'cp-1', 'w-1']);
    const rotated = await ensureNodeIdentities({ ...args, now: near });
    expect(rotated.every((i) => i.issued)).toBe(true);
    expect(rotated.map((i) => i.serial).filter((s) => first.some((f) => f.serial === s))).toEqual([]);

    // The trust inventory lists them as node identities with serial and expiry.
    const inv = trustInventory(ws, spec, near);
    const nodes = inv.identities.filter((i) => i.kind === 'node');
    expect(nodes.map((i) => i.file)).toEqual(['node-cp-1.crt', 'node-master.crt', 'node-w-1.crt']);
    expect(nodes.map((i) => i.serial).sort()).toEqual(rotated.map((i) => i.serial).sort());
    expect(nodes.every((i) => i.status === 'ok' && i.subject.startsWith('CN='))).toBe(true);

    // On the node: the key 0600, certificate and CA chain public.
    expect(identityFiles(rotated[0]!, 'CHAIN').map((f) => [f.path, f.mode.toString(8)])).toEqual([
      [IDENTITY_PATHS.cert, '644'],
      [IDENTITY_PATHS.key, '600'],
      [IDENTITY_PATHS.ca, '644'],
    ]);
  });

  it('a certificate from another cluster CA is reissued', async () => {
    const { createClusterIntermediate, createRootCa, issueNodeIdentity } = await import('../trust/ca');
    const now = new Date('2026-03-01T00:00:00Z');
    const a = await createClusterIntermediate(await createRootCa({ name: 'a', now }), { cluster: 'a', now });
    const b = await createClusterIntermediate(await createRootCa({ name: 'b', now }), { cluster: 'b', now });
    const cert = await issueNodeIdentity(a, { cluster: 'a', node: 'w-1', role: 'worker', now });
    expect(identityDue(cert.certPem, a.certPem, 90, now)).toBeUndefined();
    expect(identityDue(cert.certPem, b.certPem, 90, now)).toBe('issued by another cluster CA');
  });
});
