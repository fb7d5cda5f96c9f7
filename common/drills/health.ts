// The health model of a cluster for self-healing (issue 14): which signals count, the
// thresholds read from the spec's `selfHealing.detect`, the facts the probes gather, and one pure
// function that turns facts into a verdict per node. The probes (main/drills/probes.ts) gather
// facts; everyone who needs a verdict (the drill engine, `kubedos heal`, the guard, the
// workbench) calls evaluateHealth(). Pure: no clock is read here, `now` is a fact.
import { z } from 'zod';
import type { ClusterSpec } from '../spec/schema';
import { renderTable } from '../text/table';
import { PERSISTENT_KEEPALIVE } from '../plan/plan';

export const HEALTH_SIGNALS = ['guest-agent', 'wg-handshake', 'kubelet-ready', 'etcd-member', 'converge-drift'] as const;
export type HealthSignal = (typeof HEALTH_SIGNALS)[number];

/**
 * WireGuard starts a new handshake on the first packet sent after 120 s (REKEY_AFTER_TIME); on a
 * quiet tunnel that packet is the planes' persistent keepalive, up to PERSISTENT_KEEPALIVE s later,
 * so a healthy peer's latest handshake is up to ~145 s old. A handshake counts as stale only past
 * that floor plus the silence the spec allows.
 */
export const WG_REKEY_SECONDS = 120;
/** The oldest a healthy peer's latest handshake gets: WG_REKEY_SECONDS + the planes' keepalive. */
export const WG_HANDSHAKE_FLOOR_SECONDS = WG_REKEY_SECONDS + PERSISTENT_KEEPALIVE;

export const DetectThresholds = z.object({
  /** Signals evaluated (others are shown as "not evaluated"). */
  signals: z.array(z.enum(HEALTH_SIGNALS)),
  /** heartbeatSeconds × missedHeartbeats: how long a guest agent may be silent. */
  silenceSeconds: z.number().positive(),
  /** A wg1 handshake older than this marks the node unhealthy (WG_HANDSHAKE_FLOOR_SECONDS + silenceSeconds). */
  handshakeMaxAgeSeconds: z.number().positive(),
  /** How often the probes run. */
  heartbeatSeconds: z.number().positive(),
});
export type DetectThresholds = z.infer<typeof DetectThresholds>;

/**
 * Thresholds from the spec. Where the spec is silent the schema's defaults apply (heartbeat 10 s,
 * 3 misses: 30 s of silence, a handshake limit of 175 s; signals guest-agent and wg-handshake). `etcd-member` is always
 * evaluated when the cluster has etcd members, even when the spec does not list it: a drill and
 * the guard need to know quorum whatever the detection policy is.
 */
export function detectThresholds(selfHealing: ClusterSpec['spec']['selfHealing'], o: { alwaysEtcd?: boolean } = {}): DetectThresholds {
  const d = selfHealing.detect;
  const silenceSeconds = d.heartbeatSeconds * d.missedHeartbeats;
  const signals = new Set<HealthSignal>(d.signals);
  if (o.alwaysEtcd !== false) signals.add('etcd-member');
  return {
    signals: HEALTH_SIGNALS.filter((s) => signals.has(s)),
    silenceSeconds,
    handshakeMaxAgeSeconds: WG_HANDSHAKE_FLOOR_SECONDS + silenceSeconds,
    heartbeatSeconds: d.heartbeatSeconds,
  };
}

// ---------------------------------------------------------------- facts

export const EtcdMemberFact = z.object({
  /** Hex member id, as `etcdctl member list --hex` prints it. */
  id: z.string(),
  name: z.string(),
  peerUrls: z.array(z.string()),
  clientUrls: z.array(z.string()),
});
export type EtcdMemberFact = z.infer<typeof EtcdMemberFact>;

export const EtcdEndpointFact = z.object({ endpoint: z.string(), healthy: z.boolean(), error: z.string().optional() });
export type EtcdEndpointFact = z.infer<typeof EtcdEndpointFact>;

export const HealthFacts = z.object({
  /** Epoch seconds at which the facts were gathered. */
  now: z.number(),
  /** Nodes of the plan (name → is it the hub, is it an etcd member by plan). */
  nodes: z.array(z.object({ name: z.string(), hub: z.boolean(), etcd: z.boolean() })),
  /** Latest wg1 handshake per node as seen on the hub (epoch s; 0 = never; absent key = no peer). Undefined: not observed. */
  wg1Handshakes: z.record(z.string(), z.number()).optional(),
  /**
   * The same for wg2 and wg3, read by the hub's watcher (peer mapped to a node by its planned /32 on
   * that plane). Shown on the live health picture (common/health/now.ts); not part of the verdict:
   * the wg-handshake signal stays wg1's. Undefined: not observed (a watcher of an older payload).
   */
  wg2Handshakes: z.record(z.string(), z.number()).optional(),
  wg3Handshakes: z.record(z.string(), z.number()).optional(),
  /** Last time each node's guest agent answered (epoch s). Undefined: not observed (no hypervisor agent, e.g. the namespace lab). */
  guestAgentSeenAt: z.record(z.string(), z.number()).optional(),
  /** etcd as the hub sees it. Undefined: not observed. */
  etcd: z
    .object({
      members: z.array(EtcdMemberFact),
      endpoints: z.array(EtcdEndpointFact),
      /** Set when member list itself failed (no quorum, nothing reachable). */
      error: z.string().optional(),
    })
    .optional(),
  /** Nodes whose converge inputs moved since their last successful converge. Undefined: not observed. */
  convergeDrift: z.array(z.string()).optional(),
});
export type HealthFacts = z.infer<typeof HealthFacts>;

// ---------------------------------------------------------------- verdict

// The verdict's shape is a schema: the hub's watcher (payload/backplane/kubedos-health-watch)
// writes the same verdict into its report, and the engine parses it back with these.
export const Finding = z.object({ node: z.string(), signal: z.enum(HEALTH_SIGNALS), detail: z.string() });
export type Finding = z.infer<typeof Finding>;

export const NodeHealth = z.object({ name: z.string(), state: z.enum(['healthy', 'unhealthy']), findings: z.array(Finding) });
export type NodeHealth = z.infer<typeof NodeHealth>;

export const EtcdHealth = z.object({
  members: z.number().int().min(0),
  healthy: z.number().int().min(0),
  quorum: z.number().int().min(1),
  hasQuorum: z.boolean(),
  /** Member name → healthy? */
  byName: z.record(z.string(), z.boolean()),
});
export type EtcdHealth = z.infer<typeof EtcdHealth>;

export const HealthReport = z.object({
  healthy: z.boolean(),
  nodes: z.array(NodeHealth),
  findings: z.array(Finding),
  etcd: EtcdHealth.optional(),
  /** Signals the spec asks for that no probe could observe here (e.g. guest-agent in the namespace lab). */
  notObserved: z.array(z.enum(HEALTH_SIGNALS)),
  /** Undefined (absent in JSON): converge drift was not observed. */
  converged: z.boolean().optional(),
});
export type HealthReport = z.infer<typeof HealthReport>;

export function quorumOf(members: number): number {
  return Math.floor(members / 2) + 1;
}

/**
 * Pure: the one quorum rule for taking a node's etcd member out (the guard before a drill, the
 * fence's `member remove` in the namespace lab and on a deployed cluster): the members other than
 * it that are healthy must still make the quorum of the current membership. Then the removal
 * itself can be committed (etcd needs the current quorum for a membership change) and the
 * members left keep theirs. A single member can never be taken out: 0 of 1 left.
 */
export function memberRemoval(etcd: EtcdHealth, node: string): { ok: boolean; after: number; members: number; quorum: number; message: string } {
  const after = etcd.healthy - (etcd.byName[node] ? 1 : 0);
  const ok = after >= etcd.quorum;
  const only = etcd.members === 1 && node in etcd.byName ? ` (${node} is the only member)` : '';
  return { ok, after, members: etcd.members, quorum: etcd.quorum, message: `taking ${node}'s etcd member out would leave ${after} of ${etcd.members} members healthy; quorum needs ${etcd.quorum}${only}` };
}

/** Pure: etcd's health as planned with every member healthy (what can be said from the plan alone, before anything is contacted). */
export function plannedEtcdHealth(members: readonly string[]): EtcdHealth {
  const quorum = quorumOf(members.length);
  return { members: members.length, healthy: members.length, quorum, hasQuorum: members.length > 0, byName: Object.fromEntries(members.map((m) => [m, true])) };
}

/** Name of the member an endpoint URL belongs to, by its client URLs. */
function memberOfEndpoint(members: readonly EtcdMemberFact[], endpoint: string): EtcdMemberFact | undefined {
  const norm = (u: string) => u.replace(/\/+$/, '');
  return members.find((m) => m.clientUrls.some((u) => norm(u) === norm(endpoint)));
}

export function etcdHealth(etcd: NonNullable<HealthFacts['etcd']>): EtcdHealth {
  const byName: Record<string, boolean> = {};
  for (const m of etcd.members) byName[m.name] = false;
  for (const e of etcd.endpoints) {
    const m = memberOfEndpoint(etcd.members, e.endpoint);
    if (m && e.healthy) byName[m.name] = true;
  }
  const healthy = Object.values(byName).filter(Boolean).length;
  const quorum = quorumOf(etcd.members.length);
  return { members: etcd.members.length, healthy, quorum, hasQuorum: etcd.members.length > 0 && healthy >= quorum, byName };
}

/** The verdict: per node, which enabled signals say it is unhealthy and why. */
export function evaluateHealth(facts: HealthFacts, t: DetectThresholds): HealthReport {
  const on = new Set(t.signals);
  const findings: Finding[] = [];
  const notObserved = new Set<HealthSignal>();
  if (on.has('guest-agent')) {
    if (!facts.guestAgentSeenAt) notObserved.add('guest-agent');
    else
      for (const n of facts.nodes) {
        const seen = facts.guestAgentSeenAt[n.name];
        if (seen === undefined) findings.push({ node: n.name, signal: 'guest-agent', detail: 'guest agent never answered' });
        else if (facts.now - seen > t.silenceSeconds) findings.push({ node: n.name, signal: 'guest-agent', detail: `guest agent silent for ${Math.round(facts.now - seen)} s (limit ${t.silenceSeconds} s)` });
      }
  }
  if (on.has('wg-handshake')) {
    if (!facts.wg1Handshakes) notObserved.add('wg-handshake');
    else
      for (const n of facts.nodes) {
        if (n.hub) continue;
        const problem = handshakeProblem('wg1', facts.wg1Handshakes[n.name], facts.now, t.handshakeMaxAgeSeconds);
        if (problem) findings.push({ node: n.name, signal: 'wg-handshake', detail: problem });
      }
  }
  let etcd: EtcdHealth | undefined;
  if (on.has('etcd-member') && facts.nodes.some((n) => n.etcd)) {
    if (!facts.etcd) notObserved.add('etcd-member');
    else {
      etcd = etcdHealth(facts.etcd);
      const planned = facts.nodes.filter((n) => n.etcd).map((n) => n.name);
      for (const name of planned) {
        const member = facts.etcd.members.find((m) => m.name === name);
        if (!member) findings.push({ node: name, signal: 'etcd-member', detail: facts.etcd.error ? `etcd member list failed: ${facts.etcd.error}` : 'not an etcd member' });
        else if (!etcd.byName[name]) {
          const ep = facts.etcd.endpoints.find((e) => memberOfEndpoint([member], e.endpoint));
          findings.push({ node: name, signal: 'etcd-member', detail: `etcd member unhealthy${ep?.error ? `: ${ep.error}` : ''}` });
        }
      }
      for (const m of facts.etcd.members) {
        if (!planned.includes(m.name)) findings.push({ node: m.name || m.id, signal: 'etcd-member', detail: `etcd member ${m.name || m.id} is not a planned member` });
      }
    }
  }
  let converged: boolean | undefined;
  if (on.has('converge-drift')) {
    if (!facts.convergeDrift) notObserved.add('converge-drift');
    else {
      converged = facts.convergeDrift.length === 0;
      for (const n of facts.convergeDrift) findings.push({ node: n, signal: 'converge-drift', detail: 'converge inputs changed since its last converge' });
    }
  } else if (facts.convergeDrift) converged = facts.convergeDrift.length === 0;
  for (const s of t.signals) if (s === 'kubelet-ready') notObserved.add(s);
  findings.sort((a, b) => a.node.localeCompare(b.node) || a.signal.localeCompare(b.signal));
  const nodes: NodeHealth[] = facts.nodes
    .map((n) => {
      const f = findings.filter((x) => x.node === n.name);
      return { name: n.name, state: f.length ? ('unhealthy' as const) : ('healthy' as const), findings: f };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
  return {
    healthy: findings.length === 0 && (etcd === undefined || etcd.hasQuorum),
    nodes,
    findings,
    ...(etcd ? { etcd } : {}),
    notObserved: HEALTH_SIGNALS.filter((s) => notObserved.has(s)),
    ...(converged !== undefined ? { converged } : {}),
  };
}

// ---------------------------------------------------------------- parsers of probe output

/**
 * Pure: what is wrong with a node's latest handshake on a plane as the hub sees it (epoch s; 0 =
 * never; undefined = no peer), or undefined when it is younger than the limit. The wg-handshake
 * signal (wg1) and the live health's wg2/wg3 judge with it.
 */
export function handshakeProblem(plane: string, latest: number | undefined, now: number, maxAgeSeconds: number): string | undefined {
  if (latest === undefined) return `no ${plane} peer on the hub`;
  if (latest === 0) return `no ${plane} handshake yet`;
  if (now - latest > maxAgeSeconds) return `${plane} handshake ${Math.round(now - latest)} s old (limit ${maxAgeSeconds} s)`;
  return undefined;
}

/**
 * `wg show wg1 latest-handshakes` → public key → epoch seconds (0 = never). Lines are
 * "<base64 key>\t<epoch>".
 */
export function parseLatestHandshakes(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const [key, ts] = line.trim().split(/\s+/);
    if (!key || ts === undefined || !/^\d+$/.test(ts)) continue;
    out[key] = Number(ts);
  }
  return out;
}

/** `wg show wg1 allowed-ips` → public key → its allowed IPs. */
export function parseAllowedIps(text: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const line of text.split('\n')) {
    const [key, ...ips] = line.trim().split(/\s+/);
    if (!key) continue;
    out[key] = ips.filter((x) => x && x !== '(none)');
  }
  return out;
}

/** Handshake per node: the hub's peer whose allowed IPs hold the node's planned wg1 /32. */
export function handshakesByNode(handshakes: Record<string, number>, allowed: Record<string, string[]>, wg1ByNode: Record<string, string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [node, addr] of Object.entries(wg1ByNode)) {
    const key = Object.keys(allowed).find((k) => (allowed[k] ?? []).includes(addr));
    if (key !== undefined) out[node] = handshakes[key] ?? 0;
  }
  return out;
}

const EtcdctlHealth = z.array(z.object({ endpoint: z.string(), health: z.boolean(), error: z.string().optional() }).passthrough());

/** `etcdctl endpoint health -w json` (it prints JSON on stdout even when some are unhealthy). */
export function parseEndpointHealth(text: string): EtcdEndpointFact[] {
  const parsed = EtcdctlHealth.parse(JSON.parse(text.trim() || '[]'));
  return parsed
    .map((e) => ({ endpoint: e.endpoint, healthy: e.health, ...(e.error ? { error: e.error } : {}) }))
    .sort((a, b) => a.endpoint.localeCompare(b.endpoint));
}

const EtcdctlMembers = z.object({
  members: z
    .array(z.object({ ID: z.union([z.string(), z.number()]), name: z.string().optional(), peerURLs: z.array(z.string()).optional(), clientURLs: z.array(z.string()).optional() }).passthrough())
    .default([]),
});

/**
 * `etcdctl member list -w json --hex`: ids are hex strings (decimal JSON numbers of 64 bits would
 * lose precision). A member added but not started yet has no name and no client URLs.
 */
export function parseMemberList(text: string): EtcdMemberFact[] {
  // etcdctl 3.4 prints 64-bit ids as bare JSON numbers even with --hex; JSON.parse would round
  // them. Quote them first and convert decimal to the hex `member remove` expects.
  const quoted = text.replace(/"(ID|cluster_id|member_id)":\s*(\d+)/g, '"$1":"dec:$2"');
  const parsed = EtcdctlMembers.parse(JSON.parse(quoted));
  const hexId = (id: string | number): string => {
    const s = String(id);
    return s.startsWith('dec:') ? BigInt(s.slice(4)).toString(16) : s.toLowerCase();
  };
  return parsed.members
    .map((m) => ({ id: hexId(m.ID), name: m.name ?? '', peerUrls: [...(m.peerURLs ?? [])].sort(), clientUrls: [...(m.clientURLs ?? [])].sort() }))
    .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
}

/** The verdict as a table (`kubedos heal`, `kubedos drill` before it starts). */
export function renderHealthReport(h: HealthReport): string {
  const rows = h.nodes.map((n) => [n.name, n.state, n.findings.map((f) => `${f.signal}: ${f.detail}`).join('; ')]);
  const lines = [renderTable(['NODE', 'STATE', 'FINDINGS'], rows)];
  if (h.etcd) lines.push(`etcd: ${h.etcd.healthy} of ${h.etcd.members} members healthy (quorum ${h.etcd.quorum})${h.etcd.hasQuorum ? '' : ' — NO QUORUM'}`);
  if (h.notObserved.length) lines.push(`not observed here: ${h.notObserved.join(', ')}`);
  lines.push(h.healthy ? 'healthy' : `unhealthy: ${h.findings.length} finding${h.findings.length === 1 ? '' : 's'}`);
  return lines.join('\n');
}

/**
 * How many probes in a row must see a node unhealthy before the fault counts as detected:
 * `missedHeartbeats` (silenceSeconds / heartbeatSeconds), at least 1.
 */
export function probesToDetect(t: Pick<DetectThresholds, 'silenceSeconds' | 'heartbeatSeconds'>): number {
  return Math.max(1, Math.round(t.silenceSeconds / t.heartbeatSeconds));
}

/**
 * A silent guest agent or a stale handshake already carries the spec's silence in its own
 * threshold: one probe that sees it detects the fault (counting the probes again would make
 * detection take twice as long). Other findings (etcd) need probesToDetect probes in a row.
 */
export function isTimedSignal(signal: HealthSignal): boolean {
  return signal === 'guest-agent' || signal === 'wg-handshake';
}
