// Stage "provision": the substrate holds exactly the plan's VMs, each booting its role's golden
// image (main/substrate/provision.ts decides create/keep/update/replace/destroy and refuses
// to touch what the cluster does not own). Remediates drift: a rerun on a converged substrate
// reports 0 changes and runs no mutating command.
import { join } from 'node:path';
import { sha256Hex } from '../../common/canonical';
import type { Plan } from '../../common/plan/index';
import { imageFileName, ownershipOf, owns } from '../../common/plan/ownership';
import type { BuildReport } from '../build/index';
import type { StageDefinition } from '../pipeline/runner';
import { StageError } from '../pipeline/runner';
import type { ArtifactFile, InventoryVm } from '../substrate/driver';
import { provision } from '../substrate/provision';
import type { DeployContext } from './context';
import { deployStage, ProvisionOutput, scopedNodes } from './context';
import type { PlanNode } from './guest';

/** The golden image a node boots, from the build report (hashes already known: no re-read). */
export function imageArtifactFor(plan: Plan, report: BuildReport): (node: PlanNode) => ArtifactFile | undefined {
  return (node) => {
    const out = report.outputs.find((o) => o.kind === 'image' && o.role === node.role);
    if (!out) return undefined;
    return {
      path: join(report.outDir, out.path),
      sha256: out.sha256,
      sizeBytes: out.size,
      kind: 'disk-image',
      name: imageFileName(plan.cluster.name, [plan.cluster.artifactVersion, node.role], out.sha256, 'disk-image'),
    };
  };
}

/** Pure: what is wrong with the substrate's VMs against the plan (missing, not ours, not running). */
export function provisionDrift(plan: Plan, vms: readonly InventoryVm[], nodes: readonly PlanNode[] = plan.nodes): string[] {
  const ours = ownershipOf(plan);
  const out: string[] = [];
  for (const n of nodes) {
    const vm = vms.find((v) => v.vmid === n.vmid);
    if (!vm) out.push(`${n.name} (VMID ${n.vmid}) is absent`);
    else if (!owns(vm, ours)) out.push(`VMID ${n.vmid} is not this cluster's`);
    else if (vm.status !== 'running') out.push(`${n.name} (VMID ${n.vmid}) is ${vm.status}`);
  }
  return out;
}

export function provisionStage(ctx: DeployContext): StageDefinition {
  return deployStage({
    name: 'provision',
    description: 'Create and start the plan\'s VMs through the substrate driver, each booting its role image',
    needs: ['build'],
    reads: ['validate', 'plan', 'build'],
    rerun: 'remediates-drift',
    // The VMs follow from the plan (shapes, MACs, VMIDs, tags) and the role images.
    inputs: ({ plan, build }) => ({
      plan: sha256Hex(plan.json),
      images: build.outputs.filter((o) => o.kind === 'image').map((o) => ({ role: o.role, sha256: o.sha256 })),
      target: ctx.target,
      ...(ctx.only !== undefined ? { only: ctx.only } : {}),
    }),
    output: ProvisionOutput,
    // One inventory: every planned VM present, ours and running.
    async probe(p, { validate, plan }) {
      const { driver } = ctx.substrate(validate.spec, plan.plan);
      const nodes = scopedNodes(ctx, plan.plan.nodes);
      const drift = provisionDrift(plan.plan, (await driver.inventory({ signal: p.signal })).vms, nodes);
      return drift.length ? { moved: true, reason: `the substrate moved: ${drift.slice(0, 3).join('; ')}${drift.length > 3 ? ` (+${drift.length - 3} more)` : ''}` } : { moved: false, note: `${nodes.length} VMs present and running` };
    },
    async run(s, { validate, plan: planned, build }) {
      const plan = planned.plan;
      const { driver, storage } = ctx.substrate(validate.spec, plan);
      const allowDestroy = s.allowDestroy || plan.stages.provision?.allowDestroy === true;
      const nodes = scopedNodes(ctx, plan.nodes);
      for (const n of nodes) s.node(n.name, 'running');
      let result;
      try {
        result = await provision({
          plan,
          driver,
          artifactFor: imageArtifactFor(plan, build),
          storage,
          allowDestroy,
          ...(ctx.only !== undefined ? { only: [ctx.only] } : {}),
          signal: s.signal,
          onEvent: (e) => {
            if (e.kind === 'command') s.log(`$ ${e.command}`);
            else if (e.kind === 'log') s.log(e.message, { ...(e.node ? { node: e.node } : {}), stream: e.level === 'warn' ? 'warn' : 'info' });
            else if (e.kind === 'vm') s.log(`VMID ${e.vmid}: ${e.state}`, { node: e.node });
            else if (e.kind === 'progress') s.progress(e.fraction, `${e.what}${e.message ? ` ${e.message}` : ''}`);
          },
        });
      } catch (err) {
        const e = err as Error & { node?: string };
        for (const n of nodes) s.node(n.name, e.node && e.node !== n.name ? 'skipped' : 'failed', e.message.split('\n')[0]);
        throw err;
      }
      for (const d of result.decisions) {
        s.node(d.node, 'ok', `${d.action}${d.start ? ' + start' : ''}`);
        s.log(`${d.node} (VMID ${d.vmid}): ${d.action}${d.start ? ' + start' : ''} — ${d.reasons.join('; ')}`, { node: d.node });
      }
      s.changed(result.changes);
      if (result.decisions.some((d) => d.action === 'destroy' || d.action === 'replace') && !allowDestroy) throw new StageError('internal: destructive decision without allowDestroy');
      return { summary: { stage: 'provision', changes: result.changes, notes: result.decisions.map((d) => `${d.node}: ${d.action}${d.start ? ' + start' : ''}`) } };
    },
  });
}
