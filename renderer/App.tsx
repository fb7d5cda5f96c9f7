// The shell: Mantine AppShell with the navigation, header and the six views. Views mount on
// first visit and then stay mounted (hidden), so the editor's undo stack, the graph's pan/zoom
// and the terminal's scrollback survive switching views.
import { ActionIcon, Alert, AppShell, Badge, Button, Group, Kbd, MantineProvider, NavLink, Notification, Text, Title, Tooltip, createTheme, useMantineColorScheme } from '@mantine/core';
import { useHotkeys } from '@mantine/hooks';
import { IconBolt, IconBox, IconLifebuoy, IconFileCode, IconMoon, IconNetwork, IconRocket, IconRoute, IconSun, IconTopologyStar3 } from '@tabler/icons-react';
import type { ReactNode } from 'react';
import { useEffect, useState } from 'react';
import { useStore } from 'zustand';
import { ArtifactsView } from './features/artifacts/ArtifactsView';
import { DeployWizard } from './features/deploy/DeployWizard';
import { DrillsView } from './features/drills/DrillsView';
import { PipelineView } from './features/pipeline/PipelineView';
import { RecoveryView } from './features/recovery/RecoveryView';
import { SpecDialogsHost } from './features/spec/SpecDialogs';
import { SpecView } from './features/spec/SpecView';
import { TopologyView } from './features/topology/TopologyView';
import { WiringView } from './features/wiring/WiringView';
import { analysisStore } from './features/analysis/store';
import { pipelineStore } from './features/pipeline/store';
import { runCommand, setThemeToggle } from './shell/commands';
import { noticeStore } from './shell/notify';
import { shellStore } from './shell/store';
import type { ViewName } from './shell/store';

const theme = createTheme({ primaryColor: 'indigo', fontFamilyMonospace: 'ui-monospace, "DejaVu Sans Mono", monospace' });

const NAV: { view: ViewName; label: string; icon: ReactNode; key: string }[] = [
  { view: 'spec', label: 'Spec', icon: <IconFileCode size={18} />, key: '1' },
  { view: 'topology', label: 'Topology', icon: <IconTopologyStar3 size={18} />, key: '2' },
  { view: 'wiring', label: 'Wiring', icon: <IconNetwork size={18} />, key: '3' },
  { view: 'pipeline', label: 'Pipeline', icon: <IconRoute size={18} />, key: '4' },
  { view: 'artifacts', label: 'Artifacts', icon: <IconBox size={18} />, key: '5' },
  { view: 'drills', label: 'Drills', icon: <IconBolt size={18} />, key: '6' },
  { view: 'deploy', label: 'Deploy', icon: <IconRocket size={18} />, key: '7' },
  { view: 'recovery', label: 'Recovery', icon: <IconLifebuoy size={18} />, key: '8' },
];

const VIEW_COMPONENTS: Record<ViewName, () => ReactNode> = {
  spec: () => <SpecView />,
  topology: () => <TopologyView />,
  wiring: () => <WiringView />,
  pipeline: () => <PipelineView />,
  artifacts: () => <ArtifactsView />,
  drills: () => <DrillsView />,
  deploy: () => <DeployWizard />,
  recovery: () => <RecoveryView />,
};

export function App() {
  return (
    <MantineProvider theme={theme} defaultColorScheme="dark">
      <Shell />
    </MantineProvider>
  );
}

function Shell() {
  const view = useStore(shellStore, (s) => s.view);
  const connection = useStore(shellStore, (s) => s.connection);
  const connectionError = useStore(shellStore, (s) => s.connectionError);
  const info = useStore(shellStore, (s) => s.appInfo);
  const cluster = useStore(analysisStore, (s) => s.plan?.cluster.name);
  const nodes = useStore(analysisStore, (s) => s.plan?.nodes.length);
  const runStatus = useStore(pipelineStore, (s) => s.status);
  const { toggleColorScheme, colorScheme } = useMantineColorScheme();
  const [visited, setVisited] = useState<Set<ViewName>>(new Set(['spec']));
  useEffect(() => setThemeToggle(toggleColorScheme), [toggleColorScheme]);
  useEffect(() => setVisited((v) => (v.has(view) ? v : new Set([...v, view]))), [view]);

  useHotkeys(
    [
      // Ctrl+N as in the Electron menu; Alt+N too, because browsers keep Ctrl+1…8 for tabs.
      ...NAV.map((n) => [`mod+${n.key}`, () => runCommand(`view.${n.view}` as const)] as [string, () => void]),
      ...NAV.map((n) => [`alt+${n.key}`, () => runCommand(`view.${n.view}` as const)] as [string, () => void]),
      ['mod+s', () => runCommand('spec.save')],
      ['mod+shift+s', () => runCommand('spec.saveAs')],
      ['mod+o', () => runCommand('spec.open')],
      ['mod+shift+n', () => runCommand('spec.new')],
      ['mod+shift+l', () => runCommand('theme.toggle')],
      ['mod+Enter', () => runCommand('pipeline.run')],
    ],
    [],
    true,
  );

  return (
    <AppShell header={{ height: 48 }} navbar={{ width: 210, breakpoint: 0 }} padding={0}>
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between">
          <Group gap="sm">
            <Title order={4}>Kube&apos;d&apos;OS Foundry</Title>
            {cluster && (
              <Badge variant="light" data-testid="cluster-badge">
                {cluster} · {nodes} nodes
              </Badge>
            )}
          </Group>
          <Group gap="sm">
            <Button size="xs" leftSection={<IconRocket size={14} />} variant={view === 'deploy' ? 'filled' : 'light'} onClick={() => shellStore.getState().setView('deploy')} data-testid="open-deploy">
              Deploy…
            </Button>
            {runStatus !== 'idle' && (
              <Badge color={runStatus === 'failed' ? 'red' : runStatus === 'done' ? 'green' : runStatus === 'cancelled' ? 'orange' : 'blue'} variant="dot">
                pipeline {runStatus}
              </Badge>
            )}
            <Badge color={connection === 'ready' ? 'green' : connection === 'connecting' ? 'gray' : 'red'} variant="outline" data-testid="connection">
              {connection === 'ready' ? `engine · ${info?.transport}` : connection}
            </Badge>
            <Tooltip label="Light/dark (Ctrl+Shift+L)">
              <ActionIcon variant="default" onClick={toggleColorScheme} aria-label="Toggle light or dark theme">
                {colorScheme === 'dark' ? <IconSun size={16} /> : <IconMoon size={16} />}
              </ActionIcon>
            </Tooltip>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label="Views">
        {NAV.map((n) => (
          <NavLink
            key={n.view}
            component="button"
            label={n.label}
            leftSection={n.icon}
            rightSection={
              <Tooltip label={`Ctrl+${n.key} (Electron) / Alt+${n.key} (browser)`}>
                <Kbd size="xs">{n.key}</Kbd>
              </Tooltip>
            }
            active={view === n.view}
            aria-current={view === n.view ? 'page' : undefined}
            data-testid={`nav-${n.view}`}
            onClick={() => shellStore.getState().setView(n.view)}
          />
        ))}
        <Text size="xs" c="dimmed" mt="auto" p="xs">
          {info ? `${info.name} ${info.version}` : ''}
        </Text>
      </AppShell.Navbar>
      <AppShell.Main style={{ height: '100dvh', display: 'flex', flexDirection: 'column' }}>
        {(connection === 'failed' || connection === 'closed') && (
          <Alert color="red" title={connection === 'closed' ? 'Disconnected from the engine' : 'Cannot reach the engine'} m="xs">
            {connectionError ?? 'kubedos serve stopped or the connection dropped; restart it and open the URL it prints.'}
          </Alert>
        )}
        <div style={{ position: 'relative', flex: 1 }}>
          {NAV.map((n) =>
            visited.has(n.view) ? (
              <div key={n.view} className={view === n.view ? 'kd-view' : 'kd-view kd-hidden'} data-testid={`view-${n.view}`} role="region" aria-label={`${n.label} view`}>
                {VIEW_COMPONENTS[n.view]()}
              </div>
            ) : null,
          )}
        </div>
      </AppShell.Main>
      <SpecDialogsHost />
      <Notices />
    </AppShell>
  );
}

function Notices() {
  const notices = useStore(noticeStore, (s) => s.notices);
  return (
    <div style={{ position: 'fixed', right: 16, bottom: 16, zIndex: 400, display: 'flex', flexDirection: 'column', gap: 8, maxWidth: 480 }} aria-live="polite">
      {notices.map((n) => (
        <Notification key={n.id} color={n.kind === 'error' ? 'red' : 'green'} title={n.title} onClose={() => noticeStore.getState().dismiss(n.id)}>
          {n.message}
        </Notification>
      ))}
    </div>
  );
}
