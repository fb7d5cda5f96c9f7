// A drill as it runs, for the workbench: the events the engine sends (a snapshot of the record
// at every phase change, and its log lines) folded into one state by one function, and the
// colour of every node derived from the record (unhealthy → fenced → provisioning → rejoining →
// healthy). Pure.
import { z } from 'zod';
import type { DrillPhase, DrillRecord } from './timeline';
import { DrillRecord as DrillRecordSchema } from './timeline';

export const DrillEvent = z.discriminatedUnion('type', [
  /** The whole record after a change (the engine writes the same record to its journal). */
  z.object({ type: z.literal('record'), record: DrillRecordSchema }),
  /** One line of the drill's log. */
  z.object({ type: z.literal('log'), id: z.string(), line: z.string().max(4000) }),
]);
export type DrillEvent = z.infer<typeof DrillEvent>;

export const NODE_DRILL_STATES = ['healthy', 'unhealthy', 'fenced', 'provisioning', 'rejoining'] as const;
export type NodeDrillState = (typeof NODE_DRILL_STATES)[number];

/** Lines of log kept per drill (the record holds the commands; this is the running commentary). */
export const MAX_LIVE_LOG = 200;

export interface LiveDrills {
  /** Drills seen on the event stream, by id (latest snapshot). */
  records: Record<string, DrillRecord>;
  /** The drill started last (the one the view follows). */
  current?: string;
  log: Record<string, string[]>;
}

export const EMPTY_LIVE: LiveDrills = { records: {}, log: {} };

/** The one fold of drill events: later snapshots of a record replace earlier ones; logs are bounded. */
export function foldDrillEvents(state: LiveDrills, events: readonly DrillEvent[]): LiveDrills {
  if (!events.length) return state;
  const records = { ...state.records };
  const log = { ...state.log };
  let current = state.current;
  for (const e of events) {
    if (e.type === 'record') {
      const prev = records[e.record.id];
      if (!prev) current = e.record.id;
      records[e.record.id] = e.record;
    } else {
      const lines = [...(log[e.id] ?? []), e.line];
      log[e.id] = lines.length > MAX_LIVE_LOG ? lines.slice(-MAX_LIVE_LOG) : lines;
    }
  }
  return { records, log, ...(current !== undefined ? { current } : {}) };
}

/** What a phase that has started means for the target node. */
const DURING: Record<DrillPhase, NodeDrillState> = {
  inject: 'unhealthy',
  detect: 'unhealthy',
  fence: 'unhealthy',
  replace: 'provisioning',
  reintegrate: 'rejoining',
  healthy: 'rejoining',
};
const AFTER: Record<DrillPhase, NodeDrillState> = {
  inject: 'unhealthy',
  detect: 'unhealthy',
  fence: 'fenced',
  replace: 'provisioning',
  reintegrate: 'rejoining',
  healthy: 'healthy',
};

/**
 * The target node's state in a drill: from the last phase that started. A drill that stopped
 * (failed, interrupted) leaves the node where that phase left it — a fenced node stays "fenced"
 * on screen until something replaces it. A refused drill changed nothing.
 */
export function targetState(r: DrillRecord): NodeDrillState {
  if (r.status === 'refused') return 'healthy';
  const started = r.phases.filter((p) => p.state !== 'pending' && p.state !== 'skipped');
  const last = started.at(-1);
  if (!last) return r.kind === 'heal' ? 'unhealthy' : 'healthy';
  return last.state === 'done' ? AFTER[last.name] : DURING[last.name];
}

/** Every node's state during (or after) a drill: the target from its phases, the others healthy. */
export function nodeStates(nodes: readonly string[], r: DrillRecord | undefined): Record<string, NodeDrillState> {
  const out: Record<string, NodeDrillState> = {};
  for (const n of nodes) out[n] = 'healthy';
  if (r && nodes.includes(r.node)) out[r.node] = targetState(r);
  return out;
}

/** The phase bars of a record on a common time axis (ms from the first start); a running phase ends at `now`. */
export interface PhaseBar {
  name: DrillPhase;
  state: DrillRecord['phases'][number]['state'];
  fromMs: number;
  toMs: number;
  detail?: string;
}

export function phaseBars(r: DrillRecord, now: number): { bars: PhaseBar[]; spanMs: number } {
  const started = r.phases.filter((p) => p.startedAtMs !== undefined);
  if (!started.length) return { bars: [], spanMs: 0 };
  const t0 = Math.min(...started.map((p) => p.startedAtMs as number));
  const bars = started.map((p) => {
    const from = (p.startedAtMs as number) - t0;
    const end = p.endedAtMs ?? (p.state === 'running' ? Math.max(now, p.startedAtMs as number) : (p.startedAtMs as number));
    return { name: p.name, state: p.state, fromMs: from, toMs: end - t0, ...(p.detail !== undefined ? { detail: p.detail } : {}) };
  });
  return { bars, spanMs: Math.max(1, ...bars.map((b) => b.toMs)) };
}

/** MTTR history per scenario for a chart: one point per measured drill, oldest first, with the target line. */
export interface MttrPoint {
  id: string;
  /** 1-based run number of this scenario. */
  run: number;
  startedAtMs: number;
  mttrSeconds: number;
  targetSeconds: number;
  pass: boolean;
}

export function mttrSeries(records: readonly DrillRecord[]): { scenario: string; points: MttrPoint[] }[] {
  const by = new Map<string, MttrPoint[]>();
  const sorted = [...records].sort((a, b) => a.startedAtMs - b.startedAtMs || a.id.localeCompare(b.id));
  for (const r of sorted) {
    if (r.mttrMs === undefined) continue;
    const pts = by.get(r.scenario) ?? [];
    pts.push({ id: r.id, run: pts.length + 1, startedAtMs: r.startedAtMs, mttrSeconds: Math.round(r.mttrMs / 100) / 10, targetSeconds: r.goal.minutes * 60, pass: r.pass === true });
    by.set(r.scenario, pts);
  }
  return [...by.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([scenario, points]) => ({ scenario, points }));
}
