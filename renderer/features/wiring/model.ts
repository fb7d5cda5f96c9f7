// What the wiring view draws, derived from the plan: planes as hub-and-spoke stars and the
// plane × plane policy matrix (default deny), each cell tied to the hub's nftables lines.
import type { Plan, PolicyFlow } from '../../../common/plan/index';
import type { PlaneName } from '../../../common/spec/schema';

export interface MatrixCell {
  from: PlaneName;
  to: PlaneName;
  verdict: 'same-plane' | 'allow' | 'deny';
  ports: string[];
  flows: PolicyFlow[];
}

export function policyMatrix(plan: Plan): MatrixCell[][] {
  const planes = plan.planes.map((p) => p.name);
  return planes.map((from) =>
    planes.map((to) => {
      if (from === to) return { from, to, verdict: 'same-plane' as const, ports: ['any'], flows: [] };
      const flows = plan.policy.flows.filter((f) => f.from === from && f.to === to);
      return flows.length
        ? { from, to, verdict: 'allow' as const, ports: flows.flatMap((f) => f.ports.map((p) => (p.includes('/') ? p : `${p}/${f.protocol}`))), flows }
        : { from, to, verdict: 'deny' as const, ports: [], flows: [] };
    }),
  );
}

/** The hub's nftables lines that decide traffic of a cell (what hovering highlights). */
export function ruleMatches(line: string, cell: Pick<MatrixCell, 'from' | 'to' | 'verdict'>): boolean {
  if (cell.verdict === 'same-plane') return line.includes(`comment "same-plane ${cell.from}`);
  if (cell.verdict === 'allow') return line.includes(`comment "allow ${cell.from}->${cell.to}"`);
  return line.includes('default_deny_inter_plane') && line.includes('drop');
}

export interface Spoke {
  node: string;
  role: string;
  address: string;
  x: number;
  y: number;
}

/** Spokes on an ellipse around the hub, in plan order, half a step off the top so the first
 * two labels do not collide. */
export function spokesFor(plan: Plan, plane: PlaneName, rx: number, ry = rx): Spoke[] {
  const spokes = plan.nodes.filter((n) => !n.hub);
  const step = (2 * Math.PI) / Math.max(1, spokes.length);
  return spokes.map((n, i) => {
    const angle = -Math.PI / 2 + step / 2 + step * i;
    return { node: n.name, role: n.role, address: n.planes[plane].address, x: Math.cos(angle) * rx, y: Math.sin(angle) * ry };
  });
}

/** The decision lines of the hub's forward chain: same-plane accepts, allowed flows, default deny. */
export function forwardRules(nftables: string): string[] {
  const lines = nftables.split('\n');
  const start = lines.findIndex((l) => l.trim().startsWith('chain forward'));
  if (start < 0) return [];
  const out: string[] = [];
  for (const l of lines.slice(start + 1)) {
    if (l.trim() === '}') break;
    if (/comment "(same-plane|allow|default deny)/.test(l)) out.push(l.trim());
  }
  return out;
}
