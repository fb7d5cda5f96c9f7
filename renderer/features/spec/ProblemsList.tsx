// Problems of the spec (parseSpec diagnostics); a click or Enter jumps to the line.
import { Badge, Group, ScrollArea, Table, Text, UnstyledButton } from '@mantine/core';
import { useStore } from 'zustand';
import { analysisStore } from '../analysis/store';
import { specStore } from './store';

const COLOR = { error: 'red', warning: 'yellow', info: 'blue' } as const;

export function ProblemsList() {
  const diagnostics = useStore(analysisStore, (s) => s.diagnostics);
  return (
    <section aria-label="Problems" data-testid="problems">
      <Group justify="space-between" px="sm" py={4}>
        <Text size="sm" fw={600}>
          Problems
        </Text>
        <Text size="xs" c="dimmed" data-testid="problems-count">
          {diagnostics.length === 0 ? 'no problems: the spec is valid' : `${diagnostics.filter((d) => d.severity === 'error').length} error(s), ${diagnostics.filter((d) => d.severity !== 'error').length} other`}
        </Text>
      </Group>
      <ScrollArea h={150}>
        <Table highlightOnHover verticalSpacing={2} fz="xs">
          <Table.Tbody>
            {diagnostics.map((d, i) => (
              <Table.Tr key={`${d.code}:${d.line}:${d.column}:${i}`} data-testid="problem" data-line={d.line}>
                <Table.Td w={80}>
                  <Badge size="xs" color={COLOR[d.severity]} variant="light">
                    {d.severity}
                  </Badge>
                </Table.Td>
                <Table.Td w={120} style={{ whiteSpace: 'nowrap' }}>
                  <UnstyledButton aria-label={`Go to line ${d.line}, column ${d.column}`} onClick={() => specStore.getState().revealAt(d.line, d.column)} fz="xs" c="blue">
                    Ln {d.line}, Col {d.column}
                  </UnstyledButton>
                </Table.Td>
                <Table.Td>
                  <UnstyledButton onClick={() => specStore.getState().revealAt(d.line, d.column)} fz="xs">
                    {d.message}
                  </UnstyledButton>
                </Table.Td>
                <Table.Td c="dimmed" ff="monospace">
                  {d.path}
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </ScrollArea>
    </section>
  );
}
