// "Cluster health now": what the workbench's topology and `kubedos status --health` show about a
// deployed cluster, folded from one reading of the hub's health-watcher report
// (common/drills/watcher.ts). Per node: did its guest agent answer, how old its handshakes are,
// is its etcd member healthy, does its converge fingerprint still match the last converge — each
// either measured (with the detail) or "not measured" (with why) — and one state for the picture:
// healthy / degraded / unreachable / unknown. When the report cannot be used (never deployed here,
// cluster stopped, hub did not answer, report stale) every node is unknown and `unavailable` says
// why in the user's words. Pure: the reader's clock is an argument.
import { z } from 'zod';
import type { Finding, HealthSignal } from '../drills/health';
import { evaluateHealth, handshakeProblem, HEALTH_SIGNALS } from '../drills/health';
import type { WatcherStatus } from '../drills/watcher';
import { STALE_AFTER_HEARTBEATS } from '../drills/watcher';

export const LIVE_NODE_STATES = ['healthy', 'degraded', 'unreachable', 'unknown'] as const;
export const LiveNodeState = z.enum(LIVE_NODE_STATES);
export type LiveNodeState = z.infer<typeof LiveNodeState>;

/** One signal of one node: measured (ok or not, and what was seen) or not measured (and why). */
export const LiveMeasure = z.discriminatedUnion('measured', [
  z
    .object({
      measured: z.literal(true),
      ok: z.boolean(),
      detail: z.string(),
      /** Seconds between the thing seen (agent answer, handshake) and the report. */
      ageSeconds: z.number().min(0).optional(),
    })
    .strict(),
  z.object({ measured: z.literal(false), why: z.string() }).strict(),
]);
export type LiveMeasure = z.infer<typeof LiveMeasure>;
type Measured = Extract<LiveMeasure, { measured: true }>;

/** The artifact a node runs and the root slot it booted, as its node exporter serves them (never judged). */
export const LiveArtifact = z.discriminatedUnion('read', [
  z
    .object({
      read: z.literal(true),
      version: z.string(),
      buildDigest: z.string(),
      /** a / b, single (one root), unknown. */
      slot: z.string(),
      /** Seconds between the watcher's reading and the report. */
      ageSeconds: z.number().min(0),
    })
    .strict(),
  z.object({ read: z.literal(false), why: z.string() }).strict(),
]);
export type LiveArtifact = z.infer<typeof LiveArtifact>;

export const LiveNodeHealth = z
  .object({
    name: z.string(),
    state: LiveNodeState,
    /** One line: why the node has this state. */
    summary: z.string(),
    agent: LiveMeasure,
    handshakes: z.object({ wg1: LiveMeasure, wg2: LiveMeasure, wg3: LiveMeasure }).strict(),
    /** Absent: the node is not an etcd member. */
    etcd: LiveMeasure.optional(),
    converge: LiveMeasure,
    artifact: LiveArtifact,
  })
  .strict();
export type LiveNodeHealth = z.infer<typeof LiveNodeHealth>;

export const HEALTH_UNAVAILABLE = ['never-deployed', 'not-running', 'unreadable', 'stale'] as const;
export const HealthUnavailable = z
  .object({
    /**
     * never-deployed / not-running: from this machine's journal, nothing contacted; unreadable:
     * the hub did not answer or had no report; stale: the watcher stopped writing.
     */
    code: z.enum(HEALTH_UNAVAILABLE),
    message: z.string(),
  })
  .strict();
export type HealthUnavailable = z.infer<typeof HealthUnavailable>;

export const LiveHealthCounts = z.object({ healthy: z.number().int().min(0), degraded: z.number().int().min(0), unreachable: z.number().int().min(0), unknown: z.number().int().min(0) }).strict();

export const ClusterHealthNow = z
  .object({
    cluster: z.string(),
    hub: z.string(),
    /** Epoch seconds at which the engine read (or decided not to read) the report. */
    readAt: z.number(),
    /** The report that was read, when one was. */
    report: z
      .object({
        /** Epoch seconds the watcher wrote it. */
        at: z.number(),
        ageSeconds: z.number().min(0),
        stale: z.boolean(),
        sequence: z.number().int().min(1),
        /** The watcher's own verdict is evaluateHealth() of its facts (else another payload version runs on the hub). */
        agreesWithEngine: z.boolean(),
        difference: z.string().optional(),
        /** Probes that could not run, as the watcher wrote them (the first few). */
        errors: z.array(z.string()),
      })
      .strict()
      .optional(),
    /** Set when the nodes cannot be judged from a fresh report: they are all `unknown` then. */
    unavailable: HealthUnavailable.optional(),
    etcd: z.object({ members: z.number().int().min(0), healthy: z.number().int().min(0), quorum: z.number().int().min(1), hasQuorum: z.boolean() }).strict().optional(),
    /** Plan order. */
    nodes: z.array(LiveNodeHealth),
    counts: LiveHealthCounts,
  })
  .strict();
export type ClusterHealthNow = z.infer<typeof ClusterHealthNow>;

export interface LiveHealthInput {
  cluster: string;
  hub: string;
  /** The plan's nodes, in plan order. */
  nodes: readonly { name: string }[];
  nowSeconds: number;
  /** Why the report was not read (from the journal); takes precedence over `status`. */
  refused?: { code: 'never-deployed' | 'not-running'; message: string };
  status?: WatcherStatus;
  /** Node → did its guest agent answer the reader's ping at nowSeconds (the hypervisor's view; the watcher has none). */
  agents?: Record<string, boolean>;
}

/** A report without wg2/wg3 handshakes (a watcher of an older payload): said so, never shown as fine. */
export const NOT_WG23_OLD_WATCHER = "not measured: the hub's health watcher reports wg1 handshakes only (an older payload: rebuild and redeploy to see wg2 and wg3)";
const NOT_WG23: LiveMeasure = { measured: false, why: NOT_WG23_OLD_WATCHER };

/** Epoch seconds → "HH:MM:SS UTC". */
export const utcClock = (s: number): string => `${new Date(Math.round(s * 1000)).toISOString().slice(11, 19)} UTC`;

function unknownNode(name: string, why: string): LiveNodeHealth {
  const no: LiveMeasure = { measured: false, why };
  return { name, state: 'unknown', summary: why, agent: no, handshakes: { wg1: no, wg2: no, wg3: no }, converge: no, artifact: { read: false, why } };
}

function countsOf(nodes: readonly LiveNodeHealth[]): ClusterHealthNow['counts'] {
  const c = { healthy: 0, degraded: 0, unreachable: 0, unknown: 0 };
  for (const n of nodes) c[n.state]++;
  return c;
}

/**
 * The state of a node from its measures: unknown when nothing was measured; unreachable when
 * every measured way of reaching it (its guest agent, its wg1 tunnel) failed; degraded when any
 * other measure failed; healthy otherwise.
 */
export function liveNodeState(m: Pick<LiveNodeHealth, 'agent' | 'handshakes' | 'etcd' | 'converge'>): LiveNodeState {
  const isMeasured = (x: LiveMeasure | undefined): x is Measured => x?.measured === true;
  const all = [m.agent, m.handshakes.wg1, m.handshakes.wg2, m.handshakes.wg3, m.etcd, m.converge].filter(isMeasured);
  if (!all.length) return 'unknown';
  const reach = [m.agent, m.handshakes.wg1].filter(isMeasured);
  if (reach.length && reach.every((x) => !x.ok)) return 'unreachable';
  return all.some((x) => !x.ok) ? 'degraded' : 'healthy';
}

/** Pure: the cluster's health now from one reading of the watcher's report (or why there is none). */
export function foldClusterHealth(i: LiveHealthInput): ClusterHealthNow {
  const base = { cluster: i.cluster, hub: i.hub, readAt: i.nowSeconds };
  const allUnknown = (u: HealthUnavailable, report?: ClusterHealthNow['report']): ClusterHealthNow => {
    // The reason is said once, in `unavailable`; each node points at it.
    const short: Record<HealthUnavailable['code'], string> = { 'never-deployed': 'never deployed from here', 'not-running': 'the cluster is not running', unreadable: 'the hub did not answer', stale: 'the health report is stale' };
    const nodes = i.nodes.map((n) => unknownNode(n.name, `unknown: ${short[u.code]}`));
    return { ...base, ...(report ? { report } : {}), unavailable: u, nodes, counts: countsOf(nodes) };
  };
  if (i.refused) return allUnknown({ code: i.refused.code, message: i.refused.message });
  const w = i.status;
  if (!w) return allUnknown({ code: 'unreadable', message: `the health report on ${i.hub} was not read` });
  if (!w.readable) return allUnknown({ code: 'unreadable', message: `the hub ${w.hub} did not give its health report: ${w.reason}` });
  const r = w.report;
  const report: NonNullable<ClusterHealthNow['report']> = {
    at: r.at,
    ageSeconds: w.ageSeconds,
    stale: w.stale,
    sequence: r.sequence,
    agreesWithEngine: w.agreesWithEngine,
    ...(w.difference ? { difference: w.difference } : {}),
    errors: r.errors.slice(0, 5),
  };
  if (w.stale) {
    const message = `the health report on ${w.hub} is stale since ${utcClock(r.at)} (${Math.round(w.ageSeconds)} s old; fresh means within ${STALE_AFTER_HEARTBEATS} heartbeats of ${r.thresholds.heartbeatSeconds} s): the watcher stopped writing (systemctl status kubedos-health-watch on ${w.hub})`;
    return allUnknown({ code: 'stale', message }, report);
  }
  const facts = r.facts;
  // The engine's one rule (evaluateHealth) on the report's facts with every signal on: the picture
  // shows every measured signal, whatever the spec's detection policy selects for self-healing.
  const verdict = evaluateHealth(facts, { ...r.thresholds, signals: [...HEALTH_SIGNALS] });
  const finding = (node: string, signal: HealthSignal): Finding | undefined => verdict.findings.find((f) => f.node === node && f.signal === signal);
  const age = (seen: number): number => Math.max(0, Math.round(facts.now - seen));
  const nodes = i.nodes.map((n): LiveNodeHealth => {
    const fact = facts.nodes.find((x) => x.name === n.name);
    if (!fact) return unknownNode(n.name, `unknown: the watcher on ${w.hub} does not watch ${n.name} (its configuration predates this plan: redeploy)`);
    const seen = facts.guestAgentSeenAt?.[n.name];
    const agentFinding = finding(n.name, 'guest-agent');
    const pinged = i.agents?.[n.name];
    const agent: LiveMeasure = !facts.guestAgentSeenAt
      ? pinged === undefined
        ? { measured: false, why: 'not measured: neither the watcher nor this reading pinged its guest agent' }
        : pinged
          ? { measured: true, ok: true, detail: `guest agent answered a ping at ${utcClock(i.nowSeconds)}` }
          : { measured: true, ok: false, detail: `guest agent did not answer a ping at ${utcClock(i.nowSeconds)}` }
      : { measured: true, ok: !agentFinding, detail: agentFinding?.detail ?? `guest agent answered ${age(seen ?? facts.now)} s before the report`, ...(seen !== undefined ? { ageSeconds: age(seen) } : {}) };
    const hs = facts.wg1Handshakes?.[n.name];
    const wgFinding = finding(n.name, 'wg-handshake');
    const wg1: LiveMeasure = fact.hub
      ? { measured: false, why: "the hub: its peers' wg1 handshakes are read on it" }
      : !facts.wg1Handshakes
        ? { measured: false, why: 'not measured: the watcher did not read wg1 on the hub' }
        : { measured: true, ok: !wgFinding, detail: wgFinding?.detail ?? `wg1 handshake ${age(hs ?? facts.now)} s old`, ...(hs ? { ageSeconds: age(hs) } : {}) };
    const etcdFinding = finding(n.name, 'etcd-member');
    const etcd: LiveMeasure | undefined = !fact.etcd ? undefined : !facts.etcd ? { measured: false, why: 'not measured: the watcher did not read etcd' } : { measured: true, ok: !etcdFinding, detail: etcdFinding?.detail ?? 'etcd member healthy' };
    const converge: LiveMeasure = !facts.convergeDrift
      ? { measured: false, why: 'not measured: the watcher takes no converge fingerprints on this cluster' }
      : facts.convergeDrift.includes(n.name)
        ? { measured: true, ok: false, detail: 'converge fingerprint differs from the last converge' }
        : { measured: true, ok: true, detail: 'converge fingerprint matches the last converge' };
    // wg2/wg3: the same limit as wg1's signal, judged here for the picture only (the verdict is wg1's).
    const plane = (p: 'wg2' | 'wg3'): LiveMeasure => {
      if (fact.hub) return { measured: false, why: `the hub: its peers' ${p} handshakes are read on it` };
      const all = p === 'wg2' ? facts.wg2Handshakes : facts.wg3Handshakes;
      if (!all) {
        const failed = r.errors.find((e) => e.startsWith(`wg show ${p} `));
        return failed ? { measured: false, why: `not measured: ${failed}` } : NOT_WG23;
      }
      const seen = all[n.name];
      const problem = handshakeProblem(p, seen, facts.now, r.thresholds.handshakeMaxAgeSeconds);
      // No peer, or no handshake yet: always a problem, and no age to show.
      if (seen === undefined || seen === 0) return { measured: true, ok: false, detail: problem! };
      return { measured: true, ok: !problem, detail: problem ?? `${p} handshake ${age(seen)} s old`, ageSeconds: age(seen) };
    };
    const wg2 = plane('wg2');
    const wg3 = plane('wg3');
    const m = { agent, handshakes: { wg1, wg2, wg3 }, ...(etcd ? { etcd } : {}), converge };
    const state = liveNodeState(m);
    const bad = [agent, wg1, wg2, wg3, etcd, converge].flatMap((x) => (x?.measured && !x.ok ? [x.detail] : []));
    const summary = state === 'unknown' ? 'unknown: no signal of this node is measured' : bad.length ? bad.join('; ') : 'every measured signal is fine';
    const reading = r.nodeMetrics?.find((x) => x.node === n.name);
    const artifact: LiveArtifact = !r.nodeMetrics
      ? { read: false, why: "not read: the hub's health watcher does not read the nodes' versions (an older payload: rebuild and redeploy)" }
      : !reading
        ? { read: false, why: `not read: the watcher on ${w.hub} has no reading of ${n.name}` }
        : 'error' in reading
          ? { read: false, why: `not read: ${reading.error}` }
          : { read: true, version: reading.version, buildDigest: reading.buildDigest, slot: reading.slot, ageSeconds: Math.max(0, Math.round(r.at - reading.at)) };
    return { name: n.name, state, summary, ...m, artifact };
  });
  const etcd = verdict.etcd ? { members: verdict.etcd.members, healthy: verdict.etcd.healthy, quorum: verdict.etcd.quorum, hasQuorum: verdict.etcd.hasQuorum } : undefined;
  return { ...base, report, ...(etcd ? { etcd } : {}), nodes, counts: countsOf(nodes) };
}

const artifactText = (a: LiveArtifact, part: 'version' | 'slot'): string => (a.read ? a[part] : 'not read');

const measureText = (m: LiveMeasure | undefined): string => (!m ? '–' : m.measured ? `${m.ok ? 'ok' : 'FAIL'}: ${m.detail}` : m.why.startsWith('not measured') ? 'not measured' : m.why);

/** For the terminal: one header line, then a row per node (table columns). */
export function liveHealthRows(h: ClusterHealthNow): { header: string; columns: string[]; rows: string[][] } {
  const r = h.report;
  const header = h.unavailable
    ? `health now of ${h.cluster}: cannot be read (${h.unavailable.code}): ${h.unavailable.message}`
    : `health now of ${h.cluster}: ${h.counts.healthy} healthy, ${h.counts.degraded} degraded, ${h.counts.unreachable} unreachable, ${h.counts.unknown} unknown; report of ${r ? `${utcClock(r.at)}, ${Math.round(r.ageSeconds)} s old` : '–'}${h.etcd ? `; etcd ${h.etcd.healthy}/${h.etcd.members} healthy${h.etcd.hasQuorum ? '' : ' — NO QUORUM'}` : ''}`;
  return {
    header,
    columns: ['NODE', 'STATE', 'VERSION', 'SLOT', 'AGENT', 'WG1', 'WG2', 'WG3', 'ETCD', 'CONVERGE'],
    rows: h.unavailable ? [] : h.nodes.map((n) => [n.name, n.state, artifactText(n.artifact, 'version'), artifactText(n.artifact, 'slot'), measureText(n.agent), measureText(n.handshakes.wg1), measureText(n.handshakes.wg2), measureText(n.handshakes.wg3), measureText(n.etcd), measureText(n.converge)]),
  };
}
