import { describe, expect, it } from 'vitest';
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { deployVars, etcdMembers, failedTasks, parsePlayRecap, unreachableOnly } from './converge';
import { enabledList, missingUpstream } from './workload';

const LOG = `2026-11-22 03:10:01,123 p=812 u=root n=ansible | TASK [kubedos_etcd : Etcd configuration] ***
2026-11-22 03:10:02,001 p=812 u=root n=ansible | fatal: [cp-1]: FAILED! => {"changed": false, "msg": "Destination directory /etc/default does not exist"}
TASK [kubedos_prometheus : Prometheus from the darksite] ***
fatal: [master]: UNREACHABLE! => {"changed": false, "msg": "Failed to connect to the host via ssh: timeout", "unreachable": true}

PLAY RECAP *********************************************************************
cp-1                       : ok=12   changed=3    unreachable=0    failed=1    skipped=2    rescued=0    ignored=0
master                     : ok=0    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0
w-1                        : ok=20   changed=0    unreachable=0    failed=0    skipped=4    rescued=0    ignored=0
`;

describe('converge output parsing', () => {
  it('reads the PLAY RECAP per host, with or without log-file prefixes', () => {
    const r = parsePlayRecap(LOG);
    expect(r['cp-1']).toEqual({ ok: 12, changed: 3, unreachable: 0, failed: 1, skipped: 2, rescued: 0, ignored: 0 });
    expect(r.master?.unreachable).toBe(1);
    expect(r['w-1']?.changed).toBe(0);
    const prefixed = LOG.split('\n').map((l) => (l.startsWith('cp-1 ') ? `2026-11-22 03:11:00,000 p=812 u=root n=ansible | ${l}` : l)).join('\n');
    expect(parsePlayRecap(prefixed)['cp-1']?.failed).toBe(1);
    expect(parsePlayRecap('no recap here')).toEqual({});
  });

  it('names the failed task and its message per host', () => {
    expect(failedTasks(LOG)).toEqual([
      { host: 'cp-1', task: 'kubedos_etcd : Etcd configuration', message: 'Destination directory /etc/default does not exist' },
      { host: 'master', task: 'kubedos_prometheus : Prometheus from the darksite', message: 'Failed to connect to the host via ssh: timeout', unreachable: true },
    ]);
  });
});

describe('converge inputs', () => {
  const p = plan(parseSpec(TEMPLATES['lab-3'].text).spec!);
  it('etcd members come from the inventory (stacked: the control planes)', () => {
    expect(etcdMembers(p).map((n) => n.name)).toEqual(['cp-1']);
    const ref = plan(parseSpec(TEMPLATES['reference-16'].text).spec!);
    expect(etcdMembers(ref).length % 2).toBe(1);
  });
  it('keeps strict host key checking with the pinned known_hosts', () => {
    expect(deployVars()).toMatch(/StrictHostKeyChecking=yes/);
    expect(deployVars()).toMatch(/UserKnownHostsFile=\/etc\/kubedos\/ansible\/known_hosts/);
  });
  it('the workload stage knows which upstream packages a darksite lacks', () => {
    expect(missingUpstream(undefined)).toEqual(['kubeadm', 'kubelet', 'kubectl']);
    expect(missingUpstream(JSON.stringify({ packages: [{ name: 'kubelet' }, { name: 'etcd-server' }] }))).toEqual(['kubeadm', 'kubectl']);
    expect(missingUpstream(JSON.stringify({ packages: [{ name: 'kubeadm' }, { name: 'kubelet' }, { name: 'kubectl' }] }))).toEqual([]);
    // From a declared apt source: in the lock's upstream list.
    expect(missingUpstream(JSON.stringify({ packages: [{ name: 'etcd-server' }], upstream: [{ name: 'kubeadm' }, { name: 'kubelet' }] }))).toEqual(['kubectl']);
  });
  it('the workload summary lists what the spec enables: etcd even with Kubernetes off', () => {
    const lab = parseSpec(TEMPLATES['lab-3'].text).spec!;
    expect(enabledList(lab, plan(lab))).toBe('etcd, prometheus');
    const solo = parseSpec(TEMPLATES['solo-1'].text).spec!;
    expect(enabledList(solo, plan(solo))).toBe('no optional feature');
    const ref = parseSpec(TEMPLATES['reference-16'].text).spec!;
    expect(enabledList(ref, plan(ref))).toBe('etcd, kubernetes, cilium, hubble, prometheus, grafana, loki, salt, zfs');
  });
});

describe('converge when SSH could not reach a node', () => {
  const row = (o: Partial<ReturnType<typeof parsePlayRecap>[string]> = {}) => ({ ok: 1, changed: 0, unreachable: 0, failed: 0, skipped: 0, rescued: 0, ignored: 0, ...o });
  it('retries the hosts that were only unreachable, once, and nothing when a task failed', () => {
    const only = 'TASK [Gathering Facts] ***\nfatal: [master]: UNREACHABLE! => {"changed": false, "msg": "Connection timed out during banner exchange", "unreachable": true}\n';
    expect(failedTasks(only)).toEqual([{ host: 'master', task: 'Gathering Facts', message: 'Connection timed out during banner exchange', unreachable: true }]);
    expect(unreachableOnly({ master: row({ ok: 0, unreachable: 1 }), 'cp-1': row(), 'w-1': row() }, failedTasks(only))).toEqual(['master']);
    // A host unreachable in the recap without a fatal line (dropped between tasks) is retried too.
    expect(unreachableOnly({ 'w-1': row({ unreachable: 1 }), 'cp-1': row() }, [])).toEqual(['w-1']);
    // A real failure anywhere: reported, never retried.
    expect(unreachableOnly(parsePlayRecap(LOG), failedTasks(LOG))).toEqual([]);
    expect(unreachableOnly({ 'cp-1': row() }, [])).toEqual([]);
  });
});
