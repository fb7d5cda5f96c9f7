// The stages of the convergence DAG (seed 003 §12), one file each:
// validate → plan → build → provision → firstboot → backplanes → enroll → converge → workload → seal.
import { appRoot } from '../paths';
import type { Target } from '../target';
import type { StageDefinition } from '../pipeline/runner';
import { backplanesStage } from './backplanes';
import { buildStage } from './build';
import type { DeployContext } from './context';
import { newDeployContext } from './context';
import { convergeStage } from './converge';
import { enrollStage } from './enroll';
import { firstbootStage } from './firstboot';
import type { PlannedCluster } from './plan';
import { planStage } from './plan';
import { provisionStage } from './provision';
import { sealStage } from './seal';
import type { SpecSource, ValidatedSpec } from './validate';
import { validateStage } from './validate';
import { workloadStage } from './workload';

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
  specPath?: string;
  repoRoot?: string;
  acceptHostKey?: string;
  sshConfigPath?: string;
  knownHostsPath?: string;
  passphrase?: (keyPath: string) => Promise<string | undefined>;
  /** Run everything, converged or not. */
  force?: boolean;
}

export interface DeployPipeline extends PlanPipeline {
  context: DeployContext;
  /** Releases what the run holds open (the substrate driver's connection). */
  close(): Promise<void>;
}

/** The whole deploy DAG. */
export function deployPipeline(source: SpecSource, options: DeployOptions): DeployPipeline {
  const ctx = newDeployContext({
    source,
    target: options.target,
    workspace: options.workspace,
    repoRoot: options.repoRoot ?? appRoot(),
    env: options.env ?? process.env,
    ...(options.specPath ? { specPath: options.specPath } : {}),
    ...(options.acceptHostKey ? { acceptHostKey: options.acceptHostKey } : {}),
    ...(options.sshConfigPath ? { sshConfigPath: options.sshConfigPath } : {}),
    ...(options.knownHostsPath ? { knownHostsPath: options.knownHostsPath } : {}),
    ...(options.passphrase ? { passphrase: options.passphrase } : {}),
    ...(options.force ? { force: true } : {}),
  });
  const stages = [
    validateStage(source, ctx),
    planStage(ctx, ctx, options.planPath),
    buildStage(ctx),
    provisionStage(ctx),
    firstbootStage(ctx),
    backplanesStage(ctx),
    enrollStage(ctx),
    convergeStage(ctx),
    workloadStage(ctx),
    sealStage(ctx),
  ];
  return {
    stages,
    result: ctx,
    context: ctx,
    async close() {
      await ctx.driver?.close?.();
    },
  };
}
