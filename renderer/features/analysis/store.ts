// What the spec text means right now: diagnostics from parseSpec and, when valid, the plan.
// Computed in the renderer from common/ (pure), so topology and wiring follow every edit.
import { createStore } from 'zustand/vanilla';
import type { Plan } from '../../../common/plan/index';
import { plan } from '../../../common/plan/index';
import type { ClusterSpec, Diagnostic } from '../../../common/spec/index';
import { parseSpec } from '../../../common/spec/index';

export interface AnalysisState {
  /** The text these results belong to. */
  text?: string;
  diagnostics: Diagnostic[];
  spec?: ClusterSpec;
  /** The last valid plan; kept while the text is invalid so views don't go blank. */
  plan?: Plan;
  planIsStale: boolean;
  planError?: string;
  analyse(text: string): void;
}

export const createAnalysisStore = () =>
  createStore<AnalysisState>()((set, get) => ({
    diagnostics: [],
    planIsStale: false,
    analyse(text) {
      if (text === get().text) return;
      const parsed = parseSpec(text);
      if (!parsed.spec) {
        set({ text, diagnostics: parsed.diagnostics, spec: undefined, planIsStale: get().plan !== undefined, planError: undefined });
        return;
      }
      try {
        set({ text, diagnostics: parsed.diagnostics, spec: parsed.spec, plan: plan(parsed.spec), planIsStale: false, planError: undefined });
      } catch (err) {
        set({ text, diagnostics: parsed.diagnostics, spec: parsed.spec, planIsStale: true, planError: (err as Error).message });
      }
    },
  }));
export const analysisStore = createAnalysisStore();
