// Stop, start and destroy the spec's cluster on the chosen target (lifecycle.* in main, the same
// engine as `kubedos stop|start|destroy`). Destroy asks first: the dialog names the cluster,
// counts what goes (VMs, uploaded images, processes, files and folders) and what stays (VMs that are not this
// cluster's), and wants the cluster's name typed before its button works.
import { Alert, Badge, Button, Checkbox, Group, List, Paper, Text } from '@mantine/core';
import { IconPlayerPlay, IconPlayerStop, IconTrash } from '@tabler/icons-react';
import { useEffect, useState } from 'react';
import { useStore } from 'zustand';
import type { DeployTarget, DestroyPreview, LifecycleAction, LifecycleOutcome } from '../../../common/contract/index';
import { fmtBytes } from '../../../common/text/bytes';
import { plural } from '../../../common/text/plural';
import { ConfirmAction } from '../../components/ConfirmAction';
import { api } from '../../shell/api';
import { analysisStore } from '../analysis/store';
import { specStore } from '../spec/store';
import { targetLabel, targetOf, wizardStore } from './store';

const message = (err: unknown): string => {
  const e = err as Error & { hint?: string };
  return `${e.message ?? String(err)}${e.hint ? ` — ${e.hint}` : ''}`;
};
const PAST: Record<LifecycleAction, string> = { stop: 'stopped', start: 'started', destroy: 'destroyed' };
const FIRST = 6;

function FirstFew({ items }: { items: readonly string[] }) {
  return (
    <List size="xs" spacing={0}>
      {items.slice(0, FIRST).map((x) => (
        <List.Item key={x}>
          <Text size="xs" ff="monospace" style={{ wordBreak: 'break-all' }}>
            {x}
          </Text>
        </List.Item>
      ))}
      {items.length > FIRST && <List.Item>… and {items.length - FIRST} more</List.Item>}
    </List>
  );
}

function Outcome({ o }: { o: LifecycleOutcome }) {
  return (
    <Alert color={o.ok ? 'green' : 'red'} variant="light" title={o.ok ? `${o.cluster} ${PAST[o.action]} on ${o.target}` : `${o.action} ${o.cluster}: ${o.error?.message.split('\n')[0] ?? 'did not finish'}`} data-testid="lifecycle-outcome">
      {o.did.length > 0 && (
        <>
          <Text size="xs">Done ({o.did.length}):</Text>
          <FirstFew items={o.did} />
        </>
      )}
      {o.notDone.length > 0 && (
        <>
          <Text size="xs" mt={4}>
            Not done ({o.notDone.length}):
          </Text>
          <FirstFew items={o.notDone} />
        </>
      )}
      {o.error?.hint && (
        <Text size="xs" mt={4}>
          next: {o.error.hint}
        </Text>
      )}
    </Alert>
  );
}

function DestroyDialog({ target, cluster, onClose, onDone }: { target: DeployTarget; cluster: string; onClose: () => void; onDone: (o: LifecycleOutcome) => void }) {
  const [preview, setPreview] = useState<DestroyPreview | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [keep, setKeep] = useState(false);
  const [running, setRunning] = useState(false);
  const text = specStore.getState().text;
  useEffect(() => {
    let current = true;
    setPreview(undefined);
    setError(undefined);
    api()
      .invoke('lifecycle.preview', { target, text, keepWorkspace: keep })
      .then((p) => current && setPreview(p))
      .catch((err: unknown) => current && setError(message(err)));
    return () => {
      current = false;
    };
    // The target by its label: the object is rebuilt on every render of the bar.
  }, [targetLabel(target), text, keep]);
  const destroy = async (): Promise<void> => {
    setRunning(true);
    try {
      onDone(await api().invoke('lifecycle.run', { action: 'destroy', target, text, allowDestroy: true, keepWorkspace: keep }));
    } catch (err) {
      setError(message(err));
    } finally {
      setRunning(false);
    }
  };
  const p = preview;
  const counts = p
    ? [plural(p.vms.length, 'VM'), ...(p.images.length ? [plural(p.images.length, 'uploaded image')] : []), plural(p.processes.length, 'process', 'processes'), `${plural(p.paths.length, 'file')} and folders`].join(', ')
    : '';
  const ready = p !== undefined && p.reachable && !p.neverDeployed;
  return (
    <ConfirmAction
      opened
      title={`Destroy cluster ${cluster} on ${targetLabel(target)}?`}
      {...(ready ? { typeToConfirm: cluster } : {})}
      confirmLabel={`Destroy ${cluster}`}
      confirmIcon={<IconTrash size={16} />}
      onConfirm={() => void destroy()}
      onCancel={onClose}
      running={running}
      disabled={!ready}
      modalSize="lg"
      testId="destroy-dialog"
      confirmTestId="destroy-confirm"
      typeTestId="destroy-confirm-name"
    >
      {error && (
        <Alert color="red" variant="light" data-testid="destroy-error">
          {error}
        </Alert>
      )}
      {!p && !error && <Text size="sm">Reading what {cluster} has on {targetLabel(target)}…</Text>}
      {p && !p.reachable && (
        <Alert color="orange" variant="light">
          {targetLabel(target)} did not answer ({p.unreachable}): its VMs cannot be listed, so nothing can be destroyed now.
        </Alert>
      )}
      {p?.neverDeployed && <Text size="sm">{cluster} has nothing here: no VM on {targetLabel(target)} and no workspace. There is nothing to destroy.</Text>}
      {p && p.reachable && !p.neverDeployed && (
        <>
          <Text size="sm" data-testid="destroy-counts">
            This removes <b>{counts}</b>. It cannot be undone.
          </Text>
          {p.vms.length > 0 && <FirstFew items={p.vms.map((v) => `VM ${v.vmid} ${v.name} (${v.status}) with its disks and TPM state`)} />}
          {p.images.length > 0 && <FirstFew items={p.images.map((i) => `image ${i.volid} (${fmtBytes(i.sizeBytes)}${i.partial ? ', an interrupted upload' : ''})`)} />}
          {p.processes.length > 0 && <FirstFew items={p.processes} />}
          {p.paths.length > 0 && <FirstFew items={p.paths} />}
          {p.foreign.length > 0 && (
            <Alert color="blue" variant="light" title={`${p.foreign.length} VM${p.foreign.length === 1 ? '' : 's'} in the VMID range stay${p.foreign.length === 1 ? 's' : ''}: not this cluster's`}>
              <FirstFew items={p.foreign.map((f) => `${f.vmid} ${f.name}`)} />
            </Alert>
          )}
          {p.keptImages.length > 0 && (
            <Alert color="blue" variant="light" title={`${plural(p.keptImages.length, 'image')} of ${cluster} stay${p.keptImages.length === 1 ? 's' : ''}: another VM uses ${p.keptImages.length === 1 ? 'it' : 'them'}`}>
              <FirstFew items={p.keptImages.map((k) => `${k.volid}, used by VM ${k.usedBy.join(', ')}`)} />
            </Alert>
          )}
          {p.exportTo && (
            <Text size="xs" c="dimmed">
              First, the trust material, the recovery bundle and the plan are copied to {p.exportTo}, so a restore stays possible.
            </Text>
          )}
          <Checkbox label="Keep the workspace (secrets, trust, build cache); only the VMs and their local state go" checked={keep} onChange={(e) => setKeep(e.currentTarget.checked)} data-testid="destroy-keep" />
        </>
      )}
    </ConfirmAction>
  );
}

/** The lifecycle bar: which cluster, on which target, and its three actions. */
export function ClusterActions() {
  const spec = useStore(analysisStore, (x) => x.spec);
  const s = useStore(wizardStore);
  const [busy, setBusy] = useState<LifecycleAction | undefined>();
  const [outcome, setOutcome] = useState<LifecycleOutcome | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [confirm, setConfirm] = useState(false);
  const target = targetOf(s);
  if (!spec) return null;
  const cluster = spec.metadata.name;
  const run = async (action: 'stop' | 'start'): Promise<void> => {
    if (!target) return;
    setBusy(action);
    setError(undefined);
    setOutcome(undefined);
    try {
      setOutcome(await api().invoke('lifecycle.run', { action, target, text: specStore.getState().text }));
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(undefined);
    }
  };
  return (
    <Paper withBorder p="xs" mb="md" data-testid="cluster-actions">
      <Group gap="xs" wrap="wrap">
        <Text size="sm">
          Cluster <b>{cluster}</b> on
        </Text>
        <Badge variant="light">{target ? targetLabel(target) : 'no target chosen'}</Badge>
        <Group gap="xs" ml="auto">
          <Button size="xs" variant="default" leftSection={<IconPlayerStop size={14} />} disabled={!target || busy !== undefined} loading={busy === 'stop'} onClick={() => void run('stop')} data-testid="cluster-stop">
            Stop
          </Button>
          <Button size="xs" variant="default" leftSection={<IconPlayerPlay size={14} />} disabled={!target || busy !== undefined} loading={busy === 'start'} onClick={() => void run('start')} data-testid="cluster-start">
            Start
          </Button>
          <Button size="xs" color="red" variant="light" leftSection={<IconTrash size={14} />} disabled={!target || busy !== undefined} onClick={() => setConfirm(true)} data-testid="cluster-destroy">
            Destroy…
          </Button>
        </Group>
      </Group>
      {!target && (
        <Text size="xs" c="dimmed" mt={4}>
          Choose the target in the first step to stop, start or destroy this cluster there.
        </Text>
      )}
      {busy && (
        <Text size="xs" c="dimmed" mt={4}>
          {busy === 'stop' ? 'Shutting the VMs down through their guest agents, the hub last…' : 'Starting the VMs, the hub first; waiting for the agents, the planes and etcd…'} Progress is in the Pipeline view.
        </Text>
      )}
      {error && (
        <Alert color="red" variant="light" mt="xs">
          {error}
        </Alert>
      )}
      {outcome && (
        <div style={{ marginTop: 8 }}>
          <Outcome o={outcome} />
        </div>
      )}
      {confirm && target && (
        <DestroyDialog
          target={target}
          cluster={cluster}
          onClose={() => setConfirm(false)}
          onDone={(o) => {
            setConfirm(false);
            setOutcome(o);
          }}
        />
      )}
    </Paper>
  );
}
