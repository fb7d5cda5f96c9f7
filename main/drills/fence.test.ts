// The fence written once (fence.ts) through a fake NodeShell: what runs on which node, in which
// order, and what each step leaves (the revocation list, the membership, the etcd role's file).
import { describe, expect, it } from 'vitest';
import { etcdMembers } from '../stages/converge';
import { etcdMemberVarsPath } from './etcd-member';
import { fakeFenceCluster, lab5Plan } from './fence-testing';
import { etcdAccess, etcdFacts, fenceEtcdMember, liftRevocation, pickHealthyPeer, rejoinEtcd, revokeAtHub } from './fence';

const p = lab5Plan();
const etcd = etcdMembers(p);
const node = (name: string) => p.nodes.find((n) => n.name === name)!;
const all = () => true;

describe('the fence, written once', () => {
  it('revokeAtHub: kubedos-enroll-hub revoke on the hub with the reason; the peers it removed (none said by an older hub)', async () => {
    const c = fakeFenceCluster(p);
    expect(await revokeAtHub(c.shell, 'master', 'w-1', 'upgrade: replaced')).toBe('revoked at the hub; plane peers removed: w-1/wg1, w-1/wg2, w-1/wg3');
    expect(c.log).toEqual(['master: /usr/lib/kubedos/backplane/kubedos-enroll-hub revoke w-1 --reason upgrade: replaced']);
    expect(c.revoked()).toEqual(['w-1']);
    const old = fakeFenceCluster(p, { hubJson: false });
    expect(await revokeAtHub(old.shell, 'master', 'w-1', 'x')).toBe('revoked at the hub; plane peers removed: none left');
  });

  it('liftRevocation: the node taken off the hub\'s list, the others kept; nothing written when it is not on it', async () => {
    const c = fakeFenceCluster(p, { revoked: ['cp-2', 'w-1'] });
    expect(await liftRevocation(c.shell, 'master', p.cluster.name, 'w-1')).toBe('w-1 taken off the revocation list for its replacement');
    expect(c.revoked()).toEqual(['cp-2']);
    expect(c.log).toHaveLength(2);
    c.log.length = 0;
    expect(await liftRevocation(c.shell, 'master', p.cluster.name, 'w-1')).toBeUndefined();
    expect(c.log).toHaveLength(1);
    expect(c.log[0]).toMatch(/^master: \/bin\/sh -c cat /);
  });

  it('etcdFacts: asked from the first member that answers; none answering: every endpoint unhealthy, nothing run', async () => {
    const c = fakeFenceCluster(p);
    const f = await etcdFacts(c.shell, etcd, (n) => n !== 'cp-1');
    expect(c.log).toEqual(['cp-2: etcdctl endpoint health -w json', 'cp-2: etcdctl member list -w json']);
    expect(f.members.map((m) => m.name)).toEqual(['cp-1', 'cp-2', 'cp-3']);
    expect(f.endpoints.every((e) => e.healthy)).toBe(true);
    const none = fakeFenceCluster(p);
    expect(await etcdFacts(none.shell, etcd, () => false)).toMatchObject({ error: 'no etcd member reachable', members: [] });
    expect(none.log).toEqual([]);
  });

  it('pickHealthyPeer: another member, healthy and answering; none: each member\'s state said, membership left as is', async () => {
    const c = fakeFenceCluster(p);
    c.unhealthy.add('cp-1');
    const f = await etcdFacts(c.shell, etcd, all);
    expect(pickHealthyPeer(etcd, 'cp-2', f, all)).toBe('cp-3');
    expect(() => pickHealthyPeer(etcd, 'cp-2', f, (n) => n !== 'cp-3')).toThrow(/^no etcd member other than cp-2 is healthy and answers through its guest agent \(cp-1 unhealthy, cp-2 healthy, cp-3 not answering\)/);
  });

  it('fenceEtcdMember then rejoinEtcd: removed on the peer, added again (not started) and recorded on the master for the etcd role', async () => {
    const c = fakeFenceCluster(p);
    const a = etcdAccess(c.shell, etcd, 'cp-1');
    expect(await fenceEtcdMember(a, node('cp-2'))).toBe('etcd member a2 (cp-2) removed on cp-1; 2 of 2 members healthy');
    expect([...c.members.keys()]).toEqual(['a1', 'a3']);
    const line = await rejoinEtcd(a, 'master', node('cp-2'));
    expect(line).toMatch(/^etcd member d0 \(cp-2, https:\/\/[0-9.]+:2380\) added on cp-1; recorded on master for the etcd role \(initial-cluster-state existing, member d0/);
    expect(c.members.get('d0')).toMatchObject({ name: 'cp-2', started: false });
    expect(c.files.get(etcdMemberVarsPath('cp-2'))).toContain('kubedos_etcd_member_id: "d0"');
    // Once: a second rejoin finds the member listed and the file as it is.
    expect(await rejoinEtcd(a, 'master', node('cp-2'))).toMatch(/already listed .*already recorded on master/);
  });
});
