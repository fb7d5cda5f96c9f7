// Trust: the cluster's certificates with days left and rotation status (as `kubedos trust list`),
// the revoked nodes, and the trust operations (revoke, rotate node or hub keys, enrollment window)
// behind a confirmation that names the node. The operations run on the namespace lab of the plan
// (as `kubedos trust … --lab`): this version cannot reach a deployed cluster, and says so.
import { Alert, Badge, Button, Group, List, NumberInput, Paper, Select, Stack, Table, Text, Title } from '@mantine/core';
import { useEffect, useState } from 'react';
import { useStore } from 'zustand';
import type { TrustIdentity, TrustInventory } from '../../../common/trust/inventory';
import type { TrustOperation, TrustOpReport } from '../../../common/trust/operations';
import { ConfirmAction } from '../../components/ConfirmAction';
import { api } from '../../shell/api';
import { analysisStore } from '../analysis/store';

const STATUS_COLOR: Record<TrustIdentity['status'], string> = { ok: 'green', 'rotate-soon': 'yellow', 'expires-soon': 'orange', 'rotation-due': 'red', expired: 'red' };
const STATUS_TEXT: Record<TrustIdentity['status'], string> = { ok: 'ok', 'rotate-soon': 'rotate soon', 'expires-soon': 'expires soon', 'rotation-due': 'rotation due', expired: 'expired' };

/** What the confirmation says each operation will do. */
function describe(o: TrustOperation, cluster: string): { title: string; body: string; action: string; color: string } {
  switch (o.op) {
    case 'revoke':
      return { title: `Revoke ${o.node}?`, body: `${o.node} goes on the hub's revocation list and its peers leave wg1, wg2 and wg3 on the hub at once; the enrollment window refuses it from then on. A revoked node is replaced, not re-admitted.`, action: `Revoke ${o.node}`, color: 'red' };
    case 'rotate-node':
      return { title: `Rotate the keys of ${o.node}?`, body: `${o.node} makes new WireGuard keys on every plane and enrolls again with a fresh single-use token; the hub replaces its old peers. Its addresses do not change.`, action: `Rotate ${o.node}'s keys`, color: 'blue' };
    case 'rotate-hub':
      return { title: `Rotate the hub keys of ${cluster}?`, body: 'The hub makes new WireGuard keys on every plane and every enrolled node switches to them; each node must reach the hub again afterwards.', action: 'Rotate the hub keys', color: 'blue' };
    case 'window-open':
      return { title: 'Open the enrollment window?', body: `The hub accepts enrollments with a valid, unused token for ${o.minutes ?? 'the spec\u2019s'} minutes.`, action: 'Open the window', color: 'blue' };
    case 'window-close':
      return { title: 'Close the enrollment window?', body: 'The hub stops accepting enrollments until the window is opened again.', action: 'Close the window', color: 'blue' };
  }
}

export function TrustPanel() {
  const text = useStore(analysisStore, (s) => s.text);
  const spec = useStore(analysisStore, (s) => s.spec);
  const plan = useStore(analysisStore, (s) => s.plan);
  const cluster = spec?.metadata.name ?? '';
  const [inv, setInv] = useState<TrustInventory | { error: string } | undefined>();
  const [node, setNode] = useState<string | null>(null);
  const [minutes, setMinutes] = useState<number>(10);
  const [confirm, setConfirm] = useState<TrustOperation | undefined>();
  const [running, setRunning] = useState(false);
  const [result, setResult] = useState<TrustOpReport | { error: string; op: string } | undefined>();
  const spokes = (plan?.nodes ?? []).filter((n) => !n.hub).map((n) => n.name);
  const load = (): void => {
    if (!text || !spec) return;
    api()
      .invoke('trust.inventory', { text })
      .then((r) => setInv(r))
      .catch((err: Error) => setInv({ error: err.message }));
  };
  useEffect(() => {
    setInv(undefined);
    setResult(undefined);
    load();
  }, [cluster]);
  useEffect(() => {
    if (node === null || !spokes.includes(node)) setNode(spokes.at(-1) ?? null);
  }, [spokes.join(',')]);
  if (!spec || !text) return null;
  const run = (o: TrustOperation): void => {
    setRunning(true);
    setResult(undefined);
    api()
      .invoke('trust.run', { text, operation: o, lab: true })
      .then((r) => setResult(r))
      .catch((err: Error) => setResult({ error: err.message, op: o.op }))
      .finally(() => {
        setRunning(false);
        setConfirm(undefined);
        load();
      });
  };
  const i = inv && 'identities' in inv ? inv : undefined;
  const c = confirm ? describe(confirm, cluster) : undefined;
  return (
    <Paper withBorder p="sm" data-testid="trust">
      <Group justify="space-between" mb="xs">
        <Title order={5}>Trust: certificates and keys of {cluster}</Title>
        <Button size="xs" variant="subtle" onClick={load} data-testid="trust-refresh">
          Refresh
        </Button>
      </Group>
      {inv && 'error' in inv && (
        <Alert color="red" title="Could not read the certificates">
          {inv.error}
        </Alert>
      )}
      {i && i.identities.length === 0 && (
        <Text size="sm" data-testid="trust-none">
          No certificates for {cluster} yet: the first deploy makes the cluster CA, the hub&apos;s enrollment certificate and one identity certificate per node.
        </Text>
      )}
      {i && i.identities.length > 0 && (
        <Table fz="xs" striped data-testid="trust-identities">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>certificate</Table.Th>
              <Table.Th>subject</Table.Th>
              <Table.Th>serial</Table.Th>
              <Table.Th>not after</Table.Th>
              <Table.Th>days left</Table.Th>
              <Table.Th>rotate by</Table.Th>
              <Table.Th>status</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {i.identities.map((x) => (
              <Table.Tr key={x.file}>
                <Table.Td ff="monospace">{x.file}</Table.Td>
                <Table.Td style={{ overflowWrap: 'anywhere' }}>{x.subject}</Table.Td>
                <Table.Td ff="monospace">{x.serial.slice(0, 12)}</Table.Td>
                <Table.Td>{x.notAfter.slice(0, 10)}</Table.Td>
                <Table.Td>{x.daysLeft < 0 ? `${-x.daysLeft} ago` : x.daysLeft}</Table.Td>
                <Table.Td>{x.rotateBy?.slice(0, 10) ?? '—'}</Table.Td>
                <Table.Td>
                  <Badge size="sm" variant="light" color={STATUS_COLOR[x.status]}>
                    {STATUS_TEXT[x.status]}
                  </Badge>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      {i && i.wireguard.length > 0 && (
        <Table fz="xs" striped mt="xs" data-testid="trust-wireguard">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>WireGuard keys of</Table.Th>
              <Table.Th>since</Table.Th>
              <Table.Th>age (days)</Table.Th>
              <Table.Th>rotate by</Table.Th>
              <Table.Th>status</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {i.wireguard.map((w) => (
              <Table.Tr key={w.node}>
                <Table.Td ff="monospace">{w.node}</Table.Td>
                <Table.Td>{w.since.slice(0, 10)}</Table.Td>
                <Table.Td>{w.ageDays}</Table.Td>
                <Table.Td>{w.rotateBy.slice(0, 10)}</Table.Td>
                <Table.Td>
                  <Badge size="sm" variant="light" color={STATUS_COLOR[w.status]}>
                    {STATUS_TEXT[w.status]}
                  </Badge>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      {i && (
        <Stack gap={4} mt="xs">
          <Text size="xs" c="dimmed">
            Leaf certificates are due for rotation security.keyRotation.kubeCertDays ({spec.spec.security.keyRotation.kubeCertDays}) days after issue, WireGuard keys wireguardDays ({spec.spec.security.keyRotation.wireguardDays}) days after a deploy first saw them
            {i.wireguard.length ? '' : ' (not recorded yet)'}; a warning starts 7 days before.
          </Text>
          <Text size="sm" data-testid="trust-revoked">
            Revoked: {i.revoked.length ? i.revoked.map((r) => `${r.node} (${r.reason})`).join(', ') : 'none'}
          </Text>
          {i.warnings.length > 0 && (
            <Alert color="yellow" p="xs" title={`${i.warnings.length} to look at`} data-testid="trust-warnings">
              <List size="xs">
                {i.warnings.slice(0, 5).map((w) => (
                  <List.Item key={w}>{w}</List.Item>
                ))}
              </List>
              {i.warnings.length > 5 && <Text size="xs">and {i.warnings.length - 5} more (kubedos trust list)</Text>}
            </Alert>
          )}
        </Stack>
      )}
      <Title order={6} mt="md" mb={4}>
        Operations
      </Title>
      <Text size="xs" c="dimmed" mb="xs" data-testid="trust-where">
        A deployed cluster cannot be reached from the workbench yet: these run on a copy of the plan in network namespaces (real planes and enrollment; the workbench must run as root). Your workspace and any deployed cluster stay as they are.
      </Text>
      <Group gap="xs" align="flex-end">
        <Select size="xs" label="node" data={spokes} value={node} onChange={setNode} w={140} allowDeselect={false} data-testid="trust-node" />
        <Button size="xs" color="red" variant="light" disabled={!node || running} onClick={() => node && setConfirm({ op: 'revoke', node })} data-testid="trust-revoke">
          Revoke…
        </Button>
        <Button size="xs" variant="light" disabled={!node || running} onClick={() => node && setConfirm({ op: 'rotate-node', node })} data-testid="trust-rotate-node">
          Rotate node keys…
        </Button>
        <Button size="xs" variant="light" disabled={running} onClick={() => setConfirm({ op: 'rotate-hub' })} data-testid="trust-rotate-hub">
          Rotate hub keys…
        </Button>
        <NumberInput size="xs" label="window minutes" min={1} max={1440} value={minutes} onChange={(v) => setMinutes(typeof v === 'number' ? v : 10)} w={120} />
        <Button size="xs" variant="light" disabled={running} onClick={() => setConfirm({ op: 'window-open', minutes })} data-testid="trust-window-open">
          Open window…
        </Button>
        <Button size="xs" variant="light" disabled={running} onClick={() => setConfirm({ op: 'window-close' })} data-testid="trust-window-close">
          Close window…
        </Button>
      </Group>
      {result && 'error' in result && (
        <Alert color="red" mt="sm" title={`${result.op}: not done`} data-testid="trust-result" style={{ overflowWrap: 'anywhere' }}>
          {result.error}
        </Alert>
      )}
      {result && 'changed' in result && (
        <Paper withBorder p="xs" mt="sm" data-testid="trust-result">
          <Text size="sm" fw={600}>
            {result.op}
            {result.node ? ` ${result.node}` : ''} on the namespace lab of {result.cluster} (the operation took {(result.durationMs / 1000).toFixed(1)} s; the lab was removed afterwards)
          </Text>
          <List size="xs" mt={4}>
            {result.changed.map((x) => (
              <List.Item key={x}>changed: {x}</List.Item>
            ))}
            {result.unchanged.map((x) => (
              <List.Item key={x} c="dimmed">
                unchanged: {x}
              </List.Item>
            ))}
          </List>
        </Paper>
      )}
      <ConfirmAction
        opened={confirm !== undefined}
        title={c?.title}
        confirmLabel={c?.action}
        confirmColor={c?.color ?? 'red'}
        onConfirm={() => confirm && run(confirm)}
        onCancel={() => setConfirm(undefined)}
        running={running}
        testId="trust-confirm"
        confirmTestId="trust-confirm-run"
      >
        {c && (
          <>
            <Text size="sm">{c.body}</Text>
            <Text size="xs" c="dimmed">
              It runs on a copy of {cluster} built in network namespaces from the plan (about 10–20 s); the lab is removed afterwards.
            </Text>
          </>
        )}
      </ConfirmAction>
    </Paper>
  );
}
