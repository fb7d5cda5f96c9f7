// Topology layout with ELK: one compound group per role (top to bottom, master first), nodes
// inside a group ordered by failure domain, and the master's hub edges to every group.
import ELK from 'elkjs/lib/elk.bundled.js';
import type { ElkNode } from 'elkjs/lib/elk.bundled.js';
import type { Plan, PlanNode } from '../../../common/plan/index';
import { NODE_ROLES } from '../../../common/spec/schema';

export const NODE_W = 190;
export const NODE_H = 78;

export interface LaidOutGroup {
  id: string;
  role: string;
  x: number;
  y: number;
  width: number;
  height: number;
  domains: string[];
  count: number;
}
export interface LaidOutNode {
  id: string;
  group: string;
  /** Relative to its group. */
  x: number;
  y: number;
  node: PlanNode;
}
export interface TopologyLayout {
  groups: LaidOutGroup[];
  nodes: LaidOutNode[];
  edges: { id: string; source: string; target: string }[];
}

const elk = new ELK();
export const groupId = (role: string): string => `role:${role}`;

/** What the layout depends on: change anything else (addresses) and the layout is reused. */
export function layoutKey(plan: Plan): string {
  return plan.nodes.map((n) => `${n.name}/${n.role}/${n.domain}`).join(',');
}

export async function layoutTopology(plan: Plan): Promise<TopologyLayout> {
  const domainOrder = [...new Set(plan.nodes.map((n) => n.domain))];
  const roles = NODE_ROLES.filter((r) => plan.nodes.some((n) => n.role === r));
  const byRole = new Map(roles.map((r) => [r, plan.nodes.filter((n) => n.role === r).sort((a, b) => domainOrder.indexOf(a.domain) - domainOrder.indexOf(b.domain) || a.name.localeCompare(b.name))]));
  const hub = plan.nodes.find((n) => n.hub);
  const graph: ElkNode = {
    id: 'root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'DOWN',
      'elk.layered.spacing.nodeNodeBetweenLayers': '70',
      'elk.spacing.nodeNode': '40',
      'elk.layered.nodePlacement.strategy': 'BRANDES_KOEPF',
    },
    children: roles.map((role) => ({
      id: groupId(role),
      layoutOptions: { 'elk.algorithm': 'box', 'elk.padding': '[top=34,left=14,bottom=14,right=14]', 'elk.spacing.nodeNode': '14', 'elk.box.packingMode': 'SIMPLE' },
      children: (byRole.get(role) ?? []).map((n) => ({ id: n.name, width: NODE_W, height: NODE_H })),
    })),
    edges: hub
      ? roles.filter((r) => r !== hub.role).map((r) => ({ id: `hub->${r}`, sources: [groupId(hub.role)], targets: [groupId(r)] }))
      : [],
  };
  const out = await elk.layout(graph);
  const groups: LaidOutGroup[] = [];
  const nodes: LaidOutNode[] = [];
  for (const g of out.children ?? []) {
    const role = g.id.slice('role:'.length);
    const members = byRole.get(role as PlanNode['role']) ?? [];
    groups.push({ id: g.id, role, x: g.x ?? 0, y: g.y ?? 0, width: g.width ?? 0, height: g.height ?? 0, domains: [...new Set(members.map((m) => m.domain))], count: members.length });
    for (const c of g.children ?? []) {
      const node = members.find((m) => m.name === c.id);
      if (node) nodes.push({ id: c.id, group: g.id, x: c.x ?? 0, y: c.y ?? 0, node });
    }
  }
  // Laid out between groups (ELK), drawn from the hub node itself.
  return { groups, nodes, edges: (graph.edges ?? []).map((e) => ({ id: e.id, source: hub?.name ?? '', target: e.targets[0] ?? '' })) };
}
