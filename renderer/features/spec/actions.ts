// Spec file actions over the contract, with the unsaved-changes guard.
import { createStore } from 'zustand/vanilla';
import { api } from '../../shell/api';
import { noticeStore, notifyError } from '../../shell/notify';
import { shellStore } from '../../shell/store';
import { isDirty, specStore } from './store';

/** Dialog state of the spec view: discard confirmation, open and save-as pickers. */
export interface SpecDialogs {
  confirm?: { title: string; proceed: () => void };
  open: boolean;
  saveAs: boolean;
  templates: boolean;
  set(p: Partial<Omit<SpecDialogs, 'set'>>): void;
}
export const specDialogs = createStore<SpecDialogs>()((set) => ({ open: false, saveAs: false, templates: false, set: (p) => set(p) }));

/** Runs `action` now, or after the user agreed to drop unsaved changes. */
export function guardUnsaved(what: string, action: () => void): void {
  if (!isDirty(specStore.getState())) return action();
  specDialogs.getState().set({ confirm: { title: `Discard unsaved changes and ${what}?`, proceed: action } });
}

export async function loadTemplate(name: string): Promise<void> {
  try {
    const t = await api().invoke('spec.template', { name });
    specStore.getState().load({ text: t.text, origin: `${t.name} (template, not saved)` });
    shellStore.getState().setView('spec');
  } catch (err) {
    notifyError(`Could not load template ${name}`, err);
  }
}

export async function openSpec(path?: string): Promise<boolean> {
  try {
    const file = await api().invoke('spec.open', path === undefined ? {} : { path });
    if (!file) return false;
    specStore.getState().load({ text: file.text, path: file.path, origin: file.path });
    return true;
  } catch (err) {
    notifyError('Could not open the spec', err);
    return false;
  }
}

export async function saveSpec(path?: string): Promise<boolean> {
  const s = specStore.getState();
  const target = path ?? s.path;
  if (target === undefined) {
    if (shellStore.getState().appInfo?.nativeDialogs) return saveVia(undefined);
    specDialogs.getState().set({ saveAs: true });
    return false;
  }
  return saveVia(target);
}

async function saveVia(path: string | undefined): Promise<boolean> {
  const text = specStore.getState().text;
  try {
    const r = await api().invoke('spec.save', path === undefined ? { text } : { path, text });
    if (!r) return false;
    // Only what was written counts as saved, even if the user typed meanwhile.
    specStore.setState({ path: r.path, origin: r.path, savedText: text });
    noticeStore.getState().push({ kind: 'info', title: 'Saved', message: `${r.path} (${r.bytes} bytes)` });
    return true;
  } catch (err) {
    notifyError('Could not save the spec', err);
    return false;
  }
}

export function requestOpen(): void {
  guardUnsaved('open another spec', () => {
    if (shellStore.getState().appInfo?.nativeDialogs) void openSpec();
    else specDialogs.getState().set({ open: true });
  });
}

export function requestSaveAs(): void {
  if (shellStore.getState().appInfo?.nativeDialogs) void saveVia(undefined);
  else specDialogs.getState().set({ saveAs: true });
}

export function requestTemplate(): void {
  specDialogs.getState().set({ templates: true });
}
