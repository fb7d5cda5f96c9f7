// Pipeline: the DAG's stages with state, progress and duration, the failure with its hint,
// run and cancel (cancel aborts the runner's AbortSignal in main), the last upgrade of the
// cluster from the foundry's slot record (UpgradePanel), and the live logs.
import { Alert, Badge, Button, Code, Group, Progress, Table, Text, Title } from '@mantine/core';
import { IconPlayerPlay, IconPlayerStop } from '@tabler/icons-react';
import { memo, useEffect, useState } from 'react';
import { useStore } from 'zustand';
import type { StageState } from '../../../common/pipeline/events';
import { cancelPipeline, runPlanPipeline } from './actions';
import { LogTerminal } from './LogTerminal';
import { NodeStrip } from './NodeStrip';
import { pipelineStore } from './store';
import { UpgradePanel } from './UpgradePanel';

const STATE_COLOR: Record<StageState, string> = { pending: 'gray', queued: 'gray', running: 'blue', success: 'green', failed: 'red', skipped: 'yellow', aborted: 'orange' };

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

// The terminal manages its own updates (LogBuffer + animation frames): never re-render it
// because a stage's progress changed.
const Logs = memo(LogTerminal);

/** Live elapsed time of a running stage (its final duration comes from the runner). */
function Elapsed({ since }: { since: string }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(t);
  }, []);
  return <>{formatDuration(Math.max(0, now - Date.parse(since)))}…</>;
}

export function PipelineView() {
  const s = useStore(pipelineStore);
  const running = s.status === 'running' || s.status === 'starting' || s.status === 'cancelling';
  return (
    <div style={{ display: 'flex', flexDirection: 'column', height: '100%' }}>
      <Group justify="space-between" p="xs">
        <Group gap="xs">
          <Button size="xs" leftSection={<IconPlayerPlay size={14} />} onClick={() => void runPlanPipeline()} disabled={running} data-testid="run-plan">
            Run plan pipeline
          </Button>
          <Button size="xs" color="red" variant="light" leftSection={<IconPlayerStop size={14} />} onClick={() => void cancelPipeline()} disabled={!running || !s.runId} data-testid="cancel-run">
            Cancel
          </Button>
          <Text size="xs" c="dimmed" data-testid="run-kind">
            {s.pipeline === 'deploy'
              ? 'deploy: the whole DAG in the engine, journaled (a rerun resumes); nodes below take the colour of their last state — click one for its logs'
              : 'validate → plan run in the engine (main), exactly what `kubedos plan` does; deploy from the Deploy view.'}
          </Text>
        </Group>
        <Group gap="xs">
          <Badge data-testid="run-status" color={s.status === 'failed' ? 'red' : s.status === 'done' ? 'green' : s.status === 'cancelled' ? 'orange' : 'blue'}>
            {s.status}
          </Badge>
          {s.runId && (
            <Text size="xs" ff="monospace" c="dimmed">
              run {s.runId.slice(0, 8)} · {formatDuration(s.durationMs)}
            </Text>
          )}
        </Group>
      </Group>
      <Table fz="xs" px="xs" verticalSpacing={4} data-testid="stages" aria-label="Stages">
        <Table.Thead>
          <Table.Tr>
            <Table.Th w={140}>stage</Table.Th>
            <Table.Th w={90}>state</Table.Th>
            <Table.Th>progress</Table.Th>
            <Table.Th w={90}>duration</Table.Th>
            <Table.Th>note</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {s.order.length === 0 && (
            <Table.Tr>
              <Table.Td colSpan={5}>
                <Text size="xs" c="dimmed">
                  No run yet. Run the plan pipeline (Ctrl+Enter) to validate and plan the spec in the editor.
                </Text>
              </Table.Td>
            </Table.Tr>
          )}
          {s.order.map((name) => {
            const st = s.stages[name];
            if (!st) return null;
            return (
              <Table.Tr key={name} data-testid="stage-row" data-stage={name} data-state={st.state}>
                <Table.Td fw={600}>{name}</Table.Td>
                <Table.Td>
                  <Badge size="xs" color={STATE_COLOR[st.state]} variant={st.state === 'running' ? 'filled' : 'light'}>
                    {st.state}
                  </Badge>
                </Table.Td>
                <Table.Td>
                  <Progress value={st.progress * 100} size="sm" color={STATE_COLOR[st.state]} aria-label={`${name} progress ${Math.round(st.progress * 100)}%`} />
                </Table.Td>
                <Table.Td>{st.state === 'running' && st.startedAt && st.durationMs === undefined ? <Elapsed since={st.startedAt} /> : formatDuration(st.durationMs)}</Table.Td>
                <Table.Td c="dimmed">
                  {st.attempt > 0 ? `attempt ${st.attempt + 1} ` : ''}
                  {st.reason ?? st.message ?? ''}
                </Table.Td>
              </Table.Tr>
            );
          })}
        </Table.Tbody>
      </Table>
      {s.failures.map((f, i) => (
        <Alert key={i} color="red" mx="xs" my={4} title={`${f.stage}${f.node ? ` on ${f.node}` : ''}: ${f.message}`} data-testid="failure">
          {f.command && (
            <Text size="xs">
              command: <Code>{f.command.join(' ')}</Code>
              {f.exitCode !== undefined && f.exitCode !== null ? ` (exit ${f.exitCode})` : ''}
            </Text>
          )}
          {f.stderrTail && (
            <Code block fz="xs" mt={4}>
              {f.stderrTail}
            </Code>
          )}
          {f.hint && (
            <Text size="xs" mt={4}>
              next: {f.hint}
            </Text>
          )}
        </Alert>
      ))}
      <UpgradePanel />
      <Title order={6} px="xs" pt="xs">
        Nodes
      </Title>
      <NodeStrip />
      <Title order={6} px="xs" pt="xs">
        Logs
      </Title>
      <div style={{ flex: 1, minHeight: 200 }}>
        <Logs />
      </div>
    </div>
  );
}
