// The etcd snapshot the seal puts in the recovery bundle (encrypted to the recovery recipient):
// `etcdctl snapshot save` on the first etcd member, through the guest agent, then the file read
// back and removed from the node. A cluster without etcd members or without a converged etcd
// gives no snapshot, said in the seal's notes: the bundle is still complete for the identity.
import type { Plan } from '../../common/plan/index';
import type { SubstrateDriver } from '../substrate/driver';
import { ETCD_PKI, etcdctlArgv, etcdMembers } from './converge';
import { guestReadMaybe, guestRun } from './guest';

export type EtcdSnapshotResult = { node: string; data: Buffer } | { skipped: string };

const SNAP_DIR = '/var/lib/kubedos/seal';
const SNAP_FILE = `${SNAP_DIR}/etcd-snapshot.db`;

/** etcdctl argv for a member's snapshot (TLS with the member's peer certificate, as kubedos start checks health). */
export function etcdSnapshotArgv(wg3: string, path: string): string[] {
  return etcdctlArgv([wg3], ['snapshot', 'save', path], { dial: '5s', command: '60s' });
}

export async function takeEtcdSnapshot(driver: SubstrateDriver, plan: Plan, signal?: AbortSignal): Promise<EtcdSnapshotResult> {
  const members = etcdMembers(plan);
  const n = members[0];
  if (!n) return { skipped: 'the plan has no etcd members' };
  const g = { driver, node: n, ...(signal ? { signal } : {}) };
  try {
    const ca = await driver.guestExec(n.vmid, ['test', '-f', `${ETCD_PKI}/ca.crt`], { timeoutS: 20, ...(signal ? { signal } : {}) });
    if (ca.exitCode !== 0) return { skipped: `etcd is not converged on ${n.name} (no ${ETCD_PKI}/ca.crt)` };
    await guestRun(g, ['install', '-d', '-m', '0700', SNAP_DIR], { what: 'make the snapshot folder' });
    await guestRun(g, etcdSnapshotArgv(n.planes.wg3.address, SNAP_FILE), { timeoutS: 120, what: 'etcdctl snapshot save' });
    const data = await guestReadMaybe(g, SNAP_FILE);
    await guestRun(g, ['rm', '-f', SNAP_FILE], { what: 'remove the snapshot from the node' }).catch(() => undefined);
    if (!data?.length) return { skipped: `the snapshot ${SNAP_FILE} on ${n.name} could not be read back` };
    return { node: n.name, data };
  } catch (err) {
    if (signal?.aborted) throw err;
    return { skipped: `no etcd snapshot from ${n.name}: ${(err as Error).message.split('\n')[0]}` };
  }
}
