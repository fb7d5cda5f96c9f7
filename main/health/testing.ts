// Test helper (never imported by production code): a reader of the hub that returns a given
// watcher report (or fails as an unreachable hub does), to drive main/health/service.ts, the
// health.now channel and the workbench without a VM.
import type { HealthWatchReport } from '../../common/drills/watcher';
import { HEALTH_WATCH_REPORT_PATH, watcherStatusOf } from '../../common/drills/watcher';
import type { HubReading } from '../drills/watcher-report';
import type { HubHealthReader } from './service';

/**
 * A reader of the hub that returns `report` as written at its `at`, read at `nowSeconds()`, with
 * the guest agents' answers to the reader's pings (`agents`); or an unreachable hub.
 */
export function injectedReader(what: { report: HealthWatchReport; nowSeconds: () => number; agents?: Record<string, boolean> } | { unreachable: string }): HubHealthReader & { calls: number } {
  const reader = Object.assign(
    async (): Promise<HubReading> => {
      reader.calls++;
      if ('unreachable' in what) return { status: { readable: false, hub: 'master', path: HEALTH_WATCH_REPORT_PATH, reason: what.unreachable } };
      return { status: watcherStatusOf(what.report.hub, HEALTH_WATCH_REPORT_PATH, JSON.stringify(what.report), what.nowSeconds()), ...(what.agents ? { agents: what.agents } : {}) };
    },
    { calls: 0 },
  );
  return reader;
}
