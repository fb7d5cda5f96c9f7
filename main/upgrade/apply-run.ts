// The apply loop behind `kubedos upgrade` (docs/upgrades.md, "Applying an upgrade"): observe every
// node (`kubedos-boot status`, the gate's metrics while the tried slot is booted), ask the pure
// plan (common/upgrade/apply.ts nextApplyAction) for the one next action, run it through a small
// NodeOps (write the passive slot, reboot, converge a node whose gate passed, try a slot once,
// withdraw a try), and again, until done, stopped, refused or cancelled. `--rollback` walks
// planRollback's order the same way. Every step is an event (node, step, detail) the CLI prints
// and a workbench view can fold.
//
// What a node's slots hold is the foundry's record (UpgradeRecord, a private JSON file in the
// cluster's workspace) and the node's own update agent (node-agent.ts): the build on the active
// slot is the agent's where it has a state (a record lost, older or another foundry's: the node
// wins, said once, and the record is corrected), else the record's, else N; the other slot's is
// the record's only, unknown without it (a rollback to it is refused). The builds that rolled back
// are kept in the record too (and copied there from a node's agent that refuses one), so a rerun
// of a rolled-back build is refused (no re-upgrade loop); and the build each node was converged on,
// so a rerun converges a node on N+1 whose converge failed.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { WindowState } from '../../common/upgrade/policy';
import { windowClosedStop } from '../../common/upgrade/policy';
import type { BuildRef, Slot } from '../../common/upgrade/agent';
import type { ApplyEvent, SlotWriteProgress, UpgradeLive } from '../../common/upgrade/progress';
import { endLive, foldLive, ROLLBACK_REASON, slotWriteDetail, startLive, UpgradeRecord } from '../../common/upgrade/progress';
import type { ApplyAction, ApplyNode, ApplyStep, ReplacePhase } from '../../common/upgrade/apply';
import { answerWaitUntil, destroyNotAllowed, GATE_DEADLINE_MS, gateWaitUntil, heardFrom, nextApplyAction, nextReplaceStep, planRollback, type RebootClock } from '../../common/upgrade/apply';
import { activeGate, agentEventsAfterBoot, observeBoot, parseBootStatus } from '../../common/upgrade/observe';
import type { AgentEvent, AgentState } from '../../common/upgrade/agent';
import { AGENT_STATE_FILE, initialAgentState, otherSlot, shortDigest } from '../../common/upgrade/agent';
import type { Wave } from '../../common/upgrade/waves';
import type { ReplaceState } from '../../common/upgrade/progress';
import type { Cordoned } from '../../common/upgrade/apply';
import { plural } from '../../common/text/plural';
import { firstFew } from '../../common/text/first-few';
import { clusterWorkspace, makePrivateDir, writePrivateFile } from '../workspace';
import { bootHang, bootStall, consoleLines, lastBoot } from '../substrate/boot-hang';
import type { AgentStateOps } from './node-agent';
import { AGENT_DIR, badOnNodesMessage, firstState, NodeAgents } from './node-agent';
import { errText } from '../../common/text/error-text';

/** The status of a node that reboots: asked only once its agent answers a ping (NodeOps.answers). */
async function rebootingStatus(ops: NodeOps, node: string, signal?: AbortSignal): Promise<string> {
  if (ops.answers && !(await ops.answers(node, signal))) throw new Error('its guest agent did not answer a ping');
  return ops.status(node, signal);
}

/** What the loop needs of a node. Each call may throw; its message is shown with the node's name. */
export interface NodeOps extends AgentStateOps {
  /** `kubedos-boot status` (text). */
  status(node: string, signal?: AbortSignal): Promise<string>;
  /**
   * Whether the node's guest agent answers at all, in seconds (a ping): asked before the status of a
   * node that is rebooting, so that a silent node costs a poll of seconds instead of a command's
   * wait (30 s on qemu-local), and the loop sees it back within a poll of its agent answering.
   */
  answers?(node: string, signal?: AbortSignal): Promise<boolean>;
  /** The gate's textfile (kubedos.prom) as it is now, or undefined when there is none yet. */
  metrics(node: string, signal?: AbortSignal): Promise<string | undefined>;
  /**
   * The last pass of a gate that failed on a tried `slot`, kept on the data partition
   * (upgrade/gate-SLOT.prom): read after the fallback, when the foundry did not see the tried boot
   * (a gate that fails at once reboots within seconds). Undefined when there is none.
   */
  triedMetrics?(node: string, slot: Slot, signal?: AbortSignal): Promise<string | undefined>;
  /** Write `target` into `slot` and stage its try (kubedos-slot-write). Throws when the node refused. */
  writeSlot(node: string, slot: Slot, target: BuildRef, o: { signal?: AbortSignal; onProgress?: (p: SlotWriteProgress) => void }): Promise<void>;
  reboot(node: string, signal?: AbortSignal): Promise<void>;
  /** `kubedos-boot try SLOT 1` (the rollback's one try of the previous slot). */
  tryOnce(node: string, slot: Slot, signal?: AbortSignal): Promise<void>;
  /** `kubedos-boot cancel SLOT`: withdraw a try staged but not booted. */
  cancel(node: string, slot: Slot, signal?: AbortSignal): Promise<void>;
  /** `kubectl drain NODE` on a control-plane node (cordons it first). Called only where Kubernetes runs. */
  drain(node: string, signal?: AbortSignal): Promise<void>;
  /** `kubectl uncordon NODE` on a control-plane node. Called only where Kubernetes runs. */
  uncordon(node: string, signal?: AbortSignal): Promise<void>;
  /**
   * The foundry converges the node on the build it runs now (N+1, its gate passed): what the
   * converge stage renders is the slot's own, not kept on the data partition. Throws, with what
   * failed, when it did not converge.
   */
  converge(node: string, signal?: AbortSignal): Promise<void>;
  /**
   * The last of what the node's console printed, where the substrate keeps a console log
   * (qemu-local); read when the node does not answer after a reboot, to say why.
   */
  console?(node: string, signal?: AbortSignal): Promise<string>;
  /**
   * A node that does not answer after a reboot and that the substrate can tell is stuck below init
   * (qemu-local: its console ended at the kernel's restart, or at the initramfs banner, and stayed
   * there for BOOT_STALL_MS: bootStall, boot-hang.ts): power it off and on, and say so in one
   * line; undefined when it is not stuck, not yet, or the substrate cannot tell. Stuck in the
   * firmware, GRUB never ran (no try spent); in the initramfs, GRUB counted the boot: either way
   * the node boots next what its boot counter says, as after a power loss.
   */
  recoverStall?(node: string, signal?: AbortSignal): Promise<PowerCycle | undefined>;
}

/** A stalled node powered off and on (NodeOps.recoverStall). */
export interface PowerCycle {
  /** One line: where its console stopped, for how long, what was done. */
  detail: string;
  /**
   * The slot whose boot stalled after GRUB had counted it (the initramfs stall; its kernel's
   * `kubedos.slot=`): a try of that slot was spent by the stall. Undefined for a firmware stall
   * (GRUB had not run) or when the console no longer shows which slot booted.
   */
  spent?: Slot;
}

/**
 * What a replace wave needs of a deployed cluster (docs/upgrades.md, "Replace-based upgrades"): the
 * drill machinery's steps for one node. Each call may throw; its message is shown with the node's
 * name and the step. `fence` and `provision` are idempotent (a rerun calls them again).
 */
export interface ReplaceOps {
  /** Whether the substrate has a VM for the node. */
  exists(node: string, signal?: AbortSignal): Promise<boolean>;
  /** The drill's fence: its etcd member removed on a healthy peer (under the one quorum rule), revoked at the hub. One line of what was done. */
  fence(node: string, signal?: AbortSignal): Promise<string>;
  /** Destroys the node's VM with its disks. One line of what was done. */
  destroy(node: string, signal?: AbortSignal): Promise<string>;
  /**
   * The same plan slot (VMID, MAC, addresses) provisioned from `build`'s role image: the VM, first
   * boot, enrollment (revocation lifted, a fresh token; an etcd member added again and recorded for
   * the etcd role), planes. Skips what is done. One line of what was done.
   */
  provision(node: string, build: BuildRef, signal?: AbortSignal): Promise<string>;
  /**
   * The health gate on the node's active slot, run now (after its converge) until it passes, fails
   * for good or its window ends; returns the gate's textfile (kubedos.prom) as it left it.
   */
  gate(node: string, signal?: AbortSignal): Promise<string | undefined>;
  /** Why nodes cannot be provisioned from `build` here (its artifact is missing): the service refuses before any node is touched. Undefined: they can. */
  cannotProvision?(build: BuildRef): string | undefined;
}

/** A bound on one node's replacement phases in the rollback (seven phases, each retried only by a rerun): more is a bug. */
const REPLACE_PHASE_BOUND = 20;

/** Power cycles of one node per reboot at most (a firmware that stalls every time is said, not cycled for ever). */
const MAX_POWER_CYCLES = 2;

/**
 * What a node that did not answer after its reboot shows on its console, for the stop message:
 * a kernel that hung before init (boot-hang.ts: a soft lockup under TCG), else its last few
 * lines; '' when the substrate keeps no console. Bounded: at most 3 lines of 160 characters.
 */
export async function consoleNote(ops: NodeOps, node: string, signal?: AbortSignal): Promise<string> {
  const text = ops.console ? await ops.console(node, signal).catch(() => '') : '';
  if (!text.trim()) return '';
  const hang = bootHang(text);
  if (hang) return `; its console: the kernel hung (${hang.why}): reset the VM (it boots the slot GRUB picks again) and rerun`;
  const stall = bootStall(text);
  if (stall?.at === 'firmware') return `; its console: nothing after the kernel's restart ("${stall.line}"): its firmware never reached the boot loader; power the VM off and on (kubedos stop, then kubedos start) and rerun`;
  if (stall) return `; its console: nothing after the initramfs's "${stall.line}": its kernel stopped before udev started; power the VM off and on (kubedos stop, then kubedos start) and rerun`;
  // Without colour codes and control characters: the message is one readable line.
  const lines = consoleLines(lastBoot(text));
  if (!lines.length) return '';
  return `; its console's last lines: ${lines.slice(-3).map((l) => (l.length > 160 ? `${l.slice(0, 159)}…` : l)).join(' | ')}`;
}

// The events' shape is the workbench's too (common/upgrade/progress.ts: folded into the live file).
export type { ApplyEvent, ApplyStepName } from '../../common/upgrade/progress';

// The record's shape is the workbench's too (common/upgrade/progress.ts: the Pipeline view's reading of it).
export { UpgradeRecord };

export const UPGRADE_RECORD_FILE = 'upgrade/record.json';

export function upgradeRecordPath(cluster: string, env: NodeJS.ProcessEnv): string {
  return join(clusterWorkspace(cluster, env), UPGRADE_RECORD_FILE);
}

export function readUpgradeRecord(path: string): UpgradeRecord {
  if (!existsSync(path)) return { slots: {}, bad: [] };
  const parsed = UpgradeRecord.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  if (!parsed.success) throw new Error(`${path}: the upgrade record does not parse (${parsed.error.issues[0]?.message ?? 'invalid'}); it says what each node's slots hold: restore it from a backup or remove it only if every node runs N on its active slot`);
  return parsed.data;
}

const byNode = <T>(o: Record<string, T>): Record<string, T> => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

/** Writes a private JSON file whole (writePrivateFile: a fresh temp file renamed over it, a reader never sees half of it). */
function writePrivateJson(path: string, value: unknown): void {
  makePrivateDir(dirname(path));
  writePrivateFile(path, `${JSON.stringify(value, null, 2)}\n`);
}

export function writeUpgradeRecord(path: string, r: UpgradeRecord): void {
  const sorted: UpgradeRecord = { ...(r.target ? { target: r.target } : {}), ...(r.from ? { from: r.from } : {}), slots: byNode(r.slots), bad: r.bad, ...(r.converged ? { converged: byNode(r.converged) } : {}), ...(r.replaced ? { replaced: byNode(r.replaced) } : {}) };
  writePrivateJson(path, sorted);
}

/**
 * The live run next to the record (common/upgrade/progress.ts UpgradeLive): written whole after
 * every event of the loop, `progress` events at most once a second. At the end it stays, saying how
 * the run ended (done / stopped at a node and why / refused / cancelled): a stop that marks no build
 * bad (a node that did not answer, a cancel) is not in the record, and the Pipeline view shows it
 * from here. The next run replaces it.
 */
export const UPGRADE_LIVE_FILE = 'upgrade/live.json';

export function upgradeLivePath(cluster: string, env: NodeJS.ProcessEnv): string {
  return join(clusterWorkspace(cluster, env), UPGRADE_LIVE_FILE);
}

export function writeUpgradeLive(path: string, live: UpgradeLive): void {
  writePrivateJson(path, { ...live, nodes: byNode(live.nodes) });
}

/** At most one `progress` write per this many ms of the loop's clock. */
const LIVE_PROGRESS_EVERY_MS = 1_000;

/** Runs `loop` with the live file kept at `input.livePath` (when set): its events folded in, its end written. */
async function withLive(kind: UpgradeLive['kind'], input: LoopInput & { target: BuildRef }, loop: (input: LoopInput & { target: BuildRef }) => Promise<ApplyOutcome>): Promise<ApplyOutcome> {
  const path = input.livePath;
  // A completed loop is followed by afterDone inside the same window: its events are the run's, its outcome the run's end.
  const finish = async (i: LoopInput & { target: BuildRef }): Promise<ApplyOutcome> => {
    const end = await loop(i);
    return end.kind === 'done' && i.afterDone ? i.afterDone(end, i.onEvent ?? (() => undefined)) : end;
  };
  if (!path) return finish(input);
  const now = input.now ?? Date.now;
  let live = startLive({ pid: input.pid ?? process.pid, kind, target: input.target, waves: input.waves, at: now() });
  // When the last `progress` event was written; any other event writes at once and resets it (a write's first progress is shown).
  let progressAt = -Infinity;
  const write = (): void => writeUpgradeLive(path, live);
  write();
  const onEvent = (e: ApplyEvent): void => {
    live = foldLive(live, e, now());
    if (e.step !== 'progress') {
      progressAt = -Infinity;
      write();
    } else if (now() - progressAt >= LIVE_PROGRESS_EVERY_MS) {
      progressAt = now();
      write();
    }
    input.onEvent?.(e);
  };
  try {
    const end = await finish({ ...input, onEvent });
    live = endLive(live, { kind: end.kind, ...(end.kind === 'stop' ? { node: end.node } : {}), message: end.message }, now());
    return end;
  } catch (err) {
    live = endLive(live, { kind: 'stop', message: `the ${kind} ended with an error: ${errText(err)}` }, now());
    throw err;
  } finally {
    write();
  }
}

/** What the apply loop and the rollback share. */
interface LoopInput {
  waves: readonly Wave[];
  /** N: what every slot holds unless the record says otherwise. */
  from: BuildRef;
  ops: NodeOps;
  record: UpgradeRecord;
  /** Called after every change of the record (persist it). */
  saveRecord?: (r: UpgradeRecord) => void;
  onEvent?: (e: ApplyEvent) => void;
  /** Keep the live run here while the loop runs (upgradeLivePath); none when unset. */
  livePath?: string;
  /** The pid the live file names (default: this process's). */
  pid?: number;
  signal?: AbortSignal;
  gateDeadlineMs?: number;
  /** The spec runs Kubernetes (kubernetes.enabled): drain each node before its reboot, uncordon it after its gate. */
  kubernetes?: boolean;
  /** The nodes of replace waves are replaced through these; a replace wave without them is refused. */
  replace?: ReplaceOps;
  /** Destroying VMs is allowed (spec stages.drill.allowDestroy, or kubedos upgrade --allow-destroy): replace waves need it. */
  allowDestroy?: boolean;
  /** Between two observations while a node reboots or its gate runs (default 5 s). */
  pollMs?: number;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /**
   * What follows a completed run before its end is written (the recovery bundle sealed again for
   * the build every node now runs): the live file still says running, its events are the run's
   * lines, and its outcome is the run's end.
   */
  afterDone?: (end: ApplyOutcome & { kind: 'done' }, emit: (e: ApplyEvent) => void) => Promise<ApplyOutcome>;
}

export interface ApplyRunInput extends LoopInput {
  /** N+1. */
  target: BuildRef;
  /** A bound on the loop's iterations (default 10 000): a plan that never ends is a bug, said as one. */
  maxSteps?: number;
  /** `kubedos upgrade --allow-downgrade`: the nodes' agents stage an older build too. */
  allowDowngrade?: boolean;
  /** Asked before a node's first action (its slot write, never in the middle of a node): a closed
   * maintenance window stops the run there (spec.upgrades.maintenanceWindows, common/upgrade/policy.ts). */
  maintenanceWindow?: (now: number) => WindowState;
}

export type ApplyOutcome =
  | { kind: 'done'; nodes: string[]; message: string }
  | { kind: 'stop'; node: string; reason: string; fellBackTo?: Slot; message: string }
  | { kind: 'refuse'; message: string }
  | { kind: 'cancelled'; message: string };

const defaultSleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });


const NO_KUBERNETES = 'no Kubernetes (kubernetes.enabled is false): nothing to drain or uncordon';

/** Uncordons a node this run drained; says how that went, for the stop's message. */
async function uncordonAgain(ops: NodeOps, node: string, emit: (e: ApplyEvent) => void, signal?: AbortSignal): Promise<string> {
  try {
    await ops.uncordon(node, signal);
    emit({ node, step: 'uncordon', detail: 'uncordoned again: it takes pods again' });
    return `${node} was uncordoned again`;
  } catch (err) {
    const m = `${node} is still cordoned: uncordoning it failed (${errText(err)}); run kubectl uncordon ${node} on a control-plane node`;
    emit({ node, step: 'uncordon', detail: m });
    return m;
  }
}

/** What the run knows of a node's slots: the build on its active slot, and the other slot's where the record says it. */
export interface NodeSlots {
  running: BuildRef;
  /** Unknown (undefined) when the workspace record has no entry for the node: never assumed to be N. */
  other?: BuildRef;
}

/**
 * A node's slots as the run sees them (`active`: its active slot, from `kubedos-boot status`). The
 * build on the active slot is its update agent's `running` when its state names that slot active
 * (the node's word: a record lost, older, or another foundry's), else the record's, else N (a node
 * no upgrade touched yet). The other slot's build is the record's only: the agent keeps no word of
 * it. `recordSays`: the record's build for the active slot when the node's differs.
 */
export function nodeSlots(record: UpgradeRecord, node: string, active: Slot, from: BuildRef, agent: AgentState | undefined): NodeSlots & { recordSays?: BuildRef } {
  const rec = record.slots[node];
  const onNode = agent?.active === active ? agent.running : undefined;
  const running = onNode ?? rec?.[active] ?? from;
  const other = rec?.[otherSlot(active)];
  const recordSays = onNode && rec && rec[active].digest !== onNode.digest ? rec[active] : undefined;
  return { running, ...(other ? { other } : {}), ...(recordSays ? { recordSays } : {}) };
}

/** Two builds as words that tell them apart: their versions, with their digests' first 12 digits when the versions are the same. */
function buildNames(a: BuildRef, b: BuildRef): [string, string] {
  const name = (x: BuildRef): string => (a.version === b.version ? `${x.version} (${shortDigest(x.digest)})` : x.version);
  return [name(a), name(b)];
}

/** Both slots of a node for the record: `active` holding `running`, the other `written`. */
const slotPair = (active: Slot, running: BuildRef, written: BuildRef): Record<Slot, BuildRef> => (active === 'A' ? { A: running, B: written } : { A: written, B: running });

/** The loop's clock, pacing and event sink, with their defaults (the apply loop and the rollback alike). */
function loopSettings(input: LoopInput): { now: () => number; sleep: (ms: number, signal?: AbortSignal) => Promise<void>; pollMs: number; deadlineMs: number; emit: (e: ApplyEvent) => void } {
  return {
    now: input.now ?? Date.now,
    sleep: input.sleep ?? defaultSleep,
    pollMs: input.pollMs ?? 5_000,
    deadlineMs: input.gateDeadlineMs ?? GATE_DEADLINE_MS,
    emit: (e) => input.onEvent?.(e),
  };
}

/**
 * Each node's update agent (node-agent.ts), fed what the run observes. A node whose state file
 * could not be written is said once per write as an `observe` event; the run goes on (the node's
 * boot counter and gate decide, not the file), and the next run takes it up from what the node says.
 */
interface RunAgents {
  agents: NodeAgents;
  /** Feeds the events in order; returns the agent's refusal (journaled on the node), if any. */
  feed(node: string, events: readonly AgentEvent[], initial: () => AgentState): Promise<string | undefined>;
  /** The events of what the node shows after a reboot into the slot its agent tries. */
  afterBoot(node: string, status: string, metrics?: string): Promise<void>;
  /** Takes up the agents a previous run left mid-upgrade (once the run is not refused). */
  takeUp(): Promise<void>;
  /**
   * A node replaced by a new VM from `build`: its new disk's first state (`replaced`: runs `build`
   * on slot A, its gate next), with the bad list of the old disk's agent where this run read it.
   */
  replaced(node: string, build: BuildRef): Promise<void>;
  /**
   * A replaced node's gate on its new disk ended for good: its agent committed (`pass`), or the
   * build recorded as bad (`check`). A node whose new disk has no such state (a rerun after its
   * state could not be written) gets it first.
   */
  replacedGate(node: string, build: BuildRef, gate: { pass: true } | { pass: false; check: string }): Promise<void>;
  /**
   * The node's slots (nodeSlots) with its agent's state as it is now. Where the record and the
   * node disagree about the active slot's build, the node wins: the record is corrected (and
   * saved) and an `observe` event says so, once.
   */
  slots(node: string, active: Slot): NodeSlots;
}

/**
 * Reads every node's agent state before any node is touched: refused when a file cannot be read or
 * is not a state. `takeUp` then goes on from an agent a previous run left mid-upgrade (interrupted)
 * with what its node says now, so this run can stage again.
 */
async function openAgents(ops: NodeOps, nodes: readonly string[], known: { record: UpgradeRecord; from: BuildRef; save?: ((r: UpgradeRecord) => void) | undefined }, now: () => number, emit: (e: ApplyEvent) => void, signal?: AbortSignal): Promise<{ ok: true; run: RunAgents } | { ok: false; message: string }> {
  const read = await NodeAgents.read(ops, nodes, now, signal);
  if (!read.ok) return read;
  const agents = read.agents;
  const feed: RunAgents['feed'] = async (node, events, initial) => {
    try {
      return (await agents.feedAll(node, events, initial, signal)).refused;
    } catch (err) {
      emit({ node, step: 'observe', detail: `could not keep its update agent state (${AGENT_STATE_FILE}): ${errText(err)}; the next run takes it up from what the node says` });
      return undefined;
    }
  };
  const noInitial = (): never => {
    throw new Error('no agent state to go on from');
  };
  const afterBoot: RunAgents['afterBoot'] = async (node, status, metrics) => {
    const s = agents.state(node);
    if (!s?.slot) return;
    const events = agentEventsAfterBoot(s, observeBoot({ tried: s.slot, status, ...(metrics !== undefined ? { metrics } : {}) }));
    if (events.length) await feed(node, events, noInitial);
  };
  const takeUp = async (): Promise<void> => {
    for (const node of nodes) {
      const s = agents.state(node);
      if (!s?.target) continue;
      const interrupted = `the run that staged ${s.target.version} ended before this step did`;
      if (s.state === 'checking' || s.state === 'receiving' || s.state === 'writing') {
        const type = ({ checking: 'checked', receiving: 'received', writing: 'written' } as const)[s.state];
        await feed(node, [{ type, ok: false, reason: interrupted }], noInitial);
      } else if ((s.state === 'staged' || s.state === 'verifying') && s.slot) {
        const status = await ops.status(node, signal).catch(() => undefined);
        if (status === undefined) continue; // the run's own observation says why
        const st = parseBootStatus(status);
        if (s.state === 'staged' && observeBoot({ tried: s.slot, status }).verdict === 'staged') {
          // Its try still pending, never booted (a run that ended between the write and the reboot): withdrawn, as a cancel does; this run writes the slot again.
          const withdrawn = await ops.cancel(node, s.slot, signal).then(
            () => true,
            () => false,
          );
          if (withdrawn) await feed(node, [{ type: 'withdrawn', reason: `the run that wrote it ended before the reboot; kubedos-boot cancel ${s.slot}` }], noInitial);
          continue;
        }
        const m = st.ok && st.value.booted === s.slot ? await ops.metrics(node, signal).catch(() => undefined) : await ops.triedMetrics?.(node, s.slot, signal).catch(() => undefined);
        await afterBoot(node, status, m);
      }
    }
  };
  const replaced: RunAgents['replaced'] = async (node, build) => {
    const old = agents.replaced(node);
    await feed(node, [{ type: 'replaced', build }], () => old ?? initialAgentState(build));
  };
  const replacedGate: RunAgents['replacedGate'] = async (node, build, gate) => {
    const s = agents.state(node);
    const verifying = s?.state === 'verifying' && !s.slot && s.target?.digest === build.digest;
    await feed(node, [...(verifying ? [] : [{ type: 'replaced' as const, build }]), { type: 'gate', ...gate }], () => initialAgentState(build));
  };
  const slots: RunAgents['slots'] = (node, active) => {
    const { recordSays, ...view } = nodeSlots(known.record, node, active, known.from, agents.state(node));
    const rec = known.record.slots[node];
    if (recordSays && rec) {
      known.record.slots[node] = { ...rec, [active]: view.running };
      known.save?.(known.record);
      const [said, run] = buildNames(recordSays, view.running);
      emit({ node, step: 'observe', detail: `the workspace's upgrade record says slot ${active} holds ${said}; the node's update agent (${AGENT_STATE_FILE}) says it runs ${run} there: the node's word is taken, and the record corrected` });
    }
    return view;
  };
  return { ok: true, run: { agents, feed, afterBoot, takeUp, replaced, replacedGate, slots } };
}

/**
 * A node that does not answer after its reboot, stalled below init (NodeOps.recoverStall):
 * powered off and on, at most MAX_POWER_CYCLES times per reboot; what was done, or undefined.
 * A power cycle that fails is said once and the wait goes on (its deadline then stops the run).
 */
async function powerCycleIfStalled(ops: NodeOps, node: string, cycles: Map<string, number>, emit: (e: ApplyEvent) => void, signal?: AbortSignal): Promise<PowerCycle | undefined> {
  const done = cycles.get(node) ?? 0;
  if (!ops.recoverStall || done >= MAX_POWER_CYCLES) return undefined;
  try {
    const cycled = await ops.recoverStall(node, signal);
    if (cycled) cycles.set(node, done + 1);
    return cycled;
  } catch (err) {
    cycles.set(node, MAX_POWER_CYCLES);
    emit({ node, step: 'observe', detail: `its boot stalled after the reboot and powering it off and on failed: ${errText(err)}` });
    return undefined;
  }
}

/** Asks `node` to reboot into `slot`, said first; a request that ends with an error is said too (a reboot often cuts its own connection: the observations decide). */
async function requestReboot(ops: NodeOps, node: string, slot: Slot, detail: string, emit: (e: ApplyEvent) => void, signal?: AbortSignal): Promise<void> {
  emit({ node, step: 'reboot', slot, detail });
  await ops.reboot(node, signal).catch((err: unknown) => emit({ node, step: 'reboot', detail: `the reboot request ended with: ${errText(err)}` }));
}

/** The nodes of the waves that replace their nodes. */
export const replaceNodesOf = (waves: readonly Wave[]): string[] => waves.filter((w) => w.action === 'replace').flatMap((w) => w.nodes);

/** A replace wave with no way to replace its nodes here: refused before any node is touched (undefined: it can go on). */
export function noReplaceOps(waves: readonly Wave[], input: Pick<LoopInput, 'replace'>): string | undefined {
  const nodes = replaceNodesOf(waves);
  if (!nodes.length || input.replace) return undefined;
  return `${plural(nodes.length, 'node')} (${firstFew(nodes)}) ${nodes.length === 1 ? 'is' : 'are'} replaced under strategy replace (the spec's kubernetes.ha.upgradeStrategy), and this run has no replace operations for them (its caller cannot replace the nodes' machines); set kubernetes.ha.upgradeStrategy: rolling to switch A/B slots instead; nothing was touched`;
}

/**
 * Replace waves that cannot run here, refused before any node is touched: destroying VMs not allowed
 * (destroyNotAllowed), or no replace operations (noReplaceOps); undefined when they can run (or there are none).
 */
export function replaceRefusal(waves: readonly Wave[], input: Pick<LoopInput, 'replace' | 'allowDestroy'>): string | undefined {
  const replaceWaves = waves.filter((w) => w.action === 'replace');
  if (!replaceWaves.length) return undefined;
  return input.allowDestroy ? noReplaceOps(replaceWaves, input) : destroyNotAllowed(replaceWaves);
}

/**
 * The nodes whose update agent state can be read before the run touches anything: every node but a
 * replaced one whose VM is gone, or was created from the new build and is not provisioned yet.
 */
async function agentReadableNodes(nodes: readonly string[], replaced: ReadonlySet<string>, record: UpgradeRecord, replace: ReplaceOps | undefined, signal?: AbortSignal): Promise<string[]> {
  const out: string[] = [];
  for (const node of nodes) if (!replaced.has(node) || (record.replaced?.[node]?.state !== 'provisioning' && (await replace!.exists(node, signal)))) out.push(node);
  return out;
}

/** What one phase of a node's replacement needs of the run. */
interface ReplaceRun {
  ops: NodeOps;
  replace: ReplaceOps;
  record: UpgradeRecord;
  save: () => void;
  agents: RunAgents;
  emit: (e: ApplyEvent) => void;
  kubernetes: boolean;
  signal?: AbortSignal | undefined;
}

/** A node of a replace wave as the run sees it: its VM, its boot status where it runs, the record's word on its replacement. */
async function observeReplaced(node: string, step: ApplyStep | undefined, r: ReplaceRun): Promise<ApplyNode> {
  const vm = await r.replace.exists(node, r.signal);
  // The replacement's steps go by the record and the VM; the status only names the build it runs (and is read again by its gate).
  const status = vm ? await r.ops.status(node, r.signal).catch(() => '') : '';
  const st = parseBootStatus(status);
  const replaced = r.record.replaced?.[node];
  const converged = r.record.converged?.[node];
  return { status, running: r.agents.slots(node, st.ok ? st.value.active : 'A').running, vm, ...(replaced ? { replaced } : {}), ...(converged ? { converged } : {}), ...(step ? { step } : {}) };
}

/**
 * Runs one phase of a node's replacement with `a.build` (nextReplaceStep's): the record's
 * ReplacedNode is written before each step that cannot be undone (`destroying` before the
 * destroy, `provisioning` before any VM is created), so a rerun finds where the node is. Returns
 * the journal's step, or undefined when the run was cancelled meanwhile.
 */
async function replacePhase(a: Extract<ApplyAction, { kind: 'replace' }>, r: ReplaceRun): Promise<ApplyStep | undefined> {
  const { node, build } = a;
  const emit = (step: ReplacePhase, detail: string): void => r.emit({ node, step, detail });
  const setState = (state: ReplaceState): void => {
    r.record.replaced = { ...r.record.replaced, [node]: { build, state } };
    r.save();
  };
  const ok: ApplyStep = { kind: 'replace', phase: a.phase, ok: true };
  try {
    switch (a.phase) {
      case 'drain':
        emit('drain', `wave ${a.wave}: kubectl drain ${node} before its replacement`);
        await r.ops.drain(node, r.signal);
        emit('drain', 'drained: its pods run elsewhere; fencing it next');
        return ok;
      case 'fence':
        emit('fence', `wave ${a.wave}: fencing ${node} (the drill's fence: its etcd member out where it has one, revoked at the hub)`);
        emit('fence', await r.replace.fence(node, r.signal));
        return ok;
      case 'destroy':
        setState('destroying');
        emit('destroy', `destroying ${node}'s VM to replace it with ${build.version}`);
        emit('destroy', await r.replace.destroy(node, r.signal));
        setState('provisioning');
        return ok;
      case 'provision': {
        setState('provisioning');
        emit('provision', `provisioning ${node}'s plan slot from ${build.version}'s image: VM, first boot, enroll, planes`);
        const done = await r.replace.provision(node, build, r.signal);
        // A new image: root B is a copy of A; the old disk's agent state went with it: the new disk's first one (its bad list kept).
        r.record.slots[node] = { A: build, B: build };
        await r.agents.replaced(node, build);
        setState('provisioned');
        emit('provision', done);
        return ok;
      }
      case 'converge':
        emit('converge', `converging ${node} on ${build.version} (this node only)`);
        await r.ops.converge(node, r.signal);
        r.record.converged = { ...r.record.converged, [node]: build };
        setState('converged');
        emit('converge', `converged on ${build.version}`);
        return ok;
      case 'gate': {
        emit('gate', `${node}'s health gate on ${build.version}`);
        const metrics = await r.replace.gate(node, r.signal);
        const status = await r.ops.status(node, r.signal).catch((err: unknown) => errText(err));
        const v = activeGate(status, metrics);
        // Its agent: committed, or the build recorded as bad on the node (a gate that did not run decides nothing: the rerun asks again).
        if (v.passed || v.ran) await r.agents.replacedGate(node, build, v.passed ? { pass: true } : { pass: false, check: v.why });
        if (!v.passed) return { kind: 'replace', phase: 'gate', ok: false, error: v.why, ...(v.ran ? { bad: true as const } : {}) };
        setState(r.kubernetes ? 'passed' : 'done');
        emit('gate', `slot ${v.slot} passed its gate on ${build.version}`);
        return ok;
      }
      case 'uncordon':
        emit('uncordon', `its replacement passed its gate: kubectl uncordon ${node}`);
        await r.ops.uncordon(node, r.signal);
        setState('done');
        return ok;
    }
  } catch (err) {
    if (r.signal?.aborted) return undefined;
    return { kind: 'replace', phase: a.phase, ok: false, error: errText(err) };
  }
}

/** The stop's words for a node a stopped run left cordoned (undefined: none). */
function cordonNote(node: string, cordoned: Cordoned | undefined): string | undefined {
  if (cordoned === 'leave') return `${node} stays cordoned (drained before its reboot): once it runs a slot whose gate passed, run kubectl uncordon ${node} on a control-plane node`;
  if (cordoned === 'until-converged') return `${node} stays cordoned (drained before its reboot) until it is converged: the rerun uncordons it after its converge (after a kubedos deploy instead, run kubectl uncordon ${node} on a control-plane node)`;
  if (cordoned === 'until-replaced') return `${node} stays cordoned (drained before its replacement): the rerun uncordons it once its replacement passed its gate (after kubedos heal SPEC instead, run kubectl uncordon ${node} on a control-plane node)`;
  return undefined;
}

/** Runs an upgrade to `target` until every node of the waves runs it, or it stops. */
export function runApply(input: ApplyRunInput): Promise<ApplyOutcome> {
  return withLive('upgrade', input, (i) => applyLoop({ ...input, ...i }));
}

async function applyLoop(input: ApplyRunInput): Promise<ApplyOutcome> {
  const { waves, from, target, ops, record, signal } = input;
  const { now, sleep, pollMs, deadlineMs, emit } = loopSettings(input);
  const save = (): void => input.saveRecord?.(record);
  const nodes = waves.flatMap((w) => w.nodes);
  const steps: Record<string, ApplyStep> = {};
  const metrics: Record<string, string> = {};
  const untouched: Record<string, string> = {};
  /** Power cycles per node during its current reboot (powerCycleIfStalled). */
  const cycles = new Map<string, number>();
  /**
   * Per node, its boots that stalled below init after GRUB had counted them (each spent a try of
   * the slot it was rebooting into: not the build's doing, given back once per node and run), and
   * `pending`: the slot whose spent try is still to be given back (giveBack).
   */
  const stalls = new Map<string, { count: number; pending?: Slot }>();
  /** Per node, its current reboot's clock (RebootClock): a new reboot (its step's `at` moves: a power cycle, a try given back) starts it over. */
  const clocks = new Map<string, RebootClock>();
  const clockOf = (node: string, step: ApplyStep | undefined): RebootClock | undefined => {
    if (step?.kind !== 'reboot') return undefined;
    const c = clocks.get(node);
    return c?.rebootAt === step.at ? c : { rebootAt: step.at };
  };
  /** A node's reboot into `slot` starts now: its wait's deadline and its power cycles count from here. */
  const rebootInto = async (node: string, slot: Slot, detail: string): Promise<void> => {
    steps[node] = { kind: 'reboot', slot, at: now() };
    cycles.delete(node);
    await requestReboot(ops, node, slot, detail, emit, signal);
  };

  const replaceNodes = new Set(replaceNodesOf(waves));
  const cannot = noReplaceOps(waves, input);
  if (cannot) {
    const message = `upgrade to ${target.version} refused: ${cannot}`;
    emit({ step: 'refuse', detail: message });
    return { kind: 'refuse', message };
  }
  // Every node's agent state, before any node is touched: a build its agent recorded as bad is
  // refused even when this workspace's record does not have it (a workspace lost or restored).
  // Not of a node being replaced: its VM gone, or one created from the new build and not yet provisioned.
  const readable = await agentReadableNodes(nodes, replaceNodes, record, input.replace, signal);
  const opened = await openAgents(ops, readable, { record, from, save: input.saveRecord }, now, emit, signal);
  if (!opened.ok) {
    emit({ step: 'refuse', detail: opened.message });
    return { kind: 'refuse', message: opened.message };
  }
  const agents = opened.run;
  const replaceRun = input.replace ? { ops, replace: input.replace, record, save, agents, emit, kubernetes: input.kubernetes === true, signal } : undefined;
  // The record's own refusal (the plan's, below) comes first when it has the build.
  const badInRecord = record.bad.some((b) => b.digest === target.digest);
  const badOnNodes = badInRecord ? [] : agents.agents.badOn(target, readable);
  if (badOnNodes.length) {
    const message = badOnNodesMessage(target, badOnNodes);
    // Into this workspace's record too (the Pipeline view reads it; the next run refuses from it first).
    const first = badOnNodes[0]!;
    record.bad.push({ digest: target.digest, version: target.version, node: first.node, reason: first.reason });
    save();
    emit({ step: 'refuse', detail: message });
    return { kind: 'refuse', message };
  }
  if (!badInRecord) await agents.takeUp();
  // A node of a replace wave the record has no replacement of, whose agent says it already runs the
  // target, committed on its active slot A (a replacement this workspace did not record: the record
  // lost, or another workspace's run): the node's word is taken, as for slot-switched nodes, and its
  // VM is not destroyed again.
  for (const node of readable) {
    const s = agents.agents.state(node);
    if (!replaceNodes.has(node) || record.replaced?.[node] || s?.state !== 'committed' || s.active !== 'A' || s.running.digest !== target.digest) continue;
    record.replaced = { ...record.replaced, [node]: { build: target, state: input.kubernetes ? 'passed' : 'done' } };
    record.slots[node] = { A: target, B: target };
    save();
    emit({ node, step: 'observe', detail: `its update agent (${AGENT_STATE_FILE}) says it runs ${target.version}, committed on slot A, and the workspace's upgrade record has no replacement of it: taken as replaced${input.kubernetes ? ' (uncordoned next)' : ''}, its VM not destroyed again` });
  }

  if (!input.kubernetes) emit({ step: 'drain', detail: NO_KUBERNETES });
  const cancelStaged = async (why: string): Promise<void> => {
    for (const [node, step] of Object.entries(steps)) {
      // Drained, or converged on N+1 after its gate but not yet uncordoned (a rerun finds it settled and would not).
      if (step.kind === 'drain' && step.ok) await uncordonAgain(ops, node, emit);
      if (step.kind === 'converge' && step.ok && input.kubernetes) await uncordonAgain(ops, node, emit);
      if ((step.kind !== 'write' && step.kind !== 'drain') || !step.ok) continue;
      try {
        await ops.cancel(node, step.slot);
        await agents.feed(node, [{ type: 'withdrawn', reason: why }], () => initialAgentState(from));
        emit({ node, step: 'cancel', detail: `withdrew the try of slot ${step.slot} (${why}): the node keeps booting its active slot` });
      } catch (err) {
        emit({ node, step: 'cancel', detail: `could not withdraw the try of slot ${step.slot}: ${errText(err)}; its next reboot tries N+1 (kubedos ssh, then kubedos-boot cancel ${step.slot})` });
      }
    }
  };

  /** A maintenance window that has closed before `node`'s first action: what stops the run there (undefined: open, or none set). */
  const windowClosed = async (node: string, view: Record<string, ApplyNode>): Promise<ApplyOutcome | undefined> => {
    const window = input.maintenanceWindow?.(now());
    if (!window || window.open) return undefined;
    await cancelStaged('the maintenance window closed');
    const on = nodes.filter((n) => view[n]!.running.digest === target.digest);
    const reason = windowClosedStop(now(), window, { version: target.version, onTarget: on, untouched: nodes.filter((n) => !on.includes(n)) });
    emit({ node, step: 'stop', detail: reason });
    return { kind: 'stop', node, reason, message: `upgrade to ${target.version} stopped before ${node}: ${reason}` };
  };

  for (let i = 0; i < (input.maxSteps ?? 10_000); i++) {
    if (signal?.aborted) {
      await cancelStaged('the upgrade was cancelled');
      return { kind: 'cancelled', message: `upgrade to ${target.version} cancelled; ${describeSteps(steps)}; rerun to continue` };
    }
    // Observe every node. A node that just rebooted may not answer yet: wait for it until its deadline.
    const view: Record<string, ApplyNode> = {};
    let unreachable: { node: string; error: string } | undefined;
    let giveBack: { node: string; slot: Slot } | undefined;
    for (const node of nodes) {
      if (replaceRun && replaceNodes.has(node)) {
        try {
          view[node] = await observeReplaced(node, steps[node], replaceRun);
        } catch (err) {
          unreachable ??= { node, error: errText(err) };
        }
        continue;
      }
      let status: string;
      try {
        // A node this run has not acted on does not change under it: read once (one round trip per node, not per turn).
        status = (!steps[node] ? untouched[node] : undefined) ?? (steps[node]?.kind === 'reboot' ? await rebootingStatus(ops, node, signal) : await ops.status(node, signal));
      } catch (err) {
        unreachable ??= { node, error: errText(err) };
        continue;
      }
      if (!steps[node]) untouched[node] = status;
      const st = parseBootStatus(status);
      const step = steps[node];
      const clock = clockOf(node, step);
      if (clock && step?.kind === 'reboot') clocks.set(node, heardFrom(clock, now(), st.ok && st.value.booted === step.slot));
      if (st.ok && step?.kind === 'reboot' && stalls.get(node)?.pending === step.slot && observeBoot({ tried: step.slot, status }).verdict === 'rolled-back') {
        // Not observed as a fallback (its agent, the decision): the try is given back below.
        giveBack ??= { node, slot: step.slot };
        continue;
      }
      if (st.ok && step?.kind === 'reboot' && st.value.booted === step.slot) {
        const m = await ops.metrics(node, signal).catch(() => undefined);
        if (m !== undefined) metrics[node] = m;
      } else if (st.ok && step?.kind === 'reboot' && st.value.failed === step.slot && metrics[node] === undefined && ops.triedMetrics) {
        // Back on its previous slot before the foundry saw the tried boot: the gate's last pass from data.
        const m = await ops.triedMetrics(node, step.slot, signal).catch(() => undefined);
        if (m !== undefined) metrics[node] = m;
      }
      if (st.ok && step?.kind === 'reboot') await agents.afterBoot(node, status, metrics[node]);
      const active = st.ok ? st.value.active : 'A';
      const converged = record.converged?.[node];
      const answeredAt = clockOf(node, step)?.answeredAt;
      view[node] = { status, running: agents.slots(node, active).running, ...(metrics[node] !== undefined ? { metrics: metrics[node] } : {}), ...(step ? { step } : {}), ...(converged ? { converged } : {}), ...(answeredAt !== undefined ? { answeredAt } : {}) };
    }
    if (giveBack) {
      // Its one try of the slot was spent by a stall below init that the foundry power-cycled (GRUB
      // had counted the boot), not by the build: GRUB fell back; the slot is tried once more.
      const { node, slot } = giveBack;
      stalls.set(node, { count: stalls.get(node)?.count ?? 1 });
      delete metrics[node];
      try {
        await ops.tryOnce(node, slot, signal);
      } catch (err) {
        const reason = `its boot of slot ${slot} stalled below init and was powered off and on, which spent its one try (GRUB fell back to slot ${otherSlot(slot)}); staging the try again failed: ${errText(err)}; rerun to try ${target.version} again`;
        emit({ node, step: 'stop', detail: reason });
        return { kind: 'stop', node, reason, fellBackTo: otherSlot(slot), message: `upgrade to ${target.version} stopped at ${node}: ${reason}` };
      }
      await rebootInto(node, slot, `its boot of slot ${slot} stalled below init and the power cycle spent its one try (GRUB fell back to slot ${otherSlot(slot)}): not ${target.version}'s doing, so slot ${slot} is tried once more; rebooting into slot ${slot}`);
      continue;
    }
    if (unreachable) {
      const step = steps[unreachable.node];
      const clock = clockOf(unreachable.node, step);
      const lastAnswerAt = clock?.lastAnswerAt;
      const waitUntil = clock ? answerWaitUntil(clock, deadlineMs) : 0;
      if (step?.kind === 'reboot' && now() < waitUntil) {
        const cycled = await powerCycleIfStalled(ops, unreachable.node, cycles, emit, signal);
        if (cycled) {
          // Its reboot starts again from the power-on: the deadline too.
          steps[unreachable.node] = { ...step, at: now() };
          emit({ node: unreachable.node, step: 'reboot', slot: step.slot, detail: cycled.detail });
          if (cycled.spent === step.slot) {
            // Given back once per node and run: a slot whose boots stall every time is its build's to answer for.
            const count = (stalls.get(unreachable.node)?.count ?? 0) + 1;
            stalls.set(unreachable.node, count === 1 ? { count, pending: step.slot } : { count });
          }
          continue;
        }
        emit({ node: unreachable.node, step: 'wait', detail: `rebooting into slot ${step.slot}: not answering yet (${unreachable.error})` });
        await sleep(Math.min(pollMs, waitUntil - now()), signal);
        continue;
      }
      const reason =
        step?.kind === 'reboot'
          ? `no answer within ${Math.round(deadlineMs / 1000)} s of ${lastAnswerAt !== undefined && lastAnswerAt > step.at ? `its last answer after its reboot into slot ${step.slot}` : `its reboot into slot ${step.slot}`} (${unreachable.error})${await consoleNote(ops, unreachable.node, signal)}; it falls back to its previous slot by itself if N+1 never comes up`
          : step?.kind === 'write' && !step.ok
            ? // The write's own error says what cut it (a power-off, a dropped connection); the node staged no try.
              `writing slot ${step.slot} failed: ${step.error}; then it did not answer (${unreachable.error}): once it runs again it boots its active slot (kubedos-slot-write stages a try only after its read-back)`
            : `cannot read its boot status (${unreachable.error})`;
      const message = `upgrade to ${target.version} stopped at ${unreachable.node}: ${reason}\nrerun to continue, or \`kubedos upgrade --rollback\``;
      emit({ node: unreachable.node, step: 'stop', detail: reason });
      return { kind: 'stop', node: unreachable.node, reason, message };
    }
    const a: ApplyAction = nextApplyAction({ waves, target, nodes: view, bad: record.bad, now: now(), gateDeadlineMs: deadlineMs, ...(input.kubernetes ? { kubernetes: true } : {}), ...(input.allowDestroy ? { allowDestroy: true } : {}) });
    switch (a.kind) {
      case 'refuse':
        emit({ step: 'refuse', detail: a.message });
        return { kind: 'refuse', message: a.message };
      case 'done':
        emit({ step: 'done', detail: a.message });
        return { kind: 'done', nodes: a.nodes, message: a.message };
      case 'stop': {
        if (a.markBad) {
          record.bad.push(a.markBad);
          save();
        }
        // The reason names the slot the node keeps booting where it has one (common/upgrade/apply.ts).
        emit({ node: a.node, step: 'stop', detail: a.reason });
        // A node this run drained: back into service when it runs its previous slot, else left cordoned (said).
        const cordon = a.cordoned === 'uncordon' ? await uncordonAgain(ops, a.node, emit) : cordonNote(a.node, a.cordoned);
        // Its try given back once already (giveBack), and its boot of the slot stalled again: said beside the verdict.
        const stalled = stalls.get(a.node)?.count ?? 0;
        const stallNote = a.fellBackTo && stalled > 1 ? `${a.node}'s boots of slot ${otherSlot(a.fellBackTo)} stalled below init ${stalled} times, each powered off and on: an initramfs that hangs with this build, or this host's stall again; its serial console shows which (qemu-local: serial.log in the VM's directory, clusters/<cluster>/vms/vms/<vmid>/ of the workspace)` : '';
        return { kind: 'stop', node: a.node, reason: a.reason, ...(a.fellBackTo ? { fellBackTo: a.fellBackTo } : {}), message: [a.message, stallNote, cordon].filter(Boolean).join('\n') };
      }
      case 'write': {
        // A node's first action: a maintenance window that has closed stops the run before it.
        const closed = await windowClosed(a.node, view);
        if (closed) return closed;
        // The node's agent: the preflight's checks passed (signature, cluster, version); it refuses a build it must not stage.
        const active = otherSlot(a.slot);
        const running = view[a.node]!.running;
        const refused = await agents.feed(a.node, [{ type: 'stage', build: target, ...(input.allowDowngrade ? { allowDowngrade: true } : {}) }, { type: 'checked', ok: true }], firstState(running, active));
        if (refused) {
          const reason = `its update agent refuses to stage ${target.version} (${AGENT_STATE_FILE}): ${refused}; its state and journal are in ${AGENT_DIR} on the node (kubedos ssh ${a.node})`;
          emit({ node: a.node, step: 'stop', detail: reason });
          return { kind: 'stop', node: a.node, reason, fellBackTo: active, message: `upgrade to ${target.version} stopped at ${a.node}: ${reason}\nnothing was written to ${a.node}` };
        }
        emit({ node: a.node, step: 'write', slot: a.slot, detail: `wave ${a.wave}: writing ${target.version} into slot ${a.slot}` });
        try {
          await ops.writeSlot(a.node, a.slot, target, { ...(signal ? { signal } : {}), onProgress: (p) => emit({ node: a.node, step: 'progress', slot: a.slot, detail: slotWriteDetail(p), progress: p }) });
          await agents.feed(a.node, [{ type: 'received', ok: true }, { type: 'written', ok: true }], firstState(running, active));
          // The active slot's build as the run saw it (the node's word where its agent has one), the written one's the target.
          record.slots[a.node] = slotPair(active, running, target);
          record.target = target; // what --rollback returns from: only a build some node received
          record.from = from; // and what it returns to
          save();
          steps[a.node] = { kind: 'write', slot: a.slot, ok: true };
          emit({ node: a.node, step: 'write', slot: a.slot, detail: `slot ${a.slot} written and read back; the next boot tries it` });
        } catch (err) {
          // The stream and the write are one command on the node: the agent's receiving step ends failed.
          await agents.feed(a.node, [{ type: 'received', ok: false, reason: signal?.aborted ? 'the upgrade was cancelled' : errText(err) }], firstState(running, active));
          if (signal?.aborted) continue; // said as a cancel on the next turn
          steps[a.node] = { kind: 'write', slot: a.slot, ok: false, error: errText(err) };
        }
        break;
      }
      case 'drain': {
        emit({ node: a.node, step: 'drain', detail: `wave ${a.wave}: kubectl drain ${a.node} before its reboot` });
        try {
          await ops.drain(a.node, signal);
          steps[a.node] = { kind: 'drain', slot: a.slot, ok: true };
          emit({ node: a.node, step: 'drain', detail: 'drained: its pods run elsewhere; rebooting next' });
        } catch (err) {
          if (signal?.aborted) continue;
          // Not rebooted: withdraw the try (the node keeps its active slot) and put it back into service.
          let withdrawn: string;
          try {
            await ops.cancel(a.node, a.slot, signal);
            await agents.feed(a.node, [{ type: 'withdrawn', reason: `draining ${a.node} failed: ${errText(err)}` }], firstState(view[a.node]!.running, otherSlot(a.slot)));
            withdrawn = `the try of slot ${a.slot} was withdrawn (not rebooted, still on its active slot)`;
          } catch (e) {
            withdrawn = `the try of slot ${a.slot} could not be withdrawn (${errText(e)}): its next reboot tries N+1 (kubedos ssh, then kubedos-boot cancel ${a.slot})`;
          }
          const cordon = await uncordonAgain(ops, a.node, emit, signal);
          steps[a.node] = { kind: 'drain', slot: a.slot, ok: false, error: `${errText(err)}; ${withdrawn}; ${cordon}; fix what keeps the pods from moving (a PodDisruptionBudget, a pod without a controller) and rerun` };
        }
        break;
      }
      case 'converge':
        emit({ node: a.node, step: 'converge', detail: `wave ${a.wave}: slot ${a.slot} passed its gate: converging ${a.node} on ${target.version} (what its new slot does not keep: etcd's configuration, Prometheus's, the plane-bound units)` });
        try {
          await ops.converge(a.node, signal);
          record.converged = { ...record.converged, [a.node]: target };
          save();
          steps[a.node] = { kind: 'converge', slot: a.slot, ok: true };
          emit({ node: a.node, step: 'converge', detail: `converged on ${target.version}` });
        } catch (err) {
          if (signal?.aborted) continue;
          steps[a.node] = { kind: 'converge', slot: a.slot, ok: false, error: errText(err) };
        }
        break;
      case 'uncordon':
        emit({ node: a.node, step: 'uncordon', detail: `slot ${a.slot} passed its gate and ${a.node} is converged: kubectl uncordon ${a.node}` });
        try {
          await ops.uncordon(a.node, signal);
          steps[a.node] = { kind: 'uncordon', slot: a.slot };
        } catch (err) {
          const reason = `runs ${target.version} (slot ${a.slot} passed its gate) but uncordoning it failed: ${errText(err)}; it takes no pods: run kubectl uncordon ${a.node} on a control-plane node, then rerun to continue`;
          emit({ node: a.node, step: 'stop', detail: reason });
          return { kind: 'stop', node: a.node, reason, message: `upgrade to ${target.version} stopped at ${a.node}: ${reason}` };
        }
        break;
      case 'reboot':
        await rebootInto(a.node, a.slot, `rebooting into slot ${a.slot}`);
        break;
      case 'wait':
        emit({ node: a.node, step: 'wait', detail: a.why });
        await sleep(Math.max(0, Math.min(pollMs, a.until - now())), signal);
        break;
      case 'replace': {
        if (!replaceRun) throw new Error(`${a.node}: a replace step without replace operations (refused before the loop): a bug in the apply loop`);
        // A replacement's first phase (its drain where Kubernetes runs, else its fence) is the node's first action: the window is asked there.
        if (a.phase === (input.kubernetes ? 'drain' : 'fence') && !record.replaced?.[a.node]) {
          const closed = await windowClosed(a.node, view);
          if (closed) return closed;
        }
        // What --rollback returns from: set once a node's VM is about to be destroyed for it.
        if ((a.phase === 'destroy' || a.phase === 'provision') && record.target?.digest !== target.digest) {
          record.target = target;
          record.from = from;
          save();
        }
        const step = await replacePhase(a, replaceRun);
        if (step) steps[a.node] = step;
        break;
      }
    }
  }
  throw new Error(`the upgrade to ${target.version} did not end within ${input.maxSteps ?? 10_000} steps (${describeSteps(steps)}): a bug in the apply loop`);
}

function describeSteps(steps: Record<string, ApplyStep>): string {
  const touched = Object.keys(steps).sort();
  return touched.length ? `${plural(touched.length, 'node')} touched (${firstFew(touched)})` : 'no node was touched';
}

export interface RollbackRunInput extends LoopInput {
  /** The build to leave (the record's last target). */
  target: BuildRef;
}

/**
 * `kubedos upgrade --rollback`: every node whose active slot holds `target`, in planRollback's
 * order (reverse waves), one try of its previous slot, reboot, until that slot is active (its gate
 * passed). The target is recorded as bad first: it is not applied again.
 */
export function runRollback(input: RollbackRunInput): Promise<ApplyOutcome> {
  return withLive('rollback', input, rollbackLoop);
}

async function rollbackLoop(input: RollbackRunInput): Promise<ApplyOutcome> {
  const { from, target, ops, record, signal } = input;
  const { now, sleep, pollMs, deadlineMs, emit } = loopSettings(input);
  // Replace waves: the nodes replaced with `target` (or left half-way by an earlier --rollback) are
  // replaced again from N, after the slot switches (the hub first back), last wave first.
  const replaceWaves = input.waves.filter((w) => w.action === 'replace');
  const replaceBack = [...replaceWaves].reverse().flatMap((w) => [...w.nodes].reverse().map((node) => ({ node, wave: w.index }))).filter(({ node }) => {
    const r = record.replaced?.[node];
    return r !== undefined && (r.build.digest === target.digest || (r.build.digest === from.digest && r.state !== 'done'));
  });
  // Every other node goes back the way it went (a slot switch): the hub, and a node of a replace
  // wave that a rolling upgrade moved before the strategy changed (one that runs N is skipped).
  const again = new Set(replaceBack.map((x) => x.node));
  const waves = input.waves.map((w) => ({ ...w, nodes: w.nodes.filter((n) => !again.has(n)) })).filter((w) => w.nodes.length);
  if (replaceBack.length) {
    const refusal = replaceRefusal(replaceWaves, input);
    if (refusal) {
      const message = `rollback from ${target.version} refused before any node was touched: ${refusal}`;
      emit({ step: 'refuse', detail: message });
      return { kind: 'refuse', message };
    }
  }
  const nodes = waves.flatMap((w) => w.nodes);
  const observed: Record<string, { status: string }> = {};
  for (const node of nodes) {
    let status: string;
    try {
      status = await ops.status(node, signal);
    } catch (err) {
      const message = `rollback from ${target.version} refused before any node was touched: cannot read the boot status of ${node} (${errText(err)})`;
      emit({ node, step: 'refuse', detail: message });
      return { kind: 'refuse', message };
    }
    observed[node] = { status };
  }
  // Every node's agent state, before any node is touched (an unreadable one refuses the rollback):
  // the build each node runs is its agent's word where it has one. A replaced node's only where its VM runs.
  const readable = [...nodes, ...(await agentReadableNodes([...again], again, record, input.replace, signal))];
  const opened = await openAgents(ops, readable, { record, from, save: input.saveRecord }, now, emit, signal);
  if (!opened.ok) {
    emit({ step: 'refuse', detail: opened.message });
    return { kind: 'refuse', message: `rollback refused before any node was touched: ${opened.message}` };
  }
  const agents = opened.run;
  const views: Record<string, NodeSlots> = {};
  for (const node of nodes) {
    const st = parseBootStatus(observed[node]!.status);
    views[node] = agents.slots(node, st.ok ? st.value.active : 'A');
  }
  const plan = planRollback(waves, Object.fromEntries(nodes.map((n) => [n, { status: observed[n]!.status, running: views[n]!.running }])), target);
  if (!plan.ok) {
    emit({ step: 'refuse', detail: plan.message });
    return { kind: 'refuse', message: `rollback refused before any node was touched: ${plan.message}` };
  }
  // The previous slot must hold N: after two upgrades (N → N+1 → N+2) it may hold N+1. Only the
  // record says what it holds (a node's agent keeps the build it runs, not the other slot's).
  const unknown = plan.steps.filter((s) => !views[s.node]!.other);
  if (unknown.length) {
    const message = `rollback refused before any node was touched: what the previous slot of ${plural(unknown.length, 'node')} holds is unknown (${firstFew(unknown.map((s) => `${s.node}: slot ${s.to}`))}): this workspace's upgrade record (${UPGRADE_RECORD_FILE} in the cluster's workspace) has no entry for ${unknown.length === 1 ? 'it' : 'them'}, and a node's update agent keeps only the build it runs (${target.version} on slot ${unknown[0]!.from} of ${unknown[0]!.node}); switching might not return the cluster to ${from.version}. Restore the record from the workspace that ran the upgrade, or upgrade to a fixed build instead`;
    emit({ step: 'refuse', detail: message });
    return { kind: 'refuse', message };
  }
  const notN = plan.steps.filter((s) => views[s.node]!.other!.digest !== from.digest);
  if (notN.length) {
    const message = `rollback refused before any node was touched: the previous slot of ${plural(notN.length, 'node')} does not hold ${from.version} (${firstFew(notN.map((s) => `${s.node}: slot ${s.to} holds ${views[s.node]!.other!.version}`))}); switching would not return the cluster to ${from.version}. Upgrade to a fixed build instead`;
    emit({ step: 'refuse', detail: message });
    return { kind: 'refuse', message };
  }
  await agents.takeUp();
  if (!record.bad.some((b) => b.digest === target.digest)) {
    record.bad.push({ digest: target.digest, version: target.version, node: plan.steps[0]?.node ?? replaceBack[0]?.node ?? '(none)', reason: ROLLBACK_REASON });
    input.saveRecord?.(record);
  }
  if (!plan.steps.length && !replaceBack.length) {
    const message = `no node runs ${target.version}: nothing to roll back`;
    emit({ step: 'done', detail: message });
    return { kind: 'done', nodes: [], message };
  }
  if (!input.kubernetes) emit({ step: 'drain', detail: NO_KUBERNETES });
  const back: string[] = [];
  for (const s of plan.steps) {
    const rest = plan.steps.slice(plan.steps.indexOf(s) + 1).map((x) => x.node);
    const stop = (reason: string, fellBackTo?: Slot): ApplyOutcome => {
      const message = `rollback from ${target.version} stopped at ${s.node}: ${reason}\n${plural(back.length, 'node')} back on the previous build${back.length ? ` (${firstFew(back)})` : ''}, ${rest.length} not rolled back yet${rest.length ? ` (${firstFew(rest)})` : ''}; rerun --rollback to continue`;
      emit({ node: s.node, step: 'stop', detail: reason });
      return { kind: 'stop', node: s.node, reason, ...(fellBackTo ? { fellBackTo } : {}), message };
    };
    if (signal?.aborted) return { kind: 'cancelled', message: `rollback cancelled before ${s.node}; ${plural(back.length, 'node')} back (${firstFew(back) || 'none'})` };
    emit({ node: s.node, step: 'rollback', slot: s.to, detail: `wave ${s.wave}: one try of slot ${s.to} (the previous build), then reboot` });
    // The node's agent stages N again: the previous slot holds it already (nothing to receive or write); the try is its `written`.
    // A refusal (N rolled back on this node before) is journaled there; the operator's rollback goes on, the agent is left as it is.
    const initial = firstState(target, s.from);
    const agentRefused = await agents.feed(s.node, [{ type: 'stage', build: from, allowDowngrade: true }, { type: 'checked', ok: true }, { type: 'received', ok: true }], initial);
    if (agentRefused) emit({ node: s.node, step: 'observe', detail: `its update agent does not stage ${from.version} again (${agentRefused}): journaled on the node, its state left as it is` });
    try {
      await ops.tryOnce(s.node, s.to, signal);
    } catch (err) {
      if (!agentRefused) await agents.feed(s.node, [{ type: 'written', ok: false, reason: `kubedos-boot try ${s.to} 1: ${errText(err)}` }], initial);
      return stop(`could not stage the try of slot ${s.to}: ${errText(err)}`, s.from);
    }
    if (!agentRefused) await agents.feed(s.node, [{ type: 'written', ok: true }], initial);
    if (input.kubernetes) {
      emit({ node: s.node, step: 'drain', detail: `kubectl drain ${s.node} before its reboot` });
      try {
        await ops.drain(s.node, signal);
      } catch (err) {
        const withdrawn = await ops.cancel(s.node, s.to, signal).then(
          () => `the try of slot ${s.to} was withdrawn (not rebooted, still on ${target.version})`,
          (e: unknown) => `the try of slot ${s.to} could not be withdrawn (${errText(e)}): its next reboot tries it`,
        );
        return stop(`draining it before its reboot failed: ${errText(err)}; ${withdrawn}; ${await uncordonAgain(ops, s.node, emit, signal)}`, s.from);
      }
    }
    /** Its reboot into s.to (a power cycle or a try given back starts it over). */
    let clock: RebootClock = { rebootAt: now() };
    const cycles = new Map<string, number>();
    /** The stall a power cycle answered spent the try of s.to (giveBack: once). */
    let spent: 'no' | 'to-give-back' | 'given-back' = 'no';
    await requestReboot(ops, s.node, s.to, `rebooting into slot ${s.to}`, emit, signal);
    for (;;) {
      if (signal?.aborted) return { kind: 'cancelled', message: `rollback cancelled while ${s.node} reboots into slot ${s.to}` };
      const text = await rebootingStatus(ops, s.node, signal).catch((err: unknown) => err);
      const st = typeof text === 'string' ? parseBootStatus(text) : { ok: false as const, message: errText(text) };
      if (spent === 'to-give-back' && typeof text === 'string' && observeBoot({ tried: s.to, status: text }).verdict === 'rolled-back') {
        // As in the upgrade: the try was the stall's, not the slot's; tried once more.
        spent = 'given-back';
        try {
          await ops.tryOnce(s.node, s.to, signal);
        } catch (err) {
          return stop(`its boot of slot ${s.to} stalled below init and was powered off and on, which spent its one try (it runs slot ${s.from} again); staging the try again failed: ${errText(err)}`, s.from);
        }
        clock = { rebootAt: now() };
        cycles.clear();
        await requestReboot(ops, s.node, s.to, `its boot of slot ${s.to} stalled below init and the power cycle spent its one try (GRUB fell back to slot ${s.from}): slot ${s.to} is tried once more; rebooting into slot ${s.to}`, emit, signal);
        continue;
      }
      if (typeof text === 'string' && st.ok && !agentRefused) await agents.afterBoot(s.node, text);
      if (st.ok && st.value.booted === s.to && st.value.active === s.to) break;
      if (st.ok) clock = heardFrom(clock, now(), st.value.booted === s.to);
      const cycled = st.ok ? undefined : await powerCycleIfStalled(ops, s.node, cycles, emit, signal);
      if (cycled) {
        clock = { rebootAt: now() }; // its reboot starts again from the power-on
        emit({ node: s.node, step: 'reboot', slot: s.to, detail: cycled.detail });
        if (cycled.spent === s.to && spent === 'no') spent = 'to-give-back';
        continue;
      }
      if (st.ok && st.value.booted === s.from && st.value.try === '' && st.value.active === s.from) return stop(`slot ${s.to} did not pass its gate in its one try; the node runs slot ${s.from} (${target.version}) again${input.kubernetes ? `; ${await uncordonAgain(ops, s.node, emit, signal)}` : ''}`, s.from);
      // Answering: its gate's time (at least its whole window once it runs s.to); silent: the deadline from its reboot or its last answer.
      const until = st.ok ? gateWaitUntil(clock, deadlineMs) : answerWaitUntil(clock, deadlineMs);
      if (now() >= until) return stop(`slot ${s.to} did not pass its gate within ${Math.round((until - clock.rebootAt) / 1000)} s of the reboot${st.ok ? '' : ` (${st.message})${await consoleNote(ops, s.node, signal)}`}${input.kubernetes ? `; ${s.node} stays cordoned: once it runs a slot whose gate passed, run kubectl uncordon ${s.node} on a control-plane node` : ''}`);
      emit({ node: s.node, step: 'wait', detail: st.ok ? `booted slot ${st.value.booted || '?'}, waiting for slot ${s.to}'s gate` : `not answering yet (${st.message})` });
      await sleep(Math.max(0, Math.min(pollMs, until - now())), signal);
    }
    // Committed on N by its gate: the build it left is recorded as bad on the node too.
    if (!agentRefused) await agents.feed(s.node, [{ type: 'reject', build: target, slot: s.from, reason: ROLLBACK_REASON }], initial);
    emit({ node: s.node, step: 'rollback', detail: `runs slot ${s.to} again (the previous build)` });
    if (input.kubernetes) {
      emit({ node: s.node, step: 'uncordon', detail: `slot ${s.to} passed its gate: kubectl uncordon ${s.node}` });
      try {
        await ops.uncordon(s.node, signal);
      } catch (err) {
        return stop(`runs slot ${s.to} again but uncordoning it failed: ${errText(err)}; it takes no pods: run kubectl uncordon ${s.node} on a control-plane node, then rerun --rollback`);
      }
    }
    back.push(s.node);
  }
  if (replaceBack.length) {
    const r: ReplaceRun = { ops, replace: input.replace!, record, save: () => input.saveRecord?.(record), agents, emit, kubernetes: input.kubernetes === true, signal };
    for (const { node, wave } of replaceBack) {
      let step: ApplyStep | undefined;
      for (let i = 0; ; i++) {
        if (signal?.aborted) return { kind: 'cancelled', message: `rollback cancelled while ${node} is replaced from ${from.version}; ${plural(back.length, 'node')} back (${firstFew(back) || 'none'}); rerun --rollback to continue` };
        if (i > REPLACE_PHASE_BOUND) throw new Error(`the rollback of ${node} did not end within ${REPLACE_PHASE_BOUND} steps: a bug in the rollback loop`);
        const a = nextReplaceStep(node, wave, await observeReplaced(node, step, r), from, r.kubernetes);
        if (a.kind === 'committed') break;
        if (a.kind === 'stop') {
          const rest = replaceBack.slice(replaceBack.findIndex((x) => x.node === node) + 1).map((x) => x.node);
          const cordon = a.cordoned === 'uncordon' ? await uncordonAgain(ops, node, emit) : cordonNote(node, a.cordoned);
          const message = `rollback from ${target.version} stopped at ${node}: ${a.reason}\n${plural(back.length, 'node')} back on the previous build${back.length ? ` (${firstFew(back)})` : ''}, ${rest.length} not rolled back yet${rest.length ? ` (${firstFew(rest)})` : ''}; rerun --rollback to continue (it goes on from this step), or kubedos heal SPEC${cordon ? `\n${cordon}` : ''}`;
          emit({ node, step: 'stop', detail: a.reason });
          return { kind: 'stop', node, reason: a.reason, message };
        }
        if (i === 0) emit({ node, step: 'rollback', detail: `wave ${wave}: replacing ${node} again from ${from.version}` });
        step = await replacePhase(a, r);
      }
      back.push(node);
    }
  }
  // The others were not on the target when this run began (an earlier --rollback brought them back, or the upgrade never reached them).
  const before = input.waves.flatMap((w) => w.nodes).filter((n) => !back.includes(n));
  const message = `${plural(back.length, 'node')} back on the previous build: ${firstFew(back)}${before.length ? `; ${plural(before.length, 'node')} not on ${target.version} when this run began (${firstFew(before)})` : ''}; ${target.version} is recorded as rolled back and is not applied again`;
  emit({ step: 'done', detail: message });
  return { kind: 'done', nodes: back, message };
}

