// The wizard's requests to main: hosts from ~/.ssh/config, target checks, the host-key
// decision, the review and the deploy run itself (its events arrive on pipeline.events).
import { api } from '../../shell/api';
import { notifyError } from '../../shell/notify';
import { shellStore } from '../../shell/store';
import { analysisStore } from '../analysis/store';
import { pipelineStore } from '../pipeline/store';
import { guardUnsaved } from '../spec/actions';
import { specStore } from '../spec/store';
import type { SourceChoice } from './store';
import { targetLabel, targetOf, wizardStore } from './store';

const message = (err: unknown): string => {
  const e = err as Error & { hint?: string };
  return `${e.message ?? String(err)}${e.hint ? ` — ${e.hint}` : ''}`;
};

export async function loadTargets(): Promise<void> {
  try {
    wizardStore.getState().set({ targets: await api().invoke('deploy.targets', {}), targetsError: undefined });
  } catch (err) {
    wizardStore.getState().set({ targetsError: message(err) });
  }
}

export async function checkTarget(options: { probeAccel?: boolean; accept?: string } = {}): Promise<void> {
  const s = wizardStore.getState();
  const target = targetOf(s);
  if (!target) return;
  const label = targetLabel(target);
  s.set({ checking: true, checkError: undefined, ...(s.checkedTarget !== label ? { check: undefined } : {}) });
  const text = specStore.getState().text;
  try {
    const check =
      options.accept && target.kind === 'proxmox'
        ? await api().invoke('deploy.acceptHostKey', { target, fingerprint: options.accept, text })
        : await api().invoke('deploy.checkTarget', { target, text, ...(options.probeAccel ? { probeAccel: true } : {}) });
    // Only the answer for what is selected now counts (the user may have switched meanwhile).
    if (targetLabel(targetOf(wizardStore.getState())) === label) wizardStore.getState().set({ check, checkedTarget: label, checking: false });
    else wizardStore.getState().set({ checking: false });
  } catch (err) {
    wizardStore.getState().set({ checking: false, checkError: message(err) });
  }
}

/** Step 2: a template replaces the editor's text (after the unsaved-changes guard). */
export function chooseSource(choice: SourceChoice): void {
  if (choice === 'editor') return wizardStore.getState().set({ source: 'editor' });
  guardUnsaved(`load the ${choice} template`, () => {
    void (async () => {
      try {
        const t = await api().invoke('spec.template', { name: choice });
        specStore.getState().load({ text: t.text, origin: `${t.name} (template, not saved)` });
        analysisStore.getState().analyse(t.text);
        wizardStore.getState().set({ source: choice });
      } catch (err) {
        notifyError(`Could not load template ${choice}`, err);
      }
    })();
  });
}

export async function runReview(): Promise<void> {
  const s = wizardStore.getState();
  const target = targetOf(s);
  if (!target) return;
  const text = specStore.getState().text;
  // A review of another target or text must not stay on screen while the new one runs.
  const same = s.reviewedText === text && s.reviewedTarget === targetLabel(target);
  s.set({ reviewing: true, reviewError: undefined, allowDestroy: false, ...(same ? {} : { review: undefined, reviewedText: undefined, reviewedTarget: undefined }) });
  try {
    const review = await api().invoke('deploy.review', { target, text });
    wizardStore.getState().set({ review, reviewedText: text, reviewedTarget: targetLabel(target), reviewing: false });
  } catch (err) {
    wizardStore.getState().set({ reviewing: false, review: undefined, reviewError: message(err) });
  }
}

export async function startDeploy(): Promise<void> {
  const s = wizardStore.getState();
  const target = targetOf(s);
  const spec = specStore.getState();
  if (!target || !s.review || s.reviewedText !== spec.text) return;
  s.set({ starting: true, startError: undefined });
  pipelineStore.getState().starting();
  try {
    const r = await api().invoke('deploy.run', {
      target,
      text: spec.text,
      ...(spec.path && spec.text === spec.savedText ? { path: spec.path } : {}),
      allowDestroy: s.allowDestroy,
      ...(s.force ? { force: true } : {}),
    });
    wizardStore.getState().set({ starting: false, step: 5, run: { runId: r.runId, workspace: r.workspace, target: targetLabel(target), cluster: s.review.cluster } });
    shellStore.getState().setView('pipeline');
  } catch (err) {
    pipelineStore.getState().startFailed(message(err));
    wizardStore.getState().set({ starting: false, startError: message(err) });
  }
}
