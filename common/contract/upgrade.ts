// The workbench's upgrade progress: the foundry's slot record of the spec's cluster
// (main/upgrade/progress.ts: what `kubedos upgrade` wrote), per node of the plan. Read from the
// workspace only; neither field when no upgrade has run from here. `live`: the run of `kubedos
// upgrade` going on now (or the last one's end, or that its process is gone).
import { z } from 'zod';
import { MAX_SPEC_BYTES } from '../spec/parse';
import { UpgradeLiveReport, UpgradeProgress } from '../upgrade/progress';

export const UPGRADE_REQUESTS = {
  'upgrade.progress': { request: z.object({ text: z.string().max(MAX_SPEC_BYTES) }).strict(), result: z.object({ progress: UpgradeProgress.optional(), live: UpgradeLiveReport.optional(), error: z.string().optional() }) },
} as const;
