// The node's update agent as a pure state machine (issue 18; docs/upgrades.md, "The node's update
// agent"): its decision logic, written once:
//
//   idle ──stage──▶ checking ──▶ receiving ──▶ writing ──▶ staged ──boot──▶ verifying ──gate ok──▶ committed
//     ▲               │ refused    │ broken      │ failed              │ fell back / gate failed
//     └─────────── failed ◀────────┴─────────────┘                     ▼
//                                                               rolled-back (the build's digest is bad)
//
//   any ──replaced──▶ verifying (its new disk's active slot A, no slot tried) ──gate ok──▶ committed
//                        └──gate failed──▶ failed (the build's digest is bad: it runs, but not again)
//
// `next(state, event)` returns the next state or a refusal; it never throws and reads no clock.
// Invariants (property-tested in agent.test.ts): at most one slot is staged and it is never the
// active slot; committed only after a gate pass on the tried slot (or on a replaced node's new
// disk, which tries no slot); the active slot changes only then, or to a new disk's A; a digest
// that rolled back (or failed a new disk's gate) is never staged again (no re-upgrade loop), a
// fixed build (another digest) is accepted; the bad list only grows, a replacement's new disk too.
// It runs in the foundry, once per node (main/upgrade/node-agent.ts), and its state file and
// journal live on the node's data partition: a workspace lost or restored still finds them.
import { z } from 'zod';
import { canonicalJson } from '../canonical';
import { compareArtifactVersions, parseArtifactVersion } from './version';

export const AGENT_STATES = ['idle', 'checking', 'receiving', 'writing', 'staged', 'verifying', 'committed', 'rolled-back', 'failed'] as const;
export type AgentStateName = (typeof AGENT_STATES)[number];

/** Where the agent keeps its state, on the data partition (both slots see it). */
export const AGENT_STATE_FILE = '/var/lib/kubedos/upgrade/state.json';
/** One JSON line per transition, appended beside the state file. */
export const AGENT_JOURNAL_FILE = '/var/lib/kubedos/upgrade/journal.jsonl';

/** A root slot of the A/B disk (the node's scripts and GRUB name them A and B). */
export const Slot = z.enum(['A', 'B']);
export type Slot = z.infer<typeof Slot>;
export const otherSlot = (s: Slot): Slot => (s === 'A' ? 'B' : 'A');

const Digest = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 digest: 64 lower-case hex digits');
const Version = z.string().refine((v) => parseArtifactVersion(v) !== undefined, 'an artifact version: MAJOR.MINOR.PATCH like 0.2.0');
export const BuildRef = z.object({ version: Version, digest: Digest }).strict();
export type BuildRef = z.infer<typeof BuildRef>;

export const BadBuild = z.object({ digest: Digest, version: z.string().min(1), slot: Slot, reason: z.string().min(1) }).strict();
export type BadBuild = z.infer<typeof BadBuild>;

/** `/var/lib/kubedos/upgrade/state.json`. */
export const AgentState = z
  .object({
    schema: z.literal(1),
    state: z.enum(AGENT_STATES),
    /** The slot the last gate pass made active (what every boot falls back to). */
    active: Slot,
    /** The build on the active slot. */
    running: BuildRef,
    /** The build being staged, from checking until committed / rolled-back / failed (a replaced node's: the build its new disk runs, until its gate ends). */
    target: BuildRef.optional(),
    /** The passive slot being written / tried: never `active`. None while a replaced node's new disk verifies its active slot. */
    slot: Slot.optional(),
    /** Builds that rolled back on this node, sorted by digest: never staged again. */
    bad: z.array(BadBuild),
    /** Why the last upgrade ended in failed or rolled-back. */
    reason: z.string().optional(),
    /** The first failing check of the tried slot's gate, when it ran and failed. */
    gateFailure: z.string().optional(),
  })
  .strict();
export type AgentState = z.infer<typeof AgentState>;

export const AgentEvent = z.discriminatedUnion('type', [
  /** The foundry asks for N+1 (`allowDowngrade`: `kubedos upgrade --allow-downgrade`). */
  z.object({ type: z.literal('stage'), build: BuildRef, allowDowngrade: z.boolean().optional() }).strict(),
  /** checking: signature, cluster, version and free space checked (ok) or refused (reason). */
  z.object({ type: z.literal('checked'), ok: z.boolean(), reason: z.string().optional() }).strict(),
  /** receiving: the whole image arrived with its sha256 (ok) or the stream broke. */
  z.object({ type: z.literal('received'), ok: z.boolean(), reason: z.string().optional() }).strict(),
  /** writing: kubedos-slot-write exited 0 (written, read back, `kubedos-boot try` done) or not. */
  z.object({ type: z.literal('written'), ok: z.boolean(), reason: z.string().optional() }).strict(),
  /** After a reboot: `kubedos-boot status` (the booted slot, the slot that ran out of tries). */
  z.object({ type: z.literal('booted'), booted: Slot, failed: Slot.optional() }).strict(),
  /** The health gate's last line on the booted slot. */
  z.object({ type: z.literal('gate'), pass: z.boolean(), check: z.string().optional() }).strict(),
  /**
   * The foundry records a build as bad on this node outside a try: `kubedos upgrade --rollback`
   * took the node back from it (`slot`: where it ran). Never the running build; never mid-upgrade.
   */
  z.object({ type: z.literal('reject'), build: BuildRef, slot: Slot, reason: z.string().min(1) }).strict(),
  /** The staged try was withdrawn before any boot (`kubedos-boot cancel SLOT`): the build is not to blame. */
  z.object({ type: z.literal('withdrawn'), reason: z.string().min(1) }).strict(),
  /**
   * The node's VM was replaced (upgradeStrategy: replace): a new disk created from `build`'s image,
   * both slots holding it, slot A active; its health gate on slot A comes next. From any state (the
   * old disk's upgrade went with it); the builds the old disk's agent recorded as bad are kept.
   */
  z.object({ type: z.literal('replaced'), build: BuildRef }).strict(),
]);
export type AgentEvent = z.infer<typeof AgentEvent>;

export type RefusalCode = 'bad-build' | 'same-build' | 'same-version' | 'downgrade' | 'busy' | 'unexpected';
export type AgentStep = { ok: true; state: AgentState } | { ok: false; code: RefusalCode; message: string };

/** A node's first state: its build on slot A, nothing staged. */
export function initialAgentState(running: BuildRef, active: Slot = 'A'): AgentState {
  return { schema: 1, state: 'idle', active, running, bad: [] };
}

/** A digest's first 12 hex digits, for messages. */
export const shortDigest = (d: string): string => `${d.slice(0, 12)}…`;
const STAGEABLE: readonly AgentStateName[] = ['idle', 'committed', 'rolled-back', 'failed'];

function ended(s: AgentState, state: 'failed' | 'rolled-back' | 'idle' | 'committed', o: Partial<AgentState> = {}): AgentState {
  // Clear the per-upgrade fields, keep the node's identity (active, running, bad).
  const { target: _t, slot: _s, reason: _r, gateFailure: _g, ...keep } = s;
  return { ...keep, ...o, state };
}

/** The bad list with `b` (replacing an entry of the same digest), sorted by digest. */
const withBad = (bad: readonly BadBuild[], b: BadBuild): BadBuild[] => [...bad.filter((x) => x.digest !== b.digest), b].sort((x, y) => (x.digest < y.digest ? -1 : 1));

/** Pure: the agent's next state, or why the event is refused in this state. */
export function next(s: AgentState, e: AgentEvent): AgentStep {
  const refuse = (code: RefusalCode, message: string): AgentStep => ({ ok: false, code, message });
  const unexpected = (): AgentStep => refuse('unexpected', `event '${e.type}' does not apply in state ${s.state}${s.target ? ` (staging ${s.target.version})` : ''}`);
  const to = (state: AgentStateName, o: Partial<AgentState> = {}): AgentStep => ({ ok: true, state: { ...s, ...o, state } });
  switch (e.type) {
    case 'stage': {
      if (!STAGEABLE.includes(s.state)) return refuse('busy', `an upgrade to ${s.target?.version ?? '?'} is in progress (state ${s.state}); wait for it to end before staging ${e.build.version}`);
      const bad = s.bad.find((b) => b.digest === e.build.digest);
      if (bad) return refuse('bad-build', `build ${bad.version} (${shortDigest(bad.digest)}) rolled back from slot ${bad.slot} on this node (${bad.reason}): it is not staged again; build a fixed N+1 (a new digest)`);
      if (e.build.digest === s.running.digest) return refuse('same-build', `build ${e.build.version} (${shortDigest(e.build.digest)}) already runs on the active slot ${s.active}`);
      // The preflight's rules, again on the node: versions tell builds apart in metrics and rollbacks.
      const order = compareArtifactVersions(e.build.version, s.running.version);
      if (order === 0) return refuse('same-version', `build ${shortDigest(e.build.digest)} has the version ${e.build.version} of the build running on slot ${s.active} (${shortDigest(s.running.digest)}): a new build needs a new version`);
      if (order < 0 && !e.allowDowngrade) return refuse('downgrade', `build ${e.build.version} is older than ${s.running.version}, running on slot ${s.active}: a downgrade needs --allow-downgrade`);
      const { reason: _r, gateFailure: _g, ...keep } = s;
      return { ok: true, state: { ...keep, state: 'checking', target: e.build, slot: otherSlot(s.active) } };
    }
    case 'checked':
    case 'received':
    case 'written': {
      const from = ({ checked: 'checking', received: 'receiving', written: 'writing' } as const)[e.type];
      if (s.state !== from) return unexpected();
      if (!e.ok) return { ok: true, state: ended(s, 'failed', { reason: `${from}: ${e.reason ?? 'failed'}` }) };
      return to(({ checked: 'receiving', received: 'writing', written: 'staged' } as const)[e.type]);
    }
    case 'booted': {
      if ((s.state !== 'staged' && s.state !== 'verifying') || !s.slot || !s.target) return unexpected();
      if (e.booted === s.slot) return to('verifying'); // a try of the slot (GRUB counted one down)
      // Back on the active slot.
      if (e.failed === s.slot) {
        const reason = s.gateFailure ? `its health gate failed (${s.gateFailure})` : 'it ran out of boot tries without passing its health gate';
        const bad = withBad(s.bad, { digest: s.target.digest, version: s.target.version, slot: s.slot, reason });
        return { ok: true, state: ended(s, 'rolled-back', { bad, reason: `slot ${s.slot} (${s.target.version}) rolled back to slot ${s.active}: ${reason}`, ...(s.gateFailure ? { gateFailure: s.gateFailure } : {}) }) };
      }
      // No failure recorded: the try never reached GRUB (lost with the environment block); the
      // build is not to blame and may be staged again.
      const lost = s.state === 'staged' ? `slot ${s.slot} was never tried: the node booted slot ${s.active} with no try pending` : `the try of slot ${s.slot} was withdrawn: the node booted slot ${s.active} with no failure recorded`;
      return { ok: true, state: ended(s, 'failed', { reason: `${lost}; stage ${s.target.version} again` }) };
    }
    case 'gate': {
      if (s.state === 'verifying' && !s.slot && s.target) {
        // A replaced node's new disk: its gate on the active slot it booted first. Nothing to fall back to.
        if (e.pass) return { ok: true, state: ended(s, 'committed') };
        const check = e.check ?? 'a check failed';
        const reason = `its health gate failed on its new disk (${check})`;
        return { ok: true, state: ended(s, 'failed', { bad: withBad(s.bad, { digest: s.running.digest, version: s.running.version, slot: s.active, reason }), reason: `slot ${s.active} (${s.running.version}, a new disk) ${reason}: it is not applied again`, gateFailure: check }) };
      }
      if (s.state !== 'verifying' || !s.slot || !s.target) return unexpected();
      if (!e.pass) return to('verifying', { gateFailure: e.check ?? 'a check failed' }); // the gate marks the slot bad and reboots
      return { ok: true, state: ended(s, 'committed', { active: s.slot, running: s.target }) };
    }
    case 'withdrawn': {
      if (s.state !== 'staged' || !s.slot || !s.target) return unexpected();
      return { ok: true, state: ended(s, 'failed', { reason: `the try of slot ${s.slot} was withdrawn before it booted (${e.reason}); stage ${s.target.version} again` }) };
    }
    case 'reject': {
      if (!STAGEABLE.includes(s.state)) return unexpected();
      if (e.build.digest === s.running.digest) return refuse('unexpected', `build ${e.build.version} (${shortDigest(e.build.digest)}) runs on the active slot ${s.active}: take the node back from it first`);
      return { ok: true, state: ended(s, 'rolled-back', { bad: withBad(s.bad, { digest: e.build.digest, version: e.build.version, slot: e.slot, reason: e.reason }), reason: `slot ${e.slot} (${e.build.version}) rolled back to slot ${s.active}: ${e.reason}` }) };
    }
    case 'replaced':
      return { ok: true, state: { schema: 1, state: 'verifying', active: 'A', running: e.build, target: e.build, bad: s.bad } };
  }
}

/** One journal line: the transition, what caused it, and the time the agent gives it. */
export const AgentJournalLine = z
  .object({
    seq: z.number().int().nonnegative(),
    time: z.string().min(1),
    from: z.enum(AGENT_STATES),
    to: z.enum(AGENT_STATES).optional(),
    event: AgentEvent,
    refused: z.object({ code: z.string(), message: z.string() }).strict().optional(),
  })
  .strict();
export type AgentJournalLine = z.infer<typeof AgentJournalLine>;

/** The journal line of one `next` call (refusals are journaled too: the foundry reads why). */
export function journalLine(seq: number, time: string, from: AgentState, event: AgentEvent, step: AgentStep): AgentJournalLine {
  return step.ok ? { seq, time, from: from.state, to: step.state.state, event } : { seq, time, from: from.state, event, refused: { code: step.code, message: step.message } };
}

/** The state file's text: sorted keys (canonical JSON), one trailing newline. */
export function renderAgentState(s: AgentState): string {
  return `${canonicalJson(AgentState.parse(s), 2)}\n`;
}
