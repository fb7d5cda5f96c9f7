// The spec being edited: text, where it lives, whether it is saved, and where to jump.
import { createStore } from 'zustand/vanilla';

export interface SpecState {
  text: string;
  /** Text as last opened, saved or loaded from a template; dirty = text differs. */
  savedText: string;
  path?: string;
  /** Shown when there is no path: "reference-16 (template)". */
  origin: string;
  /** Bumped to ask the editor to move the cursor (problems list). */
  reveal?: { line: number; column: number; nonce: number };
  /** Bumped when text is replaced from outside the editor (open, template). */
  loadNonce: number;
  setText(text: string): void;
  load(file: { text: string; path?: string; origin: string }): void;
  saved(path: string): void;
  revealAt(line: number, column: number): void;
}

export const isDirty = (s: Pick<SpecState, 'text' | 'savedText'>): boolean => s.text !== s.savedText;

export const createSpecStore = () =>
  createStore<SpecState>()((set, get) => ({
    text: '',
    savedText: '',
    origin: 'untitled',
    loadNonce: 0,
    setText: (text) => set({ text }),
    load: ({ text, path, origin }) => set({ text, savedText: text, path, origin, loadNonce: get().loadNonce + 1, reveal: undefined }),
    saved: (path) => set({ path, savedText: get().text, origin: path }),
    revealAt: (line, column) => set({ reveal: { line, column, nonce: (get().reveal?.nonce ?? 0) + 1 } }),
  }));
export const specStore = createSpecStore();
