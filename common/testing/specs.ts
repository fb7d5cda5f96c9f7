// Spec builders for tests and benchmarks: start from a template, change what a test is about.
import { parse, stringify } from 'yaml';
import { TEMPLATES } from '../spec/templates/index';
import type { TemplateName } from '../spec/templates/index';

export function templateObject(name: TemplateName): Record<string, any> {
  return parse(TEMPLATES[name].text) as Record<string, any>;
}

export function toYaml(value: unknown): string {
  return stringify(value, { lineWidth: 0 });
}

/**
 * A valid spec with `count` nodes (count >= 16): the reference roles plus workers, planes and
 * LAN sized to fit. Used by the 100/1000-node benchmark and scale tests.
 */
export function syntheticSpec(count: number): Record<string, any> {
  const spec = templateObject('reference-16');
  const base = spec.spec.nodes.inventory as Record<string, any>[];
  const template = base.find((n) => n.role === 'worker')!;
  const domains = ['rack-a', 'rack-b', 'rack-c'];
  for (let i = base.length; i < count; i++) {
    base.push({ ...structuredClone(template), name: `w-${i - 12}`, vmid: 2000 + i, domain: domains[i % 3] });
  }
  spec.metadata.name = `synthetic-${count}`;
  spec.spec.nodes.vmidRange = { start: 2000, end: 2000 + Math.max(99, count + 10) };
  // Planes need 2 + (count - 1) host offsets; a /21 holds 2046.
  spec.spec.networking.planes.wg1.cidr = '10.64.0.0/21';
  spec.spec.networking.planes.wg2.cidr = '10.72.0.0/21';
  spec.spec.networking.planes.wg3.cidr = '10.80.0.0/21';
  return spec;
}
