import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { certFingerprint, createClusterIntermediate, createRootCa, issueHubTlsCert, issueNodeIdentity, verifyChain } from './ca';

const now = new Date('2026-01-01T00:00:00Z');

describe('bootstrap trust', () => {
  it('chains node identities and the hub certificate through the cluster intermediate to the offline root', async () => {
    const root = await createRootCa({ name: 'lab-3', now });
    const ca = await createClusterIntermediate(root, { cluster: 'lab-3', now });
    const node = await issueNodeIdentity(ca, { cluster: 'lab-3', node: 'cp-1', role: 'control-plane', fqdn: 'cp-1.lab-3.kubedos.internal', now });
    const hub = await issueHubTlsCert(ca, { cluster: 'lab-3', hub: 'master', lanAddress: '10.110.0.16', now });
    const at = new Date(now.getTime() + 86_400_000);
    expect(await verifyChain(node.certPem, [ca.certPem], root.certPem, at)).toBe(true);
    expect(await verifyChain(hub.certPem, [ca.certPem], root.certPem, at)).toBe(true);

    const x = new X509Certificate(node.certPem);
    expect(x.subject).toContain('CN=cp-1');
    expect(x.subject).toContain('O=control-plane');
    expect(x.subjectAltName).toContain('cp-1.lab-3.kubedos.internal');
    expect(x.ca).toBe(false);
    expect(new X509Certificate(ca.certPem).ca).toBe(true);
    expect(new X509Certificate(hub.certPem).subjectAltName).toContain('IP Address:10.110.0.16');
    expect(x.checkPrivateKey((await import('node:crypto')).createPrivateKey(node.keyPem))).toBe(true);
    expect(hub.fingerprint).toBe(`sha256:${new X509Certificate(hub.certPem).fingerprint256.replace(/:/g, '').toLowerCase()}`);
    expect(certFingerprint(hub.certPem)).toBe(hub.fingerprint);
  });

  it('rejects a chain through another cluster\'s intermediate and an expired certificate', async () => {
    const root = await createRootCa({ name: 'a', now });
    const otherRoot = await createRootCa({ name: 'b', now });
    const ca = await createClusterIntermediate(root, { cluster: 'a', now });
    const foreign = await createClusterIntermediate(otherRoot, { cluster: 'a', now });
    const leaf = await issueNodeIdentity(foreign, { cluster: 'a', node: 'n', role: 'worker', now, days: 1 });
    expect(await verifyChain(leaf.certPem, [ca.certPem], root.certPem, now)).toBe(false);
    const ok = await issueNodeIdentity(ca, { cluster: 'a', node: 'n', role: 'worker', now, days: 1 });
    expect(await verifyChain(ok.certPem, [ca.certPem], root.certPem, new Date(now.getTime() + 3 * 86_400_000))).toBe(false);
  });
});
