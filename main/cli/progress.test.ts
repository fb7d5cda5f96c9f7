import { describe, expect, it } from 'vitest';
import type { PipelineEvent } from '../../common/pipeline/events';
import { runPipeline, StageError } from '../pipeline/runner';
import { ProgressDisplay } from './progress';

async function capture(tty: boolean, verbose = false): Promise<{ text: string; display: ProgressDisplay; events: PipelineEvent[] }> {
  let text = '';
  const events: PipelineEvent[] = [];
  const display = new ProgressDisplay((t) => (text += t), tty, { verbose });
  await runPipeline(
    [
      { name: 'provision', description: '', needs: [], rerun: 'remediates-drift', async run(ctx) {
        ctx.node('cp-1', 'running', 'qm create 3001');
        ctx.progress(0.5, 'creating VMs');
        ctx.log('created 3001', { node: 'cp-1' });
        ctx.node('cp-1', 'ok');
      } },
      { name: 'enroll', description: '', needs: ['provision'], rerun: 'safe-rerun', async run() {
        throw new StageError('w-1 never enrolled', { node: 'w-1', command: ['kubedos-enroll-agent', '--token', '***'], stderrTail: 'token expired', hint: 'issue a new token' });
      } },
    ],
    { name: 'deploy', onEvent: (e) => { events.push(e); display.handle(e); } },
  );
  display.stop();
  return { text, display, events };
}

describe('CLI progress display', () => {
  it('prints plain lines when not a TTY: state changes, and a failure with node, command, stderr and next step', async () => {
    const { text } = await capture(false);
    expect(text).toContain('✓ provision success');
    expect(text).toContain('✗ enroll on w-1: w-1 never enrolled');
    expect(text).toContain('  command: kubedos-enroll-agent --token ***');
    expect(text).toContain('    token expired');
    expect(text).toContain('  next: issue a new token');
    expect(text).not.toContain('\x1b[');
  });
  it('shows log lines only when verbose', async () => {
    expect((await capture(false)).text).not.toContain('created 3001');
    expect((await capture(false, true)).text).toContain('[provision/cp-1] created 3001');
  });
  it('keeps a status block per stage on a TTY', async () => {
    const { display, text } = await capture(true);
    const block = display.render();
    expect(block[0]).toMatch(/^✓ provision\s+success/);
    expect(block.find((l) => l.includes('enroll'))).toMatch(/✗ enroll\s+failed/);
    // The final block stays on screen above the summary line.
    expect(text).toContain(block[0]);
    expect(text.trimEnd().split('\n').at(-1)).toMatch(/^done in /);
  });
});
