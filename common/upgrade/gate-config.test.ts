// gateConfig: what each role's health gate judges, from the plan (docs/upgrades.md "Health gate").
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { plan } from '../plan/index';
import { parseSpec, TEMPLATES } from '../spec/index';
import type { NodeRole } from '../spec/schema';
import { AB_PERSIST_UNITS, GATE_CHECKS, GATE_WINDOW, gateConfig, renderGateList, renderGateWindow } from './gate-config';

const specOf = (name: 'lab-3' | 'reference-16') => parseSpec(TEMPLATES[name].text).spec!;
const PAYLOAD = join(import.meta.dirname, '../../payload');

describe('gateConfig', () => {
  it('lab-3 (no Kubernetes): every role checks planes and services; the hub adds its watcher; never the fingerprint', () => {
    const spec = specOf('lab-3');
    const p = plan(spec);
    const roles = [...new Set(p.nodes.map((n) => n.role))].sort();
    expect(roles).toEqual(['control-plane', 'master', 'worker']);
    const base = ['kubedos-backplane.service', 'kubedos-persist-early.service', 'kubedos-persist-late.service', 'prometheus-node-exporter.service', 'ssh.service'];
    const window = { checks: { planes: 60, services: 60 }, intervalS: 5 };
    expect(gateConfig(spec, p, 'worker')).toEqual({ units: base, checks: ['planes', 'services'], window });
    expect(gateConfig(spec, p, 'control-plane')).toEqual({ units: base, checks: ['planes', 'services'], window });
    expect(gateConfig(spec, p, 'master')).toEqual({ units: [...base, 'kubedos-health-watch.service'].sort(), checks: ['planes', 'services'], window });
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
      expect(Object.keys(g.window.checks), role).toEqual(g.checks);
    }
  });

  it("the window fits issue 18's 5 minutes under TCG for what lab-3 checks, with margin over good boots (2.5x); node-ready (unmeasured) keeps 240 s", () => {
    // Measured on lab-3's VMs (docs/upgrades.md "Health gate"): a good tried boot's gate passed
    // within 23 s of its start (its own count, twelve tried boots); the gate injection of 2026-12-06
    // stopped 375 s after w-1's reboot with a 120 s window, ~60 s of it the foundry not yet seeing
    // w-1's agent on A (30 s guest-agent waits; a ping first since, ~15 s).
    const slowestGoodS = 23;
    const injection = { stopS: 375, windowS: 120, detectS: 60, detectWithPingS: 15 };
    const lab3 = specOf('lab-3');
    const p3 = plan(lab3);
    for (const role of ['master', 'control-plane', 'worker'] as const) {
      const longest = Math.max(...Object.values(gateConfig(lab3, p3, role).window.checks));
      expect(longest, role).toBe(60);
      expect(longest / slowestGoodS, role).toBeGreaterThanOrEqual(2.5);
      expect(injection.stopS - injection.windowS - injection.detectS + injection.detectWithPingS + longest, role).toBeLessThanOrEqual(300 - 25);
    }
    const ref = specOf('reference-16');
    expect(gateConfig(ref, plan(ref), 'worker').window).toEqual({ checks: { planes: 60, services: 60, 'node-ready': 240 }, intervalS: 5 });
    expect(Object.keys(GATE_WINDOW.checks).sort()).toEqual([...GATE_CHECKS].sort());
  });

  it('gate-window renders one "CHECK SECONDS" line per check in the gate\'s order, then the interval', () => {
    expect(renderGateWindow({ checks: { 'node-ready': 240, planes: 120, services: 120 }, intervalS: 5 })).toBe('planes 120\nservices 120\nnode-ready 240\ninterval 5\n');
    expect(renderGateWindow({ checks: {}, intervalS: 0.2 })).toBe('interval 0.2\n');
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
