// etcd from the recovery bundle's snapshot: every member gets a data directory made by
// `etcdctl snapshot restore` from the same snapshot (etcd 3.4; 3.5+ calls it etcdutl), with its
// own name and peer URL and the cluster's initial membership, then starts as a NEW cluster.
// The keys and their revision are the snapshot's. Used by the namespace lab (restore lab) and
// meant for the deployed cluster's members the same way.
export interface EtcdRestoreMember {
  name: string;
  peerUrl: string;
}

/** argv that turns `snapshot` into a data directory for `member` (the directory must not exist). */
export function etcdSnapshotRestoreArgv(o: { snapshot: string; member: EtcdRestoreMember; members: readonly EtcdRestoreMember[]; token: string; dataDir: string }): string[] {
  return [
    'etcdctl',
    'snapshot',
    'restore',
    o.snapshot,
    `--name=${o.member.name}`,
    `--initial-cluster=${o.members.map((m) => `${m.name}=${m.peerUrl}`).join(',')}`,
    `--initial-advertise-peer-urls=${o.member.peerUrl}`,
    `--initial-cluster-token=${o.token}`,
    `--data-dir=${o.dataDir}`,
  ];
}
