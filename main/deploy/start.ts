// Starting a deploy, the same way for `kubedos deploy` and the workbench: one deploy per cluster
// workspace (the deploy lock), the DAG built with the same options (plan path, journal, force),
// and one close() that releases the driver's connection and then the lock.
import { join } from 'node:path';
import type { PipelineOptions, StageDefinition } from '../pipeline/runner';
import type { DeployOptions } from '../stages/index';
import { deployCompat, deployPipeline } from '../stages/index';
import { PREBUILT_DIGEST_ENV, PREBUILT_ENV } from '../stages/prebuilt';
import type { SpecSource } from '../stages/validate';
import { acquireDeployLock, clusterWorkspace, nodeDeployJournal, WORKSPACE_LAYOUT } from '../workspace';

export interface DeployStart extends Omit<DeployOptions, 'planPath' | 'workspace'> {
  cluster: string;
  source: SpecSource;
  allowDestroy: boolean;
  /** Who holds the lock, for the message another deploy gets ("kubedos deploy lab-3.yaml", "workbench"). */
  by: string;
  /**
   * One node's plan slot from a kept, verified artifact (a replace-based upgrade's new VM): the
   * DAG scoped to that node (DeployOptions.only: it ends after enroll), the build stage verifying
   * `artifactDir` instead of building (KUBEDOS_PREBUILT_ARTIFACT, as a restore does), its own
   * journal (nodeDeployJournal: the cluster's deploy journal keeps describing the last deploy) and
   * the cluster's plan.json not written. `manifestSha256`: the signed manifest the artifact must
   * have (KUBEDOS_PREBUILT_MANIFEST_SHA256: the build the upgrade's preflight verified).
   */
  node?: { name: string; artifactDir: string; manifestSha256?: string };
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
    const { cluster: _c, source, allowDestroy, by: _by, pipelineFor, node, ...options } = s;
    // One node's slot: the kept artifact verified instead of a build, no plan.json written; else the whole cluster.
    const scope = node ? { env: { ...env, [PREBUILT_ENV]: node.artifactDir, ...(node.manifestSha256 ? { [PREBUILT_DIGEST_ENV]: node.manifestSha256 } : {}) }, only: node.name } : { env, planPath: join(workspace, WORKSPACE_LAYOUT.plan) };
    const dag = (pipelineFor ?? deployPipeline)(source, { ...options, workspace, ...scope });
    const journalPath = join(workspace, node ? nodeDeployJournal(node.name) : WORKSPACE_LAYOUT.journal);
    return {
      workspace,
      stages: dag.stages,
      runOptions: { name: node ? `deploy ${node.name}` : 'deploy', journalPath, concurrency: 2, allowDestroy, force: Boolean(s.force), compat: deployCompat(source.text) },
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
