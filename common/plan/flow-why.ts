// Why an inter-plane flow is allowed, for tables that list the policy (`kubedos plan`): the
// rule's own description when the spec gives one, otherwise the services the plan binds to
// those ports (kube-apiserver, etcd, …), preferring the ones on the flow's destination plane.
import { parsePortRange } from '../spec/resolve';
import type { PolicyFlow, ServiceBinding } from './schema';

function overlaps(a: string, b: string): boolean {
  const x = parsePortRange(a);
  const y = parsePortRange(b);
  return Boolean(x && y && x.protocol === y.protocol && x.from <= y.to && y.from <= x.to);
}

export function flowWhy(flow: PolicyFlow, nodes: readonly { services: readonly ServiceBinding[] }[]): string {
  if (flow.description?.trim()) return flow.description.trim();
  const services = nodes.flatMap((n) => n.services);
  const names: string[] = [];
  for (const port of flow.ports) {
    const serving = services.filter((s) => s.ports.some((p) => overlaps(p, port)));
    const onTarget = serving.filter((s) => s.on === flow.to);
    for (const s of onTarget.length ? onTarget : serving) if (!names.includes(s.name)) names.push(s.name);
  }
  return names.length ? `for ${names.join(', ')}` : '(no description: add one to this networking.policy.allow rule)';
}
