// Live progress of a pipeline in a terminal: on a TTY, a status block (one line per stage with
// state, progress bar and duration, and the nodes the running stages touch) redrawn at most
// 10 times a second with logs scrolling above it; elsewhere (CI, pipes), one plain line per
// state change and per log line.
import type { PipelineEvent, StageState } from '../../common/pipeline/events';
import type { RunView } from '../../common/pipeline/fold';
import { EMPTY_RUN, foldEvent, settled } from '../../common/pipeline/fold';
import { fmtMs } from '../../common/text/duration';

const ICON: Record<StageState, string> = { pending: '·', queued: '…', running: '▶', success: '✓', failed: '✗', skipped: '↷', aborted: '■' };

export class ProgressDisplay {
  /** The run as common/pipeline/fold.ts reads it; this class only draws it. */
  private run: RunView = EMPTY_RUN;
  /** When each running stage started, on this process's monotonic clock (for a live elapsed time). */
  private readonly startedAt = new Map<string, number>();
  private drawnLines = 0;
  private timer: NodeJS.Timeout | undefined;
  private dirty = false;
  private finished = false;

  constructor(
    private readonly write: (text: string) => void,
    private readonly tty: boolean,
    private readonly options: { verbose?: boolean; now?: () => number } = {},
  ) {}

  private now(): number {
    return this.options.now?.() ?? performance.now();
  }

  handle(e: PipelineEvent): void {
    this.run = foldEvent(this.run, e);
    if (e.runId !== this.run.runId) return;
    switch (e.type) {
      case 'run':
        this.startedAt.clear();
        this.line(`run ${e.runId.slice(0, 8)} (${e.pipeline}): ${e.stages.join(' → ')}`);
        break;
      case 'stage': {
        if (e.state === 'running') this.startedAt.set(e.stage, this.now());
        if (!this.tty && e.state !== 'pending' && e.state !== 'queued') {
          // A failure's reason is printed in full by the `failed` event that follows.
          const reason = e.reason && e.state !== 'failed' ? `: ${e.reason}` : '';
          const changes = e.changes === undefined ? '' : e.changes === 0 ? ', unchanged' : `, ${e.changes} change${e.changes === 1 ? '' : 's'}`;
          this.line(`${ICON[e.state]} ${e.stage} ${e.state}${e.durationMs !== undefined ? ` (${fmtMs(e.durationMs)}${changes})` : changes}${reason}`);
        }
        break;
      }
      case 'node':
        if (!this.tty && (this.options.verbose || e.state === 'failed')) this.line(`  ${e.stage}/${e.node}: ${e.state}${e.message ? ` ${e.message}` : ''}`);
        break;
      case 'log':
        if (this.options.verbose || e.stream === 'stderr' || e.stream === 'warn') this.line(`[${e.stage}${e.node ? `/${e.node}` : ''}] ${e.line}`);
        break;
      case 'failed': {
        const f = e.error;
        const parts = [`✗ ${f.stage}${f.node ? ` on ${f.node}` : ''}: ${f.message}`];
        if (f.command) parts.push(`  command: ${f.command.join(' ')}`);
        if (f.stderrTail) parts.push(`  stderr:\n${f.stderrTail.split('\n').map((l) => `    ${l}`).join('\n')}`);
        if (f.hint) parts.push(`  next: ${f.hint}`);
        this.line(parts.join('\n'));
        break;
      }
      case 'done':
        this.stop();
        this.finished = true;
        this.line(`done in ${fmtMs(e.durationMs)}: ${Object.entries(e.summary).map(([s, st]) => `${s} ${settled(this.run.stages[s], st)}`).join(', ')}`);
        break;
      case 'progress':
      case 'checkpoint':
        break;
    }
    if (this.tty && !this.finished) this.schedule();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.tty && !this.finished) this.redraw();
    this.drawnLines = 0;
  }

  private line(text: string): void {
    if (this.tty) {
      this.clearBlock();
      this.write(`${text}\n`);
      this.dirty = true;
    } else {
      this.write(`${text}\n`);
    }
  }

  private schedule(): void {
    this.dirty = true;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.dirty) this.redraw();
    }, 100);
    this.timer.unref?.();
  }

  private clearBlock(): void {
    if (this.drawnLines > 0) this.write(`\x1b[${this.drawnLines}F\x1b[J`);
    this.drawnLines = 0;
  }

  private redraw(): void {
    this.clearBlock();
    const lines = this.render();
    this.write(`${lines.join('\n')}\n`);
    this.drawnLines = lines.length;
    this.dirty = false;
  }

  /** The status block, one line per stage plus node lines of running stages. */
  render(): string[] {
    const { order, stages } = this.run;
    const width = Math.max(8, ...order.map((s) => s.length));
    const out: string[] = [];
    for (const name of order) {
      const v = stages[name];
      if (!v) continue;
      const started = this.startedAt.get(name);
      const elapsed = v.durationMs ?? (v.state === 'running' && started !== undefined ? this.now() - started : undefined);
      const bar = v.state === 'running' ? ` ${progressBar(v.progress)}` : '';
      const tail = v.state === 'running' ? (v.message ?? '') : (v.reason ?? '');
      out.push(`${ICON[v.state]} ${name.padEnd(width)} ${v.state.padEnd(8)}${bar}${elapsed !== undefined ? ` ${fmtMs(elapsed).padStart(7)}` : ''}${tail ? `  ${tail.slice(0, 80)}` : ''}`);
      if (v.state === 'running' || v.state === 'failed') {
        const nodes = Object.entries(v.nodes).sort(([a], [b]) => a.localeCompare(b));
        for (const [node, n] of nodes) out.push(`    ${n.state === 'ok' ? '✓' : n.state === 'failed' ? '✗' : n.state === 'running' ? '▶' : '·'} ${node}${n.message ? `  ${n.message.slice(0, 70)}` : ''}`);
      }
    }
    return out;
  }
}

function progressBar(f: number): string {
  const n = Math.round(Math.max(0, Math.min(1, f)) * 20);
  return `[${'#'.repeat(n)}${'-'.repeat(20 - n)}] ${String(Math.round(f * 100)).padStart(3)}%`;
}

