// The workbench's binding of the upgrade progress (main/upgrade/progress.ts): the slot record of
// the spec's cluster as `kubedos upgrade` keeps it, per node of the plan. Nothing is contacted.
import type { RequestParsed, ResultOf } from '../../common/contract/index';
import { analyse } from '../deploy/service';
import { readUpgradeProgress } from '../upgrade/progress';

export function upgradeProgress(env: NodeJS.ProcessEnv, r: RequestParsed<'upgrade.progress'>): ResultOf<'upgrade.progress'> {
  const { plan } = analyse(r.text);
  return readUpgradeProgress(plan.cluster.name, plan.nodes.map((n) => n.name), env);
}
