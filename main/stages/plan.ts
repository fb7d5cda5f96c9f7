// Stage "plan": derive the deterministic plan and write it to the workspace. Safe to rerun.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { plan, planJson } from '../../common/plan/index';
import type { Plan } from '../../common/plan/index';
import type { StageDefinition } from '../pipeline/runner';
import { deployStage } from './context';

export interface PlannedCluster {
  plan: Plan;
  json: string;
}

export function planStage(planPath?: string): StageDefinition {
  return deployStage({
    name: 'plan',
    description: 'Derive the deterministic plan: addresses, VM shapes, peers, firewall',
    needs: ['validate'],
    reads: ['validate'],
    rerun: 'safe-rerun',
    // No inputs declared: always derived (pure and fast); its output is never journaled.
    async run(ctx, { validate }) {
      const p = plan(validate.spec);
      const json = planJson(p);
      p.nodes.forEach((n, i) => {
        ctx.node(n.name, 'ok', `${n.role} vmid ${n.vmid} lan ${n.lan.address}`);
        ctx.log(`${n.name.padEnd(12)} ${n.role.padEnd(13)} vmid ${n.vmid}  lan ${n.lan.address.padEnd(15)} wg1 ${n.planes.wg1.address.padEnd(18)} wg2 ${n.planes.wg2.address.padEnd(18)} wg3 ${n.planes.wg3.address}`, { node: n.name });
        ctx.progress((i + 1) / p.nodes.length, undefined, n.name);
      });
      for (const f of p.policy.flows) ctx.log(`policy: ${f.from} -> ${f.to} ${f.ports.join(', ')} allowed; everything else between planes denied`);
      if (planPath) {
        const before = existsSync(planPath) ? readFileSync(planPath, 'utf8') : undefined;
        if (before === json) {
          ctx.log(`plan unchanged (${planPath})`);
          ctx.changed(0);
        } else {
          mkdirSync(dirname(planPath), { recursive: true });
          writeFileSync(planPath, json);
          ctx.log(`plan written to ${planPath} (${json.length} bytes)${before === undefined ? '' : '; it differs from the previous plan'}`);
          ctx.changed(1);
        }
      }
      return { plan: p, json };
    },
  });
}
