// Steps 2 and 3: which spec to deploy (a template or the spec open in the editor) and its
// network plan — the LAN split, the API VIP, the planes and every node's /32 on each — straight
// from the plan the other views draw.
import { Alert, Badge, Button, Group, Paper, SimpleGrid, Stack, Table, Text, Title, UnstyledButton } from '@mantine/core';
import type { ReactNode } from 'react';
import { useEffect, useState } from 'react';
import { useStore } from 'zustand';
import type { Plan } from '../../../common/plan/index';
import { plan as makePlan } from '../../../common/plan/index';
import { parseSpec } from '../../../common/spec/index';
import { api } from '../../shell/api';
import { shellStore } from '../../shell/store';
import { analysisStore } from '../analysis/store';
import { isDirty, specStore } from '../spec/store';
import { chooseSource } from './actions';
import type { SourceChoice } from './store';
import { targetLabel, targetOf, wizardStore } from './store';

interface TemplateCard {
  name: Exclude<SourceChoice, 'editor'>;
  description: string;
  nodes?: number;
  memoryMiB?: number;
  substrate?: string;
}

const TEMPLATE_ORDER: TemplateCard['name'][] = ['reference-16', 'lab-3', 'solo-1'];

function planSummary(p: Plan | undefined): { nodes?: number; memoryMiB?: number; substrate?: string } {
  if (!p) return {};
  return { nodes: p.nodes.length, memoryMiB: p.nodes.reduce((a, n) => a + n.vm.memoryMiB, 0), substrate: p.substrate.type };
}

export function TemplateStep() {
  const source = useStore(wizardStore, (s) => s.source);
  const target = useStore(wizardStore, (s) => targetLabel(targetOf(s)));
  const kind = useStore(wizardStore, (s) => s.kind);
  const spec = useStore(specStore);
  const analysis = useStore(analysisStore);
  const [cards, setCards] = useState<TemplateCard[]>([]);

  useEffect(() => {
    let cancelled = false;
    void (async () => {
      const list = await api().invoke('spec.templates', {});
      const out: TemplateCard[] = [];
      for (const name of TEMPLATE_ORDER) {
        const info = list.find((t) => t.name === name);
        if (!info) continue;
        const t = await api().invoke('spec.template', { name });
        const parsed = parseSpec(t.text);
        out.push({ name, description: info.description, ...planSummary(parsed.spec ? makePlan(parsed.spec) : undefined) });
      }
      if (!cancelled) setCards(out);
    })().catch((err: unknown) => console.error('listing templates failed', err));
    return () => {
      cancelled = true;
    };
  }, []);

  const current = planSummary(analysis.plan);
  const errors = analysis.diagnostics.filter((d) => d.severity === 'error').length;
  const editorValid = Boolean(analysis.spec) && !analysis.planIsStale && analysis.text === spec.text;
  const card = (key: SourceChoice, title: string, body: string, facts: ReturnType<typeof planSummary>, extra?: ReactNode) => (
    <UnstyledButton
      key={key}
      onClick={() => chooseSource(key)}
      data-testid={`source-${key}`}
      aria-pressed={source === key}
      p="sm"
      style={{ border: `${source === key ? 2 : 1}px solid ${source === key ? 'var(--mantine-color-indigo-5)' : 'var(--mantine-color-default-border)'}`, borderRadius: 8 }}
    >
      <Group justify="space-between" mb={4}>
        <Text fw={700}>{title}</Text>
        {source === key && <Badge size="xs">selected</Badge>}
      </Group>
      <Text size="xs" c="dimmed" mb={6}>
        {body}
      </Text>
      {facts.nodes !== undefined && (
        <Group gap={4}>
          <Badge size="xs" variant="light">
            {facts.nodes} nodes
          </Badge>
          <Badge size="xs" variant="light" color="gray">
            {((facts.memoryMiB ?? 0) / 1024).toFixed(1)} GiB
          </Badge>
          <Badge size="xs" variant="light" color={facts.substrate === (kind === 'proxmox' ? 'proxmox' : 'qemu') ? 'teal' : 'orange'}>
            written for {facts.substrate}
          </Badge>
        </Group>
      )}
      {extra}
    </UnstyledButton>
  );
  return (
    <Stack gap="sm" data-testid="wizard-template">
      <Text size="sm">
        What to deploy to <b>{target}</b>. A template replaces the text in the editor{isDirty(spec) ? ' (you are asked first: the editor has unsaved changes)' : ''}; the deploy uses exactly what the editor holds.
      </Text>
      <SimpleGrid cols={{ base: 1, md: 2, lg: 4 }} spacing="sm">
        {card(
          'editor',
          'The spec in the editor',
          spec.path ?? spec.origin,
          current,
          <Text size="xs" mt={4} c={editorValid ? 'green' : 'red'} data-testid="editor-validity">
            {editorValid ? `valid: ${analysis.spec?.metadata.name}` : `${errors} error(s): fix them in the Spec view`}
          </Text>,
        )}
        {cards.map((c) => card(c.name, c.name, c.description, c))}
      </SimpleGrid>
      {analysis.plan && analysis.plan.substrate.type !== (kind === 'proxmox' ? 'proxmox' : 'qemu') && (
        <Alert color="orange" variant="light" data-testid="substrate-note">
          This spec is written for {analysis.plan.substrate.type === 'qemu' ? 'local QEMU' : 'Proxmox'}; the deploy goes to {target} as chosen in step 1 (the spec&apos;s storage pools and bridges must exist there — the review checks).
        </Alert>
      )}
      <Group gap="xs">
        <Button size="xs" variant="default" onClick={() => shellStore.getState().setView('spec')}>
          Open the editor
        </Button>
      </Group>
    </Stack>
  );
}

export function NetworkStep() {
  const plan = useStore(analysisStore, (s) => s.plan);
  const stale = useStore(analysisStore, (s) => s.planIsStale);
  if (!plan) return <Alert color="red">No valid plan: fix the spec first.</Alert>;
  const half = (cidr: string, color: 'blue' | 'green') => (
    <Badge color={color === 'blue' ? 'blue' : 'green'} variant={plan.lan.active === color ? 'filled' : 'light'} size="lg" tt="none">
      {color} {cidr}
      {plan.lan.active === color ? ' · active' : ''}
    </Badge>
  );
  return (
    <Stack gap="sm" data-testid="wizard-network">
      {stale && <Alert color="orange">The spec has errors; this is the last valid plan.</Alert>}
      <SimpleGrid cols={{ base: 1, md: 2 }} spacing="sm">
        <Paper withBorder p="sm">
          <Title order={6} mb={6}>
            LAN {plan.lan.cidr}
          </Title>
          <Group gap="xs" mb={6}>
            {half(plan.lan.blue, 'blue')}
            {half(plan.lan.green, 'green')}
          </Group>
          <Text size="sm">
            API VIP <b data-testid="api-vip">{plan.lan.apiVip}</b>
            {plan.lan.gateway ? ` · gateway ${plan.lan.gateway}` : ''}
          </Text>
          <Text size="xs" c="dimmed">
            Blue and green each hold one half of the LAN; nodes take the half of their colour (blue/green swaps keep both).
          </Text>
        </Paper>
        <Paper withBorder p="sm">
          <Title order={6} mb={6}>
            WireGuard planes (hub {plan.planes[0]?.hub})
          </Title>
          <Table fz="xs" verticalSpacing={2} data-testid="network-planes">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>plane</Table.Th>
                <Table.Th>cidr</Table.Th>
                <Table.Th>purpose</Table.Th>
                <Table.Th>hub</Table.Th>
                <Table.Th>udp</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {plan.planes.map((p) => (
                <Table.Tr key={p.name}>
                  <Table.Td fw={700}>{p.name}</Table.Td>
                  <Table.Td ff="monospace">{p.cidr}</Table.Td>
                  <Table.Td>{p.purpose}</Table.Td>
                  <Table.Td ff="monospace">{p.hubAddress}</Table.Td>
                  <Table.Td>{p.listenPort}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
          <Text size="xs" c="dimmed">
            Between planes: default deny, {plan.policy.flows.length} allowed flow{plan.policy.flows.length === 1 ? '' : 's'} (see the Wiring view).
          </Text>
        </Paper>
      </SimpleGrid>
      <Table fz="xs" verticalSpacing={2} striped data-testid="network-nodes" aria-label="Addresses per node">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>node</Table.Th>
            <Table.Th>role</Table.Th>
            <Table.Th>VMID</Table.Th>
            <Table.Th>LAN</Table.Th>
            {plan.planes.map((p) => (
              <Table.Th key={p.name}>{p.name} /32</Table.Th>
            ))}
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {plan.nodes.map((n) => (
            <Table.Tr key={n.name} data-testid="network-node" data-node={n.name}>
              <Table.Td fw={600}>
                {n.name}
                {n.hub ? ' (hub)' : ''}
              </Table.Td>
              <Table.Td>{n.role}</Table.Td>
              <Table.Td>{n.vmid}</Table.Td>
              <Table.Td ff="monospace">
                <Text span c={n.color === 'blue' ? 'blue' : 'green'} size="xs" ff="monospace">
                  {n.lan.address}/{n.lan.prefix}
                </Text>
              </Table.Td>
              {plan.planes.map((p) => (
                <Table.Td key={p.name} ff="monospace">
                  {n.planes[p.name].address}
                </Table.Td>
              ))}
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
      <Group gap="xs">
        <Button size="xs" variant="default" onClick={() => shellStore.getState().setView('wiring')}>
          Open the Wiring view
        </Button>
        <Button size="xs" variant="default" onClick={() => shellStore.getState().setView('topology')}>
          Open the Topology view
        </Button>
      </Group>
    </Stack>
  );
}
