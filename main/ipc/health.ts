// The workbench's binding of "cluster health now" (main/health/service.ts): the same engine call
// as `kubedos status SPEC --health`, through the user's SSH configuration, bounded in time; reads
// that overlap (two windows, the topology's timer and its Refresh) share the one in flight.
import type { RequestParsed, ResultOf } from '../../common/contract/index';
import type { HubHealthReader } from '../health/service';
import { sharedClusterHealthNow } from '../health/service';

export interface HealthBinding {
  env: NodeJS.ProcessEnv;
  sshConfigPath: string;
  knownHostsPath: string;
  /** Bounds one reading (the hub may not answer). */
  bounded: () => AbortSignal;
  /** Tests inject the reader of the hub's report; default: through the target's guest agent. */
  reader?: HubHealthReader;
}

/** How long one read of the hub's report may take before the answer is "the hub did not answer". */
export const HEALTH_READ_TIMEOUT_MS = 15_000;

export async function healthNow(b: HealthBinding, r: RequestParsed<'health.now'>): Promise<ResultOf<'health.now'>> {
  const request = { specText: r.text, target: r.target, env: b.env, sshConfigPath: b.sshConfigPath, knownHostsPath: b.knownHostsPath, signal: b.bounded(), timeoutMs: HEALTH_READ_TIMEOUT_MS };
  return (await sharedClusterHealthNow(request, b.reader ? { reader: b.reader } : {})).live;
}
