// The foundry's record of an upgrade (`clusters/<name>/upgrade/record.json`, kept by the apply
// loop: main/upgrade/apply-run.ts) and what the workbench's Pipeline view shows of it, per node.
// The record holds what each node's slots hold as this foundry wrote them, the build the last
// upgrade targeted, and the builds that rolled back (with the node and the reason): so a node's
// state in the last upgrade is only what follows from that (its slot received the target, or a
// new VM from the target replaces it under `replace` and how far, or the target rolled back there,
// or neither). Which slot a node booted is not in the record: the live
// health reads it from each node's exporter. Pure.
import { z } from 'zod';
import { plural } from '../text/plural';
import { BuildRef, Slot } from './agent';
import { replacedState } from './apply';

export const BadBuild = z.object({ digest: z.string(), version: z.string(), node: z.string(), reason: z.string() }).strict();
export type BadBuild = z.infer<typeof BadBuild>;

/**
 * How far a node's replacement got, written before each step that cannot be undone: `destroying`
 * before its VM is destroyed (the VM, if present, is still the old one); `provisioning` after the
 * destroy, before any VM is created (from here on a VM present runs the new build: never destroyed
 * again); `provisioned` (first boot, enrolled, planes); `converged`; `passed` (its health gate);
 * `done` (uncordoned where Kubernetes runs).
 */
export const REPLACE_STATES = ['destroying', 'provisioning', 'provisioned', 'converged', 'passed', 'done'] as const;
export const ReplaceState = z.enum(REPLACE_STATES);
export type ReplaceState = z.infer<typeof ReplaceState>;
export const ReplacedNode = z.object({ build: BuildRef, state: ReplaceState }).strict();
export type ReplacedNode = z.infer<typeof ReplacedNode>;

/** Whether a replacement this far has its new VM (not while the old one is destroyed or the new one created). */
export const hasNewVm = (state: ReplaceState): boolean => state !== 'destroying' && state !== 'provisioning';

export const UpgradeRecord = z
  .object({
    /** The build an upgrade last targeted (what --rollback returns from). */
    target: BuildRef.optional(),
    /**
     * The build the cluster ran when that upgrade started (what --rollback returns to). Absent in
     * records written before it: --rollback then returns to the sealed deploy's build.
     */
    from: BuildRef.optional(),
    /**
     * What each node's slots hold, as this foundry wrote them (the active slot's corrected from the
     * node's update agent when they disagree). A node not listed: its active slot holds what its
     * agent says it runs (N where it has no state), its other slot is unknown.
     */
    slots: z.record(z.string(), z.object({ A: BuildRef, B: BuildRef }).strict()),
    /** Builds that rolled back on a node (or were rolled back by --rollback): never applied again. */
    bad: z.array(BadBuild),
    /**
     * The build each node was last converged on by an upgrade (after its gate passed on it). A node
     * that runs the target without it is converged by the next run, not written again
     * (common/upgrade/apply.ts ApplyNode.converged). Absent in records written before it.
     */
    converged: z.record(z.string(), BuildRef).optional(),
    /**
     * Nodes of a `replace` wave (docs/upgrades.md, "Replace-based upgrades"): the build each one's
     * VM is being (or was) replaced with, and how far (REPLACE_STATES). Absent in records written before it.
     */
    replaced: z.record(z.string(), ReplacedNode).optional(),
  })
  .strict();
export type UpgradeRecord = z.infer<typeof UpgradeRecord>;

/** The reason `kubedos upgrade --rollback` records its build with (before it walks the nodes back). */
export const ROLLBACK_REASON = 'rolled back by kubedos upgrade --rollback';

/** The node a bad build fell back at; undefined when `kubedos upgrade --rollback` recorded it (the whole cluster went back, no node to blame). */
export const rolledBackAt = (b: { node: string; reason: string }): string | undefined => (b.reason === ROLLBACK_REASON ? undefined : b.node);

/**
 * A node in the last upgrade, as far as the record says: `not-written` (no slot of it holds the
 * target: a later wave, or the upgrade stopped before it), `written` (a slot received the target;
 * whether it booted and passed its gate is the node's to say), `replacing` (a `replace` wave: its VM
 * is being replaced by a new one from the target, not done yet: how far is its `replaced`),
 * `replaced` (a new VM from the target replaced it: provisioned, converged, its gate passed,
 * uncordoned), `rolled-back` (the target is recorded as rolled back at this node: it fell back
 * there, or its replacement failed its gate there; or `--rollback` was run: then every node whose
 * slot holds the target, as the rollback records the build before it walks the nodes back, so a
 * rollback that did not finish reads the same: the live health says which slot each node booted;
 * and every node the rollback replaces again from the build before, however far that got).
 */
export const UPGRADE_NODE_STATES = ['not-written', 'written', 'replacing', 'replaced', 'rolled-back'] as const;
export const UpgradeNodeState = z.enum(UPGRADE_NODE_STATES);
export type UpgradeNodeState = z.infer<typeof UpgradeNodeState>;

export const UpgradeNodeProgress = z
  .object({
    node: z.string(),
    state: UpgradeNodeState,
    /** What each slot holds; absent: the node was never written by this foundry (N on both slots). */
    slots: z.object({ A: BuildRef, B: BuildRef }).strict().optional(),
    /** The slot holding the last upgrade's target. */
    targetSlot: Slot.optional(),
    /** Why the target rolled back here (the record's words). */
    reason: z.string().optional(),
    /**
     * The node's VM is being (or was) replaced, as the record says: with the target (a `replace`
     * wave of this upgrade), or with the build before when `--rollback` replaces it again.
     */
    replaced: ReplacedNode.optional(),
  })
  .strict();
export type UpgradeNodeProgress = z.infer<typeof UpgradeNodeProgress>;

export const UpgradeProgress = z
  .object({
    cluster: z.string(),
    /** The last upgrade's target, when one was recorded. */
    target: BuildRef.optional(),
    /** The version the sealed deploy recorded (what a slot this foundry never wrote holds); absent when unreadable. */
    deployed: z.string().optional(),
    /** The target is recorded as rolled back: where and why (the stop of the last upgrade, or --rollback). */
    stopped: BadBuild.optional(),
    /** The plan's nodes in plan order, then any node the record names that the plan no longer has. */
    nodes: z.array(UpgradeNodeProgress),
    /** Every build recorded as rolled back (refused if applied again), oldest first. */
    bad: z.array(BadBuild),
  })
  .strict();
export type UpgradeProgress = z.infer<typeof UpgradeProgress>;

/**
 * The record's replacement of a node the Pipeline view shows: with the target, or (the target
 * recorded as rolled back) with the build `--rollback` replaces it again from (its entry names a
 * build other than the target; from `provisioned` on, the record's slots hold that build on both,
 * as the replacement wrote them: an entry left by an earlier upgrade whose node was slot-written
 * since is not this rollback's).
 */
function shownReplacement(entry: ReplacedNode | undefined, slots: UpgradeRecord['slots'][string] | undefined, target: BuildRef | undefined, rolledBack: boolean): { replaced: ReplacedNode; byRollback: boolean } | undefined {
  if (!entry || !target) return undefined;
  const forTarget = replacedState({ replaced: entry }, target);
  if (forTarget) return { replaced: { build: target, state: forTarget }, byRollback: false };
  if (!rolledBack) return undefined;
  if (hasNewVm(entry.state) && !(slots?.A.digest === entry.build.digest && slots.B.digest === entry.build.digest)) return undefined;
  return { replaced: entry, byRollback: true };
}

/** The Pipeline view's reading of the record for the plan's nodes. */
export function upgradeProgress(cluster: string, planNodes: readonly string[], record: UpgradeRecord, deployed?: string): UpgradeProgress {
  const target = record.target;
  const stopped = target ? record.bad.find((b) => b.digest === target.digest) : undefined;
  const recorded = [...Object.keys(record.slots), ...Object.keys(record.replaced ?? {})];
  const names = [...planNodes, ...recorded.filter((n, i) => !planNodes.includes(n) && recorded.indexOf(n) === i)];
  const nodes = names.map((node): UpgradeNodeProgress => {
    const slots = record.slots[node];
    const targetSlot = target && slots ? (['A', 'B'] as const).find((s) => slots[s].digest === target.digest) : undefined;
    const shown = shownReplacement(record.replaced?.[node], slots, target, stopped !== undefined);
    const back = stopped && (stopped.node === node || (stopped.reason === ROLLBACK_REASON && targetSlot !== undefined) || shown?.byRollback === true);
    const state: UpgradeNodeState = back ? 'rolled-back' : shown ? (shown.replaced.state === 'done' ? 'replaced' : 'replacing') : targetSlot ? 'written' : 'not-written';
    return { node, state, ...(slots ? { slots } : {}), ...(targetSlot ? { targetSlot } : {}), ...(back ? { reason: stopped.reason } : {}), ...(shown ? { replaced: shown.replaced } : {}) };
  });
  return { cluster, ...(target ? { target } : {}), ...(deployed ? { deployed } : {}), ...(stopped ? { stopped } : {}), nodes, bad: record.bad };
}

/**
 * How far a node's replacement got, in the user's words (the Pipeline view's note): "its VM is
 * being destroyed", "its new VM is being created from 0.1.1", …, "replaced by a new VM from 0.1.1".
 */
export function replacementText(r: ReplacedNode): string {
  switch (r.state) {
    case 'destroying':
      return `its VM is being destroyed for a new one from ${r.build.version}`;
    case 'provisioning':
      return `its new VM is being created from ${r.build.version}`;
    case 'provisioned':
      return `its new VM runs ${r.build.version}; converging it next`;
    case 'converged':
      return 'its new VM is converged; its health gate next';
    case 'passed':
      return 'its new VM passed its gate; uncordoning';
    case 'done':
      return `replaced by a new VM from ${r.build.version}`;
  }
}

// ---- The live run (`clusters/<name>/upgrade/live.json`, kept by apply-run.ts while `kubedos
// upgrade` or `--rollback` runs): the apply loop's events folded into what each node does now.

export const APPLY_STEPS = ['observe', 'write', 'progress', 'drain', 'reboot', 'converge', 'uncordon', 'wait', 'cancel', 'rollback', 'stop', 'done', 'refuse', 'fence', 'destroy', 'provision', 'gate', 'seal'] as const;
export const ApplyStepName = z.enum(APPLY_STEPS);
export type ApplyStepName = z.infer<typeof ApplyStepName>;

/** How far a slot write got (bytes sent of the slot image's total; rate in bytes per second). */
export const SlotWriteProgress = z
  .object({
    bytes: z.number().nonnegative(),
    total: z.number().nonnegative(),
    rate: z.number().nonnegative(),
    /** The way the image goes when it is not the node's wg1 (e.g. "a virtio-serial port"). */
    via: z.string().optional(),
  })
  .strict();
export type SlotWriteProgress = z.infer<typeof SlotWriteProgress>;

/** One step of the apply loop (apply-run.ts), as the CLI prints it and the live file folds it. */
export const ApplyEvent = z
  .object({
    node: z.string().optional(),
    step: ApplyStepName,
    detail: z.string(),
    /** The slot the step acts on (write, progress, reboot, rollback). */
    slot: Slot.optional(),
    /** A `progress` step's numbers. */
    progress: SlotWriteProgress.optional(),
  })
  .strict();
export type ApplyEvent = z.infer<typeof ApplyEvent>;

const mib = (n: number): string => Math.round(n / 1048576).toLocaleString('en-US');

/** A slot write's progress in words: "1,234 of 2,048 MiB, 52.0 MiB/s" (the CLI's line and the panel's). */
export function slotWriteDetail(p: SlotWriteProgress): string {
  return `${mib(p.bytes)} of ${mib(p.total)} MiB${p.via ? ` through ${p.via}` : ''}, ${(p.rate / 1048576).toFixed(1)} MiB/s`;
}

export const LiveNode = z
  .object({
    step: ApplyStepName,
    detail: z.string(),
    /** The slot this run acts on at this node (kept from the last event that named one). */
    slot: Slot.optional(),
    progress: SlotWriteProgress.optional(),
  })
  .strict();
export type LiveNode = z.infer<typeof LiveNode>;

export const LIVE_END_KINDS = ['done', 'stop', 'refuse', 'cancelled'] as const;

/**
 * One line of the run, as the CLI prints it on stderr (`cp-1: reboot rebooting into slot B`): when
 * (the loop's clock, ms), the node and step of its event (`end`: how the run ended, endLive).
 */
export const LiveLine = z
  .object({
    at: z.number(),
    node: z.string().optional(),
    step: z.enum([...APPLY_STEPS, 'end']),
    text: z.string(),
  })
  .strict();
export type LiveLine = z.infer<typeof LiveLine>;

/** How many of the run's lines the live file keeps (the last ones); the earlier are counted (`linesDropped`). */
export const LIVE_LINES_KEPT = 500;

export const UpgradeLive = z
  .object({
    /** The process running the loop: a live file whose process is gone was interrupted. */
    pid: z.number().int().positive(),
    kind: z.enum(['upgrade', 'rollback']),
    /** The build upgraded to (upgrade) or left (rollback). */
    target: BuildRef,
    /** Milliseconds since the epoch, the loop's clock. */
    startedAt: z.number(),
    updatedAt: z.number(),
    /** The run's waves, node names in order (wave i+1 is waves[i]). */
    waves: z.array(z.array(z.string())),
    /** The node of the last event that named one. */
    current: z.string().optional(),
    nodes: z.record(z.string(), LiveNode),
    /**
     * The run's lines, oldest first: the last LIVE_LINES_KEPT, a write's `progress` kept as its
     * latest only (foldLive). Absent in live files written before them.
     */
    lines: z.array(LiveLine).optional(),
    /** How many earlier lines were not kept. */
    linesDropped: z.number().int().nonnegative().optional(),
    /** How the run ended; absent while it runs. */
    end: z.object({ kind: z.enum(LIVE_END_KINDS), node: z.string().optional(), message: z.string(), at: z.number() }).strict().optional(),
  })
  .strict();
export type UpgradeLive = z.infer<typeof UpgradeLive>;

/** A live run as upgrade.progress reports it: running, finished (its end says how), or gone (its process died). */
export const UpgradeLiveReport = z
  .object({
    state: z.enum(['running', 'finished', 'gone']),
    run: UpgradeLive,
    /** For `gone`: what happened and what to do. */
    message: z.string().optional(),
  })
  .strict();
export type UpgradeLiveReport = z.infer<typeof UpgradeLiveReport>;

export function startLive(o: { pid: number; kind: UpgradeLive['kind']; target: BuildRef; waves: readonly { nodes: readonly string[] }[]; at: number }): UpgradeLive {
  return { pid: o.pid, kind: o.kind, target: o.target, startedAt: o.at, updatedAt: o.at, waves: o.waves.map((w) => [...w.nodes]), nodes: {}, lines: [] };
}

/**
 * A line added to the run's lines, the last LIVE_LINES_KEPT kept (the rest counted). A `progress`
 * line replaces the node's previous line when that was its progress too (a write reports many a
 * second): the write's latest progress is kept, moved to the end, not every one.
 */
function addLine(live: UpgradeLive, line: LiveLine): Pick<UpgradeLive, 'lines' | 'linesDropped'> {
  let lines = live.lines ?? [];
  if (line.step === 'progress') {
    const i = lines.findLastIndex((l) => l.node === line.node);
    if (i >= 0 && lines[i]!.step === 'progress') lines = [...lines.slice(0, i), ...lines.slice(i + 1)];
  }
  lines = [...lines, line];
  const over = Math.max(0, lines.length - LIVE_LINES_KEPT);
  const dropped = (live.linesDropped ?? 0) + over;
  return { lines: over ? lines.slice(over) : lines, ...(dropped ? { linesDropped: dropped } : {}) };
}

/** One event folded into the live run (pure: a new value): its line kept; an event without a node changes no node. */
export function foldLive(live: UpgradeLive, e: ApplyEvent, at: number): UpgradeLive {
  const kept = addLine(live, { at, ...(e.node ? { node: e.node } : {}), step: e.step, text: e.detail });
  if (!e.node) return { ...live, ...kept, updatedAt: at };
  const prev = live.nodes[e.node];
  const slot = e.slot ?? prev?.slot;
  const node: LiveNode = { step: e.step, detail: e.detail, ...(slot ? { slot } : {}), ...(e.progress ? { progress: e.progress } : {}) };
  return { ...live, ...kept, updatedAt: at, current: e.node, nodes: { ...live.nodes, [e.node]: node } };
}

/**
 * The run's end, kept as its last line too: the lines of its message the run's lines do not already
 * say (a `done` event's message is the end's first line; the recovery bundle's reseal line was its
 * own `seal` event), none when they all were said.
 */
export function endLive(live: UpgradeLive, end: { kind: (typeof LIVE_END_KINDS)[number]; node?: string; message: string }, at: number): UpgradeLive {
  const said = new Set((live.lines ?? []).flatMap((l) => l.text.split('\n')));
  const fresh = end.message.split('\n').filter((m) => !said.has(m));
  const kept = fresh.length === 0 ? {} : addLine(live, { at, ...(end.node ? { node: end.node } : {}), step: 'end', text: fresh.join('\n') });
  return { ...live, ...kept, updatedAt: at, end: { kind: end.kind, ...(end.node ? { node: end.node } : {}), message: end.message, at } };
}

/** A line's time as the time since the run began: "+4:07" (minutes:seconds), "+1:02:03" past an hour. */
export function liveLineTime(live: Pick<UpgradeLive, 'startedAt'>, line: Pick<LiveLine, 'at'>): string {
  const s = Math.max(0, Math.floor((line.at - live.startedAt) / 1000));
  const mmss = `${Math.floor(s / 60) % 60}:${String(s % 60).padStart(2, '0')}`;
  return s >= 3600 ? `+${Math.floor(s / 3600)}:${mmss.padStart(5, '0')}` : `+${mmss}`;
}

/** An event as the CLI prints it on stderr: "cp-1: reboot rebooting into slot B". */
export function applyEventLine(e: Pick<ApplyEvent, 'node' | 'step' | 'detail'>): string {
  return `${e.node ? `${e.node}: ` : ''}${e.step} ${e.detail}`;
}

/** A kept line as the CLI printed its event (applyEventLine); the end's without a step word. */
export function liveLineText(line: LiveLine): string {
  return line.step === 'end' ? `${line.node ? `${line.node}: ` : ''}${line.text}` : applyEventLine({ ...(line.node ? { node: line.node } : {}), step: line.step, detail: line.text });
}

/** The count of lines not kept, in words ("12 earlier lines not kept"); '' when none were dropped. */
export function liveLinesDroppedText(live: Pick<UpgradeLive, 'linesDropped'>): string {
  return live.linesDropped ? `${plural(live.linesDropped, 'earlier line')} not kept` : '';
}

/** What a node does now, in a few words ("writing slot B, 1,234 of 2,048 MiB, 52.0 MiB/s", "rebooting into slot B"). */
export function liveStepText(n: LiveNode): string {
  const slot = n.slot ? ` slot ${n.slot}` : '';
  switch (n.step) {
    case 'progress':
      return `writing${slot}${n.progress ? `, ${slotWriteDetail(n.progress)}` : ''}`;
    case 'write':
      return /written and read back/.test(n.detail) ? `slot ${n.slot ?? '?'} written and read back` : `writing${slot}`;
    case 'drain':
      return /^drained/.test(n.detail) ? 'drained' : 'draining';
    case 'reboot':
      return `rebooting into${slot || ' its other slot'}`;
    case 'wait':
      return 'waiting for its gate';
    case 'converge':
      return /^converged/.test(n.detail) ? 'converged' : 'converging';
    case 'uncordon':
      return 'uncordoning';
    case 'rollback':
      return /^runs slot/.test(n.detail) ? `back on${slot}` : `rolling back to${slot}`;
    case 'cancel':
      return 'withdrawing its try';
    case 'stop':
      return 'stopped here';
    default:
      return n.step;
  }
}

/** The live run in one line: "Upgrading to 0.1.1 — wave 2 of 3: w-1 writing slot B, …". */
/**
 * Pure: the first line of an ended run's message without what its headline already says (the
 * loop's "upgrade to 0.1.1 stopped at w-1 (wave 2): " before the reason); '' for a run that did not end.
 */
export function liveEndDetail(r: UpgradeLive): string {
  const first = r.end?.message.split('\n')[0] ?? '';
  const m = /^(?:upgrade to|rollback from|upgrade back from) \S+ (?:stopped|refused|cancelled)(?: (?:at|before) \S+)?(?: \(wave \d+\))?: /i.exec(first);
  return m ? first.slice(m[0].length) : first;
}

export function liveHeadline(r: UpgradeLive): string {
  const what = r.kind === 'upgrade' ? `to ${r.target.version}` : `back from ${r.target.version}`;
  if (r.end) {
    const how = r.end.kind === 'done' ? 'done' : r.end.kind === 'stop' ? `stopped${r.end.node ? ` at ${r.end.node}` : ''}` : r.end.kind === 'refuse' ? 'refused' : 'cancelled';
    return `${r.kind === 'upgrade' ? `Upgrade to ${r.target.version}` : `Rollback from ${r.target.version}`}: ${how}`;
  }
  const head = `${r.kind === 'upgrade' ? 'Upgrading' : 'Rolling'} ${what}`;
  const node = r.current;
  const n = node ? r.nodes[node] : undefined;
  if (!node || !n) return `${head}: observing the nodes`;
  // A rollback walks the waves backwards (planRollback): its wave numbers are not the upgrade's.
  const wave = r.kind === 'upgrade' ? r.waves.findIndex((w) => w.includes(node)) : -1;
  return `${head} — ${wave >= 0 ? `wave ${wave + 1} of ${r.waves.length}: ` : ''}${node} ${liveStepText(n)}`;
}
