// Drills: pick a scenario and a node, see the guard's verdict, run it on the namespace lab or on
// the deployed cluster (after a confirmation naming what it will do), heal the cluster, and
// watch it live (node colours through the phases, a phase timeline), the recorded drills with
// MTTR per scenario against its target (a chart), the report export (JSON, HTML), and what each
// drill declared in the spec will do.
import { Alert, Badge, Box, Button, Code, Group, List, Paper, ScrollArea, SegmentedControl, Select, Stack, Table, Text, Timeline, Title, Tooltip } from '@mantine/core';
import { useEffect, useMemo, useState } from 'react';
import { useStore } from 'zustand';
import type { ResultOf } from '../../../common/contract/index';
import { CATALOGUE, recoveryTarget, SCENARIOS, scenarioOfDrillName } from '../../../common/drills/catalogue';
import { NODE_DRILL_STATES, nodeStates, phaseBars } from '../../../common/drills/live';
import type { DrillRecord } from '../../../common/drills/timeline';
import { detectSourceLabel } from '../../../common/drills/timeline';
import { ConfirmAction } from '../../components/ConfirmAction';
import { targetLabel, targetOf, wizardStore } from '../deploy/store';
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



/** How the drill's fault was detected: by whom (the hub's watcher or the engine's own probes) and the detect phase's line. */
function detection(r: DrillRecord): { by: string; line: string | undefined; state: string } {
  const d = r.phases.find((p) => p.name === 'detect');
  return { by: detectSourceLabel(r.detectedBy), line: d?.detail, state: d?.state ?? 'pending' };
}

function DetectionLine({ r }: { r: DrillRecord }) {
  const d = detection(r);
  if (d.state === 'pending' || d.state === 'skipped') return null;
  return (
    <Text size="xs" mt={6} data-testid="drill-detected-by" data-by={r.detectedBy ?? ''} style={{ overflowWrap: 'anywhere' }}>
      <Text span fw={700} size="xs">
        {d.state === 'running' ? 'Detecting: ' : d.by ? `Detected by the ${d.by}: ` : 'Detection: '}
      </Text>
      {d.state === 'running' ? "the hub watcher's report first, the engine's own probes if it is stale or absent" : (d.line ?? d.state)}
    </Text>
  );
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
type Where = 'lab' | 'cluster';

/** Scenario and node pickers, the guard's verdict, run and stop. */
function RunPanel({ plan, where, setWhere }: { plan: Plan; where: Where; setWhere: (w: Where) => void }) {
  const text = useStore(specStore, (s) => s.text);
  const running = useStore(drillsStore, (s) => s.running);
  const runError = useStore(drillsStore, (s) => s.runError);
  const target = targetOf(useStore(wizardStore));
  const [scenario, setScenario] = useState<string>('kill-etcd-member');
  const [node, setNode] = useState<string | undefined>();
  const [check, setCheck] = useState<Check | { error: string } | undefined>();
  const [confirm, setConfirm] = useState<'drill' | 'heal' | undefined>();
  const [heal, setHeal] = useState<ResultOf<'drills.heal'> | undefined>();
  const targetKey = targetLabel(target);
  useEffect(() => {
    let live = true;
    const t = setTimeout(() => {
      api()
        .invoke('drills.check', { text, scenario, ...(node ? { node } : {}), ...(where === 'cluster' ? { where, ...(target ? { target } : {}) } : {}) })
        .then((c) => live && setCheck(c))
        .catch((err: Error) => live && setCheck({ error: err.message }));
    }, 150);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [text, scenario, node, plan, where, targetKey]);
  const c = check && 'scenario' in check && (check.where ?? 'lab') === where ? check : undefined;
  const drilled = c?.node;
  const allowed = c !== undefined && c.reasons.length === 0;
  const runnable = allowed && !c.cannotRun && !running && drilled !== undefined;
  const cluster = plan.cluster.name;
  const vm = plan.nodes.find((n) => n.name === drilled);
  const run = async () => {
    if (!drilled) return;
    setConfirm(undefined);
    drillsStore.getState().started();
    try {
      const r = await api().invoke('drills.run', { text, scenario, node: drilled, ...(where === 'cluster' && target ? { where, target, allowDestroy: c?.destroys === true } : {}) });
      drillsStore.getState().ended(r);
    } catch (err) {
      drillsStore.getState().ended(undefined, (err as Error).message);
      notifyError('The drill could not run', err);
    }
  };
  const healNow = async () => {
    if (!target) return;
    setConfirm(undefined);
    setHeal(undefined);
    drillsStore.getState().started();
    try {
      const h = await api().invoke('drills.heal', { text, target });
      setHeal(h);
      drillsStore.getState().ended(h.records.at(-1));
    } catch (err) {
      drillsStore.getState().ended(undefined, (err as Error).message);
      notifyError('The heal could not run', err);
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
      <Group justify="space-between" mb="xs" wrap="wrap">
        <Title order={5}>Run a drill</Title>
        <SegmentedControl
          size="xs"
          data-testid="drill-where"
          value={where}
          onChange={(v) => setWhere(v as Where)}
          disabled={running}
          data={[
            { value: 'lab', label: 'Namespace lab (this machine)' },
            { value: 'cluster', label: `Deployed cluster${target ? ` on ${targetKey}` : ''}` },
          ]}
        />
      </Group>
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
          value={drilled ?? null}
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
          <Button onClick={() => (where === 'cluster' ? setConfirm('drill') : void run())} disabled={!runnable} data-testid="drill-run" color={where === 'cluster' ? 'red' : undefined}>
            {where === 'cluster' ? 'Run on the deployed cluster…' : 'Run on the namespace lab'}
          </Button>
        )}
        {where === 'cluster' && !running && (
          <Tooltip label="Probe every node now and repair each unhealthy one (detect, fence, replace, reintegrate, healthy); never destroys a VM" multiline maw={320}>
            <Button variant="default" onClick={() => setConfirm('heal')} disabled={!target} data-testid="drill-heal">
              Heal…
            </Button>
          </Tooltip>
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
          <Alert color="red" title={`The guard refuses ${c.scenario}${drilled ? ` on ${drilled}` : ''}`}>
            <List size="sm">
              {c.reasons.map((r) => (
                <List.Item key={r.code + r.message}>{r.message}</List.Item>
              ))}
            </List>
          </Alert>
        )}
        {c && allowed && (
          <Alert color="green" variant="light" title={`The guard allows ${c.scenario} on ${drilled}`}>
            <Text size="sm">
              The node exists, is not the hub and fits the scenario. Health, convergence and etcd quorum without {drilled} are checked on {where === 'cluster' ? `${cluster} itself` : 'the lab'} just before the fault (a refusal then is recorded too).
              {where === 'cluster' && c.destroys && !c.cannotRun ? ` ${c.scenario} destroys ${drilled}'s VM: you confirm it by typing the cluster's name${c.allowDestroyBySpec ? ' (the spec allows it: stages.drill.allowDestroy)' : ' (the spec does not set stages.drill.allowDestroy; confirming allows it for this drill, like --allow-destroy)'}.` : ''}
            </Text>
          </Alert>
        )}
        {c?.cannotRun && (
          <Alert color="yellow" mt="xs" title={where === 'cluster' ? `Cannot run on ${cluster}` : 'Cannot run here'} data-testid="drill-cannot-run">
            {c.cannotRun}
          </Alert>
        )}
        {heal && !running && (
          <Alert color={heal.cannot.length || heal.records.some((r) => r.status !== 'passed') ? 'red' : 'green'} mt="xs" title={heal.before.healthy ? `${cluster} was healthy: nothing to repair` : `Heal of ${cluster}: ${plural(heal.records.length, 'repair')}`} data-testid="drill-heal-result" withCloseButton onClose={() => setHeal(undefined)}>
            <List size="sm">
              {heal.records.map((r) => (
                <List.Item key={r.id}>
                  {r.node}: {r.status}
                  {r.mttrMs !== undefined ? ` in ${sec(r.mttrMs)}` : ''}
                </List.Item>
              ))}
              {heal.cannot.map((x) => (
                <List.Item key={x.node}>
                  cannot repair {x.node}: {x.why}
                </List.Item>
              ))}
            </List>
          </Alert>
        )}
        {runError && !running && (
          <Alert color="red" mt="xs" title="The last drill from this window did not run">
            {runError}
          </Alert>
        )}
      </Box>
      <ConfirmAction
        opened={confirm === 'drill' && c !== undefined && drilled !== undefined}
        title={`Run ${scenario} on ${drilled} of ${cluster}${target ? ` (${targetKey})` : ''}?`}
        typeToConfirm={c?.destroys ? cluster : undefined}
        confirmLabel={c?.destroys ? `Destroy ${drilled} and drill` : 'Run the drill'}
        onConfirm={() => void run()}
        onCancel={() => setConfirm(undefined)}
        testId="drill-confirm"
        confirmTestId="drill-confirm-run"
        typeTestId="drill-confirm-type"
      >
        <Text size="sm">This acts on the deployed cluster {cluster}, not on a copy:</Text>
        <List size="sm">
          <List.Item>
            inject:{' '}
            {c?.destroys ? (
              <b>
                VM {vm?.vmid} ({drilled}) is destroyed with its disks and TPM state
              </b>
            ) : scenario === 'power-off-node' ? (
              `VM ${vm?.vmid} (${drilled}) is powered off hard (no shutdown)`
            ) : scenario === 'partition-node' ? (
              `the hub drops all of ${drilled}'s traffic: its three planes are cut`
            ) : (
              SCENARIOS[scenario as keyof typeof SCENARIOS]?.summary
            )}
          </List.Item>
          <List.Item>fence: {drilled} is revoked at the hub (its plane peers removed, its enrollment refused)</List.Item>
          <List.Item>replace and reintegrate: a deploy run of this spec puts {drilled} back in its plan slot (same VMID, MAC and addresses) from the same artifact, enrolls it with a fresh token and converges it</List.Item>
        </List>
        <Text size="xs" c="dimmed">
          Stopping the drill midway leaves {cluster} healing: the record says what to run (Heal here, or kubedos heal SPEC) and nothing stays fenced once it has run.
        </Text>
      </ConfirmAction>
      <ConfirmAction
        opened={confirm === 'heal'}
        title={`Heal ${cluster}${target ? ` (${targetKey})` : ''}?`}
        confirmLabel="Heal"
        confirmColor="blue"
        onConfirm={() => void healNow()}
        onCancel={() => setConfirm(undefined)}
        testId="drill-heal-confirm"
        confirmTestId="drill-heal-confirm-run"
      >
        <Text size="sm">Every node is probed now (guest agents, the hub's handshakes, etcd). Each unhealthy node is revoked at the hub and put back in its plan slot by a deploy run of this spec: a stopped VM is started, a missing one created. Nothing is destroyed.</Text>
      </ConfirmAction>
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
        <DetectionLine r={record} />
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
  const [where, setWhere] = useState<Where>('lab');
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
        {where === 'lab' ? (
          <Alert color="blue" title="Drills run on the namespace lab on this machine" data-testid="drills-where" data-where="lab">
            A copy of this plan built from network namespaces here (real planes, enrollment, one etcd member per planned member), removed when the drill ends. It runs partition-node and kill-etcd-member; the VM scenarios need a hypervisor (choose the deployed cluster). Needs the workbench started as root; from a terminal: <code>kubedos drill SPEC --scenario NAME --lab</code>.
          </Alert>
        ) : (
          <Alert color="orange" title={`Drills act on the deployed cluster ${cluster}`} data-testid="drills-where" data-where="cluster">
            Through each VM's guest agent, on the target chosen in Deploy. It runs delete-worker-vm, power-off-node and partition-node on nodes without an etcd member, and kill-etcd-member and delete-control-plane-vm on an etcd member when the others keep quorum; the node is put back in its plan slot by a deploy run of this spec. Refused when {cluster} was never deployed, is stopped, or another operation holds it. From a terminal: <code>kubedos drill SPEC --scenario NAME</code>, <code>kubedos heal SPEC</code>.
          </Alert>
        )}
        <RunPanel plan={plan} where={where} setWhere={setWhere} />
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
                  <Table.Th>detected by</Table.Th>
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
                    <Table.Td data-testid="drill-history-detected-by">
                      {r.detectedBy ? (
                        <Stack gap={2} maw={320}>
                          <Badge size="sm" variant="light" color={r.detectedBy === 'hub-watcher' ? 'teal' : 'grape'}>
                            {detectSourceLabel(r.detectedBy)}
                          </Badge>
                          <Tooltip label={detection(r).line ?? ''} multiline maw={560} openDelay={300}>
                            <Text size="xs" c="dimmed" lineClamp={2} data-testid="drill-history-detection">
                              {detection(r).line}
                            </Text>
                          </Tooltip>
                        </Stack>
                      ) : (
                        '—'
                      )}
                    </Table.Td>
                    <Table.Td>{sec(r.mttrMs)}</Table.Td>
                    <Table.Td>{r.goal.minutes} min</Table.Td>
                    <Table.Td style={{ whiteSpace: 'nowrap', minWidth: 104 }}>
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
