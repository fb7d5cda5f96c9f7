// Where `kubedos upgrade` cuts its slot images (docs/upgrades.md, "kubedos upgrade"): a private
// folder of the run in the cluster's workspace, <workspace>/upgrade-scratch/run-<pid> (0700, as
// the rest of the workspace), not the system's temporary directory (often a RAM disk, and a slot
// image is the size of a root slot, 2 GiB, per role and slot). The folder goes with the run:
// close() on the command's way out, and a process 'exit' hook for the ways out that skip it (a
// second Ctrl-C calls process.exit, an uncaught error). Only SIGKILL or a power cut leaves one
// behind: the next run removes every run-<pid> folder whose process is gone (a live one, another
// upgrade of the same cluster running now, is kept).
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { makePrivateDir, processAlive, WORKSPACE_LAYOUT } from '../workspace';

export interface SlotScratch {
  /** This run's private folder: the tmpParent of cutSlotImage. */
  readonly dir: string;
  /** The folders of dead runs removed when this one opened (names, sorted). */
  readonly removedStale: string[];
  /** Removes this run's folder and its exit hook (idempotent). */
  close(): void;
}

const RUN = /^run-(\d+)$/;

/** Opens this run's slot image folder in `workspace` (the cluster's), removing dead runs' folders first. */
export function openSlotScratch(workspace: string, pid = process.pid): SlotScratch {
  const parent = makePrivateDir(join(workspace, WORKSPACE_LAYOUT.upgradeScratch));
  const removedStale: string[] = [];
  for (const name of readdirSync(parent).sort()) {
    const owner = Number(RUN.exec(name)?.[1]);
    if (!owner || owner === pid || processAlive(owner)) continue;
    rmSync(join(parent, name), { recursive: true, force: true });
    removedStale.push(name);
  }
  const dir = makePrivateDir(join(parent, `run-${pid}`));
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  process.once('exit', remove);
  let open = true;
  return {
    dir,
    removedStale,
    close() {
      if (!open) return;
      open = false;
      process.off('exit', remove);
      remove();
    },
  };
}
