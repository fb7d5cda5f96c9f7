// Wiring: wg1/wg2/wg3 as hub-and-spoke stars around the master (each node's /32 and the
// listen port), plane toggles, and the plane × plane policy matrix with default deny; hovering
// a cell highlights the flow on the stars and the hub's nftables rules that implement it.
import { Badge, Chip, Code, Group, Paper, ScrollArea, Stack, Table, Text, Title, Tooltip } from '@mantine/core';
import { useMemo, useState } from 'react';
import { useStore } from 'zustand';
import type { Plan } from '../../../common/plan/index';
import type { PlaneName } from '../../../common/spec/schema';
import { analysisStore } from '../analysis/store';
import { MeasuredPanel } from './MeasuredPanel';
import type { MatrixCell } from './model';
import { forwardRules, policyMatrix, ruleMatches, spokesFor } from './model';

const PLANE_COLOR: Record<PlaneName, string> = { wg1: 'indigo', wg2: 'teal', wg3: 'orange' };

function PlaneStar({ plan, plane, highlight }: { plan: Plan; plane: Plan['planes'][number]; highlight: 'from' | 'to' | 'both' | undefined }) {
  // Wide enough for "name / address/32" labels on both sides of the ellipse.
  const width = 540;
  const height = 390;
  const cx = width / 2;
  const c = height / 2;
  const spokes = spokesFor(plan, plane.name, 150, 150);
  const hub = plan.nodes.find((n) => n.hub);
  const color = `var(--mantine-color-${PLANE_COLOR[plane.name]}-5)`;
  return (
    <Paper
      withBorder
      p="xs"
      data-testid="wiring-plane"
      data-plane={plane.name}
      data-highlight={highlight ?? 'none'}
      style={{ borderColor: highlight ? color : undefined, borderWidth: highlight ? 3 : 1 }}
      aria-label={`Plane ${plane.name}: ${plane.purpose}, ${plane.cidr}, hub ${plane.hub} ${plane.hubAddress}, listen udp/${plane.listenPort}`}
    >
      <Group justify="space-between" mb={4}>
        <Group gap={6}>
          <Badge color={PLANE_COLOR[plane.name]}>{plane.name}</Badge>
          <Text size="sm" fw={600}>
            {plane.purpose}
          </Text>
        </Group>
        <Text size="xs" ff="monospace">
          {plane.cidr} · udp/{plane.listenPort} · mtu {plane.mtu}
        </Text>
      </Group>
      {highlight && (
        <Text size="xs" c={PLANE_COLOR[plane.name]} fw={700}>
          {highlight === 'from' ? 'source of the hovered flow' : highlight === 'to' ? 'destination of the hovered flow' : 'traffic within this plane'}
        </Text>
      )}
      <svg viewBox={`0 0 ${width} ${height}`} width="100%" role="img" aria-label={`${plane.name} hub and spokes`} style={{ maxHeight: 400 }}>
        {spokes.map((s) => (
          <line key={s.node} x1={cx} y1={c} x2={cx + s.x} y2={c + s.y} stroke={color} strokeOpacity={highlight ? 0.9 : 0.45} strokeWidth={highlight ? 2 : 1} />
        ))}
        {spokes.map((s) => {
          const right = s.x >= -1;
          return (
            <g key={s.node} transform={`translate(${cx + s.x},${c + s.y})`}>
              <circle r={6} fill={color} />
              <text x={right ? 9 : -9} y={-3} fontSize={14} textAnchor={right ? 'start' : 'end'} fill="currentColor">
                {s.node}
              </text>
              <text x={right ? 9 : -9} y={11} fontSize={12} textAnchor={right ? 'start' : 'end'} fill="currentColor" opacity={0.75} fontFamily="monospace">
                {s.address}
              </text>
            </g>
          );
        })}
        <circle cx={cx} cy={c} r={46} fill={color} />
        <text x={cx} y={c - 3} textAnchor="middle" fontSize={15} fontWeight={700} fill="white">
          {hub?.name ?? plane.hub}
        </text>
        <text x={cx} y={c + 13} textAnchor="middle" fontSize={10.5} fill="white" fontFamily="monospace">
          {plane.hubAddress}
        </text>
      </svg>
      <Text size="xs" c="dimmed">
        hub {plane.hub} listens on udp/{plane.listenPort}; {spokes.length} spokes, each one /32 with keepalive 25 s
      </Text>
    </Paper>
  );
}

export function WiringView() {
  const plan = useStore(analysisStore, (s) => s.plan);
  const [enabled, setEnabled] = useState<string[]>(['wg1', 'wg2', 'wg3']);
  const [hover, setHover] = useState<MatrixCell>();
  const matrix = useMemo(() => (plan ? policyMatrix(plan) : []), [plan]);
  const hubRules = useMemo(() => forwardRules(plan?.nodes.find((n) => n.hub)?.nftables ?? ''), [plan]);
  if (!plan) return <Text p="md">No valid plan yet: fix the spec's problems first.</Text>;

  const highlightOf = (plane: PlaneName): 'from' | 'to' | 'both' | undefined => {
    if (!hover) return undefined;
    if (hover.from === plane && hover.to === plane) return 'both';
    if (hover.from === plane) return 'from';
    if (hover.to === plane) return 'to';
    return undefined;
  };

  return (
    <ScrollArea h="100%" data-testid="wiring">
      <Stack p="md" gap="md">
        <Group justify="space-between">
          <Title order={4}>Backplanes</Title>
          <Chip.Group multiple value={enabled} onChange={setEnabled}>
            <Group gap="xs" role="group" aria-label="Show planes">
              {plan.planes.map((p) => (
                <Chip key={p.name} value={p.name} color={PLANE_COLOR[p.name]} size="xs" data-testid={`toggle-${p.name}`}>
                  {p.name}
                </Chip>
              ))}
            </Group>
          </Chip.Group>
        </Group>
        <MeasuredPanel />
        <div style={{ display: 'grid', gridTemplateColumns: 'repeat(auto-fit, minmax(360px, 1fr))', gap: 12 }}>
          {plan.planes
            .filter((p) => enabled.includes(p.name))
            .map((p) => (
              <PlaneStar key={p.name} plan={plan} plane={p} highlight={highlightOf(p.name)} />
            ))}
        </div>
        <Group align="flex-start" gap="md" wrap="wrap">
          <Paper withBorder p="sm" style={{ flex: '0 0 auto' }}>
            <Title order={5} mb={4}>
              Policy between planes
            </Title>
            <Text size="xs" c="dimmed" mb="xs">
              default {plan.policy.defaultInterPlane}; rows = from, columns = to. Hover a cell to see its rule.
            </Text>
            <Table withTableBorder withColumnBorders data-testid="policy-matrix" aria-label="Policy matrix, plane by plane" fz="xs">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>from \ to</Table.Th>
                  {plan.planes.map((p) => (
                    <Table.Th key={p.name}>{p.name}</Table.Th>
                  ))}
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {matrix.map((row) => (
                  <Table.Tr key={row[0]?.from}>
                    <Table.Th>{row[0]?.from}</Table.Th>
                    {row.map((cell) => {
                      const active = hover?.from === cell.from && hover.to === cell.to;
                      const bg = cell.verdict === 'deny' ? 'red' : cell.verdict === 'allow' ? 'green' : 'gray';
                      return (
                        <Tooltip key={cell.to} label={cell.verdict === 'deny' ? 'no rule: dropped and counted (default_deny_inter_plane)' : cell.flows.map((f) => f.description ?? '').join('; ') || 'same plane'}>
                          <Table.Td
                            tabIndex={0}
                            data-testid="policy-cell"
                            data-from={cell.from}
                            data-to={cell.to}
                            data-verdict={cell.verdict}
                            aria-label={`${cell.from} to ${cell.to}: ${cell.verdict}${cell.ports.length ? ` ${cell.ports.join(', ')}` : ''}`}
                            onMouseEnter={() => setHover(cell)}
                            onMouseLeave={() => setHover(undefined)}
                            onFocus={() => setHover(cell)}
                            onBlur={() => setHover(undefined)}
                            style={{
                              minWidth: 130,
                              cursor: 'default',
                              background: `var(--mantine-color-${bg}-light${active ? '-hover' : ''})`,
                              outline: active ? '2px solid var(--mantine-color-indigo-5)' : undefined,
                            }}
                          >
                            <Text size="xs" fw={700}>
                              {cell.verdict === 'same-plane' ? 'same plane' : cell.verdict}
                            </Text>
                            <Text size="xs" ff="monospace">
                              {cell.verdict === 'allow' ? cell.ports.join(', ') : cell.verdict === 'deny' ? '—' : 'all'}
                            </Text>
                          </Table.Td>
                        </Tooltip>
                      );
                    })}
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Paper>
          <Paper withBorder p="sm" style={{ flex: 1, minWidth: 420 }}>
            <Title order={5} mb={4}>
              Hub forwarding rules ({plan.nodes.find((n) => n.hub)?.name})
            </Title>
            <Code block fz="xs" data-testid="hub-rules" style={{ whiteSpace: 'pre-wrap', wordBreak: 'break-all' }}>
              {hubRules.map((line, i) => {
                const on = hover ? ruleMatches(line, hover) : false;
                return (
                  <div key={i} data-highlight={on ? 'true' : 'false'} style={{ background: on ? 'var(--mantine-color-yellow-light)' : undefined, fontWeight: on ? 700 : 400 }}>
                    {line.trim()}
                  </div>
                );
              })}
            </Code>
          </Paper>
        </Group>
      </Stack>
    </ScrollArea>
  );
}
