// The DAG runner. Stages move pending -> queued -> running -> success | failed | skipped |
// aborted; dependencies are explicit and checked for cycles; at most `concurrency` stages run
// at once; an AbortSignal cancels; a stage that allows it is retried with backoff; a
// destructive stage refuses to run without allowDestroy; every event is validated, journaled
// and handed to subscribers.
//
// Stages return typed outputs; the runner hands each stage the outputs of the stages it `needs`
// and `reads` (ancestors only). A stage that declares its `inputs` is skipped as converged when
// the hash of those inputs equals its last journaled success, that success journaled an output
// its schema accepts (replayed to the dependants), and its cheap `probe` of the real world says
// nothing moved. A probe that cannot run counts as "moved": a stage is never skipped on a guess.
import { randomUUID } from 'node:crypto';
import type { ZodType } from 'zod';
import { canonicalJson, sha256Hex } from '../../common/canonical';
import type { FailureDetail, PipelineEvent, PipelineEventBody, RerunClass, StageState } from '../../common/pipeline/events';
import { PipelineEvent as PipelineEventSchema } from '../../common/pipeline/events';
import { CommandError } from '../exec/runner';
import { checkpoints, Journal, lastRunCompat, lastSuccesses } from './journal';
import { sleep } from './sleep';

export interface StageContext {
  readonly runId: string;
  readonly stage: string;
  readonly signal: AbortSignal;
  readonly allowDestroy: boolean;
  readonly attempt: number;
  log(line: string, options?: { node?: string; stream?: 'stdout' | 'stderr' | 'info' | 'warn' }): void;
  progress(fraction: number, message?: string, node?: string): void;
  node(node: string, state: 'pending' | 'running' | 'ok' | 'failed' | 'skipped', message?: string): void;
  /** Runs `effect` once per key across reruns: the result is journaled and replayed next time. */
  checkpoint<T>(key: string, effect: () => Promise<T>): Promise<T>;
  /** Counts changes this stage made (reported on success; 0 = "unchanged"). */
  changed(count?: number): void;
}

/** What a probe may do: read, log, be cancelled. */
export interface ProbeContext {
  readonly signal: AbortSignal;
  log(line: string, options?: { node?: string; stream?: 'info' | 'warn' }): void;
}

/** A probe's verdict on whether what the stage made last time is still as it left it. */
export type ProbeVerdict = { moved: false; note?: string } | { moved: true; reason: string };

/** Outputs of the stages a stage needs and reads, by stage name. */
export type StageInputs = Readonly<Record<string, unknown>>;

export interface StageDefinition {
  name: string;
  description: string;
  needs: readonly string[];
  /** Outputs of further ancestors (stages reached through `needs`) this stage reads. */
  reads?: readonly string[];
  rerun: RerunClass;
  /** Retries after the first attempt, with exponential backoff from backoffMs. */
  retries?: { attempts: number; backoffMs: number };
  /**
   * Everything the stage's outcome depends on (JSON; the runner hashes its canonical form).
   * Absent, or undefined returned: the stage always runs.
   */
  inputs?: (inputs: StageInputs) => unknown | Promise<unknown>;
  /** Hash of the stage's inputs, computed by the stage itself (a stage sets inputs or inputHash). */
  inputHash?: () => string | undefined | Promise<string | undefined>;
  /** Schema of the output: set it and the output is journaled, so a skipped stage replays it. */
  output?: ZodType<unknown>;
  /**
   * One cheap look at the real world (e.g. a fingerprint per node); runs only when the inputs
   * match, with the output the last success recorded (undefined for a stage without an output schema).
   */
  probe?: (ctx: ProbeContext, inputs: StageInputs, recorded: unknown) => Promise<ProbeVerdict>;
  run(ctx: StageContext, inputs: StageInputs): Promise<unknown>;
}

/** The hash the runner records for a stage's declared inputs. */
export function hashInputs(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}

/** An error that says where and what to do; stages throw it (or CommandError). */
export class StageError extends Error {
  readonly detail: Omit<FailureDetail, 'stage'>;
  constructor(message: string, detail: Omit<FailureDetail, 'stage' | 'message'> = {}) {
    super(message);
    this.name = 'StageError';
    this.detail = { message, ...detail };
  }
}

export interface PipelineOptions {
  name: string;
  journalPath?: string;
  concurrency?: number;
  allowDestroy?: boolean | Readonly<Record<string, boolean>>;
  /** Ignore journaled successes and run everything. */
  force?: boolean;
  onEvent?: (event: PipelineEvent) => void;
  signal?: AbortSignal;
  /** Clock for event times; tests inject a fixed one. */
  now?: () => Date;
  /**
   * What a run must share with the journal's runs to trust their successes (engine journal
   * format, spec apiVersion). Runs recorded under another key are ignored, with one line saying so.
   */
  compat?: string;
}

export interface PipelineResult {
  runId: string;
  ok: boolean;
  states: Record<string, StageState>;
  failures: FailureDetail[];
  durationMs: number;
  /** The output of every stage that succeeded or was skipped as converged (replayed). */
  outputs: Record<string, unknown>;
}

/** Registers a stage that a later issue implements. It fails loudly; it never reports success. */
export function notImplementedStage(name: string, needs: readonly string[], rerun: RerunClass, description: string, landsWith: string): StageDefinition {
  return {
    name,
    description,
    needs,
    rerun,
    async run() {
      throw new StageError(`stage "${name}" is not implemented yet`, { hint: `${description} lands with ${landsWith}` });
    },
  };
}

export function topologicalOrder(stages: readonly StageDefinition[]): string[] {
  const byName = new Map(stages.map((s) => [s.name, s]));
  if (byName.size !== stages.length) {
    const seen = new Set<string>();
    for (const s of stages) {
      if (seen.has(s.name)) throw new Error(`pipeline: stage "${s.name}" is registered twice`);
      seen.add(s.name);
    }
  }
  for (const s of stages) for (const d of s.needs) if (!byName.has(d)) throw new Error(`pipeline: stage "${s.name}" needs unknown stage "${d}"`);
  const order: string[] = [];
  const mark = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, trail: string[]): void => {
    const m = mark.get(name);
    if (m === 'done') return;
    if (m === 'visiting') throw new Error(`pipeline: dependency cycle ${[...trail.slice(trail.indexOf(name)), name].join(' -> ')}`);
    mark.set(name, 'visiting');
    for (const d of [...(byName.get(name)?.needs ?? [])].sort()) visit(d, [...trail, name]);
    mark.set(name, 'done');
    order.push(name);
  };
  for (const s of [...stages].sort((a, b) => a.name.localeCompare(b.name))) visit(s.name, []);
  return order;
}

export async function runPipeline(stages: readonly StageDefinition[], options: PipelineOptions): Promise<PipelineResult> {
  const order = topologicalOrder(stages);
  const byName = new Map(stages.map((s) => [s.name, s]));
  const runId = randomUUID();
  const now = options.now ?? (() => new Date());
  const journal = options.journalPath ? new Journal(options.journalPath) : undefined;
  const recorded = journal ? journal.history() : { events: [] };
  const history = recorded.events;
  const converged = options.force ? new Map() : lastSuccesses(history, options.compat);
  const previousCompat = options.compat === undefined ? undefined : lastRunCompat(history);
  const concurrency = Math.max(1, options.concurrency ?? 2);
  const started = performance.now();
  let seq = 0;

  const emit = (body: PipelineEventBody): void => {
    const event = PipelineEventSchema.parse({ ...body, runId, seq: seq++, time: now().toISOString() });
    journal?.append(event);
    options.onEvent?.(event);
  };

  const states = new Map<string, StageState>(order.map((n) => [n, 'pending']));
  const failures: FailureDetail[] = [];
  const setState = (s: StageDefinition, state: StageState, extra: { attempt?: number; inputHash?: string; reason?: string; durationMs?: number; changes?: number; output?: unknown } = {}): void => {
    states.set(s.name, state);
    emit({
      type: 'stage',
      stage: s.name,
      state,
      rerun: s.rerun,
      attempt: extra.attempt ?? 0,
      ...(extra.inputHash !== undefined ? { inputHash: extra.inputHash } : {}),
      ...(extra.reason !== undefined ? { reason: extra.reason } : {}),
      ...(extra.durationMs !== undefined ? { durationMs: extra.durationMs } : {}),
      ...(extra.changes !== undefined ? { changes: extra.changes } : {}),
      ...(extra.output !== undefined ? { output: extra.output } : {}),
    });
  };
  const allowDestroyFor = (name: string): boolean =>
    typeof options.allowDestroy === 'boolean' ? options.allowDestroy : Boolean(options.allowDestroy?.[name]);

  for (const s of stages) {
    const ancestors = ancestorsOf(s.name, byName);
    const foreign = (s.reads ?? []).filter((r) => !ancestors.has(r));
    if (foreign.length) throw new Error(`pipeline: stage "${s.name}" reads ${foreign.join(', ')}, which ${foreign.length === 1 ? 'is not one of its' : 'are not its'} ancestors (add to needs)`);
  }
  emit({ type: 'run', state: 'started', stages: order, pipeline: options.name, ...(options.compat !== undefined ? { compat: options.compat } : {}) });
  if (recorded.distrust && order[0]) emit({ type: 'log', stage: order[0], stream: 'warn', line: recorded.distrust });
  if (previousCompat !== undefined && previousCompat !== options.compat && order[0] && !options.force) {
    emit({ type: 'log', stage: order[0], stream: 'warn', line: `the journal's last run was recorded by ${previousCompat ?? 'an older engine'} (this run: ${options.compat}): nothing it recorded is trusted, every stage runs in full` });
  }
  for (const name of order) setState(byName.get(name)!, 'pending');

  const controller = new AbortController();
  const onOuterAbort = (): void => controller.abort(options.signal?.reason);
  if (options.signal?.aborted) controller.abort(options.signal.reason);
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });

  const running = new Map<string, Promise<void>>();
  const outputs = new Map<string, unknown>();
  const inputsOf = (s: StageDefinition): StageInputs => {
    const o: Record<string, unknown> = {};
    for (const n of [...s.needs, ...(s.reads ?? [])]) if (outputs.has(n)) o[n] = outputs.get(n);
    return o;
  };
  // Stages skipped because something upstream failed (as opposed to skipped as converged).
  const blocked = new Set<string>();

  const execute = async (s: StageDefinition): Promise<void> => {
    let inputHash: string | undefined;
    const inputs = inputsOf(s);
    try {
      if (s.inputs) {
        const declared = await s.inputs(inputs);
        inputHash = declared === undefined ? undefined : hashInputs(declared);
      } else {
        inputHash = await s.inputHash?.();
      }
    } catch (err) {
      fail(s, err, 0);
      return;
    }
    const last = converged.get(s.name);
    if (inputHash !== undefined && last?.inputHash === inputHash) {
      const skip = await convergedVerdict(s, last.output, inputs);
      if (skip.converged) {
        if (s.output) outputs.set(s.name, skip.output);
        setState(s, 'skipped', { inputHash, reason: `converged: inputs unchanged since run ${last.runId.slice(0, 8)}${skip.note ? `; ${skip.note}` : ''}` });
        return;
      }
      emit({ type: 'log', stage: s.name, stream: 'info', line: `inputs unchanged since run ${last.runId.slice(0, 8)}, but ${skip.why}: running` });
    }
    if (s.rerun === 'destructive' && !allowDestroyFor(s.name)) {
      setState(s, 'failed', { reason: 'destructive stage without allowDestroy' });
      failures.push({
        stage: s.name,
        message: `stage "${s.name}" is destructive and allowDestroy is not set`,
        hint: `set spec.stages.${s.name}.allowDestroy: true or pass --allow-destroy if destroying is intended`,
      });
      emit({ type: 'failed', error: failures[failures.length - 1]! });
      return;
    }
    const attempts = 1 + (s.retries?.attempts ?? 0);
    const done = checkpoints(history, s.name);
    for (let attempt = 0; attempt < attempts; attempt++) {
      let changes: number | undefined;
      if (controller.signal.aborted) {
        setState(s, 'aborted', { attempt, reason: 'cancelled' });
        return;
      }
      const t0 = performance.now();
      setState(s, 'running', { attempt, ...(inputHash !== undefined ? { inputHash } : {}) });
      const ctx: StageContext = {
        runId,
        stage: s.name,
        signal: controller.signal,
        allowDestroy: allowDestroyFor(s.name),
        attempt,
        log: (line, o = {}) => emit({ type: 'log', stage: s.name, stream: o.stream ?? 'info', line, ...(o.node !== undefined ? { node: o.node } : {}) }),
        progress: (fraction, message, node) =>
          emit({ type: 'progress', stage: s.name, fraction: Math.max(0, Math.min(1, fraction)), ...(message !== undefined ? { message } : {}), ...(node !== undefined ? { node } : {}) }),
        node: (node, state, message) => emit({ type: 'node', stage: s.name, node, state, ...(message !== undefined ? { message } : {}) }),
        checkpoint: async <T,>(key: string, effect: () => Promise<T>): Promise<T> => {
          if (done.has(key)) return done.get(key) as T;
          const value = await effect();
          done.set(key, value);
          emit({ type: 'checkpoint', stage: s.name, key, value: value === undefined ? null : value });
          return value;
        },
        changed: (count = 1) => {
          changes = (changes ?? 0) + count;
        },
      };
      try {
        const out = await s.run(ctx, inputs);
        if (controller.signal.aborted) throw new Error('cancelled');
        let journaled: unknown;
        if (s.output) {
          const parsed = s.output.safeParse(out);
          if (!parsed.success) throw new StageError(`internal: stage "${s.name}" returned an output its schema rejects: ${parsed.error.issues[0]?.path.join('.') ?? ''} ${parsed.error.issues[0]?.message ?? ''}`.trim());
          journaled = parsed.data;
        }
        outputs.set(s.name, s.output ? journaled : out);
        setState(s, 'success', {
          attempt,
          durationMs: performance.now() - t0,
          ...(inputHash !== undefined ? { inputHash } : {}),
          ...(changes !== undefined ? { changes } : {}),
          ...(s.output && journaled !== undefined ? { output: journaled } : {}),
        });
        return;
      } catch (err) {
        if (controller.signal.aborted) {
          setState(s, 'aborted', { attempt, reason: 'cancelled', durationMs: performance.now() - t0 });
          return;
        }
        if (attempt + 1 < attempts) {
          const wait = (s.retries?.backoffMs ?? 1000) * 2 ** attempt;
          ctx.log(`attempt ${attempt + 1} failed: ${(err as Error).message.split('\n')[0]}; retrying in ${wait} ms`, { stream: 'warn' });
          await sleep(wait, controller.signal).catch(() => undefined); // aborted: the loop sees it
          continue;
        }
        fail(s, err, attempt, performance.now() - t0);
        return;
      }
    }
  };

  /** Whether a stage whose inputs match may be skipped: its output replays and its probe is quiet. */
  const convergedVerdict = async (s: StageDefinition, recordedOutput: unknown, inputs: StageInputs): Promise<{ converged: true; output?: unknown; note?: string } | { converged: false; why: string }> => {
    let output: unknown;
    if (s.output) {
      if (recordedOutput === undefined) return { converged: false, why: 'its last success journaled no output' };
      const parsed = s.output.safeParse(recordedOutput);
      if (!parsed.success) return { converged: false, why: 'the output its last success journaled no longer fits its schema' };
      output = parsed.data;
    }
    if (!s.probe) return { converged: true, ...(s.output ? { output } : {}) };
    let verdict: ProbeVerdict;
    try {
      verdict = await s.probe(
        {
          signal: controller.signal,
          log: (line, o = {}) => emit({ type: 'log', stage: s.name, stream: o.stream ?? 'info', line, ...(o.node !== undefined ? { node: o.node } : {}) }),
        },
        inputs,
        output,
      );
    } catch (err) {
      if (controller.signal.aborted) return { converged: false, why: 'cancelled' };
      return { converged: false, why: `its probe could not run (${(err as Error).message.split('\n')[0]})` };
    }
    if (verdict.moved) return { converged: false, why: verdict.reason };
    return { converged: true, ...(s.output ? { output } : {}), ...(verdict.note ? { note: verdict.note } : {}) };
  };

  const fail = (s: StageDefinition, err: unknown, attempt: number, durationMs?: number): void => {
    const detail = failureDetail(s.name, err);
    failures.push(detail);
    setState(s, 'failed', { attempt, reason: detail.message.split('\n')[0] ?? detail.message, ...(durationMs !== undefined ? { durationMs } : {}) });
    emit({ type: 'failed', error: detail });
  };

  // Scheduling loop: start every stage whose needs succeeded or were skipped-as-converged.
  const isDone = (st: StageState | undefined): boolean => st === 'success' || st === 'failed' || st === 'skipped' || st === 'aborted';
  const satisfied = (st: StageState | undefined): boolean => st === 'success' || st === 'skipped';
  for (;;) {
    for (const name of order) {
      if (states.get(name) !== 'pending') continue;
      const s = byName.get(name)!;
      const blockedBy = s.needs.find((d) => states.get(d) === 'failed' || states.get(d) === 'aborted' || blocked.has(d));
      if (blockedBy) {
        blocked.add(name);
        setState(s, controller.signal.aborted ? 'aborted' : 'skipped', { reason: `not run: ${blockedBy} did not succeed` });
        continue;
      }
      if (controller.signal.aborted) {
        setState(s, 'aborted', { reason: 'cancelled' });
        continue;
      }
      if (s.needs.every((dep) => satisfied(states.get(dep))) && running.size < concurrency) {
        setState(s, 'queued');
        const p = execute(s).finally(() => running.delete(name));
        running.set(name, p);
      }
    }
    if (running.size === 0) {
      if (order.every((n) => isDone(states.get(n)))) break;
      // Nothing running and nothing startable: should not happen after cycle detection.
      if (!order.some((n) => states.get(n) === 'pending')) break;
    } else {
      await Promise.race(running.values());
    }
  }
  options.signal?.removeEventListener('abort', onOuterAbort);

  const summary = Object.fromEntries(order.map((n) => [n, states.get(n) ?? 'pending'])) as Record<string, StageState>;
  const durationMs = performance.now() - started;
  emit({ type: 'done', summary, durationMs });
  journal?.close();
  const ok = order.every((n) => satisfied(states.get(n)) && !blocked.has(n));
  return { runId, ok, states: summary, failures, durationMs, outputs: Object.fromEntries(outputs) };
}

/** Every stage reachable through `needs` from `name`. */
function ancestorsOf(name: string, byName: ReadonlyMap<string, StageDefinition>): Set<string> {
  const out = new Set<string>();
  const walk = (n: string): void => {
    for (const d of byName.get(n)?.needs ?? []) {
      if (out.has(d)) continue;
      out.add(d);
      walk(d);
    }
  };
  walk(name);
  return out;
}

export function failureDetail(stage: string, err: unknown): FailureDetail {
  if (err instanceof StageError) return { stage, ...err.detail };
  if (err instanceof CommandError) {
    return {
      stage,
      message: err.message,
      command: err.command,
      exitCode: err.exitCode,
      ...(err.stderrTail ? { stderrTail: err.stderrTail } : {}),
      ...(err.hint ? { hint: err.hint } : {}),
    };
  }
  // Errors of other engine layers (substrate, build) that carry the same kind of detail.
  const e = err as Error & { hint?: unknown; node?: unknown; stderrTail?: unknown; command?: unknown };
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);
  const node = str(e?.node);
  const hint = str(e?.hint);
  const stderrTail = str(e?.stderrTail);
  const command = str(e?.command);
  return {
    stage,
    message: e?.message ?? String(err),
    ...(node ? { node } : {}),
    ...(hint ? { hint } : {}),
    ...(stderrTail ? { stderrTail } : {}),
    ...(command ? { command: [command] } : Array.isArray(e?.command) ? { command: (e.command as unknown[]).map(String) } : {}),
  };
}
