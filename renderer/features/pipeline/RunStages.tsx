// One run's stages as badges (state colours) and its failures (command, stderr tail, next step):
// the live display the deploy wizard and the Recovery view's restore share, read from the one
// pipeline store (common/pipeline/fold.ts via store.ts).
import { Alert, Badge, Code, Group, Text } from '@mantine/core';
import { useStore } from 'zustand';
import type { StageState } from '../../../common/pipeline/events';
import { pipelineStore } from './store';

export const STAGE_COLOR: Record<StageState, string> = { pending: 'gray', queued: 'gray', running: 'blue', success: 'green', failed: 'red', skipped: 'yellow', aborted: 'orange' };

/** The stages and failures of run `runId` (nothing when the store shows another run). */
export function RunStages({ runId, testid }: { runId: string; testid: string }) {
  const p = useStore(pipelineStore);
  const ours = p.runId === runId;
  return (
    <>
      <Group gap={4} data-testid={`${testid}-stages`}>
        {(ours ? p.order : []).map((name) => {
          const st = p.stages[name]?.state ?? 'pending';
          return (
            <Badge key={name} color={STAGE_COLOR[st]} variant={st === 'running' ? 'filled' : 'light'} data-stage={name} data-state={st}>
              {name} {st}
            </Badge>
          );
        })}
      </Group>
      {ours &&
        p.failures.map((f, i) => (
          <Alert key={i} color="red" title={`${f.stage}${f.node ? ` on ${f.node}` : ''}: ${f.message.split('\n')[0]}`} data-testid={`${testid}-failure`} style={{ overflowWrap: 'anywhere' }}>
            {f.command && <Code block>{f.command.join(' ')}</Code>}
            {f.stderrTail && (
              <Code block mt={4}>
                {f.stderrTail}
              </Code>
            )}
            {f.hint && <Text size="sm">next: {f.hint}</Text>}
          </Alert>
        ))}
    </>
  );
}
