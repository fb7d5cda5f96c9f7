// Step 4: the plan's diff against what exists on the target — per node create / keep / update /
// replace / destroy with the reasons, from provision's own decide() on the driver's inventory.
// Replace and destroy need an explicit "allow destroy"; a VMID someone else owns blocks.
import { Alert, Badge, Button, Checkbox, Group, Loader, Stack, Table, Text, Title } from '@mantine/core';
import { IconRefresh } from '@tabler/icons-react';
import { useEffect } from 'react';
import { useStore } from 'zustand';
import type { DeployAction } from '../../../common/contract/index';
import { specStore } from '../spec/store';
import { runReview } from './actions';
import { CheckList } from './CheckList';
import { targetLabel, targetOf, wizardStore } from './store';

export const ACTION_COLOR: Record<DeployAction, string> = { create: 'green', keep: 'gray', update: 'blue', replace: 'orange', destroy: 'red' };

export function ReviewStep() {
  const s = useStore(wizardStore);
  const text = useStore(specStore, (x) => x.text);
  const target = targetLabel(targetOf(s));
  const stale = s.review !== undefined && (s.reviewedText !== text || s.reviewedTarget !== target);

  useEffect(() => {
    const now = wizardStore.getState();
    if (!now.reviewing && (!now.review || now.reviewedText !== specStore.getState().text || now.reviewedTarget !== target)) void runReview();
  }, [target]);

  // A review of another text or target is never shown as if it were this one.
  const r = stale ? undefined : s.review;
  return (
    <Stack gap="sm" data-testid="wizard-review" data-reviewing={s.reviewing}>
      <Group gap="xs">
        <Text size="sm">
          What a deploy of {r ? <b>{r.cluster}</b> : 'the spec'} would do on <b>{target}</b>
          {r ? ` (node ${r.node})` : ''}: read from the target now, nothing has been changed.
        </Text>
        <Button size="xs" variant="default" leftSection={<IconRefresh size={14} />} onClick={() => void runReview()} loading={s.reviewing} data-testid="review-again">
          Review again
        </Button>
      </Group>
      {s.reviewing && !r && (
        <Group gap="xs">
          <Loader size="xs" />
          <Text size="sm">reading the inventory of {target}…</Text>
        </Group>
      )}
      {s.reviewError && (
        <Alert color="red" title="Could not review" data-testid="review-error">
          {s.reviewError}
        </Alert>
      )}
      {stale && (
        <Alert color="orange" data-testid="review-stale">
          The spec or the target changed since the last review: press Review again before deploying.
        </Alert>
      )}
      {r && (
        <>
          <Group gap="xs" data-testid="review-summary">
            {(Object.keys(ACTION_COLOR) as DeployAction[]).map((a) => (
              <Badge key={a} color={ACTION_COLOR[a]} variant={r.summary[a] ? 'filled' : 'outline'} data-testid={`summary-${a}`}>
                {a} {r.summary[a] ?? 0}
              </Badge>
            ))}
            <Text size="xs" c="dimmed">
              workspace {r.workspace}
            </Text>
          </Group>
          {r.blocked && (
            <Alert color="red" title="Blocked: VMIDs owned by someone else" data-testid="review-blocked">
              <Text size="sm">{r.blocked.message}</Text>
              {r.blocked.hint && <Text size="sm">next: {r.blocked.hint}</Text>}
            </Alert>
          )}
          <Table fz="xs" verticalSpacing={3} data-testid="review-decisions" aria-label="What happens to each node">
            <Table.Thead>
              <Table.Tr>
                <Table.Th w={140}>node</Table.Th>
                <Table.Th w={70}>VMID</Table.Th>
                <Table.Th w={150}>action</Table.Th>
                <Table.Th>why</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {r.decisions.map((d) => (
                <Table.Tr key={`${d.vmid}`} data-testid="review-decision" data-node={d.node} data-action={d.action} data-blocked={d.blocked}>
                  <Table.Td fw={600}>{d.node}</Table.Td>
                  <Table.Td>{d.vmid}</Table.Td>
                  <Table.Td style={{ whiteSpace: 'nowrap' }}>
                    <Badge size="sm" color={d.blocked ? 'red' : ACTION_COLOR[d.action]} variant={d.destructive || d.blocked ? 'filled' : 'light'}>
                      {d.blocked ? 'blocked' : d.action}
                    </Badge>
                    {d.start && !d.blocked && (
                      <Text span size="xs" c="dimmed">
                        {' '}
                        + start
                      </Text>
                    )}
                  </Table.Td>
                  <Table.Td c={d.destructive || d.blocked ? 'red' : undefined}>{d.reasons.join('; ')}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
          {r.needsAllowDestroy && (
            <Alert color="red" variant="light" title="This deploy destroys VMs" data-testid="destroy-warning">
              <Text size="sm" mb={6}>
                {r.decisions
                  .filter((d) => d.destructive)
                  .map((d) => `${d.node} (VMID ${d.vmid}): ${d.action}`)
                  .join(', ')}
                . Their disks are deleted{r.summary.replace ? '; a replaced node is re-created from the artifact' : ''}.
              </Text>
              <Checkbox
                color="red"
                label="Allow destroy: I want these VMs destroyed"
                checked={s.allowDestroy}
                onChange={(e) => s.set({ allowDestroy: e.currentTarget.checked })}
                data-testid="allow-destroy"
              />
            </Alert>
          )}
          {r.previousPlan || r.planChanges.length ? (
            <Stack gap={2} data-testid="plan-changes">
              <Title order={6}>Against the last deployed plan</Title>
              {r.planChanges.length === 0 ? (
                <Text size="xs" c="dimmed">
                  no changes to the plan
                </Text>
              ) : (
                r.planChanges.map((c) => (
                  <Text key={c} size="xs">
                    · {c}
                  </Text>
                ))
              )}
            </Stack>
          ) : (
            <Text size="xs" c="dimmed">
              First deploy of {r.cluster} from this workspace (no earlier plan to compare with).
            </Text>
          )}
          {r.checks.length > 0 && (
            <>
              <Title order={6}>{s.kind === 'qemu-local' ? 'Capacity of this machine for this plan' : 'Storages for this plan'}</Title>
              <CheckList checks={r.checks} testId="review-checks" />
            </>
          )}
        </>
      )}
    </Stack>
  );
}
