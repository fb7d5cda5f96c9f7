// Shared paths and helpers of the build lab suite: one workspace under e2e/output (git-ignored);
// the artifact cache, keys and darksite lock are shared with every suite that builds lab-3
// (e2e/shared-build.ts), so one CI run builds lab-3 once.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TEMPLATES } from '../../common/spec/index';
import { offerSharedBuildInputs, sharedBuildEnv, takeSharedBuildInputs } from '../shared-build';

export const REPO = resolve(__dirname, '../..');
export const LAB = join(REPO, 'e2e/output/build-lab');
export const SPEC = join(LAB, 'lab-3.yaml');
export const OUT = join(LAB, 'build');

export const CACHE = sharedBuildEnv().KUBEDOS_CACHE;

export function labEnv(): NodeJS.ProcessEnv {
  takeSharedBuildInputs(join(LAB, 'workspace'), 'lab-3');
  const env: NodeJS.ProcessEnv = { ...process.env, KUBEDOS_WORKSPACE: join(LAB, 'workspace'), ...sharedBuildEnv() };
  delete env.SOURCE_DATE_EPOCH;
  return env;
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('the build lab suite needs root (debootstrap, chroot); run it as root like CI does');
}

export function ensureSpec(): void {
  mkdirSync(LAB, { recursive: true });
  if (!existsSync(SPEC)) writeFileSync(SPEC, TEMPLATES['lab-3'].text);
}

export interface CliRun {
  status: number;
  stdout: string;
  stderr: string;
}

export function kubedos(args: string[], env: NodeJS.ProcessEnv = labEnv(), timeoutMs = 20 * 60_000): CliRun {
  const r = spawnSync(process.execPath, [join(REPO, 'bin/kubedos.mjs'), ...args], { cwd: LAB, env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  if (env.KUBEDOS_WORKSPACE) offerSharedBuildInputs(env.KUBEDOS_WORKSPACE, 'lab-3');
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function sha256sum(file: string): string {
  return execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0]!;
}
