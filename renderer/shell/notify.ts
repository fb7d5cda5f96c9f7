// Short messages at the bottom of the window (saved, errors with their hint).
import { createStore } from 'zustand/vanilla';

export interface Notice {
  id: number;
  kind: 'info' | 'error';
  title: string;
  message?: string;
}

let nextId = 1;

export const noticeStore = createStore<{ notices: Notice[]; push(n: Omit<Notice, 'id'>): void; dismiss(id: number): void }>()((set, get) => ({
  notices: [],
  push(n) {
    const id = nextId++;
    set({ notices: [...get().notices.slice(-3), { ...n, id }] });
    if (n.kind === 'info') setTimeout(() => get().dismiss(id), 4000);
  },
  dismiss: (id) => set({ notices: get().notices.filter((x) => x.id !== id) }),
}));

export function notifyError(title: string, err: unknown): void {
  const e = err as Error & { hint?: string };
  noticeStore.getState().push({ kind: 'error', title, message: `${e.message ?? String(err)}${e.hint ? ` — ${e.hint}` : ''}` });
}
