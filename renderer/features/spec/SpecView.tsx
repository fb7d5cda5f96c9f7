// Spec view: toolbar (new from template, open, save), the editor, and the problems list.
import { Badge, Button, Group, Text, Tooltip } from '@mantine/core';
import { IconDeviceFloppy, IconFileImport, IconTemplate } from '@tabler/icons-react';
import { useStore } from 'zustand';
import { analysisStore } from '../analysis/store';
import { requestOpen, requestSaveAs, requestTemplate, saveSpec } from './actions';
import { ProblemsList } from './ProblemsList';
import { SpecEditor } from './SpecEditor';
import { isDirty, specStore } from './store';

export function SpecView() {
  const origin = useStore(specStore, (s) => s.origin);
  const dirty = useStore(specStore, isDirty);
  const errors = useStore(analysisStore, (s) => s.diagnostics.filter((d) => d.severity === 'error').length);
  const cluster = useStore(analysisStore, (s) => s.spec?.metadata.name);
  return (
    <div style={{ display: 'flex', flexDirection: 'column', height: '100%' }}>
      <Group justify="space-between" p="xs" wrap="nowrap">
        <Group gap="xs" wrap="nowrap">
          <Button size="xs" variant="light" leftSection={<IconTemplate size={14} />} onClick={requestTemplate} aria-label="New from template">
            New from template
          </Button>
          <Tooltip label="Ctrl+O">
            <Button size="xs" variant="default" leftSection={<IconFileImport size={14} />} onClick={requestOpen}>
              Open…
            </Button>
          </Tooltip>
          <Tooltip label="Ctrl+S">
            <Button size="xs" variant="default" leftSection={<IconDeviceFloppy size={14} />} onClick={() => void saveSpec()}>
              Save
            </Button>
          </Tooltip>
          <Button size="xs" variant="subtle" onClick={requestSaveAs}>
            Save as…
          </Button>
        </Group>
        <Group gap="xs" wrap="nowrap" style={{ minWidth: 0 }}>
          <Text size="xs" c="dimmed" truncate maw={420} data-testid="spec-origin" data-origin={origin} title={origin}>
            {/* A path shows as its file name; the whole path is the tooltip. */}
            {origin.includes('/') ? `${origin.split('/').at(-1)} — ${origin.split('/').slice(0, -1).join('/')}` : origin}
          </Text>
          {dirty && (
            <Badge size="sm" color="orange" variant="light" data-testid="dirty">
              unsaved
            </Badge>
          )}
          <Badge size="sm" color={errors ? 'red' : 'green'} variant="filled" data-testid="validity">
            {errors ? `${errors} error${errors > 1 ? 's' : ''}` : `valid${cluster ? `: ${cluster}` : ''}`}
          </Badge>
        </Group>
      </Group>
      <div style={{ position: 'relative', flex: 1, minHeight: 200 }}>
        <SpecEditor />
      </div>
      <ProblemsList />
    </div>
  );
}
