// Restore from the Recovery view: the engine's restore run (main/restore/run.ts, the same run as
// `kubedos restore`), followed live like a deploy (stages, the deploy inside it, failures, the
// run's log lines). With a target (local QEMU or a Proxmox host from the deploy wizard's list) it
// rebuilds the VMs from the kept build, puts etcd back from the bundle's snapshot, proves the
// identity and seals the restored cluster again; without one it makes the workspace only. What a
// restore from here does not do yet, it says before it starts.
import { Alert, Badge, Button, Code, Group, List, Paper, Progress, Select, Stack, Text, TextInput, Title } from '@mantine/core';
import { useEffect, useState } from 'react';
import { useStore } from 'zustand';
import type { DeployTarget } from '../../../common/contract/index';
import { api } from '../../shell/api';
import { shellStore } from '../../shell/store';
import { loadTargets } from '../deploy/actions';
import { targetLabel, wizardStore } from '../deploy/store';
import { cancelPipeline } from '../pipeline/actions';
import { RunStages } from '../pipeline/RunStages';
import { pipelineLogs, pipelineStore } from '../pipeline/store';

const NO_TARGET = 'none';

/** The target picked in the Select: its value is the target's label (qemu-local, proxmox://HOST). */
function targetOfLabel(label: string): DeployTarget | undefined {
  if (label === 'qemu-local') return { kind: 'qemu-local' };
  return label.startsWith('proxmox://') ? { kind: 'proxmox', host: label.slice('proxmox://'.length) } : undefined;
}

export function RestorePanel({ cluster, bundleDir }: { cluster: string; bundleDir: string }) {
  const [key, setKey] = useState('');
  const [into, setInto] = useState('');
  const [targetValue, setTargetValue] = useState<string>(NO_TARGET);
  const [expectKey, setExpectKey] = useState('');
  const [run, setRun] = useState<{ runId: string; workspace: string; into: string; key: string; target?: DeployTarget } | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [starting, setStarting] = useState(false);
  const p = useStore(pipelineStore);
  const targets = useStore(wizardStore, (s) => s.targets);
  const targetsError = useStore(wizardStore, (s) => s.targetsError);
  useEffect(() => {
    // The deploy wizard's list of Proxmox hosts (~/.ssh/config), read once.
    if (!targets && !targetsError) void loadTargets();
  }, []);
  const target = targetOfLabel(targetValue);
  const ours = run !== undefined && p.runId === run.runId;
  const active = ours && (p.status === 'running' || p.status === 'starting' || p.status === 'cancelling');
  const lines = ours ? pipelineLogs.all().filter((l) => l.runId === run.runId).slice(-12) : [];
  const deployStage = ours ? p.stages.deploy : undefined;
  const sealStage = ours ? p.stages.seal : undefined;
  const inner = [deployStage, sealStage].find((s) => s?.state === 'running');
  const start = async (): Promise<void> => {
    setError(undefined);
    setStarting(true);
    pipelineStore.getState().starting();
    try {
      const r = await api().invoke('restore.run', { cluster, recoveryKey: key.trim(), into: into.trim(), ...(target ? { target } : {}), ...(target && expectKey.trim() ? { expectKey: expectKey.trim() } : {}) });
      setRun({ runId: r.runId, workspace: r.workspace, into: into.trim(), key: key.trim(), ...(target ? { target } : {}) });
    } catch (err) {
      const e = err as Error & { hint?: string };
      pipelineStore.getState().startFailed(e.message);
      setError(`${e.message}${e.hint ? ` — ${e.hint}` : ''}`);
    } finally {
      setStarting(false);
    }
  };
  const targetData = [
    { value: NO_TARGET, label: 'No target: make the workspace only' },
    { value: 'qemu-local', label: 'Local QEMU (this machine)' },
    ...(targets?.hosts ?? []).map((h) => ({ value: targetLabel({ kind: 'proxmox', host: h.alias }), label: `Proxmox ${h.alias} (${h.user}@${h.hostName}:${h.port})` })),
  ];
  return (
    <Paper withBorder p="sm" data-testid="restore-panel">
      <Title order={5} mb="xs">
        Restore {cluster} from this bundle
      </Title>
      <Text size="sm">
        A restore here checks the bundle, the recovery key and the kept build offline (and refuses before writing anything), then makes a fresh workspace with the same cluster identity: the same root and cluster CA, hub pin, build signing key and plan. With a target it then rebuilds the VMs from the kept build (offline), puts etcd back from the bundle&apos;s snapshot on every member, checks the cluster is the same one (same certificate authority, same plan, and a key you name still readable) and seals the restored cluster again, so its new bundle holds the restored data.
      </Text>
      <Alert color="blue" variant="light" mt="xs" title="What a restore from here does not do yet" data-testid="restore-limits">
        <List size="sm" spacing={2}>
          <List.Item>It does not check the target first: check its capacity (and a Proxmox host&apos;s SSH key) in the Deploy wizard before a long restore.</List.Item>
          <List.Item>It does not ask for an SSH key passphrase: as for a deploy from here, an encrypted key is used only through the workbench&apos;s environment.</List.Item>
          <List.Item>It has not been proven on real VMs from here yet: the VM test runs the same restore through the terminal command below.</List.Item>
        </List>
      </Alert>
      <Stack gap="xs" mt="sm">
        <TextInput label="Recovery key file (the offline identity; read for this restore only, never kept)" placeholder="/media/paper-key/lab-3-recovery.txt" value={key} onChange={(e) => setKey(e.currentTarget.value)} data-testid="restore-key" />
        <TextInput label="Restore into (an empty workspace folder on this machine)" placeholder="/srv/kubedos-restored" value={into} onChange={(e) => setInto(e.currentTarget.value)} data-testid="restore-into" />
        <Group align="flex-start" gap="sm" grow>
          <Select
            label="Rebuild the cluster on"
            description={targetsError ? `Proxmox hosts: could not read ~/.ssh/config (${targetsError})` : 'local QEMU or a Proxmox host from ~/.ssh/config, as in the Deploy wizard'}
            data={targetData}
            value={targetValue}
            onChange={(v) => setTargetValue(v ?? NO_TARGET)}
            allowDeselect={false}
            data-testid="restore-target"
          />
          <TextInput
            label="Expected etcd key (optional)"
            description="a key that must read back once etcd is put back: the proof you choose"
            placeholder="/registry/namespaces/default"
            value={expectKey}
            disabled={!target}
            onChange={(e) => setExpectKey(e.currentTarget.value)}
            data-testid="restore-expect-key"
          />
        </Group>
        <Text size="xs" c="dimmed">
          From <Code>{bundleDir}</Code> with the cluster&apos;s kept build beside it. The same restore from a terminal:{' '}
          <Code data-testid="recovery-restore-cli">
            kubedos restore {bundleDir} --artifact BUILD_DIR --recovery-key FILE --target {target ? targetLabel(target) : 'qemu-local'}
            {target && expectKey.trim() ? ` --expect-key ${expectKey.trim()}` : ' --expect-key KEY'}
          </Code>
          {'. Running it again resumes a restore that stopped.'}
        </Text>
        <Group gap="xs">
          <Button onClick={() => void start()} loading={starting} disabled={!key.trim() || !into.trim() || active} data-testid="restore-start">
            {target ? `Check, restore and rebuild on ${targetLabel(target)}` : 'Check and restore the workspace'}
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
                {run.target ? ` on ${targetLabel(run.target)}` : ''}
              </Text>
              <Badge color={!ours ? 'gray' : p.status === 'failed' ? 'red' : p.status === 'done' ? 'green' : p.status === 'cancelled' ? 'orange' : 'blue'} data-testid="restore-status">
                {ours ? p.status : 'replaced by a later run'}
              </Badge>
            </Group>
            <RunStages runId={run.runId} testid="restore" />
            {inner && (
              <Stack gap={2} data-testid="restore-deploy-progress">
                <Text size="xs">
                  {inner.name === 'seal' ? 'Sealing again' : 'Deploy'}: {inner.message ?? 'starting'}
                </Text>
                <Progress value={inner.progress * 100} size="sm" />
              </Stack>
            )}
            {ours && p.status === 'done' && run.target && (
              <Alert color="green" variant="light" title="Restored: the VMs are rebuilt, etcd is back, the cluster is sealed again" data-testid="restore-next" style={{ overflowWrap: 'anywhere' }}>
                <Text size="sm">The identity lines in the log below are the proof; the run&apos;s timeline is in {run.workspace}/restore-timeline.json.</Text>
              </Alert>
            )}
            {ours && p.status === 'done' && !run.target && (
              <Alert color="green" variant="light" title="Workspace restored: the cluster's identity is back, its VMs are not" data-testid="restore-next" style={{ overflowWrap: 'anywhere' }}>
                <Text size="sm">Run this restore again with a target to rebuild the VMs, put etcd back and seal again (it resumes this workspace), or deploy it from a terminal:</Text>
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
