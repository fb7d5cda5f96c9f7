// Live health on the topology: the cluster's health now (health.now — the same engine call as
// `kubedos status SPEC --health`), read when the view opens and on Refresh. A bar with the legend
// (healthy / degraded / unreachable / unknown, with counts), when the report was read and how old
// it is; when it cannot be read, why in the user's words, and that the nodes show the last
// pipeline run's colours instead.
import { Badge, Button, Group, Table, Text, Title } from '@mantine/core';
import { IconRefresh } from '@tabler/icons-react';
import { useCallback, useEffect, useRef, useState } from 'react';
import { useStore } from 'zustand';
import type { DeployTarget } from '../../../common/contract/index';
import type { ClusterHealthNow, LiveMeasure, LiveNodeHealth, LiveNodeState } from '../../../common/health/now';
import { LIVE_NODE_STATES } from '../../../common/health/now';
import { api } from '../../shell/api';
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
  health?: ClusterHealthNow;
  /** The request itself failed (engine gone, spec invalid). */
  error?: string;
  reading: boolean;
  refresh: () => void;
  /** The node states to colour with: only when a fresh report was read. */
  states?: Record<string, LiveNodeHealth>;
}

export function useLiveHealth(text: string | undefined, cluster: string | undefined): LiveHealthState {
  const target = targetOf(useStore(wizardStore));
  const label = targetLabel(target);
  const [health, setHealth] = useState<ClusterHealthNow>();
  const [error, setError] = useState<string>();
  const [reading, setReading] = useState(false);
  // The latest spec text and target, read at each refresh: editing the spec does not re-read.
  const latest = useRef({ text, target });
  latest.current = { text, target };
  const refresh = useCallback(() => {
    const { text: t, target: to } = latest.current;
    if (!t || !to) return;
    setReading(true);
    setError(undefined);
    api()
      .invoke('health.now', { text: t, target: to })
      .then((h) => setHealth(h))
      .catch((err: Error) => {
        setHealth(undefined);
        setError(err.message);
      })
      .finally(() => setReading(false));
    // Read again for another cluster or target, not for every keystroke of the spec.
  }, [cluster, label]);
  useEffect(() => {
    setHealth(undefined);
    refresh();
  }, [refresh]);
  const states = health && !health.unavailable ? Object.fromEntries(health.nodes.map((n) => [n.name, n])) : undefined;
  return { ...(target ? { target } : {}), ...(health ? { health } : {}), ...(error ? { error } : {}), reading, refresh, ...(states ? { states } : {}) };
}

/** Seconds since `at`, ticking every second. */
function useAge(at: number | undefined, readAt: number | undefined): number | undefined {
  const [now, setNow] = useState(() => Date.now() / 1000);
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now() / 1000), 1000);
    return () => clearInterval(t);
  }, []);
  if (at === undefined || readAt === undefined) return undefined;
  return Math.max(0, Math.round(now - at));
}

export function LiveHealthBar({ live, cluster }: { live: LiveHealthState; cluster: string }) {
  const h = live.health;
  const age = useAge(h?.report?.at, h?.readAt);
  const cannot = !live.target ? 'choose a target in Deploy to read the live health' : live.error ? `the engine could not read it: ${live.error}` : h?.unavailable ? h.unavailable.message : undefined;
  const title = h?.unavailable ? UNAVAILABLE_TITLE[h.unavailable.code] : 'Live health not read';
  const on = live.target ? ` on ${targetLabel(live.target)}` : '';
  return (
    <div data-testid="topology-live" data-live={h && !h.unavailable ? 'live' : cannot ? 'unavailable' : 'reading'} style={{ borderBottom: '1px solid var(--mantine-color-default-border)', padding: '6px 10px' }}>
      <Group gap="xs" wrap="nowrap" justify="space-between">
        <Group gap={6} wrap="wrap" style={{ minWidth: 0, flex: 1 }}>
          <Text size="sm" fw={700}>
            Live health
          </Text>
          {h && !h.unavailable ? (
            <>
              {LIVE_NODE_STATES.map((s) => (
                <Badge key={s} color={LIVE_STATE_COLOR[s]} variant={h.counts[s] ? 'filled' : 'outline'} data-testid={`live-legend-${s}`}>
                  {s}: {h.counts[s]}
                </Badge>
              ))}
              <Text size="sm" data-testid="topology-live-read">
                read at {clock(h.readAt)} · report {age ?? Math.round(h.report?.ageSeconds ?? 0)} s old
              </Text>
              {h.etcd && (
                <Badge color={h.etcd.hasQuorum ? 'green' : 'red'} variant="light">
                  etcd {h.etcd.healthy}/{h.etcd.members} healthy{h.etcd.hasQuorum ? '' : ' · no quorum'}
                </Badge>
              )}
            </>
          ) : live.reading ? (
            <Text size="sm" c="dimmed">
              reading {cluster}&apos;s health report{on}…
            </Text>
          ) : (
            cannot && (
              <Badge color={h?.unavailable?.code === 'never-deployed' || !live.target ? 'gray' : 'orange'} variant="light">
                {title}
              </Badge>
            )
          )}
        </Group>
        <Button size="xs" variant="light" leftSection={<IconRefresh size={14} />} disabled={!live.target} loading={live.reading} onClick={live.refresh} title={`read the health report of ${cluster}'s hub again${on}`} style={{ flexShrink: 0 }} data-testid="topology-live-refresh">
          Refresh
        </Button>
      </Group>
      {cannot && !live.reading && (
        <Text size="sm" mt={4} data-testid="topology-live-cannot">
          <b>{title}:</b> {cannot}
          {h?.report ? ` (last report written at ${clock(h.report.at)})` : ''}
          <Text span size="sm" c="dimmed">
            {' '}
            — showing the last pipeline run&apos;s colours instead (green ok, blue running, red failed, grey none).
          </Text>
        </Text>
      )}
      {h && !h.unavailable && !h.report?.agreesWithEngine && (
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
