// The fence written once (fence.ts) through a fake NodeShell: what runs on which node, in which
// order, and what each step leaves (the revocation list, the membership, the etcd role's file).
import { describe, expect, it } from 'vitest';
import { etcdClientUrl, etcdMembers } from '../stages/converge';
import { CommandError } from '../exec/runner';
import type { NodeShell } from './shell';
import { etcdMemberVarsPath } from './etcd-member';
import { fakeFenceCluster, lab5Plan } from './fence-testing';
import { etcdAccess, etcdctlFailure, etcdFacts, fenceEtcdMember, liftRevocation, pickHealthyPeer, rejoinEtcd, revokeAtHub } from './fence';

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

  it('etcdFacts: asked from a member other than `avoid` when another answers (that one alone when none does); the member list from its own endpoint, after the health', async () => {
    const c = fakeFenceCluster(p);
    const argvs: string[][] = [];
    const sh: NodeShell = { exec: (n, argv, o) => (argvs.push([...argv]), c.shell.exec(n, argv, o)) };
    await etcdFacts(sh, etcd, all, { avoid: 'cp-1' });
    expect(c.log).toEqual(['cp-2: etcdctl endpoint health -w json', 'cp-2: etcdctl member list -w json']);
    const endpointsOf = (argv: string[]) => argv.find((a) => a.startsWith('--endpoints='));
    expect(endpointsOf(argvs[0]!)).toBe(`--endpoints=${etcd.map((m) => etcdClientUrl(m.planes.wg3.address)).join(',')}`);
    expect(endpointsOf(argvs[1]!)).toBe(`--endpoints=${etcdClientUrl(node('cp-2').planes.wg3.address)}`);
    expect(argvs[1]).toEqual(expect.arrayContaining(['--dial-timeout=8s', '--command-timeout=20s']));
    c.log.length = 0;
    await etcdFacts(c.shell, etcd, (n) => n === 'cp-1', { avoid: 'cp-1' });
    expect(c.log).toEqual(['cp-1: etcdctl endpoint health -w json', 'cp-1: etcdctl member list -w json']);
  });

  it('etcdFacts: the membership read on a member whose endpoint answered healthy; a member list that fails says etcdctl\'s exit code and its Error line, not its JSON retry warnings; pickHealthyPeer says it', async () => {
    const c = fakeFenceCluster(p);
    c.unhealthy.add('cp-2');
    expect((await etcdFacts(c.shell, etcd, all, { avoid: 'cp-1' })).members).toHaveLength(3);
    expect(c.log).toEqual(['cp-2: etcdctl endpoint health -w json', 'cp-3: etcdctl member list -w json']);
    // cp-2 answers its guest agent, its endpoint no longer does, and the others were not healthy a moment before.
    const f = await etcdFacts({ exec: (n, argv, o) => (argv.includes('health') ? c.shell.exec(n, argv, o).then((r) => ({ ...r, stdout: '[]' })) : c.shell.exec(n, argv, o)) }, etcd, all, { avoid: 'cp-1' });
    expect(f.error).toBe('etcdctl member list on cp-2 exited 1: Error: context deadline exceeded');
    expect(() => pickHealthyPeer(etcd, 'cp-1', f, all)).toThrow('no etcd member other than cp-1 is healthy and answers through its guest agent (etcdctl member list on cp-2 exited 1: Error: context deadline exceeded)');
  });

  it('etcdctlFailure: etcd\'s Error line; else the last line that is not a JSON warning; else what there is, bounded', () => {
    const warn = '{"level":"warn","ts":"2026-12-06T14:38:26.987Z","caller":"clientv3/retry_interceptor.go:62","msg":"retrying of unary invoker failed"}';
    expect(etcdctlFailure({ exitCode: 1, stderr: `${warn}\n${warn}\nError: context deadline exceeded\n`, stdout: '' }, 'cp-2', 'member list')).toBe('etcdctl member list on cp-2 exited 1: Error: context deadline exceeded');
    expect(etcdctlFailure({ exitCode: 2, stderr: `${warn}\nconnection refused\n`, stdout: '' }, 'cp-2', 'member list')).toBe('etcdctl member list on cp-2 exited 2: connection refused');
    expect(etcdctlFailure({ exitCode: 1, stderr: warn.repeat(3), stdout: '' }, 'cp-2', 'endpoint health')).toBe(`etcdctl endpoint health on cp-2 exited 1: ${warn.repeat(3).slice(0, 200)}`);
    expect(etcdctlFailure({ exitCode: null, stderr: '', stdout: '' }, 'cp-3', 'member list')).toBe('etcdctl member list on cp-3 exited by a signal: no output');
  });

  it('pickHealthyPeer: another member, healthy and answering; none: each member\'s state said, membership left as is', async () => {
    const c = fakeFenceCluster(p);
    c.unhealthy.add('cp-1');
    const f = await etcdFacts(c.shell, etcd, all);
    expect(pickHealthyPeer(etcd, 'cp-2', f, all)).toBe('cp-3');
    expect(() => pickHealthyPeer(etcd, 'cp-2', f, (n) => n !== 'cp-3')).toThrow(/^no etcd member other than cp-2 is healthy and answers through its guest agent \(cp-1 unhealthy, cp-2 healthy, cp-3 not answering\)/);
  });

  it('a refused member remove says etcd\'s Error line, not the warning etcdctl logged after it; the whole stderr tail kept', async () => {
    const stderr = 'Error: etcdserver: unhealthy cluster\n{"level":"warn","msg":"retrying of unary invoker failed"}';
    const c = fakeFenceCluster(p, { removeFails: stderr });
    const err = await fenceEtcdMember(etcdAccess(c.shell, etcd, 'cp-1'), node('cp-2')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).message).toBe("cp-1: etcdctl member remove a2 (remove cp-2's member) exited 1: Error: etcdserver: unhealthy cluster");
    expect((err as CommandError).stderrTail).toBe('Error: etcdserver: unhealthy cluster | {"level":"warn","msg":"retrying of unary invoker failed"}');
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
