// The journal: one JSON event per line, appended as they happen (fsync'd per batch), so a
// crash or Ctrl-C leaves a readable record and a rerun knows what already converged.
import { appendFileSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import type { PipelineEvent } from '../../common/pipeline/events';
import { PipelineEvent as PipelineEventSchema } from '../../common/pipeline/events';

export interface StageRecord {
  stage: string;
  inputHash?: string;
  runId: string;
  durationMs?: number;
  /** The typed output journaled with the success (stages that declare an output schema). */
  output?: unknown;
}

export class Journal {
  readonly path: string;
  private fd: number | undefined;

  constructor(path: string) {
    this.path = path;
  }

  append(event: PipelineEvent): void {
    if (this.fd === undefined) {
      mkdirSync(dirname(this.path), { recursive: true });
      this.fd = openSync(this.path, 'a', 0o600);
    }
    appendFileSync(this.fd, `${JSON.stringify(event)}\n`);
    if (event.type === 'stage' || event.type === 'checkpoint' || event.type === 'done' || event.type === 'failed') fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** Every valid event in the file; a torn last line (crash mid-write) is ignored. */
  read(): PipelineEvent[] {
    return readJournal(this.path);
  }

  /** The events a rerun may trust, or none with a one-line reason when a line other than the
   * last is not a valid event (an edited or damaged journal: nothing in it is trusted). */
  history(): { events: PipelineEvent[]; distrust?: string } {
    const h = journalHistory(this.path);
    if (!h.distrust) return h;
    // Kept for whoever wants to look, out of the way of the runs that come next.
    renameSync(this.path, `${this.path}.damaged`);
    return { events: [], distrust: `${h.distrust} (kept as ${this.path}.damaged)` };
  }
}

export function journalHistory(path: string): { events: PipelineEvent[]; distrust?: string } {
  if (!existsSync(path)) return { events: [] };
  const lines = readFileSync(path, 'utf8').split('\n');
  while (lines.length && !lines[lines.length - 1]!.trim()) lines.pop();
  const events: PipelineEvent[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line.trim()) continue;
    let ok = false;
    try {
      const parsed = PipelineEventSchema.safeParse(JSON.parse(line));
      if (parsed.success) {
        events.push(parsed.data);
        ok = true;
      }
    } catch {
      /* judged below */
    }
    if (!ok && i < lines.length - 1) {
      return { events: [], distrust: `journal ${path} line ${i + 1} is not a valid event: nothing recorded in it is trusted, every stage runs in full` };
    }
  }
  return { events };
}

export function readJournal(path: string): PipelineEvent[] {
  return readJsonLines(path, PipelineEventSchema);
}

/** The lines of a JSONL file that parse and match `schema`, in order; a missing file is empty, torn or foreign lines are skipped. */
export function readJsonLines<T>(path: string, schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }): T[] {
  if (!existsSync(path)) return [];
  const out: T[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const parsed = schema.safeParse(JSON.parse(line));
      if (parsed.success) out.push(parsed.data);
    } catch {
      /* torn line */
    }
  }
  return out;
}

/**
 * The last success of each stage, with the input hash it converged on and its output. With
 * `compat`, only runs that recorded the same compatibility key count (a journal written by
 * another engine format or spec apiVersion is not trusted).
 */
export function lastSuccesses(events: readonly PipelineEvent[], compat?: string): Map<string, StageRecord> {
  const m = new Map<string, StageRecord>();
  const trusted = new Set<string>();
  for (const e of events) {
    if (e.type === 'run') {
      if (compat === undefined || e.compat === compat) trusted.add(e.runId);
      continue;
    }
    if (e.type !== 'stage') continue;
    if (e.state === 'success') {
      if (compat !== undefined && !trusted.has(e.runId)) continue;
      m.set(e.stage, {
        stage: e.stage,
        runId: e.runId,
        ...(e.inputHash !== undefined ? { inputHash: e.inputHash } : {}),
        ...(e.durationMs !== undefined ? { durationMs: e.durationMs } : {}),
        ...(e.output !== undefined ? { output: e.output } : {}),
      });
    } else if (e.state === 'failed') {
      m.delete(e.stage);
    }
  }
  return m;
}

/** The compatibility key of the newest run in the journal: undefined when there is no run,
 * null when that run recorded none (an older engine). */
export function lastRunCompat(events: readonly PipelineEvent[]): string | null | undefined {
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!;
    if (e.type === 'run') return e.compat ?? null;
  }
  return undefined;
}

/** Checkpoints recorded by a stage (keyed side effects that must not repeat). */
export function checkpoints(events: readonly PipelineEvent[], stage: string): Map<string, unknown> {
  const m = new Map<string, unknown>();
  for (const e of events) if (e.type === 'checkpoint' && e.stage === stage) m.set(e.key, e.value);
  return m;
}
