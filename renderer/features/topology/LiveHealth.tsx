// Live health on the topology: the cluster's health now (health.now — the same engine call as
// `kubedos status SPEC --health`), kept current while the view is open: read when it opens, then
// again every 15 s (or the chosen interval, remembered with the paused state: poll-choice.ts) through the one read loop (common/health/poll.ts: one
// read in flight, back-off while the hub does not answer, no reads while paused or while the
// window is hidden), and on Refresh. A bar with the legend (healthy / degraded / unreachable /
// unknown, with counts), when it was read and how long ago, ticking; a pause/resume control. A
// read that fails keeps the last picture, marked stale with why; when there is no picture, why in
// the user's words, and that the nodes show the last pipeline run's colours instead.
import { Badge, Button, Group, NativeSelect, Table, Text, Title } from '@mantine/core';
import { IconPlayerPause, IconPlayerPlay, IconRefresh } from '@tabler/icons-react';
import { useCallback, useEffect, useRef, useState } from 'react';
import { useStore } from 'zustand';
import type { DeployTarget } from '../../../common/contract/index';
import type { ClusterHealthNow, LiveMeasure, LiveNodeHealth, LiveNodeState } from '../../../common/health/now';
import { LIVE_NODE_STATES } from '../../../common/health/now';
import type { Poller, PollSnapshot } from '../../../common/health/poll';
import { createPoller, HEALTH_POLL_CHOICES_S, HEALTH_POLL_DEFAULT_S, HEALTH_POLL_MAX_BACKOFF_S, nextReadDelayS, readFailure } from '../../../common/health/poll';
import { plural } from '../../../common/text/plural';
import { api } from '../../shell/api';
import { loadPollChoice, savePollChoice } from './poll-choice';
import { targetLabel, targetOf, wizardStore } from '../deploy/store';

export const LIVE_STATE_COLOR: Record<LiveNodeState, string> = { healthy: 'green', degraded: 'orange', unreachable: 'red', unknown: 'gray' };

const UNAVAILABLE_TITLE: Record<NonNullable<ClusterHealthNow['unavailable']>['code'], string> = {
  'never-deployed': 'Never deployed from here',
  'not-running': 'Cluster stopped',
  unreadable: 'Hub did not answer',
  stale: 'Report stale',
};

/** HH:MM:SS on the user's clock. */
const clock = (epochSeconds: number): string => new Date(epochSeconds * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });

export interface LiveHealthState {
  target?: DeployTarget;
  /** The latest answer. */
  health?: ClusterHealthNow;
  /** The last answer with a picture of the nodes, kept while later reads fail. */
  shown?: ClusterHealthNow;
  /** The latest request itself failed (engine gone, spec invalid). */
  error?: string;
  /** Why the picture shown is not current (the latest read failed) and when that read ended (epoch s). */
  stale?: { why: string; at: number };
  reading: boolean;
  refresh: () => void;
  /** The read loop: paused, interval, next read. */
  poll?: PollSnapshot;
  pause: () => void;
  resume: () => void;
  setIntervalS: (s: number) => void;
  /** The node states to colour with: from the last picture read (stale or not). */
  states?: Record<string, LiveNodeHealth>;
}

const isHidden = (): boolean => typeof document !== 'undefined' && document.visibilityState === 'hidden';

export function useLiveHealth(text: string | undefined, cluster: string | undefined): LiveHealthState {
  const target = targetOf(useStore(wizardStore));
  const label = targetLabel(target);
  const [health, setHealth] = useState<ClusterHealthNow>();
  const [shown, setShown] = useState<ClusterHealthNow>();
  const [error, setError] = useState<{ message: string; at: number }>();
  const [poll, setPoll] = useState<PollSnapshot>();
  const poller = useRef<Poller | undefined>(undefined);
  // Kept across clusters and targets, and across reloads and restarts (poll-choice.ts): the user's choice.
  const choice = useRef(loadPollChoice());
  // The latest spec text and target, read at each read: editing the spec does not re-read.
  const latest = useRef({ text, target });
  latest.current = { text, target };
  const enabled = Boolean(text && target);
  useEffect(() => {
    setHealth(undefined);
    setShown(undefined);
    setError(undefined);
    setPoll(undefined);
    if (!enabled) return;
    const p = createPoller<ClusterHealthNow>({
      read: () => {
        const { text: t, target: to } = latest.current;
        if (!t || !to) return Promise.reject(new Error('no valid spec or no target'));
        return api().invoke('health.now', { text: t, target: to });
      },
      failed: (h) => readFailure(h) !== undefined,
      intervalS: choice.current.intervalS,
      paused: choice.current.paused,
      hidden: isHidden(),
      timers: { set: (fn, ms) => window.setTimeout(fn, ms), clear: (h) => window.clearTimeout(h as number), now: () => Date.now() },
      onOutcome: (o, at) => {
        if (!o.ok) {
          setError({ message: o.error.message, at: at / 1000 });
          return;
        }
        setError(undefined);
        setHealth(o.value);
        // A picture replaces the last; the journal's "never deployed / stopped" clears it; a failed read keeps it.
        if (!o.value.unavailable) setShown(o.value);
        else if (!readFailure(o.value)) setShown(undefined);
      },
      onChange: setPoll,
    });
    poller.current = p;
    setPoll(p.snapshot());
    // Paused by the user in another cluster or target: still one read, so the view is not empty.
    if (choice.current.paused) p.readNow();
    const onVisibility = (): void => p.setHidden(isHidden());
    document.addEventListener('visibilitychange', onVisibility);
    return () => {
      document.removeEventListener('visibilitychange', onVisibility);
      p.stop();
      if (poller.current === p) poller.current = undefined;
    };
    // Read again for another cluster or target, not for every keystroke of the spec.
  }, [cluster, label, enabled]);
  const refresh = useCallback(() => void poller.current?.readNow(), []);
  const pause = useCallback(() => {
    choice.current.paused = true;
    savePollChoice(choice.current);
    poller.current?.pause();
  }, []);
  const resume = useCallback(() => {
    choice.current.paused = false;
    savePollChoice(choice.current);
    poller.current?.resume();
  }, []);
  const setIntervalS = useCallback((s: number) => {
    choice.current.intervalS = s;
    savePollChoice(choice.current);
    poller.current?.setIntervalS(s);
  }, []);
  const failure = health ? readFailure(health) : undefined;
  const stale = shown && error ? { why: `the engine could not read it: ${error.message}`, at: error.at } : shown && failure && health ? { why: failure.message, at: health.readAt } : undefined;
  const states = shown ? Object.fromEntries(shown.nodes.map((n) => [n.name, n])) : undefined;
  return {
    ...(target ? { target } : {}),
    ...(health ? { health } : {}),
    ...(shown ? { shown } : {}),
    ...(error ? { error: error.message } : {}),
    ...(stale ? { stale } : {}),
    reading: poll?.inFlight ?? false,
    refresh,
    ...(poll ? { poll } : {}),
    pause,
    resume,
    setIntervalS,
    ...(states ? { states } : {}),
  };
}

/** Epoch seconds now, ticking every second. */
function useNow(): number {
  const [now, setNow] = useState(() => Date.now() / 1000);
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now() / 1000), 1000);
    return () => clearInterval(t);
  }, []);
  return now;
}

const ago = (now: number, at: number): number => Math.max(0, Math.round(now - at));

export function LiveHealthBar({ live, cluster }: { live: LiveHealthState; cluster: string }) {
  const now = useNow();
  const h = live.shown;
  const latest = live.health;
  const cannot = h ? undefined : !live.target ? 'choose a target in Deploy to read the live health' : live.error ? `the engine could not read it: ${live.error}` : latest?.unavailable ? latest.unavailable.message : undefined;
  const title = !h && latest?.unavailable ? UNAVAILABLE_TITLE[latest.unavailable.code] : live.error ? 'Engine did not answer' : 'Live health not read';
  const on = live.target ? ` on ${targetLabel(live.target)}` : '';
  const p = live.poll;
  const next = p?.paused ? 'paused' : p?.hidden ? 'paused while hidden' : p?.inFlight ? 'reading now' : p?.nextAt !== undefined ? `next read in ${Math.min(nextReadDelayS(p.intervalS, p.failures), Math.max(0, Math.ceil(p.nextAt / 1000 - now)))} s${p.failures ? ' (backing off)' : ''}` : undefined;
  const staleTitle = live.stale ? (latest?.unavailable ? UNAVAILABLE_TITLE[latest.unavailable.code] : 'Engine did not answer') : undefined;
  return (
    <div
      data-testid="topology-live"
      data-live={h ? (live.stale ? 'stale' : 'live') : cannot ? 'unavailable' : 'reading'}
      data-poll={p?.paused ? 'paused' : p ? 'running' : 'off'}
      style={{ borderBottom: '1px solid var(--mantine-color-default-border)', padding: '6px 10px' }}
    >
      <Group gap="xs" wrap="nowrap" justify="space-between">
        <Group gap={6} wrap="wrap" style={{ minWidth: 0, flex: 1 }}>
          <Text size="sm" fw={700}>
            Live health
          </Text>
          {h ? (
            <>
              {live.stale && (
                <Badge color="orange" variant="filled" data-testid="topology-live-stale-badge">
                  stale
                </Badge>
              )}
              {LIVE_NODE_STATES.map((s) => (
                <Badge key={s} color={LIVE_STATE_COLOR[s]} variant={h.counts[s] ? 'filled' : 'outline'} data-testid={`live-legend-${s}`}>
                  {s}: {h.counts[s]}
                </Badge>
              ))}
              <Text size="sm" data-testid="topology-live-read">
                read {clock(h.readAt)}, {ago(now, h.readAt)} s ago · report {h.report ? ago(now, h.report.at) : 0} s old
              </Text>
              {h.etcd && (
                <Badge color={h.etcd.hasQuorum ? 'green' : 'red'} variant="light">
                  etcd {h.etcd.healthy}/{h.etcd.members} healthy{h.etcd.hasQuorum ? '' : ' · no quorum'}
                </Badge>
              )}
            </>
          ) : cannot ? (
            <Badge color={latest?.unavailable?.code === 'never-deployed' || !live.target ? 'gray' : 'orange'} variant="light">
              {title}
            </Badge>
          ) : (
            live.reading && (
              <Text size="sm" c="dimmed">
                reading {cluster}&apos;s health report{on}…
              </Text>
            )
          )}
        </Group>
        <Group gap={6} wrap="nowrap" style={{ flexShrink: 0 }}>
          {next && (
            <Text size="xs" c="dimmed" data-testid="topology-live-next" title={p?.failures ? `waiting longer after ${plural(p.failures, 'failed read')} in a row: the wait doubles per failed read, up to ${HEALTH_POLL_MAX_BACKOFF_S} s` : undefined}>
              {next}
            </Text>
          )}
          <NativeSelect
            size="xs"
            aria-label="read the live health every"
            title="how often the live health is read while this view is open"
            data={HEALTH_POLL_CHOICES_S.map((s) => ({ value: String(s), label: `every ${s} s` }))}
            value={String(p?.intervalS ?? HEALTH_POLL_DEFAULT_S)}
            onChange={(e) => live.setIntervalS(Number(e.currentTarget.value))}
            disabled={!p}
            data-testid="topology-live-interval"
          />
          <Button
            size="xs"
            variant="default"
            leftSection={p?.paused ? <IconPlayerPlay size={14} /> : <IconPlayerPause size={14} />}
            disabled={!p}
            onClick={p?.paused ? live.resume : live.pause}
            title={p?.paused ? 'read the live health again every few seconds' : 'stop reading the live health until resumed (Refresh still reads once)'}
            data-testid="topology-live-pause"
          >
            {p?.paused ? 'Resume' : 'Pause'}
          </Button>
          <Button size="xs" variant="light" leftSection={<IconRefresh size={14} />} disabled={!live.target} loading={live.reading} onClick={live.refresh} title={`read the health report of ${cluster}'s hub again${on}`} data-testid="topology-live-refresh">
            Refresh
          </Button>
        </Group>
      </Group>
      {h && live.stale && (
        <Text size="sm" mt={4} data-testid="topology-live-stale">
          <b>{staleTitle}:</b> the read at {clock(live.stale.at)} failed: {live.stale.why}
          <Text span size="sm" c="dimmed">
            {' '}
            — still showing the report read at {clock(h.readAt)} (dashed nodes); {p?.paused ? 'reads are paused: Resume or Refresh to read again.' : 'it is read again by itself.'}
          </Text>
        </Text>
      )}
      {cannot && (
        <Text size="sm" mt={4} data-testid="topology-live-cannot">
          <b>{title}:</b> {cannot}
          {latest?.report ? ` (last report written at ${clock(latest.report.at)})` : ''}
          <Text span size="sm" c="dimmed">
            {' '}
            — showing the last pipeline run&apos;s colours instead (green ok, blue running, red failed, grey none).
          </Text>
        </Text>
      )}
      {h && !h.report?.agreesWithEngine && (
        <Text size="xs" c="orange" mt={4}>
          the hub&apos;s watcher judges differently from this workbench ({h.report?.difference}): it runs another payload version; the colours are this workbench&apos;s judgement of its measurements
        </Text>
      )}
    </div>
  );
}

const measureCell = (m: LiveMeasure | undefined) =>
  !m ? (
    <Text size="sm" c="dimmed">
      not a member
    </Text>
  ) : m.measured ? (
    <Text size="sm" c={m.ok ? undefined : 'red'}>
      {m.ok ? 'ok' : 'failing'}: {m.detail}
    </Text>
  ) : (
    <Text size="sm" c="dimmed">
      {m.why}
    </Text>
  );

/** The artifact and the boot slot as the node's exporter serves them to the hub's watcher (never judged). */
function ArtifactRows({ artifact }: { artifact: LiveNodeHealth['artifact'] }) {
  if (!artifact.read) {
    return (
      <Table.Tr>
        <Table.Td w={170}>
          <Text size="sm">version · slot</Text>
        </Table.Td>
        <Table.Td>
          <Text size="sm" c="dimmed" data-testid="node-live-version">
            {artifact.why}
          </Text>
        </Table.Td>
      </Table.Tr>
    );
  }
  return (
    <>
      <Table.Tr>
        <Table.Td w={170}>
          <Text size="sm">artifact version</Text>
        </Table.Td>
        <Table.Td>
          <Text size="sm" data-testid="node-live-version" title={`build digest (payload sha256) ${artifact.buildDigest}`}>
            <b>{artifact.version}</b>{' '}
            <Text span size="xs" c="dimmed" ff="monospace">
              {artifact.buildDigest.slice(0, 12)}
            </Text>
          </Text>
        </Table.Td>
      </Table.Tr>
      <Table.Tr>
        <Table.Td w={170}>
          <Text size="sm">boot slot</Text>
        </Table.Td>
        <Table.Td>
          <Text size="sm" data-testid="node-live-slot">
            {artifact.slot === 'single' ? 'single (one root, no A/B)' : artifact.slot}
            <Text span size="xs" c="dimmed">
              {' '}
              · read {artifact.ageSeconds} s before the report
            </Text>
          </Text>
        </Table.Td>
      </Table.Tr>
    </>
  );
}

/** The node drawer's section: the artifact it runs, then each signal, measured or why not. */
export function NodeLiveSection({ live }: { live: LiveNodeHealth }) {
  return (
    <section aria-label="Live health" data-testid="node-live">
      <Group gap="xs">
        <Title order={6}>Live health</Title>
        <Badge color={LIVE_STATE_COLOR[live.state]}>{live.state}</Badge>
      </Group>
      <Table withRowBorders={false} verticalSpacing={2}>
        <Table.Tbody>
          <ArtifactRows artifact={live.artifact} />
          {(
            [
              ['guest agent', live.agent],
              ['wg1 handshake', live.handshakes.wg1],
              ['wg2 handshake', live.handshakes.wg2],
              ['wg3 handshake', live.handshakes.wg3],
              ['etcd member', live.etcd],
              ['converge fingerprint', live.converge],
            ] as const
          ).map(([label, m]) => (
            <Table.Tr key={label}>
              <Table.Td w={170}>
                <Text size="sm">{label}</Text>
              </Table.Td>
              <Table.Td>{measureCell(m)}</Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </section>
  );
}
