// The substrate driver for a target, built the same way for every caller (`kubedos provision`,
// the deploy stages): qemu-local keeps its VMs under spec.qemu.stateDir or <workspace>/vms;
// proxmox://HOST talks over one SSH connection that trusts a host key only when it is already
// in known_hosts or equals `acceptHostKey`. Callers own the driver and must `close()` it (the
// Proxmox driver holds that connection open; qemu-local holds nothing, its VMs keep running).
import { join, resolve } from 'node:path';
import type { Plan } from '../../common/plan/schema';
import type { ClusterSpec } from '../../common/spec/schema';
import { registerSecret } from '../exec/secrets';
import type { Target } from '../target';
import { WORKSPACE_LAYOUT } from '../workspace';
import type { SubstrateDriver } from './driver';
import { SubstrateError } from './driver';
import { ownershipTags } from './provision';
import { ProxmoxSshDriver } from './proxmox-ssh';
import type { HostService } from './qemu-local';
import { QemuLocalDriver } from './qemu-local';

export interface SubstrateForOptions {
  spec: ClusterSpec;
  plan: Plan;
  target: Target;
  /** The cluster's workspace directory (clusterWorkspace(name, env)). */
  workspace: string;
  /** Base for a relative spec.qemu.stateDir (default: process.cwd()). */
  cwd?: string;
  env: NodeJS.ProcessEnv;
  /** SHA256 fingerprint ("SHA256:…") to trust when the host is not in known_hosts yet. */
  acceptHostKey?: string;
  sshConfigPath?: string;
  knownHostsPath?: string;
  /** Asked for an encrypted key's passphrase when $KUBEDOS_SSH_PASSPHRASE is not set. */
  passphrase?: (keyPath: string) => Promise<string | undefined>;
  /** --dry-run: one connection attempt, short timeout (an unreachable host is not an error there). */
  dryRun?: boolean;
  /** Told when the host's key is not the accepted one. */
  warn?: (message: string) => void;
  /** qemu-local only: host loopback ports the guests reach through the service NIC. */
  hostServices?: HostService[];
}

/** The storage a cluster's boot images are uploaded to. */
export function imageStorage(spec: ClusterSpec, target: Target): string {
  return target.kind === 'qemu-local' ? 'local' : (spec.spec.substrate.proxmox?.isoStorage ?? 'local');
}

export function substrateFor(o: SubstrateForOptions): { driver: SubstrateDriver; storage: string } {
  const sub = o.spec.spec.substrate;
  const ownership = { tags: ownershipTags(o.plan), vmidRange: o.plan.substrate.vmidRange };
  if (o.target.kind === 'qemu-local') {
    const stateDir = sub.qemu?.stateDir ? resolve(o.cwd ?? process.cwd(), sub.qemu.stateDir) : join(o.workspace, WORKSPACE_LAYOUT.vms);
    return {
      driver: new QemuLocalDriver({ stateDir, ownership, accel: sub.qemu?.accel ?? 'auto', ...(o.hostServices ? { hostServices: o.hostServices } : {}) }),
      storage: imageStorage(o.spec, o.target),
    };
  }
  if (!o.target.host) throw new SubstrateError('no-target', 'the spec names no Proxmox host', { hint: 'pass --target proxmox://HOST (an ~/.ssh/config Host alias or a host name)' });
  const accept = o.acceptHostKey;
  const env = o.env;
  registerSecret(env.KUBEDOS_SSH_PASSPHRASE);
  const driver = new ProxmoxSshDriver({
    target: `proxmox://${o.target.host}`,
    ownership,
    ...(o.sshConfigPath ? { sshConfigPath: o.sshConfigPath } : {}),
    ...(o.knownHostsPath ? { knownHostsPath: o.knownHostsPath } : {}),
    agentSocket: env.SSH_AUTH_SOCK,
    ...(sub.proxmox?.node ? { node: sub.proxmox.node } : {}),
    ...(o.dryRun ? { reconnect: { attempts: 0, backoffMs: 0 }, readyTimeoutMs: 8000 } : {}),
    confirmHostKey: async (prompt) => {
      if (accept && accept === prompt.fingerprint) return true;
      if (accept) o.warn?.(`host key of ${prompt.host}:${prompt.port} is ${prompt.fingerprint}, not the ${accept} you accepted`);
      return false;
    },
    passphrase: async (keyPath) => {
      if (env.KUBEDOS_SSH_PASSPHRASE !== undefined) return env.KUBEDOS_SSH_PASSPHRASE;
      const given = o.passphrase ? await o.passphrase(keyPath) : undefined;
      registerSecret(given);
      return given;
    },
  });
  return { driver, storage: imageStorage(o.spec, o.target) };
}
