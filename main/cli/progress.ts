// Live progress of a pipeline in a terminal: on a TTY, a status block (one line per stage with
// state, progress bar and duration, and the nodes the running stages touch) redrawn at most
// 10 times a second with logs scrolling above it; elsewhere (CI, pipes), one plain line per
// state change and per log line.
import type { PipelineEvent, StageState } from '../../common/pipeline/events';

const ICON: Record<StageState, string> = { pending: '·', queued: '…', running: '▶', success: '✓', failed: '✗', skipped: '↷', aborted: '■' };

interface StageView {
  state: StageState;
  fraction: number;
  message?: string;
  startedAt?: number;
  durationMs?: number;
  reason?: string;
  /** Changes reported on success (0 = unchanged). */
  changes?: number;
  nodes: Map<string, { state: string; message?: string }>;
}

export class ProgressDisplay {
  private readonly stages = new Map<string, StageView>();
  private order: string[] = [];
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
    switch (e.type) {
      case 'run':
        this.order = e.stages;
        for (const s of e.stages) this.stages.set(s, { state: 'pending', fraction: 0, nodes: new Map() });
        this.line(`run ${e.runId.slice(0, 8)} (${e.pipeline}): ${e.stages.join(' → ')}`);
        break;
      case 'stage': {
        const v = this.view(e.stage);
        v.state = e.state;
        if (e.state === 'running') v.startedAt = this.now();
        if (e.durationMs !== undefined) v.durationMs = e.durationMs;
        if (e.reason !== undefined) v.reason = e.reason;
        if (e.changes !== undefined) v.changes = e.changes;
        if (e.state === 'success') v.fraction = 1;
        if (!this.tty && e.state !== 'pending' && e.state !== 'queued') {
          // A failure's reason is printed in full by the `failed` event that follows.
          const reason = e.reason && e.state !== 'failed' ? `: ${e.reason}` : '';
          const changes = e.changes === undefined ? '' : e.changes === 0 ? ', unchanged' : `, ${e.changes} change${e.changes === 1 ? '' : 's'}`;
          this.line(`${ICON[e.state]} ${e.stage} ${e.state}${e.durationMs !== undefined ? ` (${fmtMs(e.durationMs)}${changes})` : changes}${reason}`);
        }
        break;
      }
      case 'progress': {
        const v = this.view(e.stage);
        v.fraction = e.fraction;
        if (e.message !== undefined) v.message = e.message;
        break;
      }
      case 'node': {
        this.view(e.stage).nodes.set(e.node, { state: e.state, ...(e.message !== undefined ? { message: e.message } : {}) });
        if (!this.tty && (this.options.verbose || e.state === 'failed')) this.line(`  ${e.stage}/${e.node}: ${e.state}${e.message ? ` ${e.message}` : ''}`);
        break;
      }
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
        this.line(`done in ${fmtMs(e.durationMs)}: ${Object.entries(e.summary).map(([s, st]) => `${s} ${this.outcome(s, st)}`).join(', ')}`);
        break;
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

  /** "unchanged" for a stage that succeeded with 0 changes or was skipped as converged. */
  private outcome(stage: string, st: StageState): string {
    const v = this.stages.get(stage);
    if (st === 'success' && v?.changes === 0) return 'unchanged';
    if (st === 'success' && v?.changes !== undefined) return `changed (${v.changes})`;
    if (st === 'skipped' && v?.reason?.startsWith('converged')) return 'unchanged';
    return st;
  }

  private view(stage: string): StageView {
    let v = this.stages.get(stage);
    if (!v) {
      v = { state: 'pending', fraction: 0, nodes: new Map() };
      this.stages.set(stage, v);
      this.order.push(stage);
    }
    return v;
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
    const width = Math.max(8, ...this.order.map((s) => s.length));
    const out: string[] = [];
    for (const name of this.order) {
      const v = this.stages.get(name)!;
      const elapsed = v.durationMs ?? (v.state === 'running' && v.startedAt !== undefined ? this.now() - v.startedAt : undefined);
      const bar = v.state === 'running' ? ` ${progressBar(v.fraction)}` : '';
      const tail = v.state === 'running' ? (v.message ?? '') : (v.reason ?? '');
      out.push(`${ICON[v.state]} ${name.padEnd(width)} ${v.state.padEnd(8)}${bar}${elapsed !== undefined ? ` ${fmtMs(elapsed).padStart(7)}` : ''}${tail ? `  ${tail.slice(0, 80)}` : ''}`);
      if (v.state === 'running' || v.state === 'failed') {
        const nodes = [...v.nodes.entries()].sort(([a], [b]) => a.localeCompare(b));
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

export function fmtMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')}s`;
}
