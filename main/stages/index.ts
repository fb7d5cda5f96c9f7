// The stages of the convergence DAG (seed 003 §12). validate and plan are real; the others are
// registered so the DAG is whole, and fail with "not implemented" until their issues land.
import type { Target } from '../target';
import type { StageDefinition } from '../pipeline/runner';
import { notImplementedStage } from '../pipeline/runner';
import type { PlannedCluster } from './plan';
import { planStage } from './plan';
import type { SpecSource, ValidatedSpec } from './validate';
import { validateStage } from './validate';

export interface PlanPipeline {
  stages: StageDefinition[];
  result: ValidatedSpec & PlannedCluster;
}

/** validate -> plan: what the workbench runs as the user edits, and `kubedos plan` in a pipeline. */
export function planPipeline(source: SpecSource, planPath?: string): PlanPipeline {
  const validated: ValidatedSpec = {};
  const planned: PlannedCluster = {};
  const stages = [validateStage(source, validated), planStage(validated, planned, planPath)];
  return { stages, result: Object.assign(validated, planned) };
}

export interface DeployOptions {
  planPath?: string;
  target: Target;
  workspace: string;
  env?: NodeJS.ProcessEnv;
}

/** The whole deploy DAG, with the stages of later issues registered but refusing to pretend. */
export function deployPipeline(source: SpecSource, options: DeployOptions): PlanPipeline {
  const base = planPipeline(source, options.planPath);
  base.stages.push(
    notImplementedStage('build', ['plan'], 'safe-rerun', 'Build role ISOs, qcow2 images and the darksite (cache-aware)', 'issue "Artifact foundry"'),
    notImplementedStage('provision', ['build'], 'remediates-drift', 'Create VMs from the plan through the substrate driver', 'issue "Substrates"'),
    notImplementedStage('firstboot', ['provision'], 'safe-rerun', 'Wait for the guest agent and the first-boot marker; read the hub facts', 'issue "Deploy end to end"'),
    notImplementedStage('backplanes', ['firstboot'], 'safe-rerun', 'Check WireGuard handshakes on wg1/wg2/wg3 through the agent', 'issue "Backplanes, trust and enrollment"'),
    notImplementedStage('enroll', ['backplanes'], 'safe-rerun', 'Open the enrollment window, watch nodes join, close it', 'issue "Backplanes, trust and enrollment"'),
    notImplementedStage('converge', ['enroll'], 'remediates-drift', 'Salt discovery gate, then ansible-playbook from the master over wg1', 'issue "Deploy end to end"'),
    notImplementedStage('workload', ['converge'], 'remediates-drift', 'Kubernetes HA, Cilium/Hubble, monitoring', 'issue "Deploy end to end"'),
    notImplementedStage('seal', ['workload'], 'safe-rerun', 'Write the recovery bundle', 'issue "Deploy end to end"'),
  );
  return base;
}
