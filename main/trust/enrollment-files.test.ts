import { describe, expect, it } from 'vitest';
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { agentEnrollmentFiles, enrollmentRoster, hubEnrollmentFiles, PATHS } from './enrollment-files';
import { emptyRevocationList, isRevoked, parseHubRevocations, revokeNode, unrevokeNode } from './revocation';

const p = plan(parseSpec(TEMPLATES['lab-3'].text).spec!);

describe('enrollment files and revocation list', () => {
  it('rosters every spoke with its role and planned /32s, never the hub', () => {
    const r = enrollmentRoster(p);
    expect(r.hub).toBe('master');
    expect(Object.keys(r.nodes)).toEqual(['cp-1', 'w-1']);
    expect(r.nodes['cp-1']).toEqual({ role: 'control-plane', planes: { wg1: p.nodes[1]?.planes.wg1.address, wg2: p.nodes[1]?.planes.wg2.address, wg3: p.nodes[1]?.planes.wg3.address } });
  });

  it('writes private material 0600 and public material 0644', () => {
    const files = hubEnrollmentFiles(p, { hmacKey: Buffer.alloc(32, 1), hubTls: { certPem: 'CERT', keyPem: 'KEY', fingerprint: 'sha256:ab' } });
    const mode = Object.fromEntries(files.map((f) => [f.path, f.mode]));
    expect(mode[PATHS.hmacKey]).toBe(0o600);
    expect(mode[PATHS.hubKey]).toBe(0o600);
    expect(mode[PATHS.hubCert]).toBe(0o644);
    const agent = agentEnrollmentFiles({ hubTls: { fingerprint: 'sha256:ab' }, token: 'kdt1.x.y' });
    expect(agent.find((f) => f.path === PATHS.token)?.mode).toBe(0o600);
    expect(agent.find((f) => f.path === PATHS.hubPin)?.content).toBe('sha256:ab\n');
  });

  it('keeps the revocation list sorted and idempotent', () => {
    let l = emptyRevocationList('lab-3');
    l = revokeNode(l, 'w-1', 10, 'lost');
    l = revokeNode(l, 'cp-1', 11, 'compromised');
    l = revokeNode(l, 'w-1', 12, 'again');
    expect(l.revoked.map((r) => [r.node, r.at])).toEqual([['cp-1', 11], ['w-1', 10]]);
    expect(isRevoked(l, 'w-1')).toBe(true);
    expect(isRevoked(l, 'master')).toBe(false);
    expect(unrevokeNode(l, 'w-1').revoked.map((r) => r.node)).toEqual(['cp-1']);
    expect(unrevokeNode(l, 'master')).toEqual(l);
  });

  it('reads the hub\'s revoked.json: absent or empty is the empty list, a list without its cluster takes it, anything else names the file', () => {
    expect(parseHubRevocations('', 'lab-3')).toEqual({ cluster: 'lab-3', revoked: [] });
    expect(parseHubRevocations('{}\n', 'lab-3')).toEqual({ cluster: 'lab-3', revoked: [] });
    expect(parseHubRevocations('{"revoked":[{"node":"w-1","at":5,"reason":"lost"}]}', 'lab-3')).toEqual({ cluster: 'lab-3', revoked: [{ node: 'w-1', at: 5, reason: 'lost' }] });
    expect(parseHubRevocations('{"cluster":"other","revoked":[]}', 'lab-3').cluster).toBe('other');
    expect(() => parseHubRevocations('[]', 'lab-3')).toThrow(/not a revocation list: an array, not an object/);
    expect(() => parseHubRevocations('{"revoked":', 'lab-3')).toThrow(/revoked\.json is not JSON/);
    expect(() => parseHubRevocations('{"revoked":[{"node":"w-1"}]}', 'lab-3')).toThrow(/revoked\.json is not a revocation list: revoked\.0\.at/);
  });
});
