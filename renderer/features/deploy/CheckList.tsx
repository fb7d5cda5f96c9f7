// A list of check items (ok / info / warn / error) with the hint of what to do; shortfalls first.
import { Badge, Table, Text } from '@mantine/core';
import type { CheckItem } from '../../../common/contract/index';

export const CHECK_COLOR: Record<CheckItem['status'], string> = { ok: 'green', info: 'blue', warn: 'yellow', error: 'red' };
const ORDER: Record<CheckItem['status'], number> = { error: 0, warn: 1, info: 2, ok: 3 };

export function CheckList({ checks, testId }: { checks: readonly CheckItem[]; testId: string }) {
  const sorted = [...checks].sort((a, b) => ORDER[a.status] - ORDER[b.status]);
  return (
    <Table fz="xs" verticalSpacing={4} data-testid={testId} aria-label="Checks">
      <Table.Tbody>
        {sorted.map((c) => (
          <Table.Tr key={c.id} data-testid="check-item" data-check={c.id} data-status={c.status}>
            <Table.Td w={70}>
              <Badge size="xs" color={CHECK_COLOR[c.status]} variant={c.status === 'error' ? 'filled' : 'light'}>
                {c.status}
              </Badge>
            </Table.Td>
            <Table.Td w={170} fw={600}>
              {c.label}
            </Table.Td>
            <Table.Td>
              <Text size="xs" c={c.status === 'error' ? 'red' : undefined}>
                {c.detail}
              </Text>
              {c.hint && (
                <Text size="xs" c="dimmed">
                  next: {c.hint}
                </Text>
              )}
            </Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}
