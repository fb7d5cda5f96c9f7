// One build per lab run: every suite that builds lab-3 (build, iso-boot, image-boot, both
// deploys) uses the same artifact cache, the same age identity, the same build keys and the same
// darksite lock, so whichever suite runs first builds and the others take cache hits. Each suite
// keeps its own workspace (journal, VM state, trust); only build inputs are shared, by copying
// (never by links: the engine refuses to follow them into secret folders).
import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const SHARED_BUILD = resolve(__dirname, 'output/shared-build');
const CACHE = join(SHARED_BUILD, 'cache');
/** The workspace's age identity (opens the SecretStore), and per cluster: secrets/build
 * (darksite, signing and ops keys) and the darksite lock. */
const SHARED_PARTS = (cluster: string): string[] => ['age-identity.txt', `clusters/${cluster}/secrets/build`, `clusters/${cluster}/darksite.lock.json`];

/** Environment that points a workspace at the shared artifact cache. */
export function sharedBuildEnv(): { KUBEDOS_CACHE: string } {
  mkdirSync(SHARED_BUILD, { recursive: true, mode: 0o700 });
  return { KUBEDOS_CACHE: CACHE };
}

/** Copy what `to` does not have yet (the first suite to build seeds it; later ones take it). */
function copyMissing(fromRoot: string, toRoot: string, cluster: string): void {
  for (const part of SHARED_PARTS(cluster)) {
    const from = join(fromRoot, part);
    const to = join(toRoot, part);
    if (existsSync(from) && !existsSync(to)) {
      mkdirSync(join(to, '..'), { recursive: true, mode: 0o700 });
      cpSync(from, to, { recursive: true, preserveTimestamps: true });
    }
  }
}

/** Before a suite's first build: take the shared keys and lock of `cluster` into its workspace. */
export function takeSharedBuildInputs(workspace: string, cluster: string): void {
  copyMissing(SHARED_BUILD, workspace, cluster);
}

/** After a suite's build: offer its keys and lock to the suites that come after it. */
export function offerSharedBuildInputs(workspace: string, cluster: string): void {
  copyMissing(workspace, SHARED_BUILD, cluster);
}
