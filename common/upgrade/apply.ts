// The foundry's per-node apply plan of `kubedos upgrade` (issue 18; docs/upgrades.md, "Applying
// an upgrade"): pure. Given the waves, N+1, what each node reports now (`kubedos-boot status`, the
// gate's metrics, the build on its active slot) and what this run already did to it (the run's
// journal), the one next action: write slot X on node N, reboot N, wait for N's gate until a
// deadline, converge N on N+1 once its gate passed, stop the upgrade (node, reason, the slot it
// fell back to), or done. The foundry runs the action, observes again and asks again, so a rerun
// after a crash of the foundry continues from what the nodes say (and the record: which nodes it
// converged). Streaming the image over wg1 and running the commands are not here.
// `planRollback` gives `kubedos upgrade --rollback`'s order.
import { z } from 'zod';
import { plural } from '../text/plural';
import { firstFew } from '../text/first-few';
import type { BuildRef, Slot } from './agent';
import { otherSlot, Slot as SlotSchema } from './agent';
import type { BootVerdict } from './observe';
import { observeBoot, parseBootStatus } from './observe';
import type { ReplacedNode } from './progress';
import type { Wave } from './waves';
import { GATE_WINDOW } from './gate-config';

/** How long the foundry waits for a node's gate after its reboot (5 min here under TCG), and for a node to answer again after it last did. */
export const GATE_DEADLINE_MS = 5 * 60_000;

/**
 * Once a node answers on the slot it tries, the least time its gate has before the foundry stops
 * waiting: the gate's longest window (GATE_WINDOW, counted from the gate's start) and a minute for
 * the units it starts after (good passes came 6-65 s after the answer on lab-3's VMs). A boot slower
 * than the reboot's deadline allows for (the hub's boot of its new slot once took ~4 min to answer
 * under TCG, its gate then passing in 14 s, after the 5 minutes) still has its gate judged.
 */
export const GATE_AFTER_ANSWER_MS = (Math.max(...Object.values(GATE_WINDOW.checks)) + 60) * 1000;

/**
 * A node's reboot into the slot it tries, as the foundry heard it: when the reboot started (a power
 * cycle or a try given back starts it over), when the node last answered since, and when it first
 * answered booted on that slot. What both waits below read; the upgrade's loop and --rollback keep one each.
 */
export interface RebootClock {
  rebootAt: number;
  lastAnswerAt?: number;
  answeredAt?: number;
}

/** `c` after the node answered at `at`; `onTried`: it was booted on the slot it tries. */
export function heardFrom(c: RebootClock, at: number, onTried: boolean): RebootClock {
  return { ...c, lastAnswerAt: at, ...(onTried && c.answeredAt === undefined ? { answeredAt: at } : {}) };
}

/**
 * Until when the foundry waits for the gate of a node rebooted at `rebootAt` into a slot it tries:
 * `deadlineMs` (GATE_DEADLINE_MS) from the reboot, and at least GATE_AFTER_ANSWER_MS from when the
 * node first answered on that slot (`answeredAt`).
 */
export function gateWaitUntil(c: RebootClock, deadlineMs = GATE_DEADLINE_MS): number {
  return Math.max(c.rebootAt + deadlineMs, c.answeredAt === undefined ? 0 : c.answeredAt + GATE_AFTER_ANSWER_MS);
}

/** Until when the foundry waits for a rebooted node that does not answer: `deadlineMs` from its reboot or from when it last answered since (a gate that gave up reboots it again). */
export function answerWaitUntil(c: RebootClock, deadlineMs = GATE_DEADLINE_MS): number {
  return Math.max(c.rebootAt, c.lastAnswerAt ?? 0) + deadlineMs;
}

/**
 * The steps of a node's replacement (a `replace` wave; docs/upgrades.md, "Replace-based upgrades"),
 * in order: drain (where Kubernetes runs), fence (its etcd member out, revoked at the hub), destroy
 * its VM, provision the same plan slot from the build's role image (VM, first boot, enroll,
 * planes), converge that node, its health gate, uncordon.
 */
export const REPLACE_PHASES = ['drain', 'fence', 'destroy', 'provision', 'converge', 'gate', 'uncordon'] as const;
export const ReplacePhase = z.enum(REPLACE_PHASES);
export type ReplacePhase = z.infer<typeof ReplacePhase>;

/** What this run already did to a node, as the run's journal records it. `at`: the foundry's clock, ms. */
export const ApplyStep = z.union([
  z.object({ kind: z.literal('write'), slot: SlotSchema, ok: z.literal(true) }).strict(),
  z.object({ kind: z.literal('write'), slot: SlotSchema, ok: z.literal(false), error: z.string().min(1) }).strict(),
  z.object({ kind: z.literal('reboot'), slot: SlotSchema, at: z.number().int().nonnegative() }).strict(),
  // Where Kubernetes runs: `kubectl drain` between the write and the reboot, `kubectl uncordon` after the gate.
  z.object({ kind: z.literal('drain'), slot: SlotSchema, ok: z.literal(true) }).strict(),
  z.object({ kind: z.literal('drain'), slot: SlotSchema, ok: z.literal(false), error: z.string().min(1) }).strict(),
  z.object({ kind: z.literal('uncordon'), slot: SlotSchema }).strict(),
  // The foundry's converge of the node on N+1 after its gate (see ApplyNode.converged).
  z.object({ kind: z.literal('converge'), slot: SlotSchema, ok: z.literal(true) }).strict(),
  z.object({ kind: z.literal('converge'), slot: SlotSchema, ok: z.literal(false), error: z.string().min(1) }).strict(),
  // A node of a replace wave: the last phase of its replacement this run ran (how far the replacement got is the record's ReplacedNode).
  z.object({ kind: z.literal('replace'), phase: ReplacePhase, ok: z.literal(true) }).strict(),
  // `bad`: the replacement failed its health gate (N+1 is recorded as bad).
  z.object({ kind: z.literal('replace'), phase: ReplacePhase, ok: z.literal(false), error: z.string().min(1), bad: z.literal(true).optional() }).strict(),
]);
export type ApplyStep = z.infer<typeof ApplyStep>;

export interface ApplyNode {
  /** `kubedos-boot status`, read now. */
  status: string;
  /** The build on the node's active slot (the agent's record). */
  running: BuildRef;
  /** The gate's kubedos.prom as last read while the tried slot was booted. */
  metrics?: string;
  step?: ApplyStep;
  /**
   * The build the foundry last converged this node on during an upgrade (the upgrade record, kept
   * across runs). A slot keeps only what the node learned (payload/upgrade/kubedos-persist): what
   * the converge stage's roles render (/etc/default/etcd, Prometheus's configuration, the
   * plane-bound drop-ins, nftables, haproxy/keepalived) is the running slot's own, and N+1's fresh
   * slot has none of it. So a node on N+1 counts as upgraded only once converged on it; a node on
   * N+1 without this (its converge failed, or the run stopped before it) is converged by the rerun,
   * not written again.
   */
  converged?: BuildRef;
  /** After its reboot into the slot it tries: when the foundry first read it booted on that slot (gateWaitUntil). */
  answeredAt?: number;
  /** A node of a replace wave: false when the substrate has no VM for it (destroyed, not provisioned yet). */
  vm?: boolean;
  /** A node of a replace wave: the build its VM is being (or was) replaced with and how far (the upgrade record). */
  replaced?: ReplacedNode;
}

/** A build that rolled back on a node of this cluster: never applied again. */
export interface RolledBackBuild {
  digest: string;
  version: string;
  node: string;
  reason: string;
}

export interface ApplyInput {
  waves: readonly Wave[];
  /** N+1. */
  target: BuildRef;
  nodes: Readonly<Record<string, ApplyNode>>;
  bad: readonly RolledBackBuild[];
  now: number;
  gateDeadlineMs?: number;
  /** The spec runs Kubernetes (kubernetes.enabled): drain before the reboot, uncordon after the gate. */
  kubernetes?: boolean;
  /** Destroying VMs is allowed (spec stages.drill.allowDestroy, or kubedos upgrade --allow-destroy): needed by replace waves. */
  allowDestroy?: boolean;
}

export type ApplyAction =
  | { kind: 'write'; node: string; wave: number; slot: Slot }
  | { kind: 'drain'; node: string; wave: number; slot: Slot }
  | { kind: 'reboot'; node: string; wave: number; slot: Slot }
  | { kind: 'uncordon'; node: string; wave: number; slot: Slot }
  | { kind: 'converge'; node: string; wave: number; slot: Slot }
  /** The next phase of a node's replacement (a replace wave) with `build`'s image. */
  | { kind: 'replace'; node: string; wave: number; phase: ReplacePhase; build: BuildRef }
  | { kind: 'wait'; node: string; wave: number; slot: Slot; until: number; why: string }
  | { kind: 'stop'; node: string; wave: number; reason: string; fellBackTo?: Slot; markBad?: RolledBackBuild; cordoned?: Cordoned; upgraded: string[]; inProgress: string[]; untouched: string[]; message: string }
  | { kind: 'done'; nodes: string[]; message: string }
  | { kind: 'refuse'; message: string };

/**
 * A stopped node this run drained (so cordoned): 'uncordon' when it runs its previous slot again
 * and can take pods back now; 'leave' when it may still be trying N+1 (it stays cordoned; the
 * operator uncordons it once it is back); 'until-converged' when it runs N+1 but its converge
 * failed (the rerun converges it, then uncordons it). Absent: never drained by this run.
 */
export type Cordoned = 'uncordon' | 'leave' | 'until-converged' | 'until-replaced';

const isDone = (n: ApplyNode, target: BuildRef): boolean => n.running.digest === target.digest;
/** On N+1, converged on it, and (where Kubernetes runs) uncordoned after its gate. */
const isSettled = (n: ApplyNode, input: ApplyInput): boolean =>
  isDone(n, input.target) && n.converged?.digest === input.target.digest && !(input.kubernetes && (n.step?.kind === 'reboot' || n.step?.kind === 'drain' || n.step?.kind === 'converge'));

type NodeAction = Exclude<ApplyAction, { kind: 'stop' | 'done' | 'refuse' }> | { kind: 'stop'; reason: string; fellBackTo?: Slot; bad?: boolean; cordoned?: Cordoned } | { kind: 'committed' };

/** How far the record says a node's replacement with `build` got (a replacement with another build does not count). */
export const replacedState = (n: Pick<ApplyNode, 'replaced'>, build: BuildRef): ReplacedNode['state'] | undefined => (n.replaced?.build.digest === build.digest ? n.replaced.state : undefined);

/** A node of a replace wave whose replacement with `build` is over (its gate passed; uncordoned where Kubernetes runs). */
export function replaceSettled(n: Pick<ApplyNode, 'replaced'>, build: BuildRef, kubernetes: boolean): boolean {
  const st = replacedState(n, build);
  return st === 'done' || (st === 'passed' && !kubernetes);
}

/** The next action of a node's replacement (or the upgrade's and the rollback's stop) with `build`. */
export type ReplaceNodeAction = Extract<ApplyAction, { kind: 'replace' }> | { kind: 'stop'; reason: string; bad?: boolean; cordoned?: Cordoned } | { kind: 'committed' };

/**
 * Pure: the next phase of a node's replacement with `build` (the upgrade's N+1, or N for
 * --rollback). How far it got is the record's (ReplacedNode, kept across runs); the phases of this
 * run before the record has a word (drain, fence) and this run's failures are the journal's
 * (ApplyNode.step). A VM created from `build` (state `provisioning` on) is never destroyed again.
 */
export function nextReplaceStep(node: string, wave: number, n: ApplyNode, build: BuildRef, kubernetes: boolean): ReplaceNodeAction {
  const go = (phase: ReplacePhase): ReplaceNodeAction => ({ kind: 'replace', node, wave, phase, build });
  const step = n.step?.kind === 'replace' ? n.step : undefined;
  if (step && !step.ok) {
    const stop = replaceStop(step.phase, step.error, build, step.bad === true);
    // Nothing was drained where Kubernetes does not run.
    return kubernetes || !stop.cordoned ? stop : { kind: 'stop', reason: stop.reason, ...(stop.bad ? { bad: true } : {}) };
  }
  switch (replacedState(n, build)) {
    case 'done':
      return { kind: 'committed' };
    case 'passed':
      return kubernetes ? go('uncordon') : { kind: 'committed' };
    case 'converged':
      return go('gate');
    case 'provisioned':
      return go('converge');
    case 'provisioning':
      return go('provision');
    case 'destroying':
      // Written before the destroy, and no VM is created before `provisioning`: a VM present is the old one.
      return n.vm === false ? go('provision') : go('destroy');
    case undefined: {
      const last = step?.phase;
      if (last === 'drain') return go('fence');
      if (last === 'fence') return n.vm === false ? go('provision') : go('destroy');
      // Not started by this run (or the record lost): the fence is idempotent (a member already out, a node already revoked).
      return kubernetes && n.vm !== false ? go('drain') : go('fence');
    }
  }
}

/** Why a replacement stopped at `phase`, where the node is and what next (the upgrade's message adds rerun / --rollback / heal). */
function replaceStop(phase: ReplacePhase, error: string, build: BuildRef, bad: boolean): Extract<ReplaceNodeAction, { kind: 'stop' }> {
  switch (phase) {
    case 'drain':
      return { kind: 'stop', reason: `draining it before its replacement failed: ${error}; nothing else was done to it (its VM runs as before)`, cordoned: 'uncordon' };
    case 'fence':
      return { kind: 'stop', reason: `fencing it before its replacement (the drill's fence: its etcd member out under the quorum rule where it has one, revoked at the hub) failed: ${error}; its VM was not destroyed`, cordoned: 'until-replaced' };
    case 'destroy':
      return { kind: 'stop', reason: `destroying its VM for its replacement failed: ${error}; it is fenced (revoked at the hub, its etcd member out where it had one)`, cordoned: 'until-replaced' };
    case 'provision':
      return { kind: 'stop', reason: `provisioning its replacement from ${build.version} (the same plan slot: VM, first boot, enroll, planes) failed: ${error}; the rerun provisions it again (the deploy run skips what is done), it never destroys a VM created from ${build.version}`, cordoned: 'until-replaced' };
    case 'converge':
      return { kind: 'stop', reason: `its replacement runs ${build.version} and is enrolled, but converging it failed: ${error}; the rerun converges it again`, cordoned: 'until-replaced' };
    case 'gate':
      return bad
        ? { kind: 'stop', reason: `its replacement on ${build.version} failed its health gate (${error})`, bad: true, cordoned: 'until-replaced' }
        : { kind: 'stop', reason: `its replacement's health gate could not be read: ${error}; the rerun runs it again`, cordoned: 'until-replaced' };
    case 'uncordon':
      return { kind: 'stop', reason: `its replacement on ${build.version} passed its gate but uncordoning it failed: ${error}; it takes no pods: the rerun uncordons it` };
  }
}

/**
 * Every stop reason with a `fellBackTo` names that slot: the observer's ("fell back to slot A",
 * "booted slot A"), a wait that ran out ("falls back to slot A") and these, the stops before the
 * reboot, which end with this.
 */
const keepsBooting = (active: Slot): string => `; it keeps booting slot ${active}`;

function nodeAction(name: string, wave: number, n: ApplyNode, input: ApplyInput): NodeAction {
  const st = parseBootStatus(n.status);
  if (!st.ok) return { kind: 'stop', reason: st.message };
  const { booted, active } = st.value;
  const step = n.step;
  // Journaled by a replace wave only (nextReplaceStep): a slot-switch wave never records one.
  if (step?.kind === 'replace') return { kind: 'stop', reason: `its last step (${step.phase}) belongs to a replacement, but its wave switches slots: rerun kubedos upgrade SPEC` };
  if (!step) {
    if (booted !== '' && booted !== active) return { kind: 'stop', reason: `the node runs slot ${booted}, which is being tried and not yet marked good (an earlier run?): wait for its gate or its fallback to slot ${active}, then rerun`, fellBackTo: active };
    // On N+1 already (an earlier run wrote it and its gate passed) but not converged on it: converge, never write again.
    if (isDone(n, input.target)) return { kind: 'converge', node: name, wave, slot: active };
    return { kind: 'write', node: name, wave, slot: otherSlot(active) };
  }
  if (step.kind === 'write' && !step.ok) return { kind: 'stop', reason: `writing slot ${step.slot} failed: ${step.error}${keepsBooting(active)}`, fellBackTo: active };
  // The loop withdrew the try and uncordoned the node (its error says whether it could) before recording this.
  if (step.kind === 'drain' && !step.ok) return { kind: 'stop', reason: `draining it before its reboot failed: ${step.error}${keepsBooting(active)}`, fellBackTo: active };
  if (step.kind === 'uncordon') return { kind: 'committed' };
  if (step.kind === 'converge') {
    // Where Kubernetes runs the node stays cordoned: its pods would meet a node without its converged files.
    if (!step.ok) return { kind: 'stop', reason: convergeFailed(step.slot, input.target, step.error), ...(input.kubernetes ? { cordoned: 'until-converged' as const } : {}) };
    return input.kubernetes ? { kind: 'uncordon', node: name, wave, slot: step.slot } : { kind: 'committed' };
  }
  const v: BootVerdict = observeBoot({ tried: step.slot, status: n.status, ...(n.metrics !== undefined ? { metrics: n.metrics } : {}) });
  if (step.kind === 'write' || step.kind === 'drain') {
    if (v.verdict === 'staged') return step.kind === 'write' && input.kubernetes ? { kind: 'drain', node: name, wave, slot: step.slot } : { kind: 'reboot', node: name, wave, slot: step.slot };
    return { kind: 'stop', reason: `slot ${step.slot} was written but the node does not try it at its next boot (${v.verdict === 'unreadable' ? v.message : v.verdict})${keepsBooting(active)}`, fellBackTo: active, ...(step.kind === 'drain' ? { cordoned: 'uncordon' as const } : {}) };
  }
  // Rebooted: where Kubernetes runs, the node was drained; it takes pods again once it runs a slot whose gate passed.
  const k8s = input.kubernetes === true;
  const deadlineMs = input.gateDeadlineMs ?? GATE_DEADLINE_MS;
  const until = gateWaitUntil({ rebootAt: step.at, ...(n.answeredAt !== undefined ? { answeredAt: n.answeredAt } : {}) }, deadlineMs);
  // The wait in words: from the reboot, and from the answer when that is what bounded it.
  const within = `${Math.round((until - step.at) / 1000)} s of the reboot${n.answeredAt !== undefined && until > step.at + deadlineMs ? ` (${Math.round((until - n.answeredAt) / 1000)} s after it answered on slot ${step.slot})` : ''}`;
  switch (v.verdict) {
    case 'committed':
      // Before it takes pods again and before the next node is written: N+1's slot has none of the converged files.
      return { kind: 'converge', node: name, wave, slot: step.slot };
    case 'rolled-back':
      return { kind: 'stop', reason: v.reason, fellBackTo: v.fellBackTo, bad: true, ...(k8s ? { cordoned: 'uncordon' as const } : {}) };
    case 'not-tried':
      return { kind: 'stop', reason: v.reason, fellBackTo: v.bootedSlot, ...(k8s ? { cordoned: 'uncordon' as const } : {}) };
    case 'unreadable':
      return { kind: 'stop', reason: v.message, ...(k8s ? { cordoned: 'leave' as const } : {}) };
    case 'pending':
    case 'staged': {
      const where = v.verdict === 'staged' ? 'has not booted slot ' + step.slot + ' yet' : `runs slot ${step.slot}, its gate has not passed${v.gateFailing ? ` (failing: ${v.gateFailing})` : ''}`;
      if (input.now >= until) return { kind: 'stop', reason: `no gate pass within ${within}: the node ${where}; it falls back to slot ${active} by itself when its gate gives up or its tries run out`, fellBackTo: active, ...(k8s ? { cordoned: 'leave' as const } : {}) };
      return { kind: 'wait', node: name, wave, slot: step.slot, until, why: `the node ${where}` };
    }
  }
}

/** Why a converge failure stops the upgrade, where the node is and what to run next. */
function convergeFailed(slot: Slot, target: BuildRef, error: string): string {
  return `slot ${slot} passed its gate, but converging the node on ${target.version} failed: ${error}; the node stays on slot ${slot} (${target.version}) without the files the converge renders (etcd's configuration, Prometheus's, the plane-bound units): rerun \`kubedos upgrade SPEC\` to converge it again (its slot is not written again), or converge it with \`kubedos deploy SPEC\`, or go back with \`kubedos upgrade SPEC --rollback\``;
}

/** The refusal of replace waves when destroying VMs was not allowed (the upgrade's and the rollback's). */
export function destroyNotAllowed(replaceWaves: readonly Wave[]): string {
  const nodes = replaceWaves.flatMap((w) => w.nodes);
  const n = replaceWaves.length;
  return `${plural(n, 'wave')} replace${n === 1 ? 's' : ''} ${plural(nodes.length, 'node')} (${firstFew(nodes)}; strategy replace, the spec's kubernetes.ha.upgradeStrategy): replacing a node destroys its VM, and destroying was not allowed: set stages.drill.allowDestroy: true in the spec or run kubedos upgrade --allow-destroy (or upgrade with kubernetes.ha.upgradeStrategy: rolling); nothing was touched`;
}

/** Pure: the foundry's next action for an upgrade to `target`. */
export function nextApplyAction(input: ApplyInput): ApplyAction {
  const { target } = input;
  const bad = input.bad.find((b) => b.digest === target.digest);
  if (bad) return { kind: 'refuse', message: `build ${bad.version} rolled back on ${bad.node} (${bad.reason}): it is not applied again; build a fixed N+1 (a new digest) and rerun` };
  const surge = input.waves.find((w) => w.action === 'surge-replace');
  if (surge) return { kind: 'refuse', message: `wave ${surge.index} starts a replacement node before it retires the old one (strategy surge, the spec's kubernetes.ha.upgradeStrategy): kubedos upgrade does not do surge upgrades yet; set kubernetes.ha.upgradeStrategy: replace (nodes replaced one at a time) or rolling (A/B slot switches); nothing was touched` };
  const replaced = input.waves.filter((w) => w.action === 'replace');
  if (replaced.length && !input.allowDestroy) return { kind: 'refuse', message: destroyNotAllowed(replaced) };
  const order = input.waves.flatMap((w) => w.nodes.map((node) => ({ node, wave: w.index })));
  const missing = order.filter((o) => !input.nodes[o.node]);
  if (missing.length) return { kind: 'refuse', message: `no observation of ${plural(missing.length, 'node')}: ${firstFew(missing.map((m) => m.node))}` };
  const k8s = input.kubernetes === true;
  const replaceWave = new Set(replaced.flatMap((w) => w.nodes));
  const done = (o: { node: string }): boolean => (replaceWave.has(o.node) ? replaceSettled(input.nodes[o.node]!, target, k8s) : isDone(input.nodes[o.node]!, target));
  const started = (o: { node: string }): boolean => input.nodes[o.node]!.step !== undefined || (replaceWave.has(o.node) && replacedState(input.nodes[o.node]!, target) !== undefined);
  for (const w of input.waves) {
    const settled = (node: string): boolean => (w.action === 'replace' ? replaceSettled(input.nodes[node]!, target, k8s) : isSettled(input.nodes[node]!, input));
    const act = (node: string): NodeAction => (w.action === 'replace' ? nextReplaceStep(node, w.index, input.nodes[node]!, target, k8s) : nodeAction(node, w.index, input.nodes[node]!, input));
    const actions = w.nodes.filter((node) => !settled(node)).map((node) => ({ node, a: act(node) }));
    const open = actions.filter((x) => x.a.kind !== 'committed');
    if (!open.length) continue; // every node of the wave is on N+1 (or just passed its gate)
    const stop = open.find((x) => x.a.kind === 'stop');
    if (stop && stop.a.kind === 'stop') {
      const upgraded = order.filter((o) => o.node !== stop.node && (done(o) || actions.some((x) => x.node === o.node && x.a.kind === 'committed'))).map((o) => o.node);
      const rest = order.filter((o) => o.node !== stop.node && !upgraded.includes(o.node));
      // Other nodes of the same wave this run already wrote or rebooted: their gates decide for them.
      const inProgress = rest.filter(started).map((o) => o.node);
      const untouched = rest.filter((o) => !started(o)).map((o) => o.node);
      const markBad = stop.a.bad ? { digest: target.digest, version: target.version, node: stop.node, reason: stop.a.reason } : undefined;
      const message = [
        `upgrade to ${target.version} stopped at ${stop.node} (wave ${w.index}): ${stop.a.reason}`,
        `${plural(upgraded.length, 'node')} on ${target.version}${upgraded.length ? ` (${firstFew(upgraded)})` : ''}${inProgress.length ? `, ${inProgress.length} still in progress, their own gates decide (${firstFew(inProgress)})` : ''}, ${untouched.length} untouched${untouched.length ? ` (${firstFew(untouched)})` : ''}`,
        markBad
          ? `build ${target.version} is recorded as bad: fix N+1 and rerun with the new build, or \`kubedos upgrade --rollback\`${w.action === 'replace' ? ` (it replaces ${stop.node} again from the build before), or \`kubedos heal SPEC\`` : ''}`
          : w.action === 'replace'
            ? 'rerun to continue (it goes on from this step), or `kubedos upgrade --rollback`, or `kubedos heal SPEC`'
            : 'rerun to continue, or `kubedos upgrade --rollback`',
      ].join('\n');
      return { kind: 'stop', node: stop.node, wave: w.index, reason: stop.a.reason, ...(stop.a.fellBackTo ? { fellBackTo: stop.a.fellBackTo } : {}), ...(markBad ? { markBad } : {}), ...(stop.a.cordoned ? { cordoned: stop.a.cordoned } : {}), upgraded, inProgress, untouched, message };
    }
    const next = open.find((x) => x.a.kind !== 'wait') ?? open.reduce((a, b) => ((a.a as { until: number }).until <= (b.a as { until: number }).until ? a : b));
    return next.a as ApplyAction;
  }
  const nodes = order.map((o) => o.node);
  return { kind: 'done', nodes, message: `${plural(nodes.length, 'node')} on ${target.version}: ${firstFew(nodes)}` };
}

export interface RollbackStep {
  node: string;
  wave: number;
  /** The slot holding N+1 now (active). */
  from: Slot;
  /** The previous slot, still holding N. */
  to: Slot;
  /** On the node, then reboot and wait for its gate. */
  argv: string[];
}

/**
 * `kubedos upgrade --rollback`: the nodes whose active slot runs `target` (N+1), in reverse wave
 * order (the hub first back, the control plane last), each `kubedos-boot try <old slot> 1`.
 * No converge step: the previous slot is the one the node ran before the upgrade (the loop refuses
 * a rollback whose previous slot no longer holds N), never written since, so its root still holds
 * the files the deploy's converge rendered for N; what a converge on N+1 changed that both slots
 * share is the learned state on the data partition (etcd's member data, pki, enroll), which N reads
 * as before. Converging it again would run N's payload from a foundry that may hold N+1's only.
 */
export function planRollback(waves: readonly Wave[], nodes: Readonly<Record<string, { status: string; running: BuildRef }>>, target: BuildRef): { ok: true; steps: RollbackStep[] } | { ok: false; message: string } {
  const steps: RollbackStep[] = [];
  for (const w of [...waves].reverse())
    for (const node of [...w.nodes].reverse()) {
      const n = nodes[node];
      if (!n) return { ok: false, message: `no observation of ${node}: cannot tell which slot it runs` };
      if (n.running.digest !== target.digest) continue;
      const st = parseBootStatus(n.status);
      if (!st.ok) return { ok: false, message: `${node}: ${st.message}` };
      const from = st.value.active;
      const to = otherSlot(from);
      steps.push({ node, wave: w.index, from, to, argv: ['/usr/local/sbin/kubedos-boot', 'try', to, '1'] });
    }
  return { ok: true, steps };
}
