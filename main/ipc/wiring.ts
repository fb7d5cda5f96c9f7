// The workbench's binding of the wiring check (main/wiring/service.ts): the last recorded check of
// the spec's cluster, and "check now" — the same engine call as `kubedos wiring check SPEC`,
// refused with the journal's words when the cluster was never deployed or is stopped, one check
// at a time.
import type { RequestParsed, ResultOf } from '../../common/contract/index';
import { DeployRequestError, analyse } from '../deploy/service';
import { clusterStateRefusal } from '../drills/service';
import type { LifecycleRequest } from '../lifecycle/service';
import type { WiringRun } from '../wiring/service';
import { readLastCheck, runClusterWiringCheck, WiringCheckRefused } from '../wiring/service';

export interface WiringBinding {
  env: NodeJS.ProcessEnv;
  sshConfigPath: string;
  knownHostsPath: string;
  running?: Promise<unknown>;
  /** Tests inject the run (a fake cluster); default runClusterWiringCheck. */
  runner?: (request: LifecycleRequest) => Promise<WiringRun>;
}

export function wiringLastCheck(b: WiringBinding, r: RequestParsed<'wiring.lastCheck'>): ResultOf<'wiring.lastCheck'> {
  return readLastCheck(analyse(r.text).plan.cluster.name, b.env);
}

export async function wiringCheck(b: WiringBinding, r: RequestParsed<'wiring.check'>): Promise<ResultOf<'wiring.check'>> {
  if (b.running) throw new DeployRequestError('wiring.busy', 'a wiring check is already running in this workbench', 'wait for it to end');
  const why = clusterStateRefusal(r.text, b.env, 'SPEC', { action: 'wiring check' });
  if (why !== undefined) throw new DeployRequestError('wiring.refused', `refused: ${why}; nothing was probed`, 'deploy or start the cluster first');
  const request: LifecycleRequest = { specText: r.text, target: r.target, env: b.env, by: 'workbench wiring check', sshConfigPath: b.sshConfigPath, knownHostsPath: b.knownHostsPath };
  const run = (b.runner ?? ((q) => runClusterWiringCheck(q)))(request);
  b.running = run;
  try {
    return (await run).record;
  } catch (err) {
    if (err instanceof WiringCheckRefused) throw new DeployRequestError('wiring.refused', err.message, 'wait for the other operation to finish');
    throw new DeployRequestError('wiring.failed', `the wiring check could not finish: ${(err as Error).message}`, 'fix what the message names, then check again; nothing was recorded');
  } finally {
    b.running = undefined;
  }
}
