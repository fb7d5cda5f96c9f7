// Shell state: which view is shown and the connection to main.
import { createStore } from 'zustand/vanilla';
import type { AppInfo } from '../../common/contract/index';

export const VIEWS = ['spec', 'topology', 'wiring', 'pipeline', 'artifacts', 'drills', 'deploy', 'recovery'] as const;
export type ViewName = (typeof VIEWS)[number];

export interface ShellState {
  view: ViewName;
  connection: 'connecting' | 'ready' | 'failed' | 'closed';
  connectionError?: string;
  appInfo?: AppInfo;
  setView(view: ViewName): void;
  connected(info: AppInfo): void;
  failed(message: string): void;
  closed(): void;
}

export const createShellStore = () =>
  createStore<ShellState>()((set) => ({
    view: 'spec',
    connection: 'connecting',
    setView: (view) => set({ view }),
    connected: (appInfo) => set({ connection: 'ready', appInfo, connectionError: undefined }),
    failed: (message) => set({ connection: 'failed', connectionError: message }),
    closed: () => set({ connection: 'closed' }),
  }));
export const shellStore = createShellStore();
