// Which log lines the terminal shows (stage, node). A store rather than the terminal's own
// state, so the node strip of the Pipeline view can filter by a node with one click.
import { createStore } from 'zustand/vanilla';
import type { LogFilter } from './log-buffer';

export interface LogFilterState {
  filter: LogFilter;
  setFilter(next: LogFilter | ((previous: LogFilter) => LogFilter)): void;
}

export const createLogFilterStore = () =>
  createStore<LogFilterState>()((set, get) => ({
    filter: {},
    setFilter: (next) => set({ filter: typeof next === 'function' ? next(get().filter) : next }),
  }));
export const logFilterStore = createLogFilterStore();
