// The record of one drill: phases with timestamps and durations, the commands that ran, MTTR
// against the spec's target. Written after every phase change (it is also the drill's journal:
// an interrupted drill's record says which phase stopped and what to run next), read by
// `kubedos drill --history` and the workbench. Pure.
import { z } from 'zod';
import { renderTable } from '../text/table';

/** Commands kept per phase in a record (a detect phase probes every heartbeat). */
export const MAX_PHASE_COMMANDS = 40;

export const DRILL_PHASES = ['inject', 'detect', 'fence', 'replace', 'reintegrate', 'healthy'] as const;
export const DrillPhase = z.enum(DRILL_PHASES);
export type DrillPhase = z.infer<typeof DrillPhase>;

export const DrillCommand = z.object({
  node: z.string(),
  argv: z.array(z.string()),
  exitCode: z.number().int().nullable(),
  startedAtMs: z.number(),
  durationMs: z.number(),
});
export type DrillCommand = z.infer<typeof DrillCommand>;

export const PhaseRecord = z.object({
  name: DrillPhase,
  state: z.enum(['pending', 'running', 'done', 'failed', 'interrupted', 'skipped']),
  startedAtMs: z.number().optional(),
  endedAtMs: z.number().optional(),
  durationMs: z.number().optional(),
  /** What the phase did or found, one line. */
  detail: z.string().optional(),
  /** The first MAX_PHASE_COMMANDS commands of the phase; probes repeat, so the rest are only counted. */
  commands: z.array(DrillCommand),
  commandsOmitted: z.number().int().min(0).optional(),
});
export type PhaseRecord = z.infer<typeof PhaseRecord>;

export const DETECT_SOURCES = ['hub-watcher', 'engine-probes'] as const;
export const DetectSource = z.enum(DETECT_SOURCES);
export type DetectSource = z.infer<typeof DetectSource>;

/** How a detect source reads in a table or a report. */
export function detectSourceLabel(s: DetectSource | undefined): string {
  return s === 'hub-watcher' ? 'hub watcher' : s === 'engine-probes' ? 'engine probes' : '';
}

export const DrillRecord = z.object({
  schema: z.literal('kubedos.drill/v1'),
  id: z.string().regex(/^[a-z0-9-]+$/),
  /** A drill injects its fault; a heal (`kubedos heal`) repairs what it found unhealthy, inject skipped. */
  kind: z.enum(['drill', 'heal']).default('drill'),
  cluster: z.string(),
  // A string, not the catalogue enum: a refused drill records the name it was asked for.
  scenario: z.string(),
  node: z.string(),
  /** Where it ran: the namespace lab or a deployed cluster. */
  target: z.enum(['lab', 'cluster']),
  status: z.enum(['running', 'passed', 'failed', 'interrupted', 'refused']),
  startedAtMs: z.number(),
  endedAtMs: z.number().optional(),
  phases: z.array(PhaseRecord),
  /** From the end of inject (the fault exists) to the end of healthy (the gate is green). */
  mttrMs: z.number().optional(),
  goal: z.object({ minutes: z.number(), source: z.string() }),
  pass: z.boolean().optional(),
  thresholds: z.object({ heartbeatSeconds: z.number(), silenceSeconds: z.number(), handshakeMaxAgeSeconds: z.number(), signals: z.array(z.string()), source: z.string() }),
  guard: z.object({ ok: z.boolean(), reasons: z.array(z.object({ code: z.string(), message: z.string() })) }),
  /**
   * Which source ended the detect phase: the hub's health watcher (its fresh report names the node
   * as detected) or the engine's own probes (no watcher on the target, or its report stale or
   * unreadable: the detect detail says why). Absent in records written before it existed.
   */
  detectedBy: DetectSource.optional(),
  error: z.object({ phase: DrillPhase, node: z.string(), message: z.string(), command: z.array(z.string()).optional(), stderrTail: z.string().optional() }).optional(),
  /** What to run next when the drill did not finish. */
  next: z.string().optional(),
});
export type DrillRecord = z.infer<typeof DrillRecord>;

export function emptyPhases(): PhaseRecord[] {
  return DRILL_PHASES.map((name) => ({ name, state: 'pending' as const, commands: [] }));
}

/** From the end of inject (a heal: the start of detect) to the end of the healthy gate. */
export function mttrOf(phases: readonly PhaseRecord[]): number | undefined {
  const inject = phases.find((p) => p.name === 'inject');
  const detect = phases.find((p) => p.name === 'detect');
  const healthy = phases.find((p) => p.name === 'healthy');
  const start = inject?.state === 'done' ? inject.endedAtMs : inject?.state === 'skipped' ? detect?.startedAtMs : undefined;
  if (start === undefined || healthy?.state !== 'done' || healthy.endedAtMs === undefined) return undefined;
  return healthy.endedAtMs - start;
}

/** The phase an unfinished drill stopped in (the first that is not done or skipped). */
export function stoppedPhase(r: DrillRecord): PhaseRecord | undefined {
  return r.phases.find((p) => p.state !== 'done' && p.state !== 'skipped');
}

function fmtSeconds(ms: number | undefined): string {
  if (ms === undefined) return '';
  return ms < 10_000 ? `${(ms / 1000).toFixed(2)} s` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** The phase table `kubedos drill` prints, with MTTR against the target below it. */
export function renderDrillRecord(r: DrillRecord): string {
  const t0 = r.phases.find((p) => p.name === 'inject')?.startedAtMs ?? r.startedAtMs;
  const rows = r.phases.map((p) => [
    p.name,
    p.state,
    p.startedAtMs !== undefined ? `+${fmtSeconds(p.startedAtMs - t0)}` : '',
    fmtSeconds(p.durationMs),
    String(p.commands.length + (p.commandsOmitted ?? 0)),
    p.detail ?? '',
  ]);
  const lines = [`${r.kind} ${r.id}: ${r.scenario} on ${r.node} (${r.cluster}, ${r.target === 'lab' ? 'namespace lab' : 'deployed cluster'}) — ${r.status}`, '', renderTable(['PHASE', 'STATE', 'AT', 'TOOK', 'CMDS', 'DETAIL'], rows), ''];
  const target = `${r.goal.minutes} min (${r.goal.source})`;
  if (r.detectedBy) lines.push(`detected by ${r.detectedBy === 'hub-watcher' ? 'the hub watcher' : "the engine's own probes"}`);
  if (r.mttrMs !== undefined) lines.push(`MTTR ${fmtSeconds(r.mttrMs)} against a target of ${target}: ${r.pass ? 'PASS' : 'FAIL'}`);
  else lines.push(`no MTTR: the drill did not reach a healthy cluster (target ${target})`);
  if (r.error) {
    lines.push(`failed in ${r.error.phase} on ${r.error.node}: ${r.error.message}`);
    if (r.error.command) lines.push(`  command: ${r.error.command.join(' ')}`);
    if (r.error.stderrTail) lines.push(`  stderr: ${r.error.stderrTail}`);
  }
  if (r.next) lines.push(`next: ${r.next}`);
  return lines.join('\n');
}

/** `kubedos drill --history`: one row per drill, oldest first. */
export function renderDrillHistory(records: readonly DrillRecord[]): string {
  const rows = [...records]
    .sort((a, b) => a.startedAtMs - b.startedAtMs || a.id.localeCompare(b.id))
    .map((r) => {
      const detect = r.phases.find((p) => p.name === 'detect');
      return [
        r.id,
        new Date(r.startedAtMs).toISOString().replace(/\.\d+Z$/, 'Z'),
        r.scenario,
        r.node,
        r.target,
        detect?.state === 'done' ? fmtSeconds(detect.durationMs) : '',
        detectSourceLabel(r.detectedBy),
        fmtSeconds(r.mttrMs),
        `${r.goal.minutes} min`,
        r.status === 'passed' || r.status === 'failed' ? (r.pass ? 'pass' : 'FAIL') : r.status,
      ];
    });
  return renderTable(['ID', 'STARTED', 'SCENARIO', 'NODE', 'WHERE', 'DETECT', 'DETECTED BY', 'MTTR', 'TARGET', 'RESULT'], rows);
}
