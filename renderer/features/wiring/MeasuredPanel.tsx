// Measured wiring beside the plan: the cluster's last wiring check (wiring.lastCheck — what
// `kubedos wiring check` recorded), the flows that disagreed with the plan in red, the hub's
// handshake ages at that time, and "Check now" (wiring.check: the same engine call on the
// deployed cluster, on the target chosen in Deploy).
import { Alert, Badge, Button, Group, Paper, Stack, Table, Text, Title } from '@mantine/core';
import { useEffect, useState } from 'react';
import { useStore } from 'zustand';
import type { WiringLastCheck } from '../../../common/wiring/last-check';
import { api } from '../../shell/api';
import { analysisStore } from '../analysis/store';
import { targetLabel, targetOf, wizardStore } from '../deploy/store';

const age = (s: number | null | undefined): string => (s === undefined ? '–' : s === null ? 'never' : `${s} s ago`);

export function MeasuredPanel() {
  const text = useStore(analysisStore, (s) => s.text);
  const spec = useStore(analysisStore, (s) => s.spec);
  const target = targetOf(useStore(wizardStore));
  const cluster = spec?.metadata.name;
  const [last, setLast] = useState<{ check?: WiringLastCheck; error?: string } | undefined>();
  const [running, setRunning] = useState(false);
  const [runError, setRunError] = useState<string | undefined>();
  useEffect(() => {
    setLast(undefined);
    setRunError(undefined);
    if (!text || !cluster) return;
    api()
      .invoke('wiring.lastCheck', { text })
      .then((r) => setLast(r))
      .catch((err: Error) => setLast({ error: err.message }));
  }, [cluster]);
  if (!text || !cluster) return null;

  const checkNow = async (): Promise<void> => {
    if (!target) return;
    setRunning(true);
    setRunError(undefined);
    try {
      setLast({ check: await api().invoke('wiring.check', { text, target }) });
    } catch (err) {
      setRunError((err as Error).message);
    } finally {
      setRunning(false);
    }
  };

  const c = last?.check;
  const nodes = c ? [...new Set(c.handshakes.map((h) => h.node))] : [];
  return (
    <Paper withBorder p="sm" data-testid="wiring-measured">
      <Group justify="space-between" mb={4} wrap="wrap">
        <Group gap="xs">
          <Title order={5}>Measured on the cluster</Title>
          {c && (
            <Badge color={c.failed ? 'red' : 'green'} data-testid="wiring-measured-verdict">
              {c.failed ? `${c.failed} of ${c.flows} flows disagree` : `all ${c.flows} flows as planned`}
            </Badge>
          )}
        </Group>
        <Group gap="xs">
          <Text size="xs" c="dimmed">
            {target ? `target ${targetLabel(target)}` : 'choose a target in Deploy to check'}
          </Text>
          <Button size="xs" variant="light" disabled={!target || running} loading={running} onClick={() => void checkNow()} data-testid="wiring-check-now">
            Check now
          </Button>
        </Group>
      </Group>
      {runError && (
        <Alert color="red" variant="light" mb="xs" data-testid="wiring-check-error">
          {runError}
        </Alert>
      )}
      {!last && <Text size="sm">Reading the last check of {cluster}…</Text>}
      {last?.error && (
        <Text size="sm" c="red">
          {last.error}
        </Text>
      )}
      {last && !last.check && !last.error && (
        <Text size="sm" data-testid="wiring-measured-none">
          No wiring check has been measured on {cluster} yet: the plan below is what the cluster should do, not what it does. Once {cluster} is deployed and running, press Check now (or run kubedos wiring check on its spec) to probe every flow from the nodes.
        </Text>
      )}
      {c && (
        <Stack gap="xs">
          <Text size="xs" c="dimmed" data-testid="wiring-measured-when">
            checked {new Date(c.checkedAt).toLocaleString()} on {c.target}: {c.passed} of {c.flows} flows as planned, in {(c.durationMs / 1000).toFixed(1)} s
          </Text>
          {c.mismatches.length > 0 && (
            <Table withTableBorder fz="xs" data-testid="wiring-mismatches" aria-label="Flows that disagree with the plan">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>from</Table.Th>
                  <Table.Th>to</Table.Th>
                  <Table.Th>port</Table.Th>
                  <Table.Th>plan</Table.Th>
                  <Table.Th>observed</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {c.mismatches.map((m, i) => (
                  <Table.Tr key={i} style={{ color: 'var(--mantine-color-red-text)' }}>
                    <Table.Td ff="monospace">
                      {m.fromNode}/{m.fromPlane} {m.from}
                    </Table.Td>
                    <Table.Td ff="monospace">
                      {m.toNode}/{m.toPlane} {m.to}
                    </Table.Td>
                    <Table.Td>{m.port}/tcp</Table.Td>
                    <Table.Td>{m.expect}</Table.Td>
                    <Table.Td fw={700}>{m.observed}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          )}
          {c.failed > c.mismatches.length && (
            <Text size="xs" c="red">
              … and {c.failed - c.mismatches.length} more (kubedos wiring check lists them all)
            </Text>
          )}
          {nodes.length > 0 ? (
            <Table withTableBorder fz="xs" data-testid="wiring-handshakes" aria-label={`Last handshake with ${c.hub}, at the time of the check`} style={{ width: 'auto', whiteSpace: 'nowrap' }}>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>last handshake with {c.hub} (at the check)</Table.Th>
                  <Table.Th>wg1</Table.Th>
                  <Table.Th>wg2</Table.Th>
                  <Table.Th>wg3</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {nodes.map((n) => (
                  <Table.Tr key={n}>
                    <Table.Td>{n}</Table.Td>
                    {(['wg1', 'wg2', 'wg3'] as const).map((p) => {
                      const h = c.handshakes.find((x) => x.node === n && x.plane === p);
                      return (
                        <Table.Td key={p} c={h?.ageSeconds === null || (h?.ageSeconds ?? 0) > 180 ? 'red' : undefined}>
                          {age(h?.ageSeconds)}
                        </Table.Td>
                      );
                    })}
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          ) : (
            <Text size="xs" c="dimmed">
              handshake ages were not read{c.handshakeError ? `: ${c.handshakeError}` : ''}
            </Text>
          )}
        </Stack>
      )}
    </Paper>
  );
}
