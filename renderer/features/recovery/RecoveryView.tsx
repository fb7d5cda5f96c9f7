// Recovery: this cluster's recovery bundle (the seal stage writes it at the end of a deploy):
// what it holds, what is encrypted to the offline recovery recipient, and the same offline
// checks as `kubedos verify` plus the seal's restore-completeness check; a restore (RestorePanel)
// and the portable USB stick (UsbDialog) through the same engine services as the CLI; the
// cluster's trust (certificates with expiry, revoke / rotate / enrollment window: TrustPanel.tsx).
// The recovery identity is read from its file for one restore and never kept.
import { Alert, Badge, Button, Code, Group, List, Paper, ScrollArea, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { useEffect, useState } from 'react';
import { useStore } from 'zustand';
import type { RecoveryInspection } from '../../../common/contract/index';
import { fmtBytes as size } from '../../../common/text/bytes';
import { api } from '../../shell/api';
import { analysisStore } from '../analysis/store';
import { RestorePanel } from './RestorePanel';
import { UsbDialog } from './UsbDialog';
import { TrustPanel } from './TrustPanel';


function Fact({ label, children }: { label: string; children: React.ReactNode }) {
  return (
    <div>
      <Text size="xs" c="dimmed">
        {label}
      </Text>
      <Text size="sm" style={{ wordBreak: 'break-all' }}>
        {children}
      </Text>
    </div>
  );
}

function Checks({ title, r, testid }: { title: string; r: { ok: boolean; file?: string | undefined; reason?: string | undefined; checks: string[] }; testid: string }) {
  return (
    <Paper withBorder p="sm" data-testid={testid}>
      <Group justify="space-between" mb="xs">
        <Title order={5}>{title}</Title>
        <Badge color={r.ok ? 'green' : 'red'}>{r.ok ? 'ok' : 'failed'}</Badge>
      </Group>
      <List size="xs" spacing={2} style={{ overflowWrap: 'anywhere' }}>
        {r.checks.map((c) => (
          <List.Item key={c}>{c}</List.Item>
        ))}
      </List>
      {!r.ok && (
        <Alert color="red" mt="xs" title={r.file ?? 'failed'} style={{ overflowWrap: 'anywhere' }}>
          {r.reason}
        </Alert>
      )}
    </Paper>
  );
}

export function RecoveryView() {
  const spec = useStore(analysisStore, (s) => s.spec);
  const cluster = spec?.metadata.name;
  const [info, setInfo] = useState<RecoveryInspection | { error: string } | undefined>();
  const [busy, setBusy] = useState(false);
  const [usbOpen, setUsbOpen] = useState(false);
  const load = (verify: boolean): void => {
    if (!cluster) return;
    setBusy(true);
    api()
      .invoke('recovery.inspect', { cluster, verify })
      .then((r) => setInfo(r))
      .catch((err: Error) => setInfo({ error: err.message }))
      .finally(() => setBusy(false));
  };
  useEffect(() => {
    setInfo(undefined);
    load(false);
  }, [cluster]);
  if (!cluster) return <Text p="md">No valid spec yet: fix the spec's problems first.</Text>;
  const i = info && 'cluster' in info ? info : undefined;
  const m = i?.manifest;
  const encrypted = new Set(m?.recovery?.encrypted ?? []);
  return (
    <ScrollArea h="100%">
      <Stack p="md" gap="md" data-testid="recovery">
        {info && 'error' in info && !('cluster' in info) && (
          <Alert color="red" title="Could not read the recovery bundle">
            {info.error}
          </Alert>
        )}
        {i && !i.present && (
          <Alert color="blue" title={`No recovery bundle for ${cluster} yet`} data-testid="recovery-none">
            The last stage of a deploy (seal) writes it to <Code>{i.dir}</Code>. Deploy the cluster first (Deploy view, or <Code>kubedos deploy SPEC</Code>).
          </Alert>
        )}
        {i?.error && (
          <Alert color="red" title="The bundle cannot be read">
            {i.error}
          </Alert>
        )}
        {!m && info !== undefined && <TrustPanel />}
        {m && (
          <>
            <Paper withBorder p="sm">
              <Group justify="space-between" mb="xs">
                <Title order={5}>Recovery bundle of {cluster}</Title>
                <Group gap="xs">
                  <Button size="xs" variant="light" onClick={() => setUsbOpen(true)} data-testid="open-usb">
                    USB stick…
                  </Button>
                  <Button size="xs" loading={busy} onClick={() => load(true)} data-testid="recovery-verify">
                    Verify offline
                  </Button>
                </Group>
              </Group>
              <SimpleGrid cols={{ base: 1, md: 2 }} spacing="sm">
                <Fact label="where">{i.dir}</Fact>
                <Fact label="artifact version">{m.artifactVersion}</Fact>
                <Fact label="signed by build key">{m.signingKeyId.slice(0, 32)}…</Fact>
                <Fact label="bundle.json sha256">{i.bundleSha256?.slice(0, 32)}…</Fact>
                <Fact label="plan sha256">{m.planSha256.slice(0, 32)}…</Fact>
                <Fact label="files">{m.files.length}</Fact>
                <Fact label="recovery recipient (the identity is kept offline)">{m.recovery ? <span data-testid="recovery-recipient">{m.recovery.recipient}</span> : 'none: this bundle cannot restore the cluster\u2019s identity (seal it again)'}</Fact>
                <Fact label="etcd snapshot">{m.recovery?.etcdSnapshot ? `${size(m.recovery.etcdSnapshot.size)} from ${m.recovery.etcdSnapshot.node}, encrypted` : 'none in this bundle'}</Fact>
              </SimpleGrid>
            </Paper>
            {i.verify && (
              <SimpleGrid cols={{ base: 1, lg: 2 }} spacing="md">
                <Checks title="Signature and files (kubedos verify)" r={i.verify} testid="recovery-verify-result" />
                {i.restorable ? (
                  <Checks title={`Complete for a restore (${i.restorable.level === 'decrypted' ? 'opened' : 'checked without the recovery identity'})`} r={i.restorable} testid="recovery-restorable-result" />
                ) : (
                  <Paper withBorder p="sm" data-testid="recovery-restorable-result">
                    <Title order={5} mb="xs">
                      Complete for a restore
                    </Title>
                    <Text size="sm">Not checked: a bundle that does not verify cannot be trusted for a restore. Use an intact copy.</Text>
                  </Paper>
                )}
              </SimpleGrid>
            )}
            <UsbDialog opened={usbOpen} onClose={() => setUsbOpen(false)} cluster={cluster} />
            <RestorePanel cluster={cluster} bundleDir={i.dir} />
            <TrustPanel />
            <Paper withBorder p="sm">
              <Title order={5} mb="xs">
                Contents
              </Title>
              <Table striped highlightOnHover data-testid="recovery-files" fz="xs">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>file</Table.Th>
                    <Table.Th>size</Table.Th>
                    <Table.Th>sha256</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {m.files.map((f) => (
                    <Table.Tr key={f.path}>
                      <Table.Td>
                        <Group gap={6} wrap="nowrap">
                          <Text size="xs" ff="monospace">
                            {f.path}
                          </Text>
                          {encrypted.has(f.path) && (
                            <Badge size="xs" color="grape" variant="light">
                              encrypted
                            </Badge>
                          )}
                        </Group>
                      </Table.Td>
                      <Table.Td>{size(f.size)}</Table.Td>
                      <Table.Td>
                        <Text size="xs" ff="monospace" c="dimmed">
                          {f.sha256.slice(0, 16)}…
                        </Text>
                      </Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </Paper>
          </>
        )}
      </Stack>
    </ScrollArea>
  );
}
