// Drills: pick a scenario and a node, see the guard's verdict, run it on the namespace lab and
// watch it live (node colours through the phases, a phase timeline), the recorded drills with
// MTTR per scenario against its target (a chart), the report export (JSON, HTML), and what each
// drill declared in the spec will do.
import { Alert, Badge, Box, Button, Code, Group, List, Paper, ScrollArea, Select, Stack, Table, Text, Timeline, Title, Tooltip } from '@mantine/core';
import { useEffect, useMemo, useState } from 'react';
import { useStore } from 'zustand';
import type { ResultOf } from '../../../common/contract/index';
import { CATALOGUE, recoveryTarget, SCENARIOS, scenarioOfDrillName } from '../../../common/drills/catalogue';
import { NODE_DRILL_STATES, nodeStates, phaseBars } from '../../../common/drills/live';
import type { DrillRecord } from '../../../common/drills/timeline';
import type { Plan } from '../../../common/plan/index';
import { api } from '../../shell/api';
import { plural } from '../../../common/text/plural';
import { notifyError } from '../../shell/notify';
import { analysisStore } from '../analysis/store';
import { specStore } from '../spec/store';
import { MttrChart } from './MttrChart';
import { DRILL_STATE_COLOR, drillsStore } from './store';

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



/** The plan's nodes grouped by role, each coloured by its state in the drill followed. */
function DrillTopology({ plan, record }: { plan: Plan; record: DrillRecord | undefined }) {
  const states = nodeStates(
    plan.nodes.map((n) => n.name),
    record,
  );
  const roles = [...new Set(plan.nodes.map((n) => n.role))];
  return (
    <Stack gap={6}>
      <Group gap="md" wrap="wrap" data-testid="drill-topology">
        {roles.map((role) => (
          <Group key={role} gap={4} wrap="wrap">
            <Text size="xs" c="dimmed" tt="uppercase" fw={700}>
              {role}
            </Text>
            {plan.nodes
              .filter((n) => n.role === role)
              .map((n) => {
                const st = states[n.name] ?? 'healthy';
                const target = record?.node === n.name;
                return (
                  <Box
                    key={n.name}
                    data-testid="drill-node"
                    data-node={n.name}
                    data-state={st}
                    aria-label={`${n.name}: ${st}`}
                    px={10}
                    py={4}
                    style={{ border: `2px solid var(--mantine-color-${DRILL_STATE_COLOR[st]}-6)`, borderRadius: 6, background: target ? `var(--mantine-color-${DRILL_STATE_COLOR[st]}-light)` : undefined, transition: 'background 300ms, border-color 300ms' }}
                  >
                    <Group gap={6} wrap="nowrap">
                      <Text size="sm" fw={600}>
                        {n.name}
                      </Text>
                      <Badge size="xs" color={DRILL_STATE_COLOR[st]} variant={target ? 'filled' : 'light'}>
                        {st}
                      </Badge>
                    </Group>
                  </Box>
                );
              })}
          </Group>
        ))}
      </Group>
      <Group gap="xs">
        {NODE_DRILL_STATES.map((st) => (
          <Badge key={st} size="xs" variant="dot" color={DRILL_STATE_COLOR[st]}>
            {st}
          </Badge>
        ))}
      </Group>
    </Stack>
  );
}

/** The phases of one drill on a common time axis (Gantt-style rows); a running phase grows with the clock. */
function PhaseTimeline({ r, now }: { r: DrillRecord; now: number }) {
  const { bars, spanMs } = phaseBars(r, now);
  return (
    <Stack gap={6} data-testid="drill-timeline">
      {r.phases.map((p) => {
        const b = bars.find((x) => x.name === p.name);
        const left = b ? (b.fromMs / spanMs) * 100 : 0;
        const width = b ? Math.max(0.8, ((b.toMs - b.fromMs) / spanMs) * 100) : 0;
        const color = p.state === 'done' ? PHASE_COLOR[p.name] : p.state === 'running' ? PHASE_COLOR[p.name] : 'red';
        return (
          <Group key={p.name} gap="xs" wrap="nowrap" data-testid="drill-phase" data-phase={p.name} data-state={p.state}>
            <Text size="xs" w={84}>
              {p.name}
            </Text>
            <Box style={{ flex: 1, position: 'relative', height: 14, background: 'var(--mantine-color-default-border)', borderRadius: 3 }}>
              {b && (
                <Tooltip label={`${p.state}${p.detail ? `: ${p.detail}` : ''}`} multiline maw={420}>
                  <Box style={{ position: 'absolute', left: `${left}%`, width: `${Math.min(width, 100 - left)}%`, top: 0, bottom: 0, borderRadius: 3, background: `var(--mantine-color-${color}-6)`, opacity: p.state === 'running' ? 0.7 : 1 }} />
                </Tooltip>
              )}
            </Box>
            <Text size="xs" w={120} ta="right" c={p.state === 'done' ? undefined : 'dimmed'}>
              {p.state === 'done' ? sec(p.durationMs) : p.state === 'running' && b ? `running ${sec(b.toMs - b.fromMs)}` : p.state}
            </Text>
          </Group>
        );
      })}
    </Stack>
  );
}

type Check = ResultOf<'drills.check'>;

/** Scenario and node pickers, the guard's verdict, run and stop. */
function RunPanel({ plan }: { plan: Plan }) {
  const text = useStore(specStore, (s) => s.text);
  const running = useStore(drillsStore, (s) => s.running);
  const runError = useStore(drillsStore, (s) => s.runError);
  const [scenario, setScenario] = useState<string>('kill-etcd-member');
  const [node, setNode] = useState<string | undefined>();
  const [check, setCheck] = useState<Check | { error: string } | undefined>();
  useEffect(() => {
    let live = true;
    const t = setTimeout(() => {
      api()
        .invoke('drills.check', { text, scenario, ...(node ? { node } : {}) })
        .then((c) => live && setCheck(c))
        .catch((err: Error) => live && setCheck({ error: err.message }));
    }, 150);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [text, scenario, node, plan]);
  const c = check && 'scenario' in check ? check : undefined;
  const target = c?.node;
  const allowed = c !== undefined && c.reasons.length === 0;
  const runnable = allowed && !c.cannotRun && !running && target !== undefined;
  const run = async () => {
    if (!target) return;
    drillsStore.getState().started();
    try {
      const r = await api().invoke('drills.run', { text, scenario, node: target });
      drillsStore.getState().ended(r);
    } catch (err) {
      drillsStore.getState().ended(undefined, (err as Error).message);
      notifyError('The drill could not run', err);
    }
  };
  const stop = async () => {
    try {
      await api().invoke('drills.cancel', {});
    } catch (err) {
      notifyError('Could not stop the drill', err);
    }
  };
  return (
    <Paper withBorder p="sm" data-testid="drill-run-panel">
      <Title order={5} mb="xs">
        Run a drill
      </Title>
      <Group align="flex-end" gap="sm" wrap="wrap">
        <Select
          label="Scenario"
          data-testid="drill-scenario"
          w={260}
          value={scenario}
          allowDeselect={false}
          onChange={(v) => {
            if (!v) return;
            setScenario(v);
            setNode(undefined);
          }}
          data={CATALOGUE.map((s) => ({ value: s, label: s }))}
          disabled={running}
        />
        <Select
          label="Node"
          data-testid="drill-node-select"
          w={200}
          value={target ?? null}
          placeholder={c && c.eligible.length === 0 ? 'no eligible node' : 'pick a node'}
          allowDeselect={false}
          onChange={(v) => v && setNode(v)}
          data={plan.nodes.map((n) => ({ value: n.name, label: `${n.name} (${n.role})` }))}
          disabled={running}
        />
        {running ? (
          <Button color="red" variant="light" onClick={() => void stop()} data-testid="drill-stop">
            Stop the drill
          </Button>
        ) : (
          <Button onClick={() => void run()} disabled={!runnable} data-testid="drill-run">
            Run on the namespace lab
          </Button>
        )}
      </Group>
      <Text size="xs" c="dimmed" mt={6}>
        {SCENARIOS[scenario as keyof typeof SCENARIOS]?.summary}
        {c && c.eligible.length > 0 ? ` · eligible here: ${c.eligible.join(', ')}` : ''}
      </Text>
      <Box mt="sm" data-testid="drill-guard" data-ok={check ? String(allowed) : 'unknown'}>
        {!check && <Text size="sm">Asking the guard…</Text>}
        {check && 'error' in check && (
          <Alert color="red" title="The guard could not be asked">
            {check.error}
          </Alert>
        )}
        {c && c.reasons.length > 0 && (
          <Alert color="red" title={`The guard refuses ${c.scenario}${target ? ` on ${target}` : ''}`}>
            <List size="sm">
              {c.reasons.map((r) => (
                <List.Item key={r.code + r.message}>{r.message}</List.Item>
              ))}
            </List>
          </Alert>
        )}
        {c && allowed && (
          <Alert color="green" variant="light" title={`The guard allows ${c.scenario} on ${target}`}>
            <Text size="sm">The node exists, is not the hub and fits the scenario. Health, convergence and etcd quorum without {target} are checked on the lab just before the fault (a refusal then is recorded too).</Text>
          </Alert>
        )}
        {c?.cannotRun && (
          <Alert color="yellow" mt="xs" title="Cannot run here" data-testid="drill-cannot-run">
            {c.cannotRun}
          </Alert>
        )}
        {runError && !running && (
          <Alert color="red" mt="xs" title="The last drill from this window did not run">
            {runError}
          </Alert>
        )}
      </Box>
    </Paper>
  );
}

/** The drill followed live (started here) or else the last recorded one: nodes, phases, log. */
function LivePanel({ plan, record, live, log }: { plan: Plan; record: DrillRecord; live: boolean; log: readonly string[] }) {
  const [now, setNow] = useState(() => Date.now());
  const running = record.status === 'running';
  useEffect(() => {
    if (!running) return;
    const t = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(t);
  }, [running]);
  return (
    <Paper withBorder p="sm" data-testid="drill-live" data-status={record.status}>
      <Group justify="space-between" mb="xs">
        <Title order={5}>
          {running ? 'Running' : live ? 'Just ran' : 'Last drill'}: {record.scenario} on {record.node}
          <Text span size="xs" c="dimmed" ml="xs">
            {record.target === 'lab' ? 'namespace lab' : 'deployed cluster'} · {record.id}
          </Text>
        </Title>
        {running ? <Badge color="blue">running</Badge> : resultBadge(record)}
      </Group>
      <DrillTopology plan={plan} record={record} />
      <Box mt="sm">
        <PhaseTimeline r={record} now={running ? now : record.endedAtMs ?? now} />
      </Box>
      <Text size="xs" c="dimmed" mt="xs">
        MTTR {sec(record.mttrMs)} · target {record.goal.minutes} min ({record.goal.source}) · {plural(record.phases.reduce((n, p) => n + p.commands.length + (p.commandsOmitted ?? 0), 0), 'command')}
      </Text>
      {record.error && (
        <Alert color="red" mt="xs" title={`Stopped in ${record.error.phase} on ${record.error.node}`}>
          <Text size="sm">{record.error.message}</Text>
          {record.error.command && <Code block>{record.error.command.join(' ')}</Code>}
          {record.error.stderrTail && (
            <Text size="xs" ff="monospace">
              {record.error.stderrTail}
            </Text>
          )}
          {record.next && <Text size="sm">next: {record.next}</Text>}
        </Alert>
      )}
      {record.status === 'refused' && (
        <Alert color="red" mt="xs" title="Refused by the guard">
          <List size="sm">
            {record.guard.reasons.map((r) => (
              <List.Item key={r.code + r.message}>{r.message}</List.Item>
            ))}
          </List>
        </Alert>
      )}
      {log.length > 0 && (
        <Code block mt="xs" data-testid="drill-log" style={{ maxHeight: 140, overflow: 'auto' }}>
          {log.slice(-8).join('\n')}
        </Code>
      )}
    </Paper>
  );
}

function download(name: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

async function exportReport(cluster: string, kind: 'json' | 'html'): Promise<void> {
  try {
    const r = await api().invoke('drills.report', { cluster });
    download(`${cluster}-drills.${kind}`, kind === 'json' ? r.json : r.html, kind === 'json' ? 'application/json' : 'text/html');
  } catch (err) {
    notifyError('Could not export the drill report', err);
  }
}

export function DrillsView() {
  const spec = useStore(analysisStore, (s) => s.spec);
  const plan = useStore(analysisStore, (s) => s.plan);
  const liveState = useStore(drillsStore, (s) => s.live);
  const nonce = useStore(drillsStore, (s) => s.historyNonce);
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
  }, [cluster, nonce]);
  const followed = liveState.current ? liveState.records[liveState.current] : undefined;
  const records = useMemo(() => history?.records ?? [], [history]);
  if (!spec || !plan) return <Text p="md">No valid plan yet: fix the spec's problems first.</Text>;
  const sh = spec.spec.selfHealing;
  const detectSeconds = sh.detect.heartbeatSeconds * sh.detect.missedHeartbeats;
  const shown = followed && followed.cluster === cluster ? followed : [...records].reverse().find((r) => r.status !== 'refused');
  return (
    <ScrollArea h="100%">
      <Stack p="md" gap="md" data-testid="drills">
        <Alert color="blue" title="Drills run on the namespace lab on this machine" data-testid="drills-where">
          A copy of this plan built from network namespaces here (real planes, enrollment, one etcd member per planned member), removed when the drill ends. It runs partition-node and kill-etcd-member; the VM scenarios need a hypervisor, and your deployed cluster cannot be drilled yet. Needs the workbench started as root; from a terminal: <code>kubedos drill SPEC --scenario NAME --lab</code>.
        </Alert>
        <RunPanel plan={plan} />
        {shown && <LivePanel plan={plan} record={shown} live={shown === followed} log={liveState.log[shown.id] ?? []} />}
        {history?.error && (
          <Alert color="red" title="Could not read the drill history">
            {history.error}
          </Alert>
        )}
        <Paper withBorder p="sm">
          <Group justify="space-between" mb="xs">
            <Title order={5}>MTTR per scenario against its target</Title>
          </Group>
          <MttrChart records={records} />
        </Paper>
        <Paper withBorder p="sm">
          <Group justify="space-between" mb="xs">
            <Title order={5}>Recorded drills</Title>
            <Group gap="xs">
              <Text size="xs" c="dimmed">
                {history ? `${history.total} recorded${history.total > records.length ? `, the last ${records.length} shown` : ''}` : 'reading…'}
              </Text>
              <Button size="compact-xs" variant="default" disabled={!cluster || records.length === 0} onClick={() => cluster && void exportReport(cluster, 'json')} data-testid="drill-export-json">
                Export JSON
              </Button>
              <Button size="compact-xs" variant="default" disabled={!cluster || records.length === 0} onClick={() => cluster && void exportReport(cluster, 'html')} data-testid="drill-export-html">
                Export HTML
              </Button>
            </Group>
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
