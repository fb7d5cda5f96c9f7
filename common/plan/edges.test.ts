// The plan's answers to "why is this flow allowed" and "what does qemu-local not apply".
import { describe, expect, it } from 'vitest';
import { parseSpec } from '../spec/parse';
import { TEMPLATES } from '../spec/templates/index';
import { templateObject, toYaml } from '../testing/specs';
import { flowWhy } from './flow-why';
import { plan } from './plan';
import { qemuLocalIgnores } from './qemu-local-fit';

const specOf = (text: string) => {
  const r = parseSpec(text);
  if (!r.spec) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return r.spec;
};

describe('flowWhy', () => {
  it('names the services a flow without a description reaches (lab-3 has none)', () => {
    const p = plan(specOf(TEMPLATES['lab-3'].text));
    expect(p.policy.flows.every((f) => f.description === undefined)).toBe(true);
    const why = p.policy.flows.map((f) => flowWhy(f, p.nodes));
    // lab-3 runs no Kubernetes (no upstream sources): only etcd serves behind 6443/2379-2380.
    expect(why).toEqual(['for etcd', 'for node-exporter']);
  });
  it('keeps the spec\'s description, and says when nothing explains a flow', () => {
    const p = plan(specOf(TEMPLATES['reference-16'].text));
    expect(flowWhy(p.policy.flows[0]!, p.nodes)).toBe(p.policy.flows[0]!.description);
    expect(flowWhy({ from: 'wg1', to: 'wg2', protocol: 'tcp', ports: ['4444/tcp'] }, p.nodes)).toMatch(/no description: add one/);
  });
});

describe('qemuLocalIgnores', () => {
  it('lists the pools, VLANs and Proxmox settings of reference-16 that local QEMU does not apply', () => {
    const lines = qemuLocalIgnores(specOf(TEMPLATES['reference-16'].text));
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^VLAN tags on NICs \(10\) are not applied/);
    expect(lines[1]).toMatch(/^storage pools \(fast-zfs\) are not used/);
    expect(lines[2]).toMatch(/clusterName pve-01, isoStorage local/);
  });
  it('says nothing for a qemu spec without VLANs (lab-3)', () => {
    expect(qemuLocalIgnores(specOf(TEMPLATES['lab-3'].text))).toEqual([]);
  });
  it('names the trunks of a VLAN-aware bridge when no NIC is tagged', () => {
    const s = templateObject('lab-3');
    s.spec.substrate.qemu.bridges = [{ name: 'kubedos0', vlanAware: true, trunks: [20, 30] }];
    expect(qemuLocalIgnores(specOf(toYaml(s)))).toEqual([expect.stringMatching(/vlanAware, trunks 20, 30/)]);
  });
});
