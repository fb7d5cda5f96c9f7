// The deploy wizard's state: which step, the target and its check, the spec source, the review
// (with the text it was made for, so an edit after the review asks for a new one), the
// allow-destroy decision and the run it started.
import { createStore } from 'zustand/vanilla';
import type { DeployReview, DeployTarget, DeployTargets, TargetCheck } from '../../../common/contract/index';
import { HOST_NAME_RULE, isHostName } from '../../../common/net/host-name';

export const WIZARD_STEPS = ['target', 'template', 'network', 'review', 'build', 'deploy'] as const;
export type WizardStep = (typeof WIZARD_STEPS)[number];

export type SourceChoice = 'editor' | 'reference-16' | 'lab-3' | 'solo-1';

/** What a deploy needs to know about where it goes, as the wizard shows it. */
export interface WizardState {
  step: number;
  kind: DeployTarget['kind'];
  /** Proxmox: the ~/.ssh/config alias or host name typed or picked. */
  host: string;
  targets?: DeployTargets;
  targetsError?: string;
  checking: boolean;
  check?: TargetCheck;
  /** The target the check belongs to (a changed host invalidates it). */
  checkedTarget?: string;
  checkError?: string;
  source: SourceChoice;
  reviewing: boolean;
  review?: DeployReview;
  reviewedText?: string;
  reviewedTarget?: string;
  reviewError?: string;
  allowDestroy: boolean;
  force: boolean;
  starting: boolean;
  startError?: string;
  run?: { runId: string; workspace: string; target: string; cluster: string };
  set(patch: Partial<Omit<WizardState, 'set' | 'reset'>>): void;
  reset(): void;
}

const initial = {
  step: 0,
  kind: 'qemu-local' as const,
  host: '',
  checking: false,
  source: 'editor' as const,
  reviewing: false,
  allowDestroy: false,
  force: false,
  starting: false,
};

export const createWizardStore = () =>
  createStore<WizardState>()((set) => ({
    ...initial,
    set: (patch) => set(patch),
    reset: () =>
      set({
        ...initial,
        check: undefined,
        checkedTarget: undefined,
        checkError: undefined,
        review: undefined,
        reviewedText: undefined,
        reviewedTarget: undefined,
        reviewError: undefined,
        startError: undefined,
        run: undefined,
      }),
  }));
export const wizardStore = createWizardStore();

/** The target as the contract wants it, or undefined when the host is not filled in. */
export function targetOf(s: Pick<WizardState, 'kind' | 'host'>): DeployTarget | undefined {
  if (s.kind === 'qemu-local') return { kind: 'qemu-local' };
  const host = s.host.trim();
  return host ? { kind: 'proxmox', host } : undefined;
}

export function targetLabel(t: DeployTarget | undefined): string {
  return !t ? '' : t.kind === 'qemu-local' ? 'qemu-local' : `proxmox://${t.host}`;
}

/** Same grammar as the contract's HostAlias: checked here too so the button says why before a round trip. */

/** Whether each step's "Next" may be pressed, and if not, why. */
export function stepBlocker(s: WizardState, spec: { text: string; valid: boolean }): string | undefined {
  const target = targetOf(s);
  switch (WIZARD_STEPS[s.step]) {
    case 'target': {
      if (!target) return 'type or pick a Proxmox host';
      if (s.kind === 'proxmox' && !isHostName(s.host.trim())) return `a host name or ~/.ssh/config alias: ${HOST_NAME_RULE}`;
      if (!s.check || s.checkedTarget !== targetLabel(target)) return 'check the target first';
      if (!s.check.ready) return s.check.hostKey?.status === 'unknown' ? 'decide about the host key first' : 'the target check found a problem';
      return undefined;
    }
    case 'template':
    case 'network':
      return spec.valid ? undefined : 'the spec in the editor has errors: fix them in the Spec view';
    case 'review': {
      if (!s.review) return 'review what the deploy would change';
      if (s.reviewedText !== spec.text || s.reviewedTarget !== targetLabel(target)) return 'the spec or target changed since the review: review again';
      if (s.review.blocked) return 'blocked: see the review';
      if (s.review.checks.some((c) => c.status === 'error')) return 'a shortfall stops the deploy: see the checks';
      if (s.review.needsAllowDestroy && !s.allowDestroy) return 'tick "allow destroy" to replace or destroy VMs';
      return undefined;
    }
    default:
      return undefined;
  }
}
