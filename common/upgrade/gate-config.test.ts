// gateConfig: what each role's health gate judges, from the plan (docs/upgrades.md "Health gate").
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { plan } from '../plan/index';
import { parseSpec, TEMPLATES } from '../spec/index';
import type { NodeRole } from '../spec/schema';
import { AB_PERSIST_UNITS, GATE_CHECKS, gateConfig, renderGateList } from './gate-config';

const specOf = (name: 'lab-3' | 'reference-16') => parseSpec(TEMPLATES[name].text).spec!;
const PAYLOAD = join(import.meta.dirname, '../../payload');

describe('gateConfig', () => {
  it('lab-3 (no Kubernetes): every role checks planes and services; the hub adds its watcher; never the fingerprint', () => {
    const spec = specOf('lab-3');
    const p = plan(spec);
    const roles = [...new Set(p.nodes.map((n) => n.role))].sort();
    expect(roles).toEqual(['control-plane', 'master', 'worker']);
    const base = ['kubedos-backplane.service', 'kubedos-persist-early.service', 'kubedos-persist-late.service', 'prometheus-node-exporter.service', 'ssh.service'];
    expect(gateConfig(spec, p, 'worker')).toEqual({ units: base, checks: ['planes', 'services'] });
    expect(gateConfig(spec, p, 'control-plane')).toEqual({ units: base, checks: ['planes', 'services'] });
    expect(gateConfig(spec, p, 'master')).toEqual({ units: [...base, 'kubedos-health-watch.service'].sort(), checks: ['planes', 'services'] });
  });

  it('with Kubernetes: node-ready on the kubelet roles only; nothing converge brings (etcd, kubelet, containerd, prometheus, haproxy)', () => {
    const spec = specOf('reference-16');
    expect(spec.spec.kubernetes.enabled).toBe(true);
    const p = plan(spec);
    for (const role of [...new Set(p.nodes.map((n) => n.role))] as NodeRole[]) {
      const g = gateConfig(spec, p, role);
      expect(g.checks, role).toEqual(role === 'control-plane' || role === 'worker' ? ['planes', 'services', 'node-ready'] : ['planes', 'services']);
      expect(g.checks, role).not.toContain('fingerprint');
      for (const u of g.units) expect(u, role).not.toMatch(/^(etcd|kubelet|containerd|prometheus|haproxy|keepalived|nftables|qemu-guest-agent)\.service$/);
      expect(g.units, role).toEqual([...g.units].sort());
    }
  });

  it("every unit it lists is one the image brings up before converge: a base package, install-payload.sh or the A/B build's persist units (ab.test.ts: prepareAbRootfs enables them)", () => {
    const spec = specOf('lab-3');
    const p = plan(spec);
    const base = readFileSync(join(PAYLOAD, 'packages/base.list'), 'utf8').split('\n');
    const install = readFileSync(join(PAYLOAD, 'firstboot/install-payload.sh'), 'utf8');
    const fromPackage: Record<string, string> = { 'ssh.service': 'openssh-server', 'prometheus-node-exporter.service': 'prometheus-node-exporter' };
    for (const role of ['master', 'worker'] as const) {
      for (const u of gateConfig(spec, p, role).units) {
        const pkg = fromPackage[u];
        const brought = (pkg !== undefined && base.includes(pkg)) || install.includes(u) || (Object.values(AB_PERSIST_UNITS) as string[]).includes(u);
        expect(brought, `${role}: ${u}`).toBe(true);
      }
    }
  });

  it('checks are a subset of the gate script\'s own, in its order; the lists render one per line', () => {
    const gate = readFileSync(join(PAYLOAD, 'upgrade/kubedos-health-gate'), 'utf8');
    expect(gate).toContain(`for c in ${GATE_CHECKS.join(' ')}; do`);
    expect(renderGateList(['planes', 'services'])).toBe('planes\nservices\n');
    expect(renderGateList([])).toBe('');
  });
});
