// The foundry's record of an upgrade (`clusters/<name>/upgrade/record.json`, kept by the apply
// loop: main/upgrade/apply-run.ts) and what the workbench's Pipeline view shows of it, per node.
// The record holds what each node's slots hold as this foundry wrote them, the build the last
// upgrade targeted, and the builds that rolled back (with the node and the reason): so a node's
// state in the last upgrade is only what follows from that (its slot received the target, or the
// target rolled back there, or neither). Which slot a node booted is not in the record: the live
// health reads it from each node's exporter. Pure.
import { z } from 'zod';
import { BuildRef, Slot } from './agent';

export const BadBuild = z.object({ digest: z.string(), version: z.string(), node: z.string(), reason: z.string() }).strict();
export type BadBuild = z.infer<typeof BadBuild>;

export const UpgradeRecord = z
  .object({
    /** The build an upgrade last targeted (what --rollback returns from). */
    target: BuildRef.optional(),
    /** What each node's slots hold, as this foundry wrote them. A node not listed holds N on both. */
    slots: z.record(z.string(), z.object({ A: BuildRef, B: BuildRef }).strict()),
    /** Builds that rolled back on a node (or were rolled back by --rollback): never applied again. */
    bad: z.array(BadBuild),
    /**
     * The build each node was last converged on by an upgrade (after its gate passed on it). A node
     * that runs the target without it is converged by the next run, not written again
     * (common/upgrade/apply.ts ApplyNode.converged). Absent in records written before it.
     */
    converged: z.record(z.string(), BuildRef).optional(),
  })
  .strict();
export type UpgradeRecord = z.infer<typeof UpgradeRecord>;

/** The reason `kubedos upgrade --rollback` records its build with (before it walks the nodes back). */
export const ROLLBACK_REASON = 'rolled back by kubedos upgrade --rollback';

/**
 * A node in the last upgrade, as far as the record says: `not-written` (no slot of it holds the
 * target: a later wave, or the upgrade stopped before it), `written` (a slot received the target;
 * whether it booted and passed its gate is the node's to say), `rolled-back` (the target is recorded
 * as rolled back at this node: it fell back there; or `--rollback` was run: then every node whose
 * slot holds the target, as the rollback records the build before it walks the nodes back, so a
 * rollback that did not finish reads the same: the live health says which slot each node booted).
 */
export const UPGRADE_NODE_STATES = ['not-written', 'written', 'rolled-back'] as const;
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
  })
  .strict();
export type UpgradeNodeProgress = z.infer<typeof UpgradeNodeProgress>;

export const UpgradeProgress = z
  .object({
    cluster: z.string(),
    /** The last upgrade's target, when one was recorded. */
    target: BuildRef.optional(),
    /** The target is recorded as rolled back: where and why (the stop of the last upgrade, or --rollback). */
    stopped: BadBuild.optional(),
    /** The plan's nodes in plan order, then any node the record names that the plan no longer has. */
    nodes: z.array(UpgradeNodeProgress),
    /** Every build recorded as rolled back (refused if applied again), oldest first. */
    bad: z.array(BadBuild),
  })
  .strict();
export type UpgradeProgress = z.infer<typeof UpgradeProgress>;

/** The Pipeline view's reading of the record for the plan's nodes. */
export function upgradeProgress(cluster: string, planNodes: readonly string[], record: UpgradeRecord): UpgradeProgress {
  const target = record.target;
  const stopped = target ? record.bad.find((b) => b.digest === target.digest) : undefined;
  const names = [...planNodes, ...Object.keys(record.slots).filter((n) => !planNodes.includes(n))];
  const nodes = names.map((node): UpgradeNodeProgress => {
    const slots = record.slots[node];
    const targetSlot = target && slots ? (['A', 'B'] as const).find((s) => slots[s].digest === target.digest) : undefined;
    const back = stopped && (stopped.node === node || (stopped.reason === ROLLBACK_REASON && targetSlot !== undefined));
    const state: UpgradeNodeState = back ? 'rolled-back' : targetSlot ? 'written' : 'not-written';
    return { node, state, ...(slots ? { slots } : {}), ...(targetSlot ? { targetSlot } : {}), ...(back ? { reason: stopped.reason } : {}) };
  });
  return { cluster, ...(target ? { target } : {}), ...(stopped ? { stopped } : {}), nodes, bad: record.bad };
}
