// Drills: what each drill of the spec WILL do (detect → fence → replace → reintegrate) and
// which nodes it targets. Drills cannot run from the workbench yet; this shows what each one would do.
import { Alert, Badge, Group, Paper, ScrollArea, Stack, Text, Timeline, Title } from '@mantine/core';
import { useStore } from 'zustand';
import type { Plan } from '../../../common/plan/index';
import { analysisStore } from '../analysis/store';

const TARGET_ROLE: Record<string, string | undefined> = {
  'delete-worker-vm': 'worker',
  'delete-control-plane-vm': 'control-plane',
  'delete-etcd-vm': 'etcd',
  'delete-lb-vm': 'lb',
  'delete-storage-vm': 'storage',
  'stop-master-vm': 'master',
};

function targets(plan: Plan, drill: string): string {
  const role = TARGET_ROLE[drill];
  if (role) return plan.nodes.filter((n) => n.role === role).map((n) => n.name).join(', ') || `no ${role} node in this plan`;
  if (drill === 'partition-plane-wg3') return 'the wg3 plane (kubernetes backend) between spokes and the hub';
  if (drill === 'rotate-wireguard-keys') return 'every node, all three planes';
  return 'unknown scenario';
}

export function DrillsView() {
  const spec = useStore(analysisStore, (s) => s.spec);
  const plan = useStore(analysisStore, (s) => s.plan);
  if (!spec || !plan) return <Text p="md">No valid plan yet: fix the spec's problems first.</Text>;
  const sh = spec.spec.selfHealing;
  const detectSeconds = sh.detect.heartbeatSeconds * sh.detect.missedHeartbeats;
  return (
    <ScrollArea h="100%">
      <Stack p="md" gap="md" data-testid="drills">
        <Alert color="yellow" title="Not run — no drill has run" data-testid="plan-only">
          Drills cannot be run yet: nothing here destroys or replaces a node or measures recovery time. Below is what each drill declared in the spec will do, from the spec's self-healing settings. MTTR target: {spec.spec.acceptance.mttrTargetMinutes} min.
        </Alert>
        {spec.spec.acceptance.drills.length === 0 && <Text size="sm">The spec declares no drills (spec.acceptance.drills).</Text>}
        {spec.spec.acceptance.drills.map((d) => (
          <Paper withBorder p="sm" key={d.name}>
            <Group justify="space-between" mb="xs">
              <Title order={5}>{d.name}</Title>
              <Badge variant="light">expect recovery ≤ {d.expectRecoveryMinutes} min</Badge>
            </Group>
            <Text size="xs" c="dimmed" mb="xs">
              target: {targets(plan, d.name)}
            </Text>
            <Timeline bulletSize={16} lineWidth={2}>
              <Timeline.Item title="detect">
                <Text size="xs">
                  {sh.detect.signals.join(', ')} every {sh.detect.heartbeatSeconds} s; declared failed after {sh.detect.missedHeartbeats} misses (~{detectSeconds} s)
                </Text>
              </Timeline.Item>
              <Timeline.Item title="fence">
                <Text size="xs">
                  {sh.fence.after === 'detect' ? 'automatically after detection' : 'after a manual confirmation'}: {sh.fence.actions.join(' → ')} (drain timeout {sh.fence.drainTimeoutSeconds} s)
                </Text>
              </Timeline.Item>
              <Timeline.Item title="replace">
                <Text size="xs">
                  {sh.replace.automatic ? 'automatic' : 'on approval'}, at most {sh.replace.maxConcurrent} at a time, from the same artifact (same VMID, MAC, addresses from the plan)
                </Text>
              </Timeline.Item>
              <Timeline.Item title="reintegrate">
                <Text size="xs">enroll again through the master's window, planes re-peered, converge; MTTR measured from detection to ready</Text>
              </Timeline.Item>
            </Timeline>
          </Paper>
        ))}
      </Stack>
    </ScrollArea>
  );
}
