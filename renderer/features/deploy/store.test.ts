import { describe, expect, it } from 'vitest';
import type { DeployReview, TargetCheck } from '../../../common/contract/index';
import { createLogFilterStore } from '../pipeline/log-filter';
import { createWizardStore, stepBlocker, targetLabel, targetOf } from './store';

const readyCheck = (target: string, ready = true, hostKey?: TargetCheck['hostKey']): TargetCheck => ({ target, kind: target === 'qemu-local' ? 'qemu-local' : 'proxmox', ready, checks: [], ...(hostKey ? { hostKey } : {}) });
const review = (patch: Partial<DeployReview> = {}): DeployReview => ({
  target: 'qemu-local',
  cluster: 'lab-3',
  workspace: '/w',
  node: 'local',
  decisions: [],
  summary: { create: 0, keep: 0, update: 0, replace: 0, destroy: 0 },
  needsAllowDestroy: false,
  previousPlan: false,
  planChanges: [],
  checks: [],
  ...patch,
});
const valid = { text: 'spec', valid: true };

describe('deploy wizard: when Next is possible', () => {
  it('step 1 needs a checked, ready target — the check of another host does not count', () => {
    const w = createWizardStore();
    w.getState().set({ kind: 'proxmox', host: '' });
    expect(stepBlocker(w.getState(), valid)).toMatch(/type or pick/);
    w.getState().set({ host: 'bad host' });
    expect(stepBlocker(w.getState(), valid)).toMatch(/letters, digits/);
    w.getState().set({ host: 'pve1' });
    expect(targetOf(w.getState())).toEqual({ kind: 'proxmox', host: 'pve1' });
    expect(stepBlocker(w.getState(), valid)).toMatch(/check the target/);
    w.getState().set({ check: readyCheck('proxmox://pve1', false, { status: 'unknown', host: 'h', port: 22, knownHostsPath: '/k' }), checkedTarget: 'proxmox://pve1' });
    expect(stepBlocker(w.getState(), valid)).toMatch(/host key/);
    w.getState().set({ check: readyCheck('proxmox://pve1'), checkedTarget: 'proxmox://pve1' });
    expect(stepBlocker(w.getState(), valid)).toBeUndefined();
    w.getState().set({ host: 'pve2' });
    expect(stepBlocker(w.getState(), valid)).toMatch(/check the target/);
  });
  it('steps 2 and 3 need a valid spec', () => {
    const w = createWizardStore();
    w.getState().set({ step: 1 });
    expect(stepBlocker(w.getState(), { text: 'x', valid: false })).toMatch(/errors/);
    expect(stepBlocker(w.getState(), valid)).toBeUndefined();
  });
  it('step 4 needs a review of exactly this text and target, nothing blocked, no shortfall, and allow destroy when it destroys', () => {
    const w = createWizardStore();
    const target = targetLabel({ kind: 'qemu-local' });
    w.getState().set({ step: 3 });
    expect(stepBlocker(w.getState(), valid)).toMatch(/review/);
    w.getState().set({ review: review(), reviewedText: 'spec', reviewedTarget: target });
    expect(stepBlocker(w.getState(), valid)).toBeUndefined();
    expect(stepBlocker(w.getState(), { text: 'edited', valid: true })).toMatch(/changed since the review/);
    w.getState().set({ review: review({ needsAllowDestroy: true }) });
    expect(stepBlocker(w.getState(), valid)).toMatch(/allow destroy/);
    w.getState().set({ allowDestroy: true });
    expect(stepBlocker(w.getState(), valid)).toBeUndefined();
    w.getState().set({ review: review({ blocked: { code: 'vmid-taken', message: 'm' } }) });
    expect(stepBlocker(w.getState(), valid)).toMatch(/blocked/);
    w.getState().set({ review: review({ checks: [{ id: 'memory', label: 'memory', status: 'error', detail: 'd', scope: 'plan' }] }) });
    expect(stepBlocker(w.getState(), valid)).toMatch(/shortfall/);
  });
  it('reset forgets the target check, the review and the destroy decision', () => {
    const w = createWizardStore();
    w.getState().set({ step: 5, allowDestroy: true, review: review(), check: readyCheck('qemu-local'), checkedTarget: 'qemu-local' });
    w.getState().reset();
    expect(w.getState()).toMatchObject({ step: 0, allowDestroy: false, review: undefined, check: undefined });
  });
});

describe('log filter', () => {
  it('sets and toggles the node filter', () => {
    const f = createLogFilterStore();
    f.getState().setFilter({ stage: 'build' });
    f.getState().setFilter((x) => ({ ...x, node: 'master' }));
    expect(f.getState().filter).toEqual({ stage: 'build', node: 'master' });
  });
});
