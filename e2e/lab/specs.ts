// Plans the lab runs: lab-3 as shipped, a 6-node variant derived from it (3 control planes with
// stacked etcd, 2 workers), and reference-16 for the benchmark.
import { parse, stringify } from 'yaml';
import type { Plan } from '../../common/plan/index';
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';

export function planFromText(text: string, what: string): Plan {
  const { spec, diagnostics } = parseSpec(text);
  if (!spec) throw new Error(`${what} does not validate:\n${diagnostics.map((d) => `${d.line}:${d.column} ${d.message}`).join('\n')}`);
  return plan(spec);
}

export function lab3Plan(): Plan {
  return planFromText(TEMPLATES['lab-3'].text, 'lab-3');
}

/** lab-3 grown to 6 nodes: master, cp-1..3 (stacked etcd), w-1, w-2. */
export function lab6Spec(): string {
  const doc = parse(TEMPLATES['lab-3'].text) as {
    metadata: { name: string };
    spec: { nodes: { inventory: { name: string; role: string; vmid: number }[] }; kubernetes: { ha: { controlPlaneReplicas: number } } };
  };
  doc.metadata.name = 'lab-6';
  const inv = doc.spec.nodes.inventory;
  const template = (role: string) => {
    const t = inv.find((n) => n.role === role);
    if (!t) throw new Error(`lab-3 has no ${role}`);
    return t;
  };
  const add = (name: string, role: string, vmid: number) => inv.push({ ...structuredClone(template(role)), name, vmid });
  add('cp-2', 'control-plane', 3003);
  add('cp-3', 'control-plane', 3004);
  add('w-2', 'worker', 3005);
  doc.spec.kubernetes.ha.controlPlaneReplicas = 3;
  return stringify(doc);
}

export function lab6Plan(): Plan {
  return planFromText(lab6Spec(), 'lab-6 (derived from lab-3)');
}

export function reference16Plan(): Plan {
  return planFromText(TEMPLATES['reference-16'].text, 'reference-16');
}

/**
 * The drill lab: lab-3 grown to a 3-member stacked etcd (master, cp-1..3, w-1), with recovery
 * targets for the lab drills and lab detection thresholds (a probe every second, 3 misses).
 */
export function labDrillSpec(): string {
  const doc = parse(lab6Spec()) as {
    metadata: { name: string };
    spec: {
      nodes: { inventory: { name: string }[] };
      acceptance: { mttrTargetMinutes: number; drills: { name: string; expectRecoveryMinutes: number }[] };
      selfHealing?: unknown;
    };
  };
  doc.metadata.name = 'lab-drill';
  doc.spec.nodes.inventory = doc.spec.nodes.inventory.filter((n) => n.name !== 'w-2');
  doc.spec.acceptance = {
    mttrTargetMinutes: 10,
    drills: [
      { name: 'kill-etcd-member', expectRecoveryMinutes: 2 },
      { name: 'partition-node', expectRecoveryMinutes: 3 },
    ],
  };
  doc.spec.selfHealing = { detect: { heartbeatSeconds: 1, missedHeartbeats: 3, signals: ['wg-handshake', 'etcd-member'] } };
  return stringify(doc);
}

export function labDrillPlan(): Plan {
  return planFromText(labDrillSpec(), 'lab-drill (derived from lab-3)');
}
