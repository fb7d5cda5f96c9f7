// Steps 5 and 6: what the build makes, then the deploy DAG started in main (deploy.run) and
// followed here and in the Pipeline view: stage states, node colours, cancel.
import { Alert, Badge, Button, Checkbox, Group, List, Stack, Text } from '@mantine/core';
import { IconPlayerStop, IconRocket, IconRoute, IconTopologyStar3 } from '@tabler/icons-react';
import { useStore } from 'zustand';
import { shellStore } from '../../shell/store';
import { analysisStore } from '../analysis/store';
import { cancelPipeline } from '../pipeline/actions';
import { NodeStrip } from '../pipeline/NodeStrip';
import { RunStages } from '../pipeline/RunStages';
import { pipelineStore } from '../pipeline/store';
import { startDeploy } from './actions';
import { targetLabel, targetOf, wizardStore } from './store';

export const DEPLOY_STAGES = ['validate', 'plan', 'build', 'provision', 'firstboot', 'backplanes', 'enroll', 'converge', 'workload', 'seal'] as const;

export function BuildStep() {
  const s = useStore(wizardStore);
  const plan = useStore(analysisStore, (x) => x.plan);
  const roles = [...new Set(plan?.nodes.map((n) => n.role) ?? [])];
  const r = s.review;
  return (
    <Stack gap="sm" data-testid="wizard-build">
      <Text size="sm">
        The deploy starts with the build, in the engine, into <code>{r?.workspace ?? 'the cluster workspace'}/build</code>:
      </Text>
      <List size="sm" spacing={2}>
        <List.Item>the darksite: an offline apt repository with every package the nodes install (pinned, signed)</List.Item>
        <List.Item>
          one qcow2 golden image per role ({roles.join(', ') || '—'}), Secure Boot shim + signed GRUB, the payload baked in
        </List.Item>
        <List.Item>manifest.json (sha256 of every output), SBOM (CycloneDX), provenance (in-toto / SLSA) and DSSE signatures</List.Item>
      </List>
      <Text size="sm" c="dimmed">
        Unchanged inputs are cache hits, so a rebuild only re-checks. Then, without stopping: {DEPLOY_STAGES.slice(3).join(' → ')}. Every event is journaled; running the same deploy again resumes where it stopped.
      </Text>
      <Checkbox label="Ignore the journal: run every stage again (force)" checked={s.force} onChange={(e) => s.set({ force: e.currentTarget.checked })} data-testid="force" />
      {r?.needsAllowDestroy && s.allowDestroy && (
        <Alert color="red" variant="light" data-testid="allow-destroy-reminder">
          Destroy is allowed: {r.decisions.filter((d) => d.destructive).map((d) => `${d.node} (${d.action})`).join(', ')}.
        </Alert>
      )}
      {s.startError && (
        <Alert color="red" title="The deploy did not start" data-testid="start-error">
          {s.startError}
        </Alert>
      )}
      <Group>
        <Button size="md" leftSection={<IconRocket size={18} />} onClick={() => void startDeploy()} loading={s.starting} data-testid="start-deploy">
          Build and deploy {r?.cluster} to {targetLabel(targetOf(s))}
        </Button>
      </Group>
    </Stack>
  );
}

export function DeployStep() {
  const run = useStore(wizardStore, (s) => s.run);
  const p = useStore(pipelineStore);
  if (!run) return <Text size="sm">No deploy started yet.</Text>;
  const ours = p.runId === run.runId;
  const active = ours && (p.status === 'running' || p.status === 'starting' || p.status === 'cancelling');
  return (
    <Stack gap="sm" data-testid="wizard-deploy">
      <Group gap="xs">
        <Text size="sm">
          Deploying <b>{run.cluster}</b> to <b>{run.target}</b> · run {run.runId.slice(0, 8)} · workspace {run.workspace}
        </Text>
        <Badge color={!ours ? 'gray' : p.status === 'failed' ? 'red' : p.status === 'done' ? 'green' : p.status === 'cancelled' ? 'orange' : 'blue'} data-testid="deploy-status">
          {ours ? p.status : 'replaced by a later run'}
        </Badge>
      </Group>
      <RunStages runId={run.runId} testid="deploy" />
      <NodeStrip />
      {ours && p.status === 'cancelled' && (
        <Text size="sm" c="dimmed">
          Cancelled: the journal is kept; deploy again to resume (stages that finished are skipped).
        </Text>
      )}
      <Group gap="xs">
        <Button leftSection={<IconRoute size={16} />} onClick={() => shellStore.getState().setView('pipeline')}>
          Pipeline and logs
        </Button>
        <Button variant="default" leftSection={<IconTopologyStar3 size={16} />} onClick={() => shellStore.getState().setView('topology')}>
          Topology
        </Button>
        <Button color="red" variant="light" leftSection={<IconPlayerStop size={16} />} disabled={!active} onClick={() => void cancelPipeline()} data-testid="wizard-cancel">
          Cancel the deploy
        </Button>
        <Button variant="subtle" disabled={active} onClick={() => wizardStore.getState().reset()} data-testid="wizard-restart">
          New deploy
        </Button>
      </Group>
    </Stack>
  );
}
