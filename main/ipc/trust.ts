// The workbench's binding of the trust service (main/trust/service.ts): the same inventory as
// `kubedos trust list` and the same checks and lab run as `kubedos trust revoke|rotate|window --lab`,
// one operation at a time.
import type { RequestParsed, ResultOf } from '../../common/contract/index';
import type { TrustOpReport } from '../../common/trust/operations';
import { analyse, DeployRequestError } from '../deploy/service';
import { trustInventory } from '../trust/inventory';
import { TrustOperationError } from '../trust/operations';
import { preflightTrustOperation, runTrustOperationOnLab } from '../trust/service';
import { clusterWorkspace } from '../workspace';

export interface TrustBinding {
  env: NodeJS.ProcessEnv;
  running?: Promise<TrustOpReport>;
}

export function trustInventoryOf(b: TrustBinding, r: RequestParsed<'trust.inventory'>): ResultOf<'trust.inventory'> {
  const { spec } = analyse(r.text, { completeness: false });
  return trustInventory(clusterWorkspace(spec.metadata.name, b.env), spec);
}

export async function trustRun(b: TrustBinding, r: RequestParsed<'trust.run'>): Promise<TrustOpReport> {
  if (b.running) throw new DeployRequestError('trust.busy', 'a trust operation is already running in this workbench', 'wait for it to end');
  const { plan: p } = analyse(r.text, { completeness: false });
  const refused = preflightTrustOperation(p, r.operation, { workspace: clusterWorkspace(p.cluster.name, b.env), lab: r.lab });
  if (refused) throw new DeployRequestError('trust.refused', refused, r.lab ? 'pick another node' : 'try it on the namespace lab, or from the command line: kubedos trust --help');
  const run = runTrustOperationOnLab(p, r.operation);
  b.running = run;
  try {
    return await run;
  } catch (err) {
    if (err instanceof TrustOperationError) throw new DeployRequestError('trust.failed', err.message, err.node ? `on ${err.node}` : undefined);
    throw err;
  } finally {
    b.running = undefined;
  }
}
