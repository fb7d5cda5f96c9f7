// Drills in the renderer: the live fold of drills.events (common/drills/live.ts), the running
// flag of the drill this workbench started, and the history read from main.
import { createStore } from 'zustand/vanilla';
import type { DrillEvent, LiveDrills, NodeDrillState } from '../../../common/drills/live';
import { EMPTY_LIVE, foldDrillEvents } from '../../../common/drills/live';
import type { DrillRecord } from '../../../common/drills/timeline';

/** The colour of each node state during a drill (Drills view and Topology). */
export const DRILL_STATE_COLOR: Record<NodeDrillState, string> = { healthy: 'green', unhealthy: 'red', fenced: 'orange', provisioning: 'blue', rejoining: 'cyan' };

/** The drill running now for this cluster, if any (the Topology view colours its nodes from it). */
export function runningDrill(s: Pick<DrillsState, 'live'>, cluster: string | undefined): DrillRecord | undefined {
  const r = s.live.current ? s.live.records[s.live.current] : undefined;
  return r && r.status === 'running' && r.cluster === cluster ? r : undefined;
}

export interface DrillsState {
  live: LiveDrills;
  /** A drill started from this window and not ended yet. */
  running: boolean;
  runError?: string;
  /** Bumped when a drill ends, so the history is read again. */
  historyNonce: number;
  ingest(events: readonly DrillEvent[]): void;
  started(): void;
  ended(r: DrillRecord | undefined, error?: string): void;
}

export const createDrillsStore = () =>
  createStore<DrillsState>()((set, get) => ({
    live: EMPTY_LIVE,
    running: false,
    historyNonce: 0,
    ingest(events) {
      set({ live: foldDrillEvents(get().live, events) });
    },
    started() {
      set({ running: true, runError: undefined });
    },
    ended(r, error) {
      const live = r ? foldDrillEvents(get().live, [{ type: 'record', record: r }]) : get().live;
      set({ running: false, live, historyNonce: get().historyNonce + 1, ...(error ? { runError: error } : {}) });
    },
  }));
export const drillsStore = createDrillsStore();
