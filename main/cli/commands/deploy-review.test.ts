import { describe, expect, it } from 'vitest';
import type { DeployReview } from '../../../common/contract/index';
import { formatReview } from './deploy-review';

describe('kubedos deploy --review', () => {
  it('prints every decision, the blocked one and its fix, and the checks to look at', () => {
    const r: DeployReview = {
      target: 'proxmox://pve',
      cluster: 'lab-3',
      workspace: '/ws/clusters/lab-3',
      node: 'pve',
      decisions: [
        { node: 'master', vmid: 3000, action: 'keep', start: false, destructive: false, blocked: false, reasons: ['in shape'] },
        { node: 'w-1', vmid: 3002, action: 'create', start: false, destructive: false, blocked: true, reasons: ['BLOCKED: VMID 3002 (wanted for w-1) is taken by VM "db"'] },
        { node: 'old', vmid: 3090, action: 'destroy', start: false, destructive: true, blocked: false, reasons: ['not in the plan'] },
      ],
      summary: { create: 1, keep: 1, update: 0, replace: 0, destroy: 1 },
      needsAllowDestroy: true,
      blocked: { code: 'vmid-taken', message: '1 VMID(s) the plan needs are taken by VMs this cluster does not own: 3002 "db"', hint: 'move the vmidRange' },
      previousPlan: false,
      planChanges: [],
      checks: [{ id: 'storage:local-lvm', label: 'storage local-lvm', status: 'error', detail: 'does not exist', hint: 'create it', scope: 'plan' }],
    };
    const text = formatReview(r);
    expect(text).toMatch(/^w-1 +3002 +BLOCKED +BLOCKED: VMID 3002/m);
    expect(text).toMatch(/^old +3090 +destroy! +not in the plan/m);
    expect(text).toContain('destructive: needs --allow-destroy');
    expect(text).toContain('error: storage local-lvm: does not exist (create it)');
    expect(text).toMatch(/BLOCKED: 1 VMID\(s\) .*"db"\n {2}move the vmidRange/);
  });
});
