// Restore from the Recovery view: the engine's restore.run (the same checks and fresh workspace as
// `kubedos restore`), followed live like a deploy (stages, failures, the run's log lines). It says
// what a restore from here does not do yet, before it starts.
import { Alert, Badge, Button, Code, Group, List, Paper, Stack, Text, TextInput, Title } from '@mantine/core';
import { useState } from 'react';
import { useStore } from 'zustand';
import { api } from '../../shell/api';
import { shellStore } from '../../shell/store';
import { cancelPipeline } from '../pipeline/actions';
import { RunStages } from '../pipeline/RunStages';
import { pipelineLogs, pipelineStore } from '../pipeline/store';

export function RestorePanel({ cluster, bundleDir }: { cluster: string; bundleDir: string }) {
  const [key, setKey] = useState('');
  const [into, setInto] = useState('');
  const [run, setRun] = useState<{ runId: string; workspace: string; into: string; key: string } | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [starting, setStarting] = useState(false);
  const p = useStore(pipelineStore);
  const ours = run !== undefined && p.runId === run.runId;
  const active = ours && (p.status === 'running' || p.status === 'starting' || p.status === 'cancelling');
  const lines = ours ? pipelineLogs.all().filter((l) => l.runId === run.runId).slice(-12) : [];
  const start = async (): Promise<void> => {
    setError(undefined);
    setStarting(true);
    pipelineStore.getState().starting();
    try {
      const r = await api().invoke('restore.run', { cluster, recoveryKey: key.trim(), into: into.trim() });
      setRun({ runId: r.runId, workspace: r.workspace, into: into.trim(), key: key.trim() });
    } catch (err) {
      const e = err as Error & { hint?: string };
      pipelineStore.getState().startFailed(e.message);
      setError(`${e.message}${e.hint ? ` — ${e.hint}` : ''}`);
    } finally {
      setStarting(false);
    }
  };
  return (
    <Paper withBorder p="sm" data-testid="restore-panel">
      <Title order={5} mb="xs">
        Restore {cluster} from this bundle
      </Title>
      <Text size="sm">A restore here checks the bundle, the recovery key and the kept build offline (and refuses before writing anything), then makes a fresh workspace with the same cluster identity: the same root and cluster CA, hub pin, build signing key and plan.</Text>
      <Alert color="blue" variant="light" mt="xs" title="What a restore from here does not do yet" data-testid="restore-limits">
        <List size="sm" spacing={2}>
          <List.Item>It does not rebuild the VMs: deploy the restored workspace afterwards, with the command shown when it ends.</List.Item>
          <List.Item>It does not put etcd back from the bundle's snapshot. The terminal command below does, once its deploy is done: on every etcd member, then it checks the cluster is the same one (same certificate authority, same plan, and a key you name still readable).</List.Item>
        </List>
      </Alert>
      <Stack gap="xs" mt="sm">
        <TextInput label="Recovery key file (the offline identity; read for this restore only, never kept)" placeholder="/media/paper-key/lab-3-recovery.txt" value={key} onChange={(e) => setKey(e.currentTarget.value)} data-testid="restore-key" />
        <TextInput label="Restore into (an empty workspace folder on this machine)" placeholder="/srv/kubedos-restored" value={into} onChange={(e) => setInto(e.currentTarget.value)} data-testid="restore-into" />
        <Text size="xs" c="dimmed">
          From <Code>{bundleDir}</Code> with the cluster's kept build beside it. From a terminal, <Code data-testid="recovery-restore-cli">kubedos restore {bundleDir} --artifact BUILD_DIR --recovery-key FILE --target qemu-local --expect-key KEY</Code> also rebuilds the VMs and puts etcd back.
        </Text>
        <Group gap="xs">
          <Button onClick={() => void start()} loading={starting} disabled={!key.trim() || !into.trim() || active} data-testid="restore-start">
            Check and restore
          </Button>
          {active && (
            <Button color="orange" variant="light" onClick={() => void cancelPipeline()} data-testid="restore-cancel">
              Stop
            </Button>
          )}
          {run && (
            <Button variant="default" onClick={() => shellStore.getState().setView('pipeline')}>
              Pipeline and logs
            </Button>
          )}
        </Group>
        {error && !run && (
          <Alert color="red" title="The restore did not start" data-testid="restore-error" style={{ overflowWrap: 'anywhere' }}>
            {error}
          </Alert>
        )}
        {run && (
          <Stack gap="xs" data-testid="restore-run">
            <Group gap="xs">
              <Text size="sm">
                Restore run {run.runId.slice(0, 8)} into <Code>{run.workspace}</Code>
              </Text>
              <Badge color={!ours ? 'gray' : p.status === 'failed' ? 'red' : p.status === 'done' ? 'green' : p.status === 'cancelled' ? 'orange' : 'blue'} data-testid="restore-status">
                {ours ? p.status : 'replaced by a later run'}
              </Badge>
            </Group>
            <RunStages runId={run.runId} testid="restore" />
            {ours && p.status === 'done' && (
              <Alert color="green" variant="light" title="Workspace restored: the cluster's identity is back, its VMs are not" data-testid="restore-next" style={{ overflowWrap: 'anywhere' }}>
                <Text size="sm">Rebuild the VMs from the kept build and bring the planes up with:</Text>
                <Code block mt={4}>{`KUBEDOS_WORKSPACE=${run.into} KUBEDOS_RECOVERY_IDENTITY_FILE=${run.key} \\
  kubedos deploy ${run.workspace}/spec.yaml --target TARGET`}</Code>
              </Alert>
            )}
            {lines.length > 0 && (
              <Code block data-testid="restore-log" style={{ whiteSpace: 'pre-wrap', overflowWrap: 'anywhere' }}>
                {lines.map((l) => l.line).join('\n')}
              </Code>
            )}
          </Stack>
        )}
      </Stack>
    </Paper>
  );
}
