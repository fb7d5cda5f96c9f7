// The last upgrade of the spec's cluster, as the foundry's slot record has it (upgrade.progress:
// what `kubedos upgrade` wrote in clusters/<name>/upgrade/record.json): per node its state in that
// upgrade (not written / written / replacing / replaced / rolled back, with the record's reason),
// what each slot holds and which slot holds the target; a node a `replace` wave replaced by a new
// VM shows that VM's build on both slots and how far its replacement got, in words. Read when the
// view opens, for another cluster, after a run and on Reload; one quiet line when no upgrade has
// run from this workspace. While `kubedos upgrade` runs (its live file, upgrade.progress `live`), a headline says what it does now, each node's row
// its current step, and the panel reads again every few seconds, only while the run is live: it
// stops once the run finished (its end shown) or its process is gone (said, with what to do).
// Below the table, the run's lines (the live file's, what the CLI prints on stderr: time since the
// run began, node, step and detail), following the end unless scrolled up, filtered by the Logs'
// node filter (a node chip's click): shown while it runs, after it ended, and when its process is gone.
// Here rather than in the Logs terminal: that is the pipeline run's own log (its buffer reset by each
// run, append-only), while this run is another process whose file is read whole every few seconds,
// its write's progress line replaced in place.
import { Alert, Badge, Box, Button, Group, Loader, Table, Text, Title, useMantineColorScheme } from '@mantine/core';
import { IconRefresh } from '@tabler/icons-react';
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { useStore } from 'zustand';
import { createStore } from 'zustand/vanilla';
import type { BuildRef, Slot } from '../../../common/upgrade/agent';
import type { UpgradeLive, UpgradeLiveReport, UpgradeNodeProgress, UpgradeNodeState, UpgradeProgress } from '../../../common/upgrade/progress';
import { hasNewVm, liveEndDetail, liveHeadline, liveLinesDroppedText, liveLineText, liveLineTime, liveStepText, replacementText, rolledBackAt, ROLLBACK_REASON } from '../../../common/upgrade/progress';
import { plural } from '../../../common/text/plural';
import { api } from '../../shell/api';
import { analysisStore } from '../analysis/store';
import { logFilterStore } from './log-filter';
import { pipelineStore } from './store';

/** How many lines the shown upgrade run has (the Logs panel's count says where they are). */
export const upgradeLinesStore = createStore<{ count: number }>()(() => ({ count: 0 }));

/** The run's lines: time since it began, the line as the CLI printed it; the node filter's only, following the end. */
function LiveLines({ run }: { run: UpgradeLive }) {
  const node = useStore(logFilterStore, (s) => s.filter.node);
  const light = useMantineColorScheme().colorScheme === 'light';
  const box = useRef<HTMLDivElement>(null);
  const content = useRef<HTMLDivElement>(null);
  // Following the end unless scrolled up (scrolled back to the end: following again).
  const follow = useRef(true);
  const all = run.lines ?? [];
  const lines = node === undefined ? all : all.filter((l) => l.node === node);
  const last = lines.at(-1);
  useLayoutEffect(() => {
    const el = box.current;
    if (el && follow.current) el.scrollTop = el.scrollHeight;
  }, [lines.length, last?.at, last?.text]);
  // A narrower window wraps more lines (the content grows): still at the end.
  const shown = all.length > 0;
  useEffect(() => {
    const el = box.current;
    if (!el || !content.current) return undefined;
    const observer = new ResizeObserver(() => {
      if (follow.current) el.scrollTop = el.scrollHeight;
    });
    observer.observe(el);
    observer.observe(content.current);
    return () => observer.disconnect();
  }, [shown]);
  if (!shown) return null;
  const dropped = liveLinesDroppedText(run);
  const warn = `var(--mantine-color-orange-${light ? 9 : 5})`;
  return (
    <Box mt={4} data-testid="upgrade-lines-section">
      <Group gap="xs" wrap="nowrap">
        <Text size="xs" fw={600}>
          {run.kind === 'upgrade' ? 'Upgrade' : 'Rollback'} lines
        </Text>
        <Text size="xs" c="dimmed" data-testid="upgrade-lines-count">
          {node === undefined ? plural(all.length, 'line') : `${lines.length} of ${plural(all.length, 'line')}: ${node}'s only`}
        </Text>
        {node !== undefined && (
          <Button size="compact-xs" variant="subtle" onClick={() => logFilterStore.getState().setFilter((f) => ({ ...f, node: undefined }))}>
            All nodes
          </Button>
        )}
      </Group>
      <div
        ref={box}
        role="log"
        aria-label={`The ${run.kind}'s lines`}
        data-testid="upgrade-lines"
        onScroll={(e) => {
          const el = e.currentTarget;
          follow.current = el.scrollHeight - el.scrollTop - el.clientHeight < 8;
        }}
        // No scroll anchoring: a reflow (a narrower window) moves no scroll position by itself, so it is not taken for the reader scrolling up.
        style={{ maxHeight: 168, overflowY: 'auto', overflowAnchor: 'none', fontFamily: 'var(--mantine-font-family-monospace)', fontSize: 11, lineHeight: 1.5, border: '1px solid var(--mantine-color-default-border)', borderRadius: 4, padding: '2px 6px' }}
      >
        <div ref={content}>
          {dropped && (
            <div data-testid="upgrade-lines-dropped" style={{ color: 'var(--mantine-color-dimmed)' }}>
              {dropped}
            </div>
          )}
          {lines.map((l, i) => (
            <div
              key={i}
              data-testid="upgrade-line"
              data-node={l.node ?? ''}
              data-step={l.step}
              title={new Date(l.at).toISOString()}
              style={{ display: 'flex', whiteSpace: 'pre-wrap', color: l.step === 'stop' || l.step === 'refuse' || (l.step === 'end' && run.end?.kind !== 'done') ? warn : undefined }}
            >
              {/* A wrapped line hangs under its text, not under its time. */}
              <span style={{ flex: 'none', color: 'var(--mantine-color-dimmed)' }}>{liveLineTime(run, l).padStart(6)} </span>
              <span style={{ flex: 1, minWidth: 0, overflowWrap: 'anywhere' }}>{liveLineText(l)}</span>
            </div>
          ))}
        </div>
      </div>
    </Box>
  );
}

/** How often the panel reads again while a live run is shown. */
export const LIVE_READ_EVERY_MS = 3_000;

const END_COLOR = { done: 'green', stop: 'orange', refuse: 'orange', cancelled: 'gray' } as const;

/**
 * The live run's line: what it does now (running), how it ended (finished), or that its process is
 * gone. `reasonShown`: the header already says why this run stopped (the record's rolled-back node):
 * the end is its headline alone ("Upgrade to 0.1.1: stopped at w-1"), the whole message in its title.
 */
function LiveLine({ live, reasonShown }: { live: UpgradeLiveReport; reasonShown?: boolean }) {
  if (live.state === 'gone') {
    return (
      <Alert color="orange" p={6} mt={4} data-testid="upgrade-live" data-live-state="gone">
        <Text size="xs">{live.message}</Text>
      </Alert>
    );
  }
  const end = live.run.end;
  return (
    <Group gap={6} wrap="nowrap" mt={2} data-testid="upgrade-live" data-live-state={live.state} style={{ minWidth: 0 }}>
      {live.state === 'running' ? (
        <Loader size={12} style={{ flex: 'none' }} />
      ) : (
        <Badge size="xs" color={end ? END_COLOR[end.kind] : 'gray'} style={{ flex: 'none' }}>
          last run
        </Badge>
      )}
      <Text size="xs" fw={live.state === 'running' ? 600 : 400} title={end?.message} data-testid="upgrade-live-line" style={{ overflow: 'hidden', textOverflow: 'ellipsis', whiteSpace: 'nowrap', minWidth: 0 }}>
        {liveHeadline(live.run)}
        {end && end.kind !== 'done' && !reasonShown && liveEndDetail(live.run) ? ` — ${liveEndDetail(live.run)}` : ''}
      </Text>
    </Group>
  );
}

const STATE_COLOR: Record<UpgradeNodeState, string> = { 'not-written': 'gray', written: 'blue', replacing: 'violet', replaced: 'teal', 'rolled-back': 'orange' };
const STATE_TEXT: Record<UpgradeNodeState, string> = { 'not-written': 'not written', written: 'written', replacing: 'replacing', replaced: 'replaced', 'rolled-back': 'rolled back' };
const STATE_TITLE: Record<UpgradeNodeState, string> = {
  'not-written': 'no slot of this node holds the target: a later wave, or the upgrade stopped before it',
  written: 'a slot received the target (written and read back); the node booting it and passing its gate is in the live health (Topology)',
  replacing: 'its VM is being replaced by a new one made from the target (the note says how far): it is not written slot by slot',
  replaced: 'a new VM made from the target took its place: created, converged, its health gate passed (and uncordoned where Kubernetes runs)',
  'rolled-back': 'the target is recorded as rolled back here: it is never applied again',
};

function SlotCell({ n, slot, target, deployed }: { n: UpgradeNodeProgress; slot: Slot; target?: BuildRef; deployed?: string }) {
  // Orange 6 and indigo 6 are too faint on white for 12 px text: darker shades in the light scheme.
  const light = useMantineColorScheme().colorScheme === 'light';
  if (n.replaced && !hasNewVm(n.replaced.state)) {
    return (
      <Text size="xs" c="dimmed" title={`its VM is being replaced: the new one, made from ${n.replaced.build.version}, holds it on both slots`} data-testid={`upgrade-slot-${slot}`} style={{ whiteSpace: 'nowrap' }}>
        none yet (new VM)
      </Text>
    );
  }
  // A new VM holds its build on both slots (root B is a copy of A): the record's slots say so too.
  const b = n.replaced ? n.replaced.build : n.slots?.[slot];
  if (!b) {
    return (
      <Text size="xs" c="dimmed" title="never written by this foundry: the build the deploy sealed" data-testid={`upgrade-slot-${slot}`} style={{ whiteSpace: 'nowrap' }}>
        {deployed ?? 'N'} (deployed)
      </Text>
    );
  }
  const isTarget = n.replaced ? b.digest === target?.digest : n.targetSlot === slot;
  return (
    <Text size="xs" title={n.replaced ? `a new VM made from ${b.version}: slot A holds it, slot B is a copy of A (digest ${b.digest})` : `digest ${b.digest}`} data-testid={`upgrade-slot-${slot}`} style={n.replaced ? { whiteSpace: 'nowrap' } : undefined}>
      <Text span size="xs" fw={isTarget ? 700 : 400} c={isTarget ? (n.state === 'rolled-back' ? (light ? 'orange.9' : 'orange.5') : light ? 'indigo.8' : 'indigo.4') : undefined}>
        {b.version}
      </Text>
      {n.replaced ? (
        <Text span size="xs" c="dimmed">
          {' '}
          (new VM)
        </Text>
      ) : (
        isTarget &&
        target && (
          <Text span size="xs" c="dimmed">
            {' '}
            (target)
          </Text>
        )
      )}
    </Text>
  );
}

/** The note of a node's row from the record: why it rolled back, how far its replacement got, or which slot holds the target. */
function recordNote(n: UpgradeNodeProgress, target?: BuildRef): string {
  // --rollback replacing it again from the build before: how far (the rollback's own reason is the badge's and the header's).
  const r = n.replaced;
  const again = r && r.build.digest !== target?.digest ? (r.state === 'done' ? `back on ${r.build.version}: replaced again by a new VM` : replacementText(r)) : undefined;
  if (again) return n.reason && n.reason !== ROLLBACK_REASON ? `${n.reason}; ${again}` : again;
  if (n.reason) return n.reason;
  if (n.replaced) return replacementText(n.replaced);
  return n.state === 'written' ? `slot ${n.targetSlot} holds ${target?.version}; the slot it booted is on its Topology box` : '';
}

/** `done`: no live run, or the live run finished done — only then is "all written" shown as green (a run gone or stopped mid-way is not a success). */
function Summary({ p, done }: { p: UpgradeProgress; done: boolean }) {
  if (!p.target) return null;
  // Replacing: not there yet. A replace-based upgrade puts new VMs in place of its nodes, never writes their slots.
  const written = p.nodes.filter((n) => n.state === 'written' || n.state === 'replaced').length;
  const how = p.nodes.some((n) => n.replaced) ? 'written or replaced' : 'written';
  return p.stopped ? (
    <Badge color="orange" data-testid="upgrade-verdict">
      {p.target.version} rolled back{rolledBackAt(p.stopped) ? ` at ${rolledBackAt(p.stopped)}` : ''}
    </Badge>
  ) : (
    <Badge color={written === p.nodes.length && done ? 'green' : 'blue'} data-testid="upgrade-verdict">
      {p.target.version}: {written} of {plural(p.nodes.length, 'node')} {how}
    </Badge>
  );
}

export function UpgradePanel() {
  const text = useStore(analysisStore, (s) => s.text);
  const cluster = useStore(analysisStore, (s) => s.spec?.metadata.name);
  const status = useStore(pipelineStore, (s) => s.status);
  const [last, setLast] = useState<{ progress?: UpgradeProgress; live?: UpgradeLiveReport; error?: string }>();
  // The text at the time of the read: read again for another cluster, not for every keystroke.
  const latest = useRef(text);
  latest.current = text;
  const read = useCallback(() => {
    const t = latest.current;
    if (!t) return;
    api()
      .invoke('upgrade.progress', { text: t })
      .then((r) => setLast(r))
      .catch((err: Error) => setLast({ error: err.message }));
  }, []);
  useEffect(() => {
    setLast(undefined);
    read();
  }, [cluster, read]);
  // A run that ended may have been an upgrade from the CLI's side of the same workspace: read again.
  useEffect(() => {
    if (status === 'done' || status === 'failed' || status === 'cancelled') read();
  }, [status, read]);
  // A live run: read again every few seconds until it finished or its process is gone; otherwise no polling.
  const running = last?.live?.state === 'running';
  useEffect(() => {
    if (!running) return undefined;
    const t = setInterval(read, LIVE_READ_EVERY_MS);
    return () => clearInterval(t);
  }, [running, read]);
  const lineCount = last?.live?.run.lines?.length ?? 0;
  useEffect(() => {
    upgradeLinesStore.setState({ count: text && cluster ? lineCount : 0 });
  }, [lineCount, text, cluster]);
  if (!text || !cluster || !last) return null;
  const p = last.progress;
  const live = last.live;
  const nowAt = (node: string) => (live?.state === 'running' ? live.run.nodes[node] : undefined);
  const reload = (
    <Button size="compact-xs" variant="subtle" leftSection={<IconRefresh size={12} />} onClick={read} title={`read ${cluster}'s upgrade record again`} data-testid="upgrade-reload" style={{ flex: 'none' }}>
      Reload
    </Button>
  );
  if (!p && !last.error && !live) {
    return (
      <Group gap="xs" px="xs" pt={4} wrap="nowrap">
        <Text size="xs" c="dimmed" data-testid="upgrade-none">
          Upgrade: no upgrade has run on {cluster} from this workspace.
        </Text>
        {reload}
      </Group>
    );
  }
  return (
    <section aria-label="Upgrade" data-testid="upgrade-progress" style={{ padding: '4px var(--mantine-spacing-xs) 0' }}>
      <Group gap="xs" justify="space-between" wrap="nowrap">
        {/* The reason wraps under the title; Reload keeps its place at the right edge at any width. */}
        <Group gap="xs" wrap="wrap" style={{ flex: 1, minWidth: 0 }}>
          <Title order={6}>Upgrade</Title>
          {p && <Summary p={p} done={!live || (live.state === 'finished' && live.run.end?.kind === 'done')} />}
          {p?.stopped && (
            <Text size="xs" data-testid="upgrade-stopped">
              {rolledBackAt(p.stopped) && <b>{p.stopped.node}: </b>}
              {p.stopped.reason}
            </Text>
          )}
        </Group>
        {reload}
      </Group>
      {live && <LiveLine live={live} reasonShown={live.state === 'finished' && live.run.end?.kind === 'stop' && p?.stopped !== undefined && p.stopped.node === live.run.end.node} />}
      {last.error && (
        <Alert color="orange" p={6} mt={4} data-testid="upgrade-error">
          <Text size="xs">{last.error}</Text>
        </Alert>
      )}
      {p && (
        <Table fz="xs" verticalSpacing={2} data-testid="upgrade-nodes" aria-label="Upgrade per node">
          <Table.Thead>
            <Table.Tr>
              <Table.Th w={140}>node</Table.Th>
              <Table.Th w={110}>last upgrade</Table.Th>
              <Table.Th w={150}>slot A</Table.Th>
              <Table.Th w={150}>slot B</Table.Th>
              <Table.Th>note</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {p.nodes.map((n) => (
              <Table.Tr key={n.node} data-testid="upgrade-node" data-node={n.node} data-state={n.state}>
                <Table.Td fw={600}>{n.node}</Table.Td>
                <Table.Td>
                  <Badge size="xs" color={STATE_COLOR[n.state]} variant={n.state === 'rolled-back' ? 'filled' : 'light'} title={STATE_TITLE[n.state]}>
                    {STATE_TEXT[n.state]}
                  </Badge>
                </Table.Td>
                <Table.Td>
                  <SlotCell n={n} slot="A" {...(p.target ? { target: p.target } : {})} {...(p.deployed ? { deployed: p.deployed } : {})} />
                </Table.Td>
                <Table.Td>
                  <SlotCell n={n} slot="B" {...(p.target ? { target: p.target } : {})} {...(p.deployed ? { deployed: p.deployed } : {})} />
                </Table.Td>
                {(() => {
                  const step = nowAt(n.node);
                  return step ? (
                    <Table.Td fw={600} data-testid="upgrade-live-step" title={step.detail}>
                      now: {liveStepText(step)}
                    </Table.Td>
                  ) : (
                    <Table.Td c="dimmed" data-testid="upgrade-note">
                      {recordNote(n, p.target)}
                    </Table.Td>
                  );
                })()}
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      {p && p.bad.length > 0 && (
        <Text size="xs" c="dimmed" mt={2} data-testid="upgrade-bad">
          never applied again (rolled back): {p.bad.map((b) => (rolledBackAt(b) ? `${b.version} at ${b.node}` : `${b.version} (kubedos upgrade --rollback)`)).join(', ')}
        </Text>
      )}
      {live && <LiveLines run={live.run} />}
    </section>
  );
}
