// The plan's nodes as a compact topology next to the stages: grouped by role, each coloured by
// its last pipeline node state (the same colours as the Topology view), with the stage and
// message that set it. A click shows only that node's log lines; a second click shows all.
import { Badge, Group, Text, Tooltip, UnstyledButton } from '@mantine/core';
import { useStore } from 'zustand';
import type { NodeState } from '../../../common/pipeline/events';
import { analysisStore } from '../analysis/store';
import { logFilterStore } from './log-filter';
import { pipelineStore } from './store';

export const NODE_STATE_COLOR: Record<NodeState, string> = { pending: 'gray', running: 'blue', ok: 'green', failed: 'red', skipped: 'yellow' };

export function NodeStrip() {
  const plan = useStore(analysisStore, (s) => s.plan);
  const nodes = useStore(pipelineStore, (s) => s.nodes);
  const selected = useStore(logFilterStore, (s) => s.filter.node);
  if (!plan) return null;
  const roles = [...new Set(plan.nodes.map((n) => n.role))];
  return (
    <Group gap="md" px="xs" py={4} wrap="wrap" data-testid="node-strip" aria-label="Nodes: click one to filter the logs">
      {roles.map((role) => (
        <Group key={role} gap={4} wrap="wrap">
          <Text size="xs" c="dimmed" tt="uppercase" fw={700}>
            {role}
          </Text>
          {plan.nodes
            .filter((n) => n.role === role)
            .map((n) => {
              const st = nodes[n.name];
              const color = st ? `var(--mantine-color-${NODE_STATE_COLOR[st.state]}-6)` : 'var(--mantine-color-default-border)';
              return (
                <Tooltip key={n.name} label={st ? `${st.stage}: ${st.state}${st.message ? ` — ${st.message}` : ''}` : 'no events yet'}>
                  <UnstyledButton
                    onClick={() => logFilterStore.getState().setFilter((f) => ({ ...f, node: f.node === n.name ? undefined : n.name }))}
                    data-testid="node-chip"
                    data-node={n.name}
                    data-state={st?.state ?? 'none'}
                    aria-pressed={selected === n.name}
                    aria-label={`${n.name}: ${st ? st.state : 'no events yet'}; show its logs`}
                    px={8}
                    py={2}
                    style={{ border: `2px solid ${color}`, borderRadius: 6, background: selected === n.name ? 'var(--mantine-color-indigo-light)' : undefined }}
                  >
                    <Group gap={4} wrap="nowrap">
                      <Text size="xs" fw={600}>
                        {n.name}
                      </Text>
                      {st && (
                        <Badge size="xs" color={NODE_STATE_COLOR[st.state]} variant={st.state === 'running' ? 'filled' : 'light'}>
                          {st.state}
                        </Badge>
                      )}
                    </Group>
                  </UnstyledButton>
                </Tooltip>
              );
            })}
        </Group>
      ))}
    </Group>
  );
}
