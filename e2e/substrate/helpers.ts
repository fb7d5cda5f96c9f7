// Shared setup for the substrate lab tests: the lab-3 plan, a driver against the stand-in.
import { plan } from '../../common/plan/index';
import type { Plan } from '../../common/plan/schema';
import { parseSpec } from '../../common/spec/index';
import { TEMPLATES } from '../../common/spec/templates/index';
import type { SubstrateEvent } from '../../main/substrate/driver';
import type { ProxmoxSshOptions } from '../../main/substrate/proxmox-ssh';
import { ProxmoxSshDriver } from '../../main/substrate/proxmox-ssh';
import { ownershipTags } from '../../main/substrate/provision';
import type { ProxmoxStandIn } from '../fixtures/proxmox/standin';

export function lab3Plan(): Plan {
  const parsed = parseSpec(TEMPLATES['lab-3'].text);
  if (!parsed.spec) throw new Error(`lab-3 template does not parse: ${JSON.stringify(parsed.diagnostics)}`);
  return plan(parsed.spec);
}

export function standInDriver(standin: ProxmoxStandIn, p: Plan, extra: Partial<ProxmoxSshOptions> = {}): ProxmoxSshDriver {
  return new ProxmoxSshDriver({
    target: 'proxmox://pve-standin',
    sshConfigPath: standin.sshConfig,
    knownHostsPath: standin.knownHosts,
    home: standin.dir,
    agentSocket: undefined,
    ownership: { tags: ownershipTags(p), vmidRange: p.substrate.vmidRange },
    reconnect: { attempts: 2, backoffMs: 200 },
    ...extra,
  });
}

export function eventLog(): { events: SubstrateEvent[]; onEvent: (e: SubstrateEvent) => void } {
  const events: SubstrateEvent[] = [];
  return { events, onEvent: (e) => events.push(e) };
}
