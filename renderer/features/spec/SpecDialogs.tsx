// Modals of the spec view: discard confirmation, open (browser bridge: workspace files),
// save as (browser bridge: a name inside the workspace), and new from template.
import { Button, Group, Modal, Stack, Text, TextInput, UnstyledButton } from '@mantine/core';
import { useEffect, useState } from 'react';
import { useStore } from 'zustand';
import { ConfirmAction } from '../../components/ConfirmAction';
import { api } from '../../shell/api';
import { notifyError } from '../../shell/notify';
import { shellStore } from '../../shell/store';
import { guardUnsaved, loadTemplate, openSpec, saveSpec, specDialogs } from './actions';

export function SpecDialogsHost() {
  const d = useStore(specDialogs);
  const workspace = useStore(shellStore, (s) => s.appInfo?.workspace ?? '');
  const [files, setFiles] = useState<{ path: string; bytes: number }[]>([]);
  const [templates, setTemplates] = useState<{ name: string; description: string }[]>([]);
  const [path, setPath] = useState('');

  useEffect(() => {
    if (d.open) api().invoke('spec.list', {}).then(setFiles, (e: unknown) => notifyError('Could not list specs', e));
  }, [d.open]);
  useEffect(() => {
    if (d.templates) api().invoke('spec.templates', {}).then(setTemplates, (e: unknown) => notifyError('Could not list templates', e));
  }, [d.templates]);

  return (
    <>
      <ConfirmAction
        opened={Boolean(d.confirm)}
        title={d.confirm?.title ?? ''}
        confirmLabel="Discard changes"
        cancelLabel="Keep editing"
        onConfirm={() => {
          const go = d.confirm?.proceed;
          d.set({ confirm: undefined });
          go?.();
        }}
        onCancel={() => d.set({ confirm: undefined })}
      >
        <Text size="sm">The editor has changes that are not saved to a file.</Text>
      </ConfirmAction>

      <Modal opened={d.templates} onClose={() => d.set({ templates: false })} title="New spec from a template" centered size="lg">
        <Stack gap="xs">
          {templates.map((t) => (
            <UnstyledButton
              key={t.name}
              data-testid={`template-${t.name}`}
              aria-label={`New from template ${t.name}`}
              p="sm"
              style={{ border: '1px solid var(--mantine-color-default-border)', borderRadius: 6 }}
              onClick={() => {
                d.set({ templates: false });
                guardUnsaved(`start from ${t.name}`, () => void loadTemplate(t.name));
              }}
            >
              <Text fw={600}>{t.name}</Text>
              <Text size="sm" c="dimmed">
                {t.description}
              </Text>
            </UnstyledButton>
          ))}
        </Stack>
      </Modal>

      <Modal opened={d.open} onClose={() => d.set({ open: false })} title="Open a spec" centered size="lg">
        <Text size="xs" c="dimmed" mb="xs">
          The browser bridge opens files inside the workspace {workspace} (or the spec given to kubedos serve).
        </Text>
        <Stack gap={4} mb="sm">
          {files.length === 0 && <Text size="sm">No .yaml files in the workspace yet.</Text>}
          {files.map((f) => (
            <UnstyledButton key={f.path} p={6} onClick={() => void openSpec(f.path).then((ok) => ok && d.set({ open: false }))} ff="monospace" fz="sm">
              {f.path} <Text span c="dimmed" fz="xs">({f.bytes} bytes)</Text>
            </UnstyledButton>
          ))}
        </Stack>
        <Group align="flex-end">
          <TextInput style={{ flex: 1 }} label="Path" placeholder="cluster.yaml" value={path} onChange={(e) => setPath(e.currentTarget.value)} />
          <Button disabled={!path} onClick={() => void openSpec(path).then((ok) => ok && d.set({ open: false }))}>
            Open
          </Button>
        </Group>
      </Modal>

      <Modal opened={d.saveAs} onClose={() => d.set({ saveAs: false })} title="Save the spec as" centered>
        <Text size="xs" c="dimmed" mb="xs">
          Relative names are inside the workspace {workspace}.
        </Text>
        <Group align="flex-end">
          <TextInput data-autofocus style={{ flex: 1 }} label="File name" placeholder="cluster.yaml" value={path} onChange={(e) => setPath(e.currentTarget.value)} />
          <Button disabled={!/\.ya?ml$/i.test(path)} onClick={() => void saveSpec(path).then((ok) => ok && d.set({ saveAs: false }))}>
            Save
          </Button>
        </Group>
      </Modal>
    </>
  );
}
