// Topology layout with ELK: one compound group per role (master first) or per failure domain,
// nodes inside a group ordered by the other key, and the hub's edges to every other group.
import ELK from 'elkjs/lib/elk.bundled.js';
import type { ElkNode } from 'elkjs/lib/elk.bundled.js';
import type { Plan, PlanNode } from '../../../common/plan/index';
import { NODE_ROLES } from '../../../common/spec/schema';

export const NODE_W = 190;
/** Room for name, VMID, LAN address and the live version line (shown only with live health). */
export const NODE_H = 96;

export type GroupBy = 'role' | 'domain';

export interface LaidOutGroup {
  id: string;
  /** The role or failure domain this group holds. */
  key: string;
  /** The other dimension's values present in the group (domains of a role group, roles of a domain group). */
  members: string[];
  x: number;
  y: number;
  width: number;
  height: number;
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
export const groupId = (by: GroupBy, key: string): string => `${by}:${key}`;

/** What the layout depends on: change anything else (addresses) and the layout is reused. */
export function layoutKey(plan: Plan, by: GroupBy): string {
  return `${by}|${plan.nodes.map((n) => `${n.name}/${n.role}/${n.domain}`).join(',')}`;
}

export async function layoutTopology(plan: Plan, by: GroupBy = 'role'): Promise<TopologyLayout> {
  const domainOrder = [...new Set(plan.nodes.map((n) => n.domain))];
  const roleOrder: readonly string[] = NODE_ROLES;
  const keyOf = (n: PlanNode): string => (by === 'role' ? n.role : n.domain);
  const otherOf = (n: PlanNode): string => (by === 'role' ? n.domain : n.role);
  const rank = (n: PlanNode): number => (by === 'role' ? domainOrder.indexOf(n.domain) : roleOrder.indexOf(n.role));
  const keys = by === 'role' ? NODE_ROLES.filter((r) => plan.nodes.some((n) => n.role === r)) : domainOrder;
  const byKey = new Map<string, PlanNode[]>(keys.map((k) => [k, plan.nodes.filter((n) => keyOf(n) === k).sort((a, b) => rank(a) - rank(b) || a.vmid - b.vmid)]));
  const hub = plan.nodes.find((n) => n.hub);
  const hubKey = hub ? keyOf(hub) : undefined;
  const graph: ElkNode = {
    id: 'root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'DOWN',
      'elk.layered.spacing.nodeNodeBetweenLayers': '70',
      'elk.spacing.nodeNode': '40',
      'elk.layered.nodePlacement.strategy': 'BRANDES_KOEPF',
    },
    children: keys.map((key) => ({
      id: groupId(by, key),
      // Role groups sit side by side under the hub, so their nodes stack in a column; the few
      // failure-domain groups are wide (two columns) instead.
      layoutOptions: { 'elk.algorithm': 'box', 'elk.padding': '[top=34,left=14,bottom=14,right=14]', 'elk.spacing.nodeNode': '14', 'elk.box.packingMode': 'SIMPLE', 'elk.aspectRatio': by === 'role' ? '0.2' : '3' },
      children: (byKey.get(key) ?? []).map((n) => ({ id: n.name, width: NODE_W, height: NODE_H })),
    })),
    edges:
      hub && hubKey !== undefined
        ? keys.filter((k) => k !== hubKey).map((k) => ({ id: `hub->${k}`, sources: [groupId(by, hubKey)], targets: [groupId(by, k)] }))
        : [],
  };
  const out = await elk.layout(graph);
  const groups: LaidOutGroup[] = [];
  const nodes: LaidOutNode[] = [];
  for (const g of out.children ?? []) {
    const key = g.id.slice(by.length + 1);
    const members = byKey.get(key) ?? [];
    groups.push({ id: g.id, key, x: g.x ?? 0, y: g.y ?? 0, width: g.width ?? 0, height: g.height ?? 0, members: [...new Set(members.map(otherOf))], count: members.length });
    for (const c of g.children ?? []) {
      const node = members.find((m) => m.name === c.id);
      if (node) nodes.push({ id: c.id, group: g.id, x: c.x ?? 0, y: c.y ?? 0, node });
    }
  }
  // Laid out between groups (ELK), drawn from the hub node itself.
  return { groups, nodes, edges: (graph.edges ?? []).map((e) => ({ id: e.id, source: hub?.name ?? '', target: e.targets[0] ?? '' })) };
}
