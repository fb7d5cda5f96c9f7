// The drill engine: guard → inject → detect → fence → replace → reintegrate → healthy, each
// phase timed, its commands recorded, the record written after every change (it is the drill's
// journal). `kubedos drill`, `kubedos heal`, the bench and the lab test all call these functions.
import type { ScenarioName } from '../../common/drills/catalogue';
import { guardDrill, recoveryTarget } from '../../common/drills/catalogue';
import type { DetectThresholds, HealthReport, HealthSignal } from '../../common/drills/health';
import { detectThresholds, evaluateHealth, isTimedSignal, probesToDetect } from '../../common/drills/health';
import type { DetectSource, DrillPhase, DrillRecord, PhaseRecord } from '../../common/drills/timeline';
import { readWatcherFor } from '../../common/drills/watcher';
import { emptyPhases, mttrOf } from '../../common/drills/timeline';
import { plural } from '../../common/text/plural';
import type { ClusterSpec } from '../../common/spec/schema';
import { CommandError } from '../exec/runner';
import { saveDrillRecord } from './history';
import type { NodeShell } from './shell';
import { recordingShell } from './shell';
import type { DrillTarget, ScenarioOps } from './target';

export interface DrillOptions {
  target: DrillTarget;
  spec: ClusterSpec;
  scenario: string;
  node: string;
  thresholds: DetectThresholds;
  /** Where the thresholds came from (the spec, or the lab's documented override). */
  thresholdsSource: string;
  id: string;
  /** Persists the record (called after every phase change). */
  store: (r: DrillRecord) => void;
  /** How to resume, said to the user when the drill stops early. */
  nextOnInterrupt: string;
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** Called when a phase ends (the lab test asks the guard mid-drill here). */
  onPhaseEnd?: (phase: DrillPhase, record: DrillRecord) => Promise<void> | void;
  /** Upper bound for detect and for the healthy gate; default: the recovery target. */
  phaseTimeoutMs?: number;
  /** Heal mode (`kubedos heal`): the fault is already there; no inject, and the guard only checks the target. */
  heal?: boolean;
}

/** A drill's settings from the spec: its selfHealing.detect thresholds, and records kept in the workspace's history. */
export function specDrillSettings(spec: ClusterSpec, env: NodeJS.ProcessEnv): Pick<DrillOptions, 'thresholds' | 'thresholdsSource' | 'store'> {
  return { thresholds: detectThresholds(spec.spec.selfHealing), thresholdsSource: 'spec selfHealing.detect', store: (r) => saveDrillRecord(r, env) };
}

export class DrillInterrupted extends Error {}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((res, rej) => {
    if (signal?.aborted) return rej(new DrillInterrupted('interrupted'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      res();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      rej(new DrillInterrupted('interrupted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Facts → verdict, through the target's probes. */
export async function observeHealth(target: DrillTarget, t: DetectThresholds, sh = target.shell): Promise<HealthReport> {
  return evaluateHealth(await target.gatherFacts(sh, Date.now() / 1000), t);
}

export interface Detection {
  source: DetectSource;
  /** The detect phase's one-line detail. */
  detail: string;
  /** The engine's last verdict, when its own probes ran. */
  health?: HealthReport;
}

/**
 * The detect phase. A target whose hub runs the health watcher is read first, every half
 * heartbeat: a usable report (readWatcherFor: fresh, agreeing with the engine's rule, taken
 * after the fault) that lists the node as detected is the detection. Signals the watcher does
 * not observe (guest-agent: the hypervisor's view) and the engine can are still probed by the
 * engine meanwhile. Without a watcher, or while its report is stale or unreadable, the engine's
 * own probes decide: the node must look unhealthy on `missedHeartbeats` probes in a row, one
 * every heartbeatSeconds, and the detail says why the watcher was not used.
 */
export async function detectFault(o: { target: DrillTarget; t: DetectThresholds; sh: NodeShell; node: string; timeoutMs: number; afterSeconds?: number; before?: HealthReport | undefined; signal?: AbortSignal }): Promise<Detection> {
  const { target, t, sh } = o;
  const need = probesToDetect(t);
  const deadline = Date.now() + o.timeoutMs;
  const engineBlind = new Set<HealthSignal>(o.before?.notObserved ?? []);
  let streak = 0;
  let health: HealthReport | undefined;
  /** Why the last watcher reading could not be used (undefined: usable, or no watcher). */
  let unusable: string | undefined;
  while (Date.now() < deadline) {
    // Signals the engine probes this round: all of them, or (watcher usable) those it alone sees.
    let mine: readonly HealthSignal[] = t.signals;
    if (target.readWatcher) {
      const reading = readWatcherFor(await target.readWatcher(sh, Date.now() / 1000), o.node, o.afterSeconds);
      if (reading.kind === 'detected') return { source: 'hub-watcher', detail: reading.detail, ...(health ? { health } : {}) };
      if (reading.kind === 'unusable') unusable = reading.reason;
      else {
        unusable = undefined;
        const r = reading.status.report;
        mine = t.signals.filter((s) => s !== 'kubelet-ready' && !engineBlind.has(s) && (!r.thresholds.signals.includes(s) || r.verdict.notObserved.includes(s)));
      }
    }
    if (mine.length) {
      health = await observeHealth(target, t, sh);
      for (const s of health.notObserved) engineBlind.add(s);
      const findings = health.findings.filter((f) => f.node === o.node && mine.includes(f.signal));
      streak = findings.length ? streak + 1 : 0;
      const timed = findings.some((f) => isTimedSignal(f.signal));
      if (streak >= need || (timed && streak > 0)) {
        const why = !target.readWatcher ? '' : unusable ? `; ${unusable}, engine probes used` : `; not observed by the hub watcher: ${[...new Set(findings.map((f) => f.signal))].join(', ')}`;
        return { source: 'engine-probes', detail: `${findings.map((f) => `${f.signal}: ${f.detail}`).join('; ')} (${plural(streak, 'probe')} in a row, every ${t.heartbeatSeconds} s${why})`, health };
      }
    } else streak = 0;
    const watching = target.readWatcher && !unusable && mine.length === 0;
    await sleep(watching ? Math.max(250, (t.heartbeatSeconds * 1000) / 2) : t.heartbeatSeconds * 1000, o.signal);
  }
  const watcher = !target.readWatcher ? '' : unusable ? `; ${unusable}` : '; the hub watcher did not report it either';
  throw new Error(`${o.node} still looks healthy ${Math.round(o.timeoutMs / 1000)} s after the fault (signals: ${t.signals.join(', ')}${watcher}); the detection criteria do not see this fault`);
}

export async function runDrill(o: DrillOptions): Promise<DrillRecord> {
  const { target, thresholds: t } = o;
  const log = o.log ?? (() => undefined);
  const goal = recoveryTarget(o.spec.spec.acceptance, o.scenario as ScenarioName);
  const phases = emptyPhases();
  let current: PhaseRecord | undefined;
  const sh = recordingShell(target.shell, () => current, () => Date.now());
  const timeoutMs = o.phaseTimeoutMs ?? goal.minutes * 60_000;

  const before = await observeHealth(target, t).catch(() => undefined);
  const verdict = guardDrill({ scenario: o.scenario, node: o.node, nodes: target.nodes, health: before, allowDestroy: target.allowDestroy });
  // A heal repairs an unhealthy cluster: the health reasons are why it runs, not why to refuse.
  if (o.heal) {
    verdict.reasons = verdict.reasons.filter((r) => r.code !== 'unhealthy' && r.code !== 'quorum');
    verdict.ok = verdict.reasons.length === 0;
  }
  const ops: ScenarioOps | undefined = verdict.ok ? target.ops(o.scenario as ScenarioName) : undefined;
  if (verdict.ok && !ops) verdict.reasons.push({ code: 'unknown-scenario', message: `${o.scenario} cannot run on ${target.kind === 'lab' ? 'the namespace lab' : 'this cluster'} yet` });
  const record: DrillRecord = {
    schema: 'kubedos.drill/v1',
    id: o.id,
    kind: o.heal ? 'heal' : 'drill',
    cluster: target.cluster,
    scenario: o.scenario,
    node: o.node,
    target: target.kind,
    status: 'running',
    startedAtMs: Date.now(),
    phases,
    goal,
    thresholds: { heartbeatSeconds: t.heartbeatSeconds, silenceSeconds: t.silenceSeconds, handshakeMaxAgeSeconds: t.handshakeMaxAgeSeconds, signals: t.signals, source: o.thresholdsSource },
    guard: { ok: verdict.reasons.length === 0, reasons: verdict.reasons },
  };
  if (!record.guard.ok || !ops) {
    record.status = 'refused';
    record.endedAtMs = Date.now();
    o.store(record);
    return record;
  }
  o.store(record);

  let health = before as HealthReport;
  const phase = async (name: DrillPhase, body: () => Promise<string>): Promise<void> => {
    current = phases.find((p) => p.name === name) as PhaseRecord;
    current.state = 'running';
    current.startedAtMs = Date.now();
    o.store(record);
    log(`${name}…`);
    if (o.signal?.aborted) throw new DrillInterrupted('interrupted');
    current.detail = await body();
    current.endedAtMs = Date.now();
    current.durationMs = current.endedAtMs - current.startedAtMs;
    current.state = 'done';
    o.store(record);
    log(`${name}: ${current.detail} (${current.durationMs} ms)`);
    await o.onPhaseEnd?.(name, record);
  };
  const ctx = () => ({ sh, node: o.node, health, log, ...(o.signal ? { signal: o.signal } : {}) });

  try {
    if (o.heal) {
      const inject = phases[0] as PhaseRecord;
      inject.state = 'skipped';
      inject.detail = 'heal: the fault was found, not injected';
    } else await phase('inject', () => ops.inject(ctx()));
    await phase('detect', async () => {
      const d = await detectFault({ target, t, sh, node: o.node, timeoutMs, before, ...(o.signal ? { signal: o.signal } : {}), ...(o.heal ? {} : { afterSeconds: ((phases[0] as PhaseRecord).endedAtMs ?? Date.now()) / 1000 }) });
      health = d.health ?? health;
      record.detectedBy = d.source;
      return d.detail;
    });
    await phase('fence', () => ops.fence(ctx()));
    await phase('replace', () => ops.replace(ctx()));
    await phase('reintegrate', () => ops.reintegrate(ctx()));
    await phase('healthy', async () => {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        health = await observeHealth(target, t, sh);
        if (health.healthy) return `every node healthy${health.etcd ? `; etcd ${health.etcd.healthy}/${health.etcd.members} members healthy` : ''}${health.notObserved.length ? ` (not observed here: ${health.notObserved.join(', ')})` : ''}`;
        await sleep(Math.min(1000, t.heartbeatSeconds * 1000), o.signal);
      }
      throw new Error(`not healthy ${Math.round(timeoutMs / 1000)} s after reintegration: ${health.findings.slice(0, 3).map((f) => `${f.node}: ${f.detail}`).join('; ')}`);
    });
    record.mttrMs = mttrOf(phases);
    record.pass = record.mttrMs !== undefined && record.mttrMs <= goal.minutes * 60_000;
    record.status = record.pass ? 'passed' : 'failed';
  } catch (err) {
    const at = current ?? (phases[0] as PhaseRecord);
    const interrupted = err instanceof DrillInterrupted || o.signal?.aborted === true;
    at.state = interrupted ? 'interrupted' : 'failed';
    at.endedAtMs = Date.now();
    at.durationMs = at.endedAtMs - (at.startedAtMs ?? at.endedAtMs);
    record.status = interrupted ? 'interrupted' : 'failed';
    const ce = err instanceof CommandError ? err : undefined;
    record.error = {
      phase: at.name,
      node: o.node,
      message: interrupted ? `interrupted during ${at.name}` : (err as Error).message.split('\n')[0]?.slice(0, 500) ?? String(err),
      ...(ce ? { command: ce.command, stderrTail: ce.stderrTail.slice(-600) } : {}),
    };
    const fenced = phases.find((p) => p.name === 'fence')?.state === 'done';
    record.next = `${o.nextOnInterrupt}${fenced ? ` (${o.node} is fenced and not yet replaced)` : ''}`;
  }
  record.endedAtMs = Date.now();
  o.store(record);
  return record;
}

/**
 * Which repair fits what the probes found on a node: a node off the planes is re-admitted like a
 * partitioned one (revoke, re-enroll, etcd rejoin); a node whose etcd member alone is down gets a
 * fresh member. Anything else cannot be repaired by this engine yet, and says so.
 */
export function repairFor(findings: readonly { signal: string }[]): { scenario: ScenarioName } | { cannot: string } {
  const signals = new Set(findings.map((f) => f.signal));
  // A machine that is gone or down (its guest agent silent): fenced, a machine put back in its slot, reintegrated.
  if (signals.has('guest-agent')) return { scenario: 'power-off-node' };
  if (signals.has('wg-handshake')) return { scenario: 'partition-node' };
  if (signals.size === 1 && signals.has('etcd-member')) return { scenario: 'kill-etcd-member' };
  return { cannot: `no automatic repair for ${[...signals].sort().join(', ')} yet` };
}

/** A drill id: sortable, unique enough, no secrets. */
export function drillId(now: Date, scenario: string, node: string): string {
  const ts = now.toISOString().replace(/[-:]/g, '').replace(/\.(\d+)Z$/, '$1').replace('T', '-').toLowerCase();
  return `${ts}-${scenario}-${node}`.replace(/[^a-z0-9-]/g, '-');
}

export interface HealResult {
  before: HealthReport;
  records: DrillRecord[];
  /** Unhealthy nodes this engine cannot repair (and why). */
  cannot: { node: string; why: string }[];
}

/**
 * How long heal waits before it looks a second time: it repairs only what both looks found. Right
 * after an etcd member dies, the others fail `endpoint health` until they have elected a leader (a
 * second or two); acting on the first look alone would fence healthy members (seen once in CI's
 * namespace lab, 2026-12-04: cp-1 killed, cp-2 and cp-3 reported unhealthy in the same look).
 */
export const HEAL_CONFIRM_MS = 3000;

/**
 * `kubedos heal`: looks at the cluster now and repairs every unhealthy node, one at a time
 * (selfHealing.replace.maxConcurrent is 1 by default), through the same phases as a drill with
 * inject skipped. Each repair is recorded like a drill (kind "heal").
 */
export async function runHeal(o: Omit<DrillOptions, 'scenario' | 'node' | 'id' | 'heal'> & { idFor: (scenario: string, node: string) => string; confirmAfterMs?: number }): Promise<HealResult> {
  const first = await observeHealth(o.target, o.thresholds);
  let before = first;
  if (first.findings.length) {
    await new Promise((r) => setTimeout(r, o.confirmAfterMs ?? HEAL_CONFIRM_MS));
    const second = await observeHealth(o.target, o.thresholds);
    const seen = new Set(first.findings.map((f) => `${f.node} ${f.signal}`));
    before = { ...second, findings: second.findings.filter((f) => seen.has(`${f.node} ${f.signal}`)) };
  }
  const hub = new Set(o.target.nodes.filter((n) => n.hub).map((n) => n.name));
  const byNode = new Map<string, HealthReport['findings']>();
  for (const f of before.findings) byNode.set(f.node, [...(byNode.get(f.node) ?? []), f]);
  const records: DrillRecord[] = [];
  const cannot: HealResult['cannot'] = [];
  for (const [node, findings] of [...byNode.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    if (hub.has(node)) {
      cannot.push({ node, why: 'the hub itself is unhealthy; it heals the others and is repaired by hand (kubedos deploy)' });
      continue;
    }
    const repair = repairFor(findings);
    if ('cannot' in repair) {
      cannot.push({ node, why: repair.cannot });
      continue;
    }
    const r = await runDrill({ ...o, scenario: repair.scenario, node, id: o.idFor(repair.scenario, node), heal: true });
    records.push(r);
    if (r.status !== 'passed' && r.status !== 'failed') break;
  }
  return { before, records, cannot };
}
