// The reachability matrix of a plan: which plane-to-plane TCP flows must connect and which must
// time out. Pure: the same plan gives the same checks in the same order. The lab and
// `kubedos wiring check` execute these checks; the workbench's wiring map colours the results.
import type { Plan, PolicyFlow } from '../../common/plan/index';
import type { PlaneName } from '../../common/spec/schema';
import { PLANE_NAMES } from '../../common/spec/schema';

/** Port used for plain same-plane reachability (anything goes inside a plane). */
export const REACH_PORT = 7070;
/** A port no flow declares: the "other port" sample. */
export const UNDECLARED_PORT = 8080;

export interface Endpoint {
  node: string;
  plane: PlaneName;
  address: string;
}

export interface WiringCheck {
  kind: 'same-plane' | 'declared' | 'undeclared';
  from: Endpoint;
  to: Endpoint;
  port: number;
  expect: 'allow' | 'deny';
  why: string;
}

export interface MatrixOptions {
  /**
   * Which ordered node pairs get the deny samples: `all`, or `ring` (each node to the next one,
   * every spoke to the hub and the hub to every spoke) to keep big clusters quick.
   */
  denyPairs?: 'all' | 'ring';
}

function parsePorts(spec: string): [number, number] {
  const range = spec.split('/')[0] ?? '';
  const [a, b] = range.split('-');
  return [Number(a), Number(b ?? a)];
}

/** allow/deny of a TCP flow from one plane to another by the plan's policy. */
export function expectedVerdict(flows: readonly PolicyFlow[], from: PlaneName, to: PlaneName, port: number): { expect: 'allow' | 'deny'; why: string } {
  if (from === to) return { expect: 'allow', why: `same plane ${from}` };
  for (const f of flows) {
    if (f.from !== from || f.to !== to || f.protocol !== 'tcp') continue;
    for (const p of f.ports) {
      const [lo, hi] = parsePorts(p);
      if (port >= lo && port <= hi) return { expect: 'allow', why: `declared ${f.from}->${f.to} ${p}` };
    }
  }
  const reverse = flows.some((f) => f.from === to && f.to === from);
  return { expect: 'deny', why: reverse ? `only ${to}->${from} is declared (reverse direction)` : `no rule ${from}->${to} for ${port}/tcp` };
}

/** Ports sampled on every cross-plane pair: the edges of every declared range, plus one undeclared. */
export function samplePorts(flows: readonly PolicyFlow[]): number[] {
  const ports = new Set<number>([UNDECLARED_PORT]);
  for (const f of flows) {
    if (f.protocol !== 'tcp') continue;
    for (const p of f.ports) for (const x of parsePorts(p)) ports.add(x);
  }
  return [...ports].sort((a, b) => a - b);
}

export function wiringChecks(plan: Plan, o: MatrixOptions = {}): WiringCheck[] {
  const nodes = plan.nodes;
  const flows = plan.policy.flows;
  const ports = samplePorts(flows);
  const ep = (i: number, plane: PlaneName): Endpoint => {
    const n = nodes[i];
    if (!n) throw new Error('wiring: node index out of range');
    return { node: n.name, plane, address: n.planes[plane].address.replace('/32', '') };
  };
  const hubIndex = nodes.findIndex((n) => n.hub);
  const denyPair = (i: number, j: number): boolean => {
    if (o.denyPairs !== 'ring') return true;
    return j === (i + 1) % nodes.length || i === hubIndex || j === hubIndex;
  };
  const checks: WiringCheck[] = [];
  for (let i = 0; i < nodes.length; i++) {
    for (let j = 0; j < nodes.length; j++) {
      if (i === j) continue;
      for (const p of PLANE_NAMES) checks.push({ kind: 'same-plane', from: ep(i, p), to: ep(j, p), port: REACH_PORT, expect: 'allow', why: `same plane ${p}` });
      for (const a of PLANE_NAMES) {
        for (const b of PLANE_NAMES) {
          if (a === b) continue;
          for (const port of ports) {
            const v = expectedVerdict(flows, a, b, port);
            if (v.expect === 'allow') checks.push({ kind: 'declared', from: ep(i, a), to: ep(j, b), port, ...v });
            else if (denyPair(i, j)) checks.push({ kind: 'undeclared', from: ep(i, a), to: ep(j, b), port, ...v });
          }
        }
      }
    }
  }
  return checks;
}

/** Every port a node must listen on for the checks aimed at it. */
export function listenPorts(checks: readonly WiringCheck[]): Map<string, number[]> {
  const m = new Map<string, Set<number>>();
  for (const c of checks) m.set(c.to.node, (m.get(c.to.node) ?? new Set()).add(c.port));
  return new Map([...m].map(([k, v]) => [k, [...v].sort((a, b) => a - b)]));
}
