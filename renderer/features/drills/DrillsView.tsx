// Drills: the recorded drills of this cluster (kubedos drill / heal write them), MTTR per
// scenario against the spec's target, the phase timeline of the last drill, and what each drill
// declared in the spec will do. Drills are started from the command line for now.
import { Alert, Badge, Box, Group, Paper, Progress, ScrollArea, Stack, Table, Text, Timeline, Title, Tooltip } from '@mantine/core';
import { useEffect, useState } from 'react';
import { useStore } from 'zustand';
import { recoveryTarget, scenarioOfDrillName } from '../../../common/drills/catalogue';
import type { DrillRecord } from '../../../common/drills/timeline';
import type { Plan } from '../../../common/plan/index';
import { api } from '../../shell/api';
import { analysisStore } from '../analysis/store';

const TARGET_ROLE: Record<string, string | undefined> = {
  'delete-worker-vm': 'worker',
  'delete-control-plane-vm': 'control-plane',
  'delete-etcd-vm': 'etcd',
  'delete-lb-vm': 'lb',
  'delete-storage-vm': 'storage',
  'stop-master-vm': 'master',
};

function targets(plan: Plan, drill: string): string {
  const role = TARGET_ROLE[drill];
  if (role) return plan.nodes.filter((n) => n.role === role).map((n) => n.name).join(', ') || `no ${role} node in this plan`;
  if (drill === 'partition-plane-wg3' || drill === 'partition-node') return 'one node other than the master: all its planes cut at the hub';
  if (drill === 'kill-etcd-member') return 'one etcd member';
  if (drill === 'power-off-node') return 'one node other than the master';
  if (drill === 'rotate-wireguard-keys') return 'every node, all three planes';
  return 'unknown scenario';
}

const sec = (ms: number | undefined): string => (ms === undefined ? '—' : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60_000).toFixed(1)} min`);
const PHASE_COLOR: Record<string, string> = { inject: 'red', detect: 'orange', fence: 'yellow', replace: 'blue', reintegrate: 'cyan', healthy: 'green' };

function resultBadge(r: DrillRecord) {
  if (r.status === 'passed') return <Badge color="green">pass</Badge>;
  if (r.status === 'failed') return <Badge color="red">{r.error ? 'failed' : 'over target'}</Badge>;
  return <Badge color={r.status === 'interrupted' ? 'orange' : 'gray'}>{r.status}</Badge>;
}

/** MTTR of each scenario's drills against its target: one bar per drill, the target is the full width. */
function MttrByScenario({ records }: { records: DrillRecord[] }) {
  const measured = records.filter((r) => r.mttrMs !== undefined);
  const scenarios = [...new Set(measured.map((r) => r.scenario))].sort();
  if (!scenarios.length) return <Text size="sm">No drill has reached a healthy cluster yet, so there is no MTTR to show.</Text>;
  return (
    <Stack gap="sm" data-testid="mttr-by-scenario">
      {scenarios.map((s) => {
        const rs = measured.filter((r) => r.scenario === s).slice(-10);
        const goalMs = (rs.at(-1)?.goal.minutes ?? 1) * 60_000;
        return (
          <Box key={s}>
            <Group justify="space-between" mb={4}>
              <Text size="sm" fw={500}>
                {s}
              </Text>
              <Text size="xs" c="dimmed">
                target {rs.at(-1)?.goal.minutes} min · last {rs.length} run{rs.length === 1 ? '' : 's'}
              </Text>
            </Group>
            <Stack gap={3}>
              {rs.map((r) => (
                <Tooltip key={r.id} label={`${r.id}: MTTR ${sec(r.mttrMs)} of ${r.goal.minutes} min (${Math.round(((r.mttrMs ?? 0) / goalMs) * 100)} %)`}>
                  <Group gap="xs" wrap="nowrap">
                    <Progress value={Math.max(1, Math.min(100, ((r.mttrMs ?? 0) / goalMs) * 100))} color={r.pass ? 'green' : 'red'} size="lg" style={{ flex: 1 }} aria-label={`${s} MTTR`} />
                    <Text size="xs" w={70} ta="right">
                      {sec(r.mttrMs)}
                    </Text>
                  </Group>
                </Tooltip>
              ))}
            </Stack>
          </Box>
        );
      })}
    </Stack>
  );
}

/** The phases of one drill on a common time axis (Gantt-style rows). */
function PhaseTimeline({ r }: { r: DrillRecord }) {
  const started = r.phases.filter((p) => p.startedAtMs !== undefined);
  const t0 = Math.min(...started.map((p) => p.startedAtMs as number));
  const t1 = Math.max(...started.map((p) => p.endedAtMs ?? p.startedAtMs ?? t0));
  const span = Math.max(1, t1 - t0);
  return (
    <Stack gap={6} data-testid="last-drill-timeline">
      {r.phases.map((p) => {
        const left = p.startedAtMs !== undefined ? ((p.startedAtMs - t0) / span) * 100 : 0;
        const width = p.durationMs !== undefined ? Math.max(0.8, (p.durationMs / span) * 100) : 0;
        return (
          <Group key={p.name} gap="xs" wrap="nowrap">
            <Text size="xs" w={84}>
              {p.name}
            </Text>
            <Box style={{ flex: 1, position: 'relative', height: 14, background: 'var(--mantine-color-default-border)', borderRadius: 3 }}>
              {p.startedAtMs !== undefined && (
                <Tooltip label={`${p.state}: ${p.detail ?? ''}`} multiline maw={420}>
                  <Box style={{ position: 'absolute', left: `${left}%`, width: `${width}%`, top: 0, bottom: 0, borderRadius: 3, background: `var(--mantine-color-${p.state === 'done' ? PHASE_COLOR[p.name] : 'red'}-6)` }} />
                </Tooltip>
              )}
            </Box>
            <Text size="xs" w={120} ta="right" c={p.state === 'done' ? undefined : 'dimmed'}>
              {p.state === 'done' ? sec(p.durationMs) : p.state}
            </Text>
          </Group>
        );
      })}
    </Stack>
  );
}

export function DrillsView() {
  const spec = useStore(analysisStore, (s) => s.spec);
  const plan = useStore(analysisStore, (s) => s.plan);
  const cluster = spec?.metadata.name;
  const [history, setHistory] = useState<{ records: DrillRecord[]; total: number; error?: string } | undefined>();
  useEffect(() => {
    if (!cluster) return;
    let live = true;
    api()
      .invoke('drills.history', { cluster })
      .then((h) => live && setHistory({ records: h.records, total: h.total }))
      .catch((err: Error) => live && setHistory({ records: [], total: 0, error: err.message }));
    return () => {
      live = false;
    };
  }, [cluster]);
  if (!spec || !plan) return <Text p="md">No valid plan yet: fix the spec's problems first.</Text>;
  const sh = spec.spec.selfHealing;
  const detectSeconds = sh.detect.heartbeatSeconds * sh.detect.missedHeartbeats;
  const records = history?.records ?? [];
  const last = [...records].reverse().find((r) => r.status !== 'refused');
  return (
    <ScrollArea h="100%">
      <Stack p="md" gap="md" data-testid="drills">
        <Alert color="blue" title="Drills run from the command line" data-testid="drills-cli">
          Start a drill with <code>kubedos drill SPEC --scenario kill-etcd-member --lab</code> (or partition-node), SPEC being this cluster's spec file. It runs on a copy of this plan in network namespaces; a deployed cluster cannot be drilled yet. Every drill is recorded and shows up here.
        </Alert>
        {history?.error && (
          <Alert color="red" title="Could not read the drill history">
            {history.error}
          </Alert>
        )}
        <Paper withBorder p="sm">
          <Group justify="space-between" mb="xs">
            <Title order={5}>Recorded drills</Title>
            <Text size="xs" c="dimmed">
              {history ? `${history.total} recorded${history.total > records.length ? `, the last ${records.length} shown` : ''}` : 'reading…'}
            </Text>
          </Group>
          {records.length === 0 ? (
            <Text size="sm">No drill has been recorded for {cluster} yet.</Text>
          ) : (
            <Table striped highlightOnHover data-testid="drill-history">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>started</Table.Th>
                  <Table.Th>scenario</Table.Th>
                  <Table.Th>node</Table.Th>
                  <Table.Th>where</Table.Th>
                  <Table.Th>detect</Table.Th>
                  <Table.Th>MTTR</Table.Th>
                  <Table.Th>target</Table.Th>
                  <Table.Th>result</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {[...records].reverse().map((r) => (
                  <Table.Tr key={r.id}>
                    <Table.Td>{new Date(r.startedAtMs).toLocaleString()}</Table.Td>
                    <Table.Td>
                      {r.scenario}
                      {r.kind === 'heal' ? ' (heal)' : ''}
                    </Table.Td>
                    <Table.Td>{r.node}</Table.Td>
                    <Table.Td>{r.target === 'lab' ? 'namespace lab' : 'cluster'}</Table.Td>
                    <Table.Td>{r.phases[1]?.state === 'done' ? sec(r.phases[1].durationMs) : '—'}</Table.Td>
                    <Table.Td>{sec(r.mttrMs)}</Table.Td>
                    <Table.Td>{r.goal.minutes} min</Table.Td>
                    <Table.Td>
                      <Tooltip label={r.error ? `${r.error.phase} on ${r.error.node}: ${r.error.message}${r.next ? ` — next: ${r.next}` : ''}` : r.guard.reasons.map((x) => x.message).join('; ') || 'within target'} multiline maw={480}>
                        {resultBadge(r)}
                      </Tooltip>
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )}
        </Paper>
        {records.length > 0 && (
          <Group align="stretch" grow>
            <Paper withBorder p="sm">
              <Title order={5} mb="xs">
                MTTR against the target, per scenario
              </Title>
              <MttrByScenario records={records} />
            </Paper>
            {last && (
              <Paper withBorder p="sm">
                <Group justify="space-between" mb="xs">
                  <Title order={5}>
                    Last drill: {last.scenario} on {last.node}
                  </Title>
                  {resultBadge(last)}
                </Group>
                <PhaseTimeline r={last} />
                <Text size="xs" c="dimmed" mt="xs">
                  MTTR {sec(last.mttrMs)} · target {last.goal.minutes} min ({last.goal.source}) · {last.phases.reduce((n, p) => n + p.commands.length + (p.commandsOmitted ?? 0), 0)} commands
                  {last.next ? ` · next: ${last.next}` : ''}
                </Text>
              </Paper>
            )}
          </Group>
        )}
        <Title order={5}>What the spec's drills will do</Title>
        {spec.spec.acceptance.drills.length === 0 && <Text size="sm">The spec declares no drills (spec.acceptance.drills). MTTR target: {spec.spec.acceptance.mttrTargetMinutes} min.</Text>}
        {spec.spec.acceptance.drills.map((d) => {
          const m = scenarioOfDrillName(d.name);
          return (
            <Paper withBorder p="sm" key={d.name}>
              <Group justify="space-between" mb="xs">
                <Title order={5}>{d.name}</Title>
                <Badge variant="light">expect recovery ≤ {'scenario' in m ? recoveryTarget(spec.spec.acceptance, m.scenario).minutes : d.expectRecoveryMinutes} min</Badge>
              </Group>
              <Text size="xs" c="dimmed" mb="xs">
                target: {targets(plan, d.name)}
                {'refused' in m ? ` — no drill runs this: ${m.refused}` : ''}
              </Text>
              <Timeline bulletSize={16} lineWidth={2}>
                <Timeline.Item title="detect">
                  <Text size="xs">
                    {sh.detect.signals.join(', ')} every {sh.detect.heartbeatSeconds} s; declared failed after {sh.detect.missedHeartbeats} misses (~{detectSeconds} s)
                  </Text>
                </Timeline.Item>
                <Timeline.Item title="fence">
                  <Text size="xs">
                    {sh.fence.after === 'detect' ? 'automatically after detection' : 'after a manual confirmation'}: {sh.fence.actions.join(' → ')} (drain timeout {sh.fence.drainTimeoutSeconds} s)
                  </Text>
                </Timeline.Item>
                <Timeline.Item title="replace">
                  <Text size="xs">
                    {sh.replace.automatic ? 'automatic' : 'on approval'}, at most {sh.replace.maxConcurrent} at a time, from the same artifact (same VMID, MAC, addresses from the plan)
                  </Text>
                </Timeline.Item>
                <Timeline.Item title="reintegrate">
                  <Text size="xs">enroll again through the master's window with a fresh single-use token, planes re-peered, etcd member added; MTTR measured from the fault to a healthy cluster</Text>
                </Timeline.Item>
              </Timeline>
            </Paper>
          );
        })}
      </Stack>
    </ScrollArea>
  );
}
