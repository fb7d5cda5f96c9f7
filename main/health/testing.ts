// Test helper (never imported by production code): a reader of the hub that returns a given
// watcher report (or fails as an unreachable hub does), to drive main/health/service.ts, the
// health.now channel and the workbench without a VM.
import type { HealthWatchReport } from '../../common/drills/watcher';
import { HEALTH_WATCH_REPORT_PATH, watcherStatusOf } from '../../common/drills/watcher';
import type { HubHealthReader } from './service';

/** A reader of the hub that returns `report` as written at its `at`, read at `nowSeconds()`; or an unreachable hub. */
export function injectedReader(what: { report: HealthWatchReport; nowSeconds: () => number } | { unreachable: string }): HubHealthReader & { calls: number } {
  const reader = Object.assign(
    async (): Promise<ReturnType<typeof watcherStatusOf>> => {
      reader.calls++;
      if ('unreachable' in what) return { readable: false, hub: 'master', path: HEALTH_WATCH_REPORT_PATH, reason: what.unreachable };
      return watcherStatusOf(what.report.hub, HEALTH_WATCH_REPORT_PATH, JSON.stringify(what.report), what.nowSeconds());
    },
    { calls: 0 },
  );
  return reader;
}
