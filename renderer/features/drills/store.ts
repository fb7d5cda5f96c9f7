// Drills in the renderer: the live fold of drills.events (common/drills/live.ts), the running
// flag of the drill this workbench started, and the history read from main.
import { createStore } from 'zustand/vanilla';
import type { DrillEvent, LiveDrills } from '../../../common/drills/live';
import { EMPTY_LIVE, foldDrillEvents } from '../../../common/drills/live';
import type { DrillRecord } from '../../../common/drills/timeline';

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
