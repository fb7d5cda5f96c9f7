// The hub's health watcher (payload/backplane/kubedos-health-watch) in the namespace lab (root):
// the real payload runs as a daemon in the hub's namespaces with the configuration the foundry
// renders from labDrillSpec (heartbeat 1 s, 3 misses), against a 3-member etcd on wg3. A
// control-plane node's planes are cut at the hub (partition-node's inject) and the report must
// flag it within the detection threshold plus the probes' own time; once the cut is healed the
// finding must clear. The engine reads every report through the target's NodeShell.
// Then a partition-node drill detects through the watcher's report (LabDrillTarget.readWatcher),
// and, once the watcher is stopped and its report stale, falls back to the engine's own probes.
// Every node also runs its node exporter on wg2 with kubedos-node-metrics' file (as the
// kubedos_node_exporter role installs them), and the report must carry every node's artifact
// version and boot slot, read by the watcher from those exporters.
// Opt-in (about 55 s here): npm run test:health-watch.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectThresholds, evaluateHealth } from '../../common/drills/health';
import type { WatcherStatus } from '../../common/drills/watcher';
import { HEALTH_WATCH_REPORT_PATH } from '../../common/drills/watcher';
import { parseSpec } from '../../common/spec/index';
import type { ClusterSpec } from '../../common/spec/schema';
import { LabDrillTarget } from '../../main/drills/lab-target';
import type { PhaseContext } from '../../main/drills/target';
import { readWatcherReport, waitForWatcherDetection } from '../../main/drills/watcher-report';
import { drillId, runDrill } from '../../main/drills/engine';
import type { DrillRecord } from '../../common/drills/timeline';
import { renderDrillRecord } from '../../common/drills/timeline';
import { labDrillPlan, labDrillSpec } from './specs';
import { sha256Hex } from '../../common/canonical';
import { payloadDir } from '../../main/paths';
import type { Lab } from '../../main/lab/harness';

const TEXTFILE_DIR = '/var/lib/prometheus/node-exporter';

/** What the image and the kubedos_node_exporter role put on every node, started by hand (no systemd in the lab). */
async function startNodeMetrics(lab: Lab): Promise<void> {
  const script = readFileSync(join(payloadDir(), 'ansible/roles/kubedos_node_exporter/files/kubedos-node-metrics'));
  for (const n of lab.plan.nodes) {
    const manifest = { apiVersion: 'kubedos.ca/v1alpha1', kind: 'Payload', cluster: lab.plan.cluster.name, artifactVersion: lab.plan.cluster.artifactVersion, role: n.role, payloadSha256: sha256Hex(`lab payload of ${n.role}`) };
    await lab.writeFile(n.name, '/etc/kubedos/payload.json', `${JSON.stringify(manifest, null, 2)}\n`);
    await lab.writeFile(n.name, '/usr/local/sbin/kubedos-node-metrics', script, 0o755);
    await lab.exec(n.name, ['/bin/mkdir', '-p', TEXTFILE_DIR]);
    await lab.exec(n.name, ['/usr/local/sbin/kubedos-node-metrics']);
    const wg2 = n.planes.wg2.address.replace(/\/\d+$/, '');
    lab.spawnDaemon(n.name, ['/usr/bin/prometheus-node-exporter', `--web.listen-address=${wg2}:9100`, `--collector.textfile.directory=${TEXTFILE_DIR}`], 'node-exporter');
  }
}

type Readable = Extract<WatcherStatus, { readable: true }>;

describe('the hub health watcher in the namespace lab', () => {
  let target: LabDrillTarget;
  let spec: ClusterSpec;
  const started = Date.now();
  const NODE = 'cp-3';

  beforeAll(async () => {
    const parsed = parseSpec(labDrillSpec());
    if (!parsed.spec) throw new Error(parsed.diagnostics.map((d) => d.message).join('\n'));
    spec = parsed.spec;
    target = await LabDrillTarget.create(labDrillPlan(), { log: (l) => console.log(l) });
    await startNodeMetrics(target.lab);
    // The lab's etcd speaks plain HTTP (no client certificate); no Ansible converge here.
    await target.startHealthWatcher(spec);
    console.log(`health-watch lab up in ${Math.round((Date.now() - started) / 1000)} s`);
  });
  afterAll(() => {
    target?.destroy();
    console.log(`health-watch suite: ${Math.round((Date.now() - started) / 1000)} s`);
  });

  const read = (): Promise<WatcherStatus> => readWatcherReport(target.shell, target.hub, { nowSeconds: () => Date.now() / 1000 });

  /** Polls the report until `ok` holds for a fresh one; returns it with the time it was seen. */
  async function until(ok: (w: Readable) => boolean, timeoutMs: number, what: string): Promise<Readable> {
    const deadline = Date.now() + timeoutMs;
    let last: WatcherStatus | undefined;
    while (Date.now() < deadline) {
      last = await read();
      if (last.readable && !last.stale && ok(last)) return last;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${what}: not within ${timeoutMs / 1000} s; last report: ${JSON.stringify(last && (last.readable ? { at: last.report.at, findings: last.report.findings, errors: last.report.errors } : last.reason))}`);
  }

  it('writes a healthy report every heartbeat, with the thresholds of the spec, agreeing with the engine', async () => {
    const w = await until((x) => x.report.sequence >= 2 && x.report.verdict.healthy, 30_000, 'a healthy report');
    expect(w.agreesWithEngine).toBe(true);
    expect(w.path).toBe(HEALTH_WATCH_REPORT_PATH);
    expect(w.report.thresholds).toEqual(detectThresholds(spec.spec.selfHealing));
    expect(w.report.detectAfterProbes).toBe(3);
    expect(w.report.facts.etcd?.members.map((m) => m.name)).toEqual(['cp-1', 'cp-2', 'cp-3']);
    expect(Object.keys(w.report.facts.wg1Handshakes ?? {}).sort()).toEqual(['cp-1', 'cp-2', 'cp-3', 'w-1']);
    // wg2 and wg3 read on the hub the same way (facts beside the verdict): every spoke has a peer
    // there with a real handshake (not 0) within the handshake limit.
    for (const plane of ['wg2Handshakes', 'wg3Handshakes'] as const) {
      const hs = w.report.facts[plane] ?? {};
      expect(Object.keys(hs).sort(), plane).toEqual(['cp-1', 'cp-2', 'cp-3', 'w-1']);
      for (const [node, at] of Object.entries(hs)) {
        expect(at, `${plane} ${node}`).toBeGreaterThan(0);
        expect(w.report.at - at, `${plane} ${node}`).toBeLessThanOrEqual(w.report.thresholds.handshakeMaxAgeSeconds);
      }
    }
    expect(w.report.errors).toEqual([]);
    // The watcher's own engine-side check: the facts it reports give its verdict.
    expect(evaluateHealth(w.report.facts, w.report.thresholds).healthy).toBe(true);
  });

  it("carries every node's artifact version and boot slot, read from its node exporter over wg2", async () => {
    const t0 = Date.now();
    const plan = target.lab.plan;
    const w = await until((x) => (x.report.nodeMetrics ?? []).length === plan.nodes.length && x.report.nodeMetrics!.every((m) => !('error' in m)), 20_000, "every node's version in the report");
    const digest = (role: string) => sha256Hex(`lab payload of ${role}`);
    expect(w.report.nodeMetrics!.map((m) => ('error' in m ? [m.node, m.error] : [m.node, m.version, m.slot, m.buildDigest]))).toEqual(
      plan.nodes.map((n) => [n.name, plan.cluster.artifactVersion, 'single', digest(n.role)]).sort((a, b) => a[0]!.localeCompare(b[0]!)),
    );
    // Beside the verdict, never judged: the report still agrees with the engine on its facts.
    expect(w.agreesWithEngine).toBe(true);
    console.log(`node versions in the watcher's report: ${w.report.nodeMetrics!.length} nodes, ${((Date.now() - t0) / 1000).toFixed(1)} s after the watcher's first report`);
  });

  it(`flags ${NODE} when the hub cuts its planes, within the detection threshold, and clears it once healed`, async () => {
    const ops = target.ops('partition-node');
    if (!ops) throw new Error('the lab has no partition-node');
    const ctx: PhaseContext = { sh: target.shell, node: NODE, health: { healthy: true, nodes: [], findings: [], notObserved: [] }, log: (l) => console.log(l) };
    const before = await until((x) => x.report.verdict.healthy, 20_000, 'healthy before the cut');
    console.log(await ops.inject(ctx));
    const cutAt = Date.now() / 1000;
    try {
      const t = before.report.thresholds;
      // silenceSeconds of probes in a row, each of which may wait for etcdctl's dial + command timeouts.
      const etcdWait = 1 + 2;
      const bound = t.silenceSeconds + before.report.detectAfterProbes * etcdWait + 3;
      // What a drill's detect phase on a deployed cluster waits for.
      const { status: flagged, latencySeconds: detected, firstSeenSeconds: firstSeen } = await waitForWatcherDetection(target.shell, target.hub, NODE, { afterSeconds: cutAt, timeoutMs: (bound + 10) * 1000 });
      const finding = flagged.report.findings.find((f) => f.node === NODE && f.signal === 'etcd-member');
      expect(finding, JSON.stringify(flagged.report.findings)).toBeDefined();
      console.log(`${NODE}: first seen ${firstSeen.toFixed(1)} s after the cut, detected (${finding!.probes} probes in a row) after ${detected.toFixed(1)} s; bound ${bound} s`);
      expect(finding!.probes).toBeGreaterThanOrEqual(flagged.report.detectAfterProbes);
      expect(firstSeen).toBeGreaterThanOrEqual(-0.5);
      expect(detected).toBeLessThanOrEqual(bound);
      // Only the cut node is flagged; quorum holds with 2 of 3.
      expect(flagged.report.detected).toEqual([NODE]);
      expect(flagged.report.verdict.etcd).toMatchObject({ members: 3, healthy: 2, hasQuorum: true });
      expect(flagged.agreesWithEngine).toBe(true);
    } finally {
      console.log(await ops.replace(ctx));
    }
    const healedAt = Date.now() / 1000;
    const clear = await until((x) => x.report.at > healedAt && !x.report.findings.some((f) => f.node === NODE), 45_000, `${NODE} clear after the heal`);
    console.log(`${NODE}: clear ${(clear.report.at - healedAt).toFixed(1)} s after the heal`);
    expect(clear.report.verdict.healthy).toBe(true);
    expect(clear.report.detected).toEqual([]);
  });

  const drill = (node: string): Promise<DrillRecord> =>
    runDrill({
      target,
      spec,
      scenario: 'partition-node',
      node,
      thresholds: detectThresholds(spec.spec.selfHealing),
      thresholdsSource: 'spec selfHealing.detect',
      id: drillId(new Date(), 'partition-node', node),
      store: () => undefined,
      nextOnInterrupt: 'rerun the drill',
      phaseTimeoutMs: 90_000,
      log: (l) => console.log(`[partition-node ${node}] ${l}`),
    });

  it('a partition-node drill detects through the watcher in the hub (not the engine\'s own probes)', async () => {
    const r = await drill('cp-2');
    console.log(renderDrillRecord(r));
    expect(r.status, JSON.stringify(r.error)).toBe('passed');
    expect(r.detectedBy).toBe('hub-watcher');
    const detect = r.phases.find((p) => p.name === 'detect');
    expect(detect?.detail).toMatch(/^hub watcher: etcd-member since \d\d:\d\d:\d\d\.\dZ .*3 probes in a row.*first seen -?\d+\.\d s after the fault; report \d+\.\d s old$/);
    // The phase read the report (cat on the hub) and ran no probe of its own (no etcdctl, no wg).
    expect(detect?.commands.length).toBeGreaterThan(0);
    expect(detect?.commands.every((c) => c.node === target.hub && c.argv[0] === 'cat' && c.argv[1] === HEALTH_WATCH_REPORT_PATH)).toBe(true);
    expect(detect?.durationMs ?? Infinity).toBeLessThan(20_000);
    // The healthy gate stayed on the engine's probes: it saw the re-admitted node itself.
    expect(r.phases.find((p) => p.name === 'healthy')?.commands.some((c) => c.argv[0] === 'etcdctl')).toBe(true);
  });

  it('with the watcher stopped, its report turns stale and the drill falls back to the engine\'s probes, saying why', async () => {
    await target.stopHealthWatcher();
    // Wait for the report to be stale by the one rule (isStale), then drill.
    const deadline = Date.now() + 30_000;
    let w = await read();
    while (Date.now() < deadline && w.readable && !w.stale) {
      await new Promise((res) => setTimeout(res, 500));
      w = await read();
    }
    expect(w.readable && w.stale, JSON.stringify(w.readable ? w.ageSeconds : w.reason)).toBe(true);
    const r = await drill('cp-1');
    console.log(renderDrillRecord(r));
    expect(r.status, JSON.stringify(r.error)).toBe('passed');
    expect(r.detectedBy).toBe('engine-probes');
    expect(r.phases.find((p) => p.name === 'detect')?.detail).toMatch(/^etcd-member: .*probes in a row, every 1 s; hub watcher's report is stale: written \d+ s ago, fresh means within 3 heartbeats of 1 s .*engine probes used\)$/);
  });
});
