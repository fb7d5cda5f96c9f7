// Topology: the plan's nodes grouped by role (ELK layout), each with name, VMID, LAN IP and
// failure domain (and, from the live report, the artifact version and boot slot it runs), coloured by the cluster's live health when it can be read (LiveHealth.tsx),
// else by the last pipeline node state (a drill's node states win while it runs). Follows the spec as it is edited
// (the plan is recomputed in the renderer) without resetting pan/zoom.
import { Badge, Group, Paper, SegmentedControl, Text } from '@mantine/core';
import { Background, Controls, Handle, Position, ReactFlow, ReactFlowProvider, useReactFlow } from '@xyflow/react';
import type { Edge, Node, NodeProps } from '@xyflow/react';
import { useMantineColorScheme } from '@mantine/core';
import { useEffect, useMemo, useRef, useState } from 'react';
import { useStore } from 'zustand';
import type { NodeState } from '../../../common/pipeline/events';
import type { PlanNode } from '../../../common/plan/index';
import { analysisStore } from '../analysis/store';
import { pipelineStore } from '../pipeline/store';
import type { NodeDrillState } from '../../../common/drills/live';
import { nodeStates as drillNodeStates } from '../../../common/drills/live';
import { DRILL_STATE_COLOR, drillsStore, runningDrill } from '../drills/store';
import { layoutKey, layoutTopology, NODE_H } from './layout';
import type { GroupBy, TopologyLayout } from './layout';
import { NodeDetails } from './NodeDetails';
import { NodeTerminal } from '../terminal/NodeTerminal';
import type { LiveNodeState } from '../../../common/health/now';
import { LIVE_STATE_COLOR, LiveHealthBar, useLiveHealth } from './LiveHealth';
import type { NodeVersionLine } from '../../../common/health/versions';
import { nodeVersionLines, slotText } from '../../../common/health/versions';

const STATE_COLOR: Record<NodeState, string> = {
  pending: 'gray',
  running: 'blue',
  ok: 'green',
  failed: 'red',
  skipped: 'yellow',
};
const DOMAIN_COLORS = ['grape', 'cyan', 'orange', 'teal', 'pink', 'lime', 'violet', 'yellow'];

type MachineData = { node: PlanNode; state?: NodeState; live?: LiveNodeState; liveStale?: boolean; version?: NodeVersionLine; artifactWhy?: string; drill?: NodeDrillState; domainColor: string; open: (name: string) => void };

/**
 * The artifact version and boot slot from the live report. When the nodes disagree (mid-upgrade),
 * the newest version in the accent colour and an older one in orange behind a down arrow (legible
 * without colour too; "behind" itself did not fit the 190 px box beside the slot).
 */
function VersionLine({ v }: { v: NodeVersionLine }) {
  // Orange 6 and indigo 6 are too faint on white for 12 px text: darker shades in the light scheme.
  const light = useMantineColorScheme().colorScheme === 'light';
  return (
    <Text size="xs" truncate data-testid="topology-node-version" data-behind={v.behind ? 'true' : 'false'} title={v.behind ? `runs ${v.version}, not ${v.newest} like the newest node (an upgrade in progress or stopped)` : `runs ${v.version} on ${slotText(v.slot)}`}>
      <Text span size="xs" fw={700} c={v.behind ? (light ? 'orange.9' : 'orange.5') : v.mixed ? (light ? 'indigo.8' : 'indigo.4') : undefined}>
        {v.behind ? `↓ ${v.version}` : v.version}
      </Text>
      <Text span size="xs" c="dimmed">
        {' '}
        · {slotText(v.slot)}
      </Text>
    </Text>
  );
}
type GroupData = { label: string; count: number; members: string[] };

function MachineNode({ data }: NodeProps<Node<MachineData>>) {
  // During a drill the drill's node states win; then the live health; then the last pipeline run's.
  const tone = data.drill ? DRILL_STATE_COLOR[data.drill] : data.live ? LIVE_STATE_COLOR[data.live] : data.state ? STATE_COLOR[data.state] : undefined;
  const color = tone ? `var(--mantine-color-${tone}-6)` : 'var(--mantine-color-default-border)';
  const tinted = data.drill ? data.drill !== 'healthy' : data.live !== undefined && data.live !== 'healthy';
  return (
    <Paper
      withBorder
      p={6}
      radius="sm"
      data-testid="topology-node"
      data-node={data.node.name}
      data-state={data.state ?? 'none'}
      data-drill-state={data.drill ?? 'none'}
      data-live-state={data.live ?? 'none'}
      data-live-stale={data.live && data.liveStale ? 'true' : 'false'}
      role="button"
      tabIndex={0}
      onKeyDown={(e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          data.open(data.node.name);
        }
      }}
      aria-label={`${data.node.name}, ${data.node.role}, VMID ${data.node.vmid}, LAN ${data.node.lan.address}${data.live ? `, live${data.liveStale ? ' (stale)' : ''}: ${data.live}` : data.state ? `, last run: ${data.state}` : ''}${data.version ? `, runs ${data.version.version} on ${slotText(data.version.slot)}${data.version.behind ? `, behind ${data.version.newest}` : ''}` : ''}${data.drill ? `, drill: ${data.drill}` : ''}`}
      style={{
        width: 190,
        height: NODE_H,
        borderColor: color,
        borderWidth: data.state || data.drill || data.live ? 2 : 1,
        // A picture kept after a failed read: dashed, until a read succeeds again.
        borderStyle: data.live && data.liveStale && !data.drill ? 'dashed' : 'solid',
        background: tinted && tone ? `var(--mantine-color-${tone}-light)` : undefined,
        cursor: 'pointer',
      }}
    >
      <Handle type="target" position={Position.Top} style={{ opacity: 0 }} />
      <Group justify="space-between" gap={4} wrap="nowrap">
        <Text fw={700} size="sm" truncate>
          {data.node.name}
        </Text>
        {data.drill && data.drill !== 'healthy' ? (
          <Badge size="xs" color={DRILL_STATE_COLOR[data.drill]} variant="filled">
            {data.drill}
          </Badge>
        ) : data.live && data.live !== 'healthy' ? (
          <Badge size="xs" color={LIVE_STATE_COLOR[data.live]} variant="filled">
            {data.live}
          </Badge>
        ) : (
          <Badge size="xs" color={data.domainColor} variant="light">
            {data.node.domain}
          </Badge>
        )}
      </Group>
      <Text size="xs" c="dimmed">
        VMID {data.node.vmid} · {data.node.role}
        {data.node.hub ? ' · hub' : ''}
      </Text>
      <Text size="xs" ff="monospace">
        {data.node.lan.address}
      </Text>
      {data.version ? (
        <VersionLine v={data.version} />
      ) : (
        data.artifactWhy && (
          <Text size="xs" c="dimmed" truncate title={data.artifactWhy} data-testid="topology-node-version" data-behind="false">
            version not read
          </Text>
        )
      )}
      <Handle type="source" position={Position.Bottom} style={{ opacity: 0 }} />
    </Paper>
  );
}

function RoleGroup({ data }: NodeProps<Node<GroupData>>) {
  return (
    <div
      style={{
        width: '100%',
        height: '100%',
        border: '1px dashed var(--mantine-color-default-border)',
        borderRadius: 8,
        background: 'color-mix(in srgb, var(--mantine-color-body) 85%, var(--mantine-color-indigo-5))',
      }}
      data-testid="topology-group"
    >
      <Handle type="target" position={Position.Top} style={{ opacity: 0 }} />
      <Text size="xs" fw={700} px={10} pt={6} tt="uppercase" c="dimmed" truncate>
        {data.label} · {data.count} · {data.members.join(', ')}
      </Text>
    </div>
  );
}

const nodeTypes = { machine: MachineNode, role: RoleGroup };

export function TopologyView() {
  return (
    <ReactFlowProvider>
      <Topology />
    </ReactFlowProvider>
  );
}

function Topology() {
  const plan = useStore(analysisStore, (s) => s.plan);
  const stale = useStore(analysisStore, (s) => s.planIsStale);
  const text = useStore(analysisStore, (s) => s.text);
  const live = useLiveHealth(plan ? text : undefined, plan?.cluster.name);
  const liveStates = live.states;
  const liveStale = live.stale !== undefined;
  const versions = useMemo(() => (live.shown ? nodeVersionLines(live.shown.nodes) : undefined), [live.shown]);
  // A node in the live report whose exporter did not give its version: why, in its tooltip.
  const artifactWhy = (name: string): string | undefined => {
    const a = liveStates?.[name]?.artifact;
    return a && !a.read ? a.why : undefined;
  };
  const nodeStates = useStore(pipelineStore, (s) => s.nodes);
  const drill = useStore(drillsStore, (s) => runningDrill(s, plan?.cluster.name));
  const drillStates = useMemo(() => (drill && plan ? drillNodeStates(plan.nodes.map((n) => n.name), drill) : undefined), [drill, plan]);
  const { colorScheme } = useMantineColorScheme();
  const [layout, setLayout] = useState<{
    key: string;
    value: TopologyLayout;
  }>();
  const [selected, setSelected] = useState<string>();
  const [terminalNode, setTerminalNode] = useState<string>();
  const [groupBy, setGroupBy] = useState<GroupBy>('role');
  const key = plan ? layoutKey(plan, groupBy) : '';

  useEffect(() => {
    if (!plan || layout?.key === key) return;
    let cancelled = false;
    layoutTopology(plan, groupBy).then(
      (value) => !cancelled && setLayout({ key, value }),
      (err: unknown) => console.error('topology layout failed', err),
    );
    return () => {
      cancelled = true;
    };
  }, [plan, key, layout?.key, groupBy]);

  // A different grouping is a different picture: fit it once; re-plans never refit.
  const flow = useReactFlow();
  const fittedGrouping = useRef<GroupBy>('role');
  useEffect(() => {
    if (layout && fittedGrouping.current !== groupBy && layout.key.startsWith(`${groupBy}|`)) {
      fittedGrouping.current = groupBy;
      setTimeout(() => void flow.fitView({ padding: 0.05 }), 50);
    }
  }, [layout, groupBy, flow]);

  // The live-health bar changes height when its state does: fit the picture again then, so no
  // node hides below the fold (refreshes with the same outcome keep the user's pan/zoom).
  const barState = live.states ? (liveStale ? 'stale' : 'live') : (live.health?.unavailable?.code ?? (live.error ? 'error' : 'none'));
  const fittedBar = useRef(barState);
  useEffect(() => {
    if (!layout || fittedBar.current === barState) return;
    fittedBar.current = barState;
    const t = setTimeout(() => void flow.fitView({ padding: 0.05 }), 50);
    return () => clearTimeout(t);
  }, [barState, layout, flow]);

  const domains = useMemo(() => [...new Set(plan?.nodes.map((n) => n.domain) ?? [])], [plan]);
  const { nodes, edges } = useMemo(() => {
    if (!layout || !plan) return { nodes: [] as Node[], edges: [] as Edge[] };
    const byName = new Map(plan.nodes.map((n) => [n.name, n]));
    const nodes: Node[] = [
      ...layout.value.groups.map((g) => ({
        id: g.id,
        type: 'role',
        position: { x: g.x, y: g.y },
        data: { label: g.key, count: g.count, members: g.members },
        style: { width: g.width, height: g.height },
        selectable: false,
        draggable: false,
      })),
      ...layout.value.nodes.map((n) => {
        // Addresses come from the current plan even when the layout is reused.
        const current = byName.get(n.id) ?? n.node;
        return {
          id: n.id,
          type: 'machine',
          parentId: n.group,
          extent: 'parent' as const,
          position: { x: n.x, y: n.y },
          data: {
            node: current,
            state: nodeStates[n.id]?.state,
            ...(liveStates?.[n.id] ? { live: liveStates[n.id]?.state, liveStale: Boolean(liveStale) } : {}),
            ...(versions?.[n.id] ? { version: versions[n.id] } : {}),
            ...(artifactWhy(n.id) ? { artifactWhy: artifactWhy(n.id) } : {}),
            ...(drillStates?.[n.id] ? { drill: drillStates[n.id] } : {}),
            domainColor: DOMAIN_COLORS[domains.indexOf(current.domain) % DOMAIN_COLORS.length] ?? 'gray',
            open: setSelected,
          },
          draggable: false,
        };
      }),
    ];
    const edges: Edge[] = layout.value.edges.map((e) => ({
      id: e.id,
      source: e.source,
      target: e.target,
      animated: false,
      style: { strokeDasharray: '4 3' },
    }));
    return { nodes, edges };
  }, [layout, plan, nodeStates, liveStates, liveStale, versions, drillStates, domains]);

  const selectedNode = plan?.nodes.find((n) => n.name === selected);

  if (!plan) return <Text p="md">No valid plan yet: fix the spec's problems first.</Text>;
  return (
    <div
      style={{
        position: 'absolute',
        inset: 0,
        display: 'flex',
        flexDirection: 'column',
      }}
      data-testid="topology"
    >
      <Group
        gap="xs"
        p="xs"
        style={{
          borderBottom: '1px solid var(--mantine-color-default-border)',
        }}
      >
        <SegmentedControl
          size="xs"
          aria-label="Group nodes by"
          value={groupBy}
          onChange={(v) => setGroupBy(v as GroupBy)}
          data={[
            { value: 'role', label: 'by role' },
            { value: 'domain', label: 'by failure domain' },
          ]}
          data-testid="topology-group-by"
        />
        <Badge variant="filled" data-testid="topology-count">
          {plan.nodes.length} nodes
        </Badge>
        {domains.map((d, i) => (
          <Badge key={d} color={DOMAIN_COLORS[i % DOMAIN_COLORS.length]} variant="light">
            {d}: {plan.nodes.filter((n) => n.domain === d).length}
          </Badge>
        ))}
        <Badge variant="outline" color="gray">
          dashed: hub links on wg1 · wg2 · wg3
        </Badge>
        {stale && (
          <Badge color="orange" variant="light">
            showing the last valid plan: the spec has errors
          </Badge>
        )}
      </Group>
      <LiveHealthBar live={live} cluster={plan.cluster.name} />
      {/* Mounted once the first layout exists, so fitView (applied at init only) sees the
          nodes; later re-plans update the same instance and keep the user's pan/zoom. */}
      <div style={{ flex: 1, position: 'relative' }}>
        {layout && (
          <ReactFlow
            fitView
            fitViewOptions={{ padding: 0.05 }}
            nodes={nodes}
            edges={edges}
            nodeTypes={nodeTypes}
            minZoom={0.2}
            colorMode={colorScheme === 'light' ? 'light' : 'dark'}
            nodesConnectable={false}
            onNodeClick={(_e, n) => n.type === 'machine' && setSelected(n.id)}
            // The node cards are the tab stops (Enter opens details), not xyflow's wrappers.
            nodesFocusable={false}
            edgesFocusable={false}
            proOptions={{ hideAttribution: true }}
            aria-label="Topology graph"
          >
            <Background />
            <Controls showInteractive={false} />
          </ReactFlow>
        )}
      </div>
      <NodeDetails node={selectedNode} {...(selected && liveStates?.[selected] ? { live: liveStates[selected] } : {})} onClose={() => setSelected(undefined)} onOpenTerminal={(n) => {
          setSelected(undefined);
          setTerminalNode(n);
        }} />
      <NodeTerminal node={terminalNode} onClose={() => setTerminalNode(undefined)} />
    </div>
  );
}
