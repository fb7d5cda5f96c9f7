// What the upgrade VM test (upgrade-vm.slow.test.ts) leaves for bench/upgrade.bench.ts: per node,
// the seconds from its first event line of `kubedos upgrade` (or `--rollback`) to its last.
import { join, resolve } from 'node:path';
import { z } from 'zod';

export const UPGRADE_LAB = join(resolve(import.meta.dirname, '../..'), 'e2e/output/upgrade-lab');
export const UPGRADE_BENCH_FILE = join(UPGRADE_LAB, 'bench.json');

const Seconds = z.record(z.string(), z.number().nonnegative());
export const UpgradeBench = z
  .object({
    cluster: z.string(),
    from: z.string(),
    to: z.string(),
    upgrade: Seconds,
    rollback: Seconds,
    upgradeTotalS: z.number().nonnegative().optional(),
    rollbackTotalS: z.number().nonnegative().optional(),
  })
  .strict();
export type UpgradeBench = z.infer<typeof UpgradeBench>;
