// Where the engine keeps a cluster's state: journal, plan, builds, VM state, secrets.
// $KUBEDOS_WORKSPACE overrides the root (tests point it at a temp dir).
import { chmodSync, closeSync, constants, existsSync, fchmodSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';

export function workspaceRoot(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.KUBEDOS_WORKSPACE ?? join(homedir(), '.kubedos'));
}

export function clusterWorkspace(cluster: string, env: NodeJS.ProcessEnv = process.env): string {
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(cluster)) throw new Error(`invalid cluster name for a workspace: ${JSON.stringify(cluster)}`);
  return join(workspaceRoot(env), 'clusters', cluster);
}

/**
 * Creates `path` (and missing parents) readable by this user only: every directory this call
 * creates ends 0700 whatever the umask, and the leaf is checked to be a real directory (not a
 * link) owned by this user, then tightened to 0700. The workspace holds guest disks, TPM state and
 * keys, so nothing under it may be world-readable (security issue 16, item 1).
 */
export function makePrivateDir(path: string): string {
  const abs = resolve(path);
  const first = mkdirSync(abs, { recursive: true, mode: 0o700 });
  if (first !== undefined) {
    // mode is filtered by the umask; set it explicitly on each component this call created.
    const rel = relative(first, abs);
    let cur = first;
    chmodSync(cur, 0o700);
    for (const part of rel ? rel.split(sep) : []) {
      cur = join(cur, part);
      chmodSync(cur, 0o700);
    }
  }
  assertOwnDir(abs);
  if ((lstatSync(abs).mode & 0o777) !== 0o700) chmodSync(abs, 0o700);
  return abs;
}

/** Throws unless `path` is a directory (not a symlink) owned by this user. */
export function assertOwnDir(path: string): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink() || !st.isDirectory()) throw new Error(`${path} is not a plain directory (a symlink or file is in its place); remove it and try again`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new Error(`${path} belongs to uid ${st.uid}, not to this user (uid ${uid}); someone else created it — remove it (as root) and try again`);
}

/**
 * Writes a file only this user can read (0600 whatever the umask), never through a symlink
 * planted at `path`: written to a fresh temp file next to it (O_EXCL|O_NOFOLLOW) and renamed over.
 */
export function writePrivateFile(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    fchmodSync(fd, 0o600);
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* gone */
    }
    throw err;
  }
}

/**
 * A short private directory for Unix sockets when the workspace path is too long for one
 * (sun_path is 108 bytes): $XDG_RUNTIME_DIR/kubedos when the session has one (0700, this user's),
 * else /tmp/kubedos-<uid>, created 0700 and refused when another user made it first or it is a link.
 */
export function privateRuntimeDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && xdg.startsWith('/') && xdg.length < 40) {
    try {
      assertOwnDir(xdg);
      if ((lstatSync(xdg).mode & 0o077) === 0) return makePrivateDir(join(xdg, 'kubedos'));
    } catch {
      /* not usable: fall back to /tmp */
    }
  }
  return makePrivateDir(join('/tmp', `kubedos-${process.getuid?.() ?? 'user'}`));
}

/** The cluster's workspace, created private (0700) with its parents when missing. */
export function ensureClusterWorkspace(cluster: string, env: NodeJS.ProcessEnv = process.env): string {
  const root = workspaceRoot(env);
  if (!existsSync(root)) makePrivateDir(root);
  return makePrivateDir(clusterWorkspace(cluster, env));
}

export const WORKSPACE_LAYOUT = {
  journal: 'journal.jsonl',
  plan: 'plan.json',
  build: 'build',
  vms: 'vms',
  secrets: 'secrets',
  trust: 'trust',
  bundle: 'bundle',
  /** `kubedos upgrade`'s slot images, one run-<pid> folder per live run (main/upgrade/slot-scratch.ts). */
  upgradeScratch: 'upgrade-scratch',
} as const;

/**
 * The journal of the scoped deploy runs that create one node's plan slot (a replace-based
 * upgrade's new VM, main/deploy/start.ts DeployStart.node), relative to the cluster's workspace:
 * the cluster's own journal keeps describing its last deploy.
 */
export const nodeDeployJournal = (node: string): string => join('upgrade', `deploy-${node}.jsonl`);

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
  makePrivateDir(workspace);
  const path = join(workspace, 'deploy.lock');
  const held = activeDeploy(workspace);
  if (held) throw new Error(`another deploy of this cluster is running (pid ${held.pid}, ${held.by}, since ${held.startedAt}); wait for it or stop it first`);
  writePrivateFile(path, `${JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString(), by } satisfies DeployLock)}\n`);
  return () => {
    try {
      const lock = JSON.parse(readFileSync(path, 'utf8')) as DeployLock;
      if (lock.pid === process.pid) unlinkSync(path);
    } catch {
      /* already gone */
    }
  };
}
