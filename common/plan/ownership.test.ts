import { describe, expect, it } from 'vitest';
import { parseSpec } from '../spec/parse';
import { TEMPLATES } from '../spec/templates/index';
import { NOTHING_OWNED, owns, ownershipOf } from './ownership';
import { plan } from './plan';

function templatePlan(name: keyof typeof TEMPLATES) {
  const r = parseSpec(TEMPLATES[name].text);
  if (!r.spec) throw new Error(`${name} does not parse`);
  return plan(r.spec);
}

describe('ownership', () => {
  // reference-16 is on Proxmox with extra site tags: the VM tag set is wider than ownership's.
  const p = templatePlan('reference-16');
  const own = ownershipOf(p);
  const first = p.nodes[0]!;

  it('owns the VMs it creates: the planned VM tags carry every ownership tag', () => {
    for (const n of p.nodes) expect(owns({ vmid: n.vmid, tags: n.vm.tags }, own), n.name).toBe(true);
  });
  it('keeps owning VMs of an older artifact version and without the site\'s extra tags', () => {
    expect(first.vm.tags.length).toBeGreaterThan(own.tags.length);
    expect(owns({ vmid: first.vmid, tags: ['kubedos', `cluster-${p.cluster.name}`, 'artifact-0.0.1'] }, own)).toBe(true);
  });
  it('does not own another cluster\'s VM, an untagged VM, or one outside the VMID range', () => {
    expect(owns({ vmid: first.vmid, tags: ['kubedos', 'cluster-other'] }, own)).toBe(false);
    expect(owns({ vmid: first.vmid, tags: [] }, own)).toBe(false);
    expect(owns({ vmid: p.substrate.vmidRange.end + 1, tags: first.vm.tags }, own)).toBe(false);
    expect(owns({ vmid: p.substrate.vmidRange.start - 1, tags: first.vm.tags }, own)).toBe(false);
  });
  it('owns nothing without a plan', () => {
    expect(ownershipOf(undefined)).toBe(NOTHING_OWNED);
    expect(owns({ vmid: 100, tags: ['kubedos'] }, NOTHING_OWNED)).toBe(false);
  });
});
