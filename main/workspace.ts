// Where the engine keeps a cluster's state: journal, plan, builds, VM state, secrets.
// $KUBEDOS_WORKSPACE overrides the root (tests point it at a temp dir).
import { existsSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
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

export interface DeployLock {
  pid: number;
  startedAt: string;
  by: string;
}

/** Whether a process with this pid exists (EPERM: it does, owned by someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The deploy running against this cluster workspace right now, if any (a stale lock is ignored). */
export function activeDeploy(workspace: string): DeployLock | undefined {
  const path = join(workspace, 'deploy.lock');
  if (!existsSync(path)) return undefined;
  try {
    const lock = JSON.parse(readFileSync(path, 'utf8')) as DeployLock;
    return Number.isInteger(lock.pid) && processAlive(lock.pid) ? lock : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One deploy per cluster workspace at a time (the CLI and the workbench share it). Returns the
 * release function; throws with who holds it when another live process does.
 */
export function acquireDeployLock(workspace: string, by: string): () => void {
  mkdirSync(workspace, { recursive: true });
  const path = join(workspace, 'deploy.lock');
  const held = activeDeploy(workspace);
  if (held) throw new Error(`another deploy of this cluster is running (pid ${held.pid}, ${held.by}, since ${held.startedAt}); wait for it or stop it first`);
  const tmp = `${path}.${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString(), by } satisfies DeployLock)}\n`);
  renameSync(tmp, path);
  return () => {
    try {
      const lock = JSON.parse(readFileSync(path, 'utf8')) as DeployLock;
      if (lock.pid === process.pid) unlinkSync(path);
    } catch {
      /* already gone */
    }
  };
}
