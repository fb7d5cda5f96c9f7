// The namespace lab as a target of the trust operations: the plan's nodes as network namespaces
// with the real backplane payload, every spoke enrolled through a real window, the window closed
// again. A throwaway copy of the plan: the workspace's trust material is not used or changed (the
// lab makes its own CA and enrollment key), and everything goes with destroy().
import type { Plan } from '../../common/plan/index';
import type { NodeShell } from '../drills/shell';
import { bringUp, makeTrust } from '../lab/backplane';
import type { LabTrust } from '../lab/backplane';
import { Lab } from '../lab/harness';
import type { TrustTarget } from './operations';

export interface LabTrustTarget extends TrustTarget {
  lab: Lab;
  trust: LabTrust;
  destroy(): void;
}

export async function createLabTrustTarget(plan: Plan, o: { log?: (line: string) => void } = {}): Promise<LabTrustTarget> {
  const lab = await Lab.create(plan, { sshd: false, ...(o.log ? { log: o.log } : {}) });
  try {
    const trust = await makeTrust(lab);
    const window = await bringUp(lab, trust, 120);
    window.process.kill('SIGTERM');
    await window.closed;
    const shell: NodeShell = {
      exec: (node, argv, x) => {
        const common = { ...(x?.timeoutMs !== undefined ? { timeoutMs: x.timeoutMs } : {}), ...(x?.input !== undefined ? { input: x.input } : {}) };
        return x?.anyExit ? lab.try(node, argv, common) : lab.exec(node, argv, common);
      },
    };
    return { kind: 'lab', plan, shell, hmacKey: trust.hmacKey, lab, trust, destroy: () => lab.destroy() };
  } catch (err) {
    lab.destroy();
    throw err;
  }
}
