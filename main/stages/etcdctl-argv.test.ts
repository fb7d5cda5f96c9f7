// The engine's one etcdctl argv (converge.ts, next to ETCD_PKI). Its callers only run on VMs, so
// each one's argv is compared here with the literal it was written as before it used the builder.
import { describe, expect, it } from 'vitest';
import { drillEtcdctlArgv } from '../drills/fence';
import { etcdHealthArgv } from '../lifecycle/service';
import { etcdClientUrl, etcdctlArgv } from './converge';
import { etcdSnapshotArgv } from './seal-snapshot';

const PKI = '/etc/kubedos/pki/etcd';
const member = (wg3: string) => ({ planes: { wg3: { address: wg3 } } }) as Parameters<typeof etcdHealthArgv>[0];

describe('etcdctl argv', () => {
  it('seal: the snapshot argv is byte-identical to the one seal-snapshot.ts wrote', () => {
    expect(etcdSnapshotArgv('10.30.0.11', '/var/lib/kubedos/snap/etcd-snapshot.db')).toEqual([
      'etcdctl', '--endpoints=https://10.30.0.11:2379', `--cacert=${PKI}/ca.crt`, `--cert=${PKI}/peer.crt`, `--key=${PKI}/peer.key`, '--dial-timeout=5s', '--command-timeout=60s', 'snapshot', 'save', '/var/lib/kubedos/snap/etcd-snapshot.db',
    ]);
    // The wg3 address as the plan writes it (with its prefix) gives the same argv.
    expect(etcdSnapshotArgv('10.30.0.11/24', '/x')).toEqual(etcdSnapshotArgv('10.30.0.11', '/x'));
  });

  it('kubedos start: the member health argv is byte-identical to the one service.ts wrote', () => {
    expect(etcdHealthArgv(member('10.30.0.11/24'))).toEqual(['etcdctl', '--endpoints=https://10.30.0.11:2379', `--cacert=${PKI}/ca.crt`, `--cert=${PKI}/peer.crt`, `--key=${PKI}/peer.key`, '--dial-timeout=5s', 'endpoint', 'health']);
  });

  it('drills: every planned member as endpoint, short timeouts, byte-identical to the one cluster-target.ts wrote', () => {
    expect(drillEtcdctlArgv([member('10.30.0.11/24'), member('10.30.0.12/24'), member('10.30.0.13/24')], ['member', 'list', '-w', 'json'])).toEqual([
      'etcdctl', '--endpoints=https://10.30.0.11:2379,https://10.30.0.12:2379,https://10.30.0.13:2379', `--cacert=${PKI}/ca.crt`, `--cert=${PKI}/peer.crt`, `--key=${PKI}/peer.key`, '--dial-timeout=8s', '--command-timeout=20s', 'member', 'list', '-w', 'json',
    ]);
  });

  it('no timeouts given: no timeout flags, no command (the caller appends it)', () => {
    expect(etcdctlArgv(['10.30.0.11/24'], [])).toEqual(['etcdctl', '--endpoints=https://10.30.0.11:2379', `--cacert=${PKI}/ca.crt`, `--cert=${PKI}/peer.crt`, `--key=${PKI}/peer.key`]);
    expect(etcdClientUrl('10.30.0.12/24')).toBe('https://10.30.0.12:2379');
  });
});
