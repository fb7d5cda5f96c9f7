// Where the engine keeps a cluster's state: journal, plan, builds, VM state, secrets.
// $KUBEDOS_WORKSPACE overrides the root (tests point it at a temp dir).
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export function workspaceRoot(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.KUBEDOS_WORKSPACE ?? join(homedir(), '.kubedos'));
}

export function clusterWorkspace(cluster: string, env: NodeJS.ProcessEnv = process.env): string {
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(cluster)) throw new Error(`invalid cluster name for a workspace: ${JSON.stringify(cluster)}`);
  return join(workspaceRoot(env), 'clusters', cluster);
}

export const WORKSPACE_LAYOUT = {
  journal: 'journal.jsonl',
  plan: 'plan.json',
  build: 'build',
  vms: 'vms',
  secrets: 'secrets',
  trust: 'trust',
  bundle: 'bundle',
} as const;
