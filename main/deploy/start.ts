// Starting a deploy, the same way for `kubedos deploy` and the workbench: one deploy per cluster
// workspace (the deploy lock), the DAG built with the same options (plan path, journal, force),
// and one close() that releases the driver's connection and then the lock.
import { join } from 'node:path';
import type { PipelineOptions, StageDefinition } from '../pipeline/runner';
import type { DeployOptions } from '../stages/index';
import { deployCompat, deployPipeline } from '../stages/index';
import type { SpecSource } from '../stages/validate';
import { acquireDeployLock, clusterWorkspace, WORKSPACE_LAYOUT } from '../workspace';

export interface DeployStart extends Omit<DeployOptions, 'planPath' | 'workspace'> {
  cluster: string;
  source: SpecSource;
  allowDestroy: boolean;
  /** Who holds the lock, for the message another deploy gets ("kubedos deploy lab-3.yaml", "workbench"). */
  by: string;
  /** Tests replace the DAG. */
  pipelineFor?: (source: SpecSource, options: DeployOptions) => { stages: StageDefinition[]; close?: () => Promise<void> };
}

export interface PreparedDeploy {
  workspace: string;
  stages: StageDefinition[];
  /** For runPipeline; the caller adds onEvent and signal. */
  runOptions: Pick<PipelineOptions, 'name' | 'journalPath' | 'concurrency' | 'allowDestroy' | 'force' | 'compat'>;
  /** Releases the driver's connection, then the deploy lock. */
  close(): Promise<void>;
}

/** Takes the cluster's deploy lock (throws with who holds it) and builds the DAG. */
export function prepareDeploy(s: DeployStart): PreparedDeploy {
  const env = s.env ?? process.env;
  const workspace = clusterWorkspace(s.cluster, env);
  const release = acquireDeployLock(workspace, s.by);
  try {
    const { cluster: _c, source, allowDestroy, by: _by, pipelineFor, ...options } = s;
    const dag = (pipelineFor ?? deployPipeline)(source, { ...options, env, workspace, planPath: join(workspace, WORKSPACE_LAYOUT.plan) });
    return {
      workspace,
      stages: dag.stages,
      runOptions: { name: 'deploy', journalPath: join(workspace, WORKSPACE_LAYOUT.journal), concurrency: 2, allowDestroy, force: Boolean(s.force), compat: deployCompat(source.text) },
      async close() {
        try {
          await dag.close?.();
        } finally {
          release();
        }
      },
    };
  } catch (err) {
    release();
    throw err;
  }
}
