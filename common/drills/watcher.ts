// The hub's health watcher (payload/backplane/kubedos-health-watch): its configuration, which the
// foundry renders from the spec and the plan, and the report it writes on the hub every probe.
// The thresholds are computed here once (detectThresholds) and handed to the watcher in its
// configuration; the watcher's verdict has the shape of evaluateHealth()'s output and carries the
// facts it was computed from, so the engine can re-evaluate them with evaluateHealth() and say
// whether the two agree (agreesWithEngine). Pure: no clock, no I/O.
import { z } from 'zod';
import type { Plan } from '../plan/index';
import { etcdHostRole } from '../plan/services';
import type { ClusterSpec } from '../spec/schema';
import { PlaneName } from '../spec/schema';
import { DetectThresholds, evaluateHealth, Finding, HealthFacts, HealthReport, detectThresholds, isTimedSignal, probesToDetect } from './health';
import { canonicalJson } from '../canonical';

/** Where the image puts the watcher's configuration on the hub (install-payload.sh). */
export const HEALTH_WATCH_CONFIG_PATH = '/etc/kubedos/health-watch.json';
/** Where the watcher writes its report (atomically: a temporary file renamed over it). */
export const HEALTH_WATCH_REPORT_PATH = '/var/lib/kubedos/health/report.json';
/** Where the converge stage leaves, on the hub, the per-node fingerprints of the last converge. */
export const CONVERGE_RECORD_ON_HUB = '/var/lib/kubedos/converge/fingerprints.json';
/** Where the converge stage leaves, on each node, that node's fingerprint of the last converge (kubedos-node-metrics reads it). */
export const CONVERGE_RECORD_ON_NODE = '/var/lib/kubedos/converge/node.json';
/**
 * How often the watcher re-takes the converge fingerprints (one SSH login per node over wg1):
 * drift is a slow signal and a fingerprint reads every managed file, so not every heartbeat.
 */
export const CONVERGE_PROBE_SECONDS = 300;
/** The node exporter's port on the observability plane (payload/ansible kubedos_node_exporter_listen). */
export const NODE_EXPORTER_PORT = 9100;
/**
 * How often the watcher reads each node's kubedos_artifact_info from its node exporter
 * (kubedos-node-metrics rewrites it every 30 s; the version and slot change only on an upgrade).
 */
export const NODE_METRICS_SECONDS = 30;

export const HealthWatchConfig = z
  .object({
    schema: z.literal('kubedos.health-watch.config/v1'),
    cluster: z.string(),
    hub: z.string(),
    /** From selfHealing.detect through detectThresholds(): the one place they are computed. */
    thresholds: DetectThresholds,
    /** Probes in a row a finding must last before it counts as detected (probesToDetect). */
    detectAfterProbes: z.number().int().min(1),
    nodes: z.array(
      z.object({
        name: z.string(),
        hub: z.boolean(),
        etcd: z.boolean(),
        wg1: z.string().describe('planned wg1 /32 of the node'),
        /** Planned wg2 / wg3 /32: the watcher maps the hub's wg2 / wg3 peers to nodes by them (handshakes shown, not judged). */
        wg2: z.string().describe('planned wg2 /32 of the node'),
        wg3: z.string().describe('planned wg3 /32 of the node'),
      }),
    ),
    /** Absent: the cluster has no etcd members. */
    etcd: z
      .object({
        endpoints: z.array(z.object({ node: z.string(), url: z.string() })),
        /** Client TLS material on the hub (etcd requires client certificates when it speaks TLS). */
        tls: z.object({ cacert: z.string(), cert: z.string(), key: z.string() }).optional(),
        dialTimeoutSeconds: z.number().positive(),
        commandTimeoutSeconds: z.number().positive(),
      })
      .optional(),
    /** Absent: converge drift is not probed (Ansible disabled). */
    converge: z
      .object({
        record: z.string(),
        everySeconds: z.number().positive(),
        /** The fingerprint script (converge-state.ts fingerprintCommand), run by `sh -s` as root on each node. */
        script: z.string(),
        /** How the hub reaches the other nodes: the converge key and known hosts over wg1. */
        ssh: z.object({ user: z.string(), key: z.string(), knownHosts: z.string() }),
      })
      .optional(),
    /**
     * Where each node's exporter listens (its address on the observability plane, the port) and how
     * often to read it. Absent (a configuration rendered by an older foundry): the nodes' versions are not read.
     */
    nodeMetrics: z.object({ plane: PlaneName, port: z.number().int().min(1).max(65535), everySeconds: z.number().positive() }).strict().optional(),
    reportPath: z.string(),
  })
  .strict();
export type HealthWatchConfig = z.infer<typeof HealthWatchConfig>;

const ip = (cidr: string): string => cidr.replace(/\/\d+$/, '');

/** Pure: the watcher's configuration from the spec and the plan. */
export function healthWatchConfig(
  spec: ClusterSpec,
  plan: Plan,
  o: {
    etcdTls?: { cacert: string; cert: string; key: string };
    converge?: { script: string; user: string; key: string; knownHosts: string };
  } = {},
): HealthWatchConfig {
  const hub = plan.nodes.find((n) => n.hub);
  if (!hub) throw new Error('health watcher: the plan has no hub');
  const thresholds = detectThresholds(spec.spec.selfHealing);
  const role = etcdHostRole(spec);
  const members = plan.nodes.filter((n) => n.role === role);
  const scheme = o.etcdTls ? 'https' : 'http';
  return {
    schema: 'kubedos.health-watch.config/v1',
    cluster: plan.cluster.name,
    hub: hub.name,
    thresholds,
    detectAfterProbes: probesToDetect(thresholds),
    nodes: plan.nodes.map((n) => ({ name: n.name, hub: n.hub, etcd: members.includes(n), wg1: n.planes.wg1.address, wg2: n.planes.wg2.address, wg3: n.planes.wg3.address })).sort((a, b) => a.name.localeCompare(b.name)),
    ...(members.length
      ? {
          etcd: {
            endpoints: members.map((n) => ({ node: n.name, url: `${scheme}://${ip(n.planes.wg3.address)}:2379` })).sort((a, b) => a.node.localeCompare(b.node)),
            ...(o.etcdTls ? { tls: o.etcdTls } : {}),
            dialTimeoutSeconds: 1,
            commandTimeoutSeconds: 2,
          },
        }
      : {}),
    ...(o.converge
      ? { converge: { record: CONVERGE_RECORD_ON_HUB, everySeconds: CONVERGE_PROBE_SECONDS, script: o.converge.script, ssh: { user: o.converge.user, key: o.converge.key, knownHosts: o.converge.knownHosts } } }
      : {}),
    nodeMetrics: { plane: PlaneName.catch('wg2').parse(spec.spec.kubernetes.observability.plane), port: NODE_EXPORTER_PORT, everySeconds: NODE_METRICS_SECONDS },
    reportPath: HEALTH_WATCH_REPORT_PATH,
  };
}

export function renderHealthWatchConfig(c: HealthWatchConfig): string {
  return `${canonicalJson(HealthWatchConfig.parse(c), 2)}\n`;
}

/** What the converge stage leaves on the hub for the watcher: the fingerprints of the last converge. */
export const ConvergeRecordOnHub = z.object({ runId: z.string(), nodes: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/)) }).strict();
export type ConvergeRecordOnHub = z.infer<typeof ConvergeRecordOnHub>;

/** What the converge stage leaves on each node (CONVERGE_RECORD_ON_NODE): its own fingerprint of the last converge. */
export const ConvergeRecordOnNode = z.object({ runId: z.string(), node: z.string(), fingerprint: z.string().regex(/^[0-9a-f]{64}$/) }).strict();
export type ConvergeRecordOnNode = z.infer<typeof ConvergeRecordOnNode>;

export function renderConvergeRecordOnNode(r: ConvergeRecordOnNode): string {
  return `${canonicalJson(ConvergeRecordOnNode.parse(r), 2)}\n`;
}

/** A finding with the time the watcher first saw it and how many probes in a row have seen it since. */
export const WatchFinding = Finding.extend({ since: z.number(), probes: z.number().int().min(1) });
export type WatchFinding = z.infer<typeof WatchFinding>;

/**
 * What the watcher read of one node's kubedos_artifact_info (kubedos-node-metrics, through the
 * node's exporter on the observability plane, wg2 by default): the artifact it was installed from and the root slot it booted — or
 * why it could not be read. Shown beside the verdict, never judged.
 */
export const NodeArtifactReading = z.union([
  z
    .object({
      node: z.string(),
      version: z.string(),
      /** payloadSha256 of the image's payload manifest. */
      buildDigest: z.string(),
      /** a / b (A/B images), single (one root), unknown (kubedos-boot could not say). */
      slot: z.string(),
      /** Epoch seconds the watcher read it. */
      at: z.number(),
    })
    .strict(),
  z.object({ node: z.string(), error: z.string(), at: z.number() }).strict(),
]);
export type NodeArtifactReading = z.infer<typeof NodeArtifactReading>;

export const HealthWatchReport = z
  .object({
    schema: z.literal('kubedos.health-watch/v1'),
    cluster: z.string(),
    hub: z.string(),
    /** Epoch seconds of this probe (the facts' `now`). */
    at: z.number(),
    /** Epoch seconds the watcher process started. */
    startedAt: z.number(),
    /** Probes since the watcher started (1 = first). */
    sequence: z.number().int().min(1),
    /** How long gathering the facts took (ms). */
    probeMs: z.number().min(0),
    thresholds: DetectThresholds,
    detectAfterProbes: z.number().int().min(1),
    facts: HealthFacts,
    verdict: HealthReport,
    /** verdict.findings with since/probes, same order. */
    findings: z.array(WatchFinding),
    /** Nodes with a finding seen on at least detectAfterProbes probes in a row: the fault is detected. */
    detected: z.array(z.string()),
    /** Probes that could not run (tool missing, file unreadable), one line each. */
    errors: z.array(z.string()),
    /** Per node (sorted): its artifact version and boot slot as its node exporter serves them. Absent: an older watcher, or not read yet. */
    nodeMetrics: z.array(NodeArtifactReading).optional(),
  })
  .strict();
export type HealthWatchReport = z.infer<typeof HealthWatchReport>;

export type ParsedWatchReport = { ok: true; report: HealthWatchReport } | { ok: false; reason: string };

/** Parses the report's text; a reason in the user's words when it is not one. */
export function parseHealthWatchReport(text: string): ParsedWatchReport {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `the watcher's report is not JSON (${(err as Error).message.split('\n')[0]})` };
  }
  const r = HealthWatchReport.safeParse(raw);
  if (!r.success) {
    const first = r.error.issues[0];
    return { ok: false, reason: `the watcher's report does not have the expected shape (${r.error.issues.length} problem${r.error.issues.length === 1 ? '' : 's'}; first: ${first?.path.join('.') || '(root)'}: ${first?.message})` };
  }
  return { ok: true, report: r.data };
}

/**
 * Whether the watcher's verdict is what evaluateHealth() says about the same facts and
 * thresholds: the one rule, checked every time a report is read. Returns the first difference.
 */
export function agreesWithEngine(r: HealthWatchReport): { agrees: boolean; difference?: string } {
  const mine = HealthReport.parse(evaluateHealth(r.facts, r.thresholds));
  const a = canonicalJson(mine);
  const b = canonicalJson(HealthReport.parse(r.verdict));
  if (a === b) return { agrees: true };
  const key = (['healthy', 'findings', 'etcd', 'notObserved', 'converged', 'nodes'] as const).find((k) => canonicalJson(mine[k] ?? null) !== canonicalJson(r.verdict[k] ?? null));
  return { agrees: false, difference: `${key ?? 'verdict'}: engine ${canonicalJson(mine[key ?? 'healthy'] ?? null).slice(0, 200)} / watcher ${canonicalJson(r.verdict[key ?? 'healthy'] ?? null).slice(0, 200)}` };
}

/** Seconds since the report was written, by the reader's clock (a stale report means the watcher stopped). */
export function reportAgeSeconds(r: HealthWatchReport, nowSeconds: number): number {
  return Math.max(0, nowSeconds - r.at);
}

/** A report older than this many heartbeats (plus the probe time) means the watcher is not running. */
export const STALE_AFTER_HEARTBEATS = 3;

export function isStale(r: HealthWatchReport, nowSeconds: number): boolean {
  return reportAgeSeconds(r, nowSeconds) > STALE_AFTER_HEARTBEATS * r.thresholds.heartbeatSeconds + r.probeMs / 1000 + 5;
}


/** What `kubedos status --health` (and anyone else reading the hub) reports about the watcher. */
export const WatcherStatus = z.discriminatedUnion('readable', [
  z
    .object({
      readable: z.literal(true),
      hub: z.string(),
      path: z.string(),
      /** Seconds since the watcher wrote it, by the reader's clock. */
      ageSeconds: z.number().min(0),
      /** Older than STALE_AFTER_HEARTBEATS heartbeats: the watcher is not running any more. */
      stale: z.boolean(),
      /** evaluateHealth() on the report's facts gives the watcher's verdict. */
      agreesWithEngine: z.boolean(),
      difference: z.string().optional(),
      report: HealthWatchReport,
    })
    .strict(),
  z.object({ readable: z.literal(false), hub: z.string(), path: z.string(), reason: z.string() }).strict(),
]);
export type WatcherStatus = z.infer<typeof WatcherStatus>;

/** Pure: the status from the report's text as read from the hub at nowSeconds. */
export function watcherStatusOf(hub: string, path: string, text: string, nowSeconds: number): WatcherStatus {
  const parsed = parseHealthWatchReport(text);
  if (!parsed.ok) return { readable: false, hub, path, reason: `${parsed.reason} (${path} on ${hub})` };
  const r = parsed.report;
  const agree = agreesWithEngine(r);
  return { readable: true, hub, path, ageSeconds: reportAgeSeconds(r, nowSeconds), stale: isStale(r, nowSeconds), agreesWithEngine: agree.agrees, ...(agree.difference ? { difference: agree.difference } : {}), report: r };
}

/** One paragraph for the terminal. */
export function renderWatcherStatus(w: WatcherStatus): string {
  if (!w.readable) return `health (watcher on ${w.hub}): could not be read: ${w.reason}`;
  const r = w.report;
  const lines = [
    `health (watcher on ${w.hub}, ${w.path}): ${r.verdict.healthy ? 'healthy' : `unhealthy (${r.findings.length} finding${r.findings.length === 1 ? '' : 's'})`}; written ${Math.round(w.ageSeconds)} s ago${w.stale ? ' — STALE: the watcher stopped writing (systemctl status kubedos-health-watch on the hub)' : ''}`,
  ];
  for (const f of r.findings.slice(0, 8)) lines.push(`  ${f.node}: ${f.signal}: ${f.detail} (for ${Math.max(0, Math.round(r.at - f.since))} s, ${f.probes} probe${f.probes === 1 ? '' : 's'}${r.detected.includes(f.node) ? ', detected' : ''})`);
  if (r.findings.length > 8) lines.push(`  … and ${r.findings.length - 8} more`);
  if (r.verdict.notObserved.length) lines.push(`  not observed by the watcher: ${r.verdict.notObserved.join(', ')}`);
  for (const e of r.errors.slice(0, 3)) lines.push(`  probe: ${e}`);
  if (!w.agreesWithEngine) lines.push(`  the watcher's verdict differs from the engine's on the same facts (${w.difference}): the hub runs another payload version than this foundry; rebuild and redeploy`);
  return lines.join('\n');
}

/**
 * What a drill's detect phase takes from one reading of the hub watcher's report about `node`
 * (the one rule, used by the engine and by waitForWatcherDetection):
 * - `unusable`: unreadable, stale (isStale: older than STALE_AFTER_HEARTBEATS heartbeats plus the
 *   probe time), or a verdict that differs from evaluateHealth() on its own facts — the engine
 *   falls back to its own probes, and `reason` (one bounded line) says why;
 * - `detected`: a fresh report, taken at or after `afterSeconds` (the end of the fault's injection;
 *   absent for a heal, whose fault predates it), lists the node in `detected` (a finding that
 *   lasted detectAfterProbes probes in a row) or has a timed finding on it (isTimedSignal: a
 *   silence or handshake age past its limit, detected at the first probe, as by the engine);
 * - `waiting`: fresh, but the node is not detected (yet).
 */
export type WatcherReading =
  | { kind: 'unusable'; reason: string }
  | { kind: 'waiting'; status: Extract<WatcherStatus, { readable: true }> }
  | { kind: 'detected'; status: Extract<WatcherStatus, { readable: true }>; findings: WatchFinding[]; since: number; detail: string };

const oneLine = (s: string, max = 240): string => {
  const l = s.replace(/\s+/g, ' ').trim();
  return l.length > max ? `${l.slice(0, max - 1)}…` : l;
};

/** Epoch seconds → "HH:MM:SS.sZ" (a detect detail is read next to the phase's own timestamps). */
const clockOf = (s: number): string => new Date(Math.round(s * 1000)).toISOString().slice(11, 21) + 'Z';

export function readWatcherFor(w: WatcherStatus, node: string, afterSeconds?: number): WatcherReading {
  if (!w.readable) return { kind: 'unusable', reason: oneLine(`hub watcher unreadable: ${w.reason}`) };
  const r = w.report;
  if (w.stale) {
    return { kind: 'unusable', reason: oneLine(`hub watcher's report is stale: written ${Math.round(w.ageSeconds)} s ago, fresh means within ${STALE_AFTER_HEARTBEATS} heartbeats of ${r.thresholds.heartbeatSeconds} s (the watcher on ${w.hub} stopped writing)`) };
  }
  if (!w.agreesWithEngine) return { kind: 'unusable', reason: oneLine(`hub watcher's verdict differs from the engine's on the same facts (${w.difference ?? 'verdict'}): another payload version runs on ${w.hub}`) };
  if (afterSeconds !== undefined && r.at < afterSeconds) return { kind: 'waiting', status: w };
  const findings = r.findings.filter((f) => f.node === node);
  // The watcher's `detected` (detectAfterProbes in a row), or a timed finding seen once: the engine's rule.
  if (!r.detected.includes(node) && !findings.some((f) => isTimedSignal(f.signal))) return { kind: 'waiting', status: w };
  const since = Math.min(...findings.map((f) => f.since));
  const what = findings.map((f) => `${f.signal} since ${clockOf(f.since)} (${f.detail}; ${f.probes} probe${f.probes === 1 ? '' : 's'} in a row)`).join('; ');
  const lead = afterSeconds !== undefined ? since - afterSeconds : undefined;
  // A finding older than the fault: the node was already flagged (clocks of hub and workbench, or an earlier fault).
  const after = lead === undefined ? '' : lead >= 0 ? `, first seen ${lead.toFixed(1)} s after the fault` : `, already flagged ${(-lead).toFixed(1)} s before the fault`;
  return { kind: 'detected', status: w, findings, since, detail: oneLine(`hub watcher: ${what}${after}; report ${w.ageSeconds.toFixed(1)} s old`, 500) };
}
