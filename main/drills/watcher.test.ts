// The hub's watcher (payload/backplane/kubedos-health-watch, python3) against the engine: the same
// facts and thresholds give the same verdict (evaluateHealth), and one probe with stand-in `wg`
// and `etcdctl` writes a report the shared schema accepts, with `since` carried across probes.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../common/canonical';
import type { DetectThresholds, HealthFacts } from '../../common/drills/health';
import { evaluateHealth, HealthReport } from '../../common/drills/health';
import type { HealthWatchConfig } from '../../common/drills/watcher';
import { agreesWithEngine, HEALTH_WATCH_REPORT_PATH, parseHealthWatchReport } from '../../common/drills/watcher';
import { run } from '../exec/runner';
import { readHubHealth, readWatcherReport, waitForWatcherDetection } from './watcher-report';
import type { SubstrateDriver } from '../substrate/driver';
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import type { NodeShell } from './shell';

const WATCH = resolve(__dirname, '../../payload/backplane/kubedos-health-watch');
const dir = mkdtempSync(join(tmpdir(), 'h14-watch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NODES = [
  { name: 'master', hub: true, etcd: false },
  { name: 'cp-1', hub: false, etcd: true },
  { name: 'cp-2', hub: false, etcd: true },
  { name: 'cp-3', hub: false, etcd: true },
  { name: 'w-1', hub: false, etcd: false },
];
const member = (name: string, n: number) => ({ id: `a${n}`, name, peerUrls: [`http://10.0.3.${n}:2380`], clientUrls: [`http://10.0.3.${n}:2379`] });
const MEMBERS = [member('cp-1', 1), member('cp-2', 2), member('cp-3', 3)];
const ALL: DetectThresholds = { signals: ['guest-agent', 'wg-handshake', 'kubelet-ready', 'etcd-member', 'converge-drift'], silenceSeconds: 60, handshakeMaxAgeSeconds: 180, heartbeatSeconds: 10 };

function facts(o: Partial<HealthFacts> & { down?: string[] } = {}): HealthFacts {
  const now = o.now ?? 10_000;
  const { down, ...rest } = o;
  return {
    now,
    nodes: NODES,
    wg1Handshakes: { 'cp-1': now - 5, 'cp-2': now - 5, 'cp-3': now - 5, 'w-1': now - 5 },
    etcd: { members: MEMBERS, endpoints: MEMBERS.map((m) => ({ endpoint: m.clientUrls[0]!, healthy: !(down ?? []).includes(m.name), ...((down ?? []).includes(m.name) ? { error: 'context deadline exceeded' } : {}) })) },
    ...rest,
  };
}

const CASES: [string, HealthFacts, DetectThresholds][] = [
  ['healthy, every signal', facts({ convergeDrift: [], guestAgentSeenAt: { master: 9990, 'cp-1': 9990, 'cp-2': 9990, 'cp-3': 9990, 'w-1': 9990 } }), ALL],
  ['guest agent silent and never seen', facts({ guestAgentSeenAt: { master: 9939.5, 'cp-1': 9990 } }), ALL],
  ['no peer, no handshake, stale handshake (a half second rounds up)', facts({ wg1Handshakes: { 'cp-1': 0, 'cp-2': 10_000 - 180.5, 'w-1': 10_000 - 181 } }), ALL],
  ['one etcd member down, with its error', facts({ down: ['cp-2'] }), ALL],
  ['etcd quorum lost', facts({ down: ['cp-1', 'cp-2'] }), ALL],
  ['member list failed', facts({ etcd: { members: [], endpoints: [], error: 'context deadline exceeded' } }), ALL],
  ['an unplanned and an unnamed member', facts({ etcd: { members: [...MEMBERS, member('cp-9', 9), { id: 'ff', name: '', peerUrls: ['http://10.0.3.7:2380'], clientUrls: [] }], endpoints: MEMBERS.map((m) => ({ endpoint: `${m.clientUrls[0]}/`, healthy: true })) } }), ALL],
  ['converge drift', facts({ convergeDrift: ['cp-3', 'w-1'] }), ALL],
  ['drift observed but not a signal; nothing else observed', { now: 5, nodes: NODES, convergeDrift: ['w-1'] }, { signals: ['wg-handshake', 'etcd-member'], silenceSeconds: 3, handshakeMaxAgeSeconds: 123, heartbeatSeconds: 1 }],
  ['fractional thresholds', facts({ wg1Handshakes: { 'cp-1': 10_000 - 130, 'cp-2': 9999, 'cp-3': 9999, 'w-1': 9999 } }), { signals: ['wg-handshake'], silenceSeconds: 1.5, handshakeMaxAgeSeconds: 121.5, heartbeatSeconds: 0.5 }],
  ['wg2/wg3 handshakes are facts only: stale or missing, the verdict is wg1\'s', facts({ wg2Handshakes: { 'cp-1': 0, 'w-1': 1 }, wg3Handshakes: { 'cp-2': 10_000 - 900 } }), ALL],
  ['no etcd members planned', { now: 1, nodes: [NODES[0]!, NODES[4]!], wg1Handshakes: { 'w-1': 1 } }, ALL],
];

describe('kubedos-health-watch evaluate = evaluateHealth', () => {
  // One python3 start for every case (each costs ~0.5 s here).
  let verdicts: unknown[] = [];
  beforeAll(async () => {
    const r = await run(['python3', WATCH, 'evaluate'], { input: JSON.stringify(CASES.map(([, facts, thresholds]) => ({ facts, thresholds }))), timeoutMs: 20_000 });
    verdicts = JSON.parse(r.stdout) as unknown[];
  });
  it.each(CASES.map((c, i) => [...c, i] as const))('%s', (_name, f, t, i) => {
    const watcher = HealthReport.parse(verdicts[i]);
    expect(canonicalJson(watcher)).toBe(canonicalJson(HealthReport.parse(evaluateHealth(f, t))));
  });
});

describe('kubedos-health-watch run --once', () => {
  it('writes a report the shared schema accepts; since and probes carry over; the engine reads it through a shell', async () => {
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    const now = Math.floor(Date.now() / 1000);
    // Stand-ins for the hub's tools: w-1's handshake is 500 s old, cp-2's etcd is down.
    const script = (name: string, body: string) => {
      writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(bin, name), 0o755);
    };
    // wg1 as before; wg2: w-1 never shook hands, cp-3 has no peer; wg3: every node 7 s ago (prefix 10.N.0.x per plane).
    script(
      'wg',
      [
        `case "$2 $3" in`,
        `"wg1 latest-handshakes") printf 'K1=\\t${now - 3}\\nK2=\\t${now - 500}\\nK3=\\t${now - 3}\\nK4=\\t${now - 3}\\n';;`,
        `"wg1 allowed-ips") printf 'K1=\\t10.1.0.11/32\\nK2=\\t10.1.0.21/32\\nK3=\\t10.1.0.12/32\\nK4=\\t10.1.0.13/32\\n';;`,
        `"wg2 latest-handshakes") printf 'L1=\\t${now - 4}\\nL2=\\t0\\nL3=\\t${now - 4}\\n';;`,
        `"wg2 allowed-ips") printf 'L1=\\t10.2.0.11/32\\nL2=\\t10.2.0.21/32\\nL3=\\t10.2.0.12/32\\n';;`,
        `"wg3 latest-handshakes") printf 'M1=\\t${now - 7}\\nM2=\\t${now - 7}\\nM3=\\t${now - 7}\\nM4=\\t${now - 7}\\n';;`,
        `"wg3 allowed-ips") printf 'M1=\\t10.3.0.11/32\\nM2=\\t10.3.0.21/32\\nM3=\\t10.3.0.12/32\\nM4=\\t10.3.0.13/32\\n';;`,
        `*) echo "Unable to access interface: No such device" >&2; exit 1;;`,
        'esac',
      ].join('\n'),
    );
    script(
      'etcdctl',
      [
        'for a; do case "$a" in health) h=1;; list) l=1;; esac; done',
        `[ -n "$h" ] && { echo '[{"endpoint":"http://10.3.0.11:2379","health":true},{"endpoint":"http://10.3.0.12:2379","health":false,"error":"context deadline exceeded"},{"endpoint":"http://10.3.0.13:2379","health":true}]'; exit 1; }`,
        `[ -n "$l" ] && { echo '{"header":{"cluster_id":17237436991929493444},"members":[{"ID":12345678901234567890,"name":"cp-1","peerURLs":["http://10.3.0.11:2380"],"clientURLs":["http://10.3.0.11:2379"]},{"ID":2,"name":"cp-2","peerURLs":["http://10.3.0.12:2380"],"clientURLs":["http://10.3.0.12:2379"]},{"ID":3,"name":"cp-3","peerURLs":["http://10.3.0.13:2380"],"clientURLs":["http://10.3.0.13:2379"]}]}'; exit 0; }`,
      ].join('\n'),
    );
    const cfg: HealthWatchConfig = {
      schema: 'kubedos.health-watch.config/v1',
      cluster: 'c',
      hub: 'master',
      thresholds: { signals: ['wg-handshake', 'etcd-member', 'converge-drift'], silenceSeconds: 60, handshakeMaxAgeSeconds: 180, heartbeatSeconds: 10 },
      detectAfterProbes: 2,
      nodes: [
        { name: 'cp-1', hub: false, etcd: true, wg1: '10.1.0.11/32', wg2: '10.2.0.11/32', wg3: '10.3.0.11/32' },
        { name: 'cp-2', hub: false, etcd: true, wg1: '10.1.0.12/32', wg2: '10.2.0.12/32', wg3: '10.3.0.12/32' },
        { name: 'cp-3', hub: false, etcd: true, wg1: '10.1.0.13/32', wg2: '10.2.0.13/32', wg3: '10.3.0.13/32' },
        { name: 'master', hub: true, etcd: false, wg1: '10.1.0.1/32', wg2: '10.2.0.1/32', wg3: '10.3.0.1/32' },
        { name: 'w-1', hub: false, etcd: false, wg1: '10.1.0.21/32', wg2: '10.2.0.21/32', wg3: '10.3.0.21/32' },
      ],
      etcd: { endpoints: [1, 2, 3].map((i) => ({ node: `cp-${i}`, url: `http://10.3.0.1${i}:2379` })), dialTimeoutSeconds: 1, commandTimeoutSeconds: 2 },
      converge: { record: join(dir, 'no-record.json'), everySeconds: 300, script: 'echo x', ssh: { user: 'ops', key: '/nonexistent', knownHosts: '/nonexistent' } },
      reportPath: join(dir, 'state', 'report.json'),
    };
    const cfgPath = join(dir, 'health-watch.json');
    writeFileSync(cfgPath, JSON.stringify(cfg));
    const env = { PATH: `${bin}:/usr/bin:/bin` };
    await run(['python3', WATCH, 'run', '--once', '--config', cfgPath], { env, timeoutMs: 20_000 });
    const first = parseHealthWatchReport(readFileSync(cfg.reportPath, 'utf8'));
    if (!first.ok) throw new Error(first.reason);
    expect(first.report.facts.etcd?.members.map((m) => m.id)).toEqual(['ab54a98ceb1f0ad2', '2', '3']);
    // Every plane's handshakes in the facts, mapped by the planned /32 of that plane (no peer: no key; never: 0).
    expect(first.report.facts.wg1Handshakes).toEqual({ 'cp-1': now - 3, 'cp-2': now - 3, 'cp-3': now - 3, 'w-1': now - 500 });
    expect(first.report.facts.wg2Handshakes).toEqual({ 'cp-1': now - 4, 'cp-2': now - 4, 'w-1': 0 });
    expect(first.report.facts.wg3Handshakes).toEqual({ 'cp-1': now - 7, 'cp-2': now - 7, 'cp-3': now - 7, 'w-1': now - 7 });
    expect(first.report.findings.map((f) => [f.node, f.signal, f.probes])).toEqual([
      ['cp-2', 'etcd-member', 1],
      ['w-1', 'wg-handshake', 1],
    ]);
    expect(first.report.findings[0]!.detail).toBe('etcd member unhealthy: context deadline exceeded');
    expect(first.report.detected).toEqual([]);
    expect(first.report.verdict.notObserved).toEqual(['converge-drift']);
    expect(first.report.errors.join('\n')).toMatch(/converge fingerprints not taken yet|no converge record/);
    expect(agreesWithEngine(first.report)).toEqual({ agrees: true });
    await run(['python3', WATCH, 'run', '--once', '--config', cfgPath], { env, timeoutMs: 20_000 });
    const second = parseHealthWatchReport(readFileSync(cfg.reportPath, 'utf8'));
    if (!second.ok) throw new Error(second.reason);
    expect(second.report.findings.map((f) => [f.node, f.probes, f.since])).toEqual(first.report.findings.map((f) => [f.node, 2, f.since]));
    expect(second.report.detected).toEqual(['cp-2', 'w-1']);
    // The engine's reader, through a NodeShell that runs on this machine as if it were the hub.
    // The runner allows only its listed tools on this machine: the argv runs under `env` as a lab node's would under nsenter.
    const local: NodeShell = { exec: (_node, argv, o) => run(['env', ...argv], { ...(o?.anyExit ? { okExitCodes: Array.from({ length: 256 }, (_, i) => i) } : {}), timeoutMs: 10_000 }) };
    const w = await readWatcherReport(local, 'master', { nowSeconds: () => second.report.at + 1, path: cfg.reportPath });
    expect(w).toMatchObject({ readable: true, stale: false, agreesWithEngine: true, ageSeconds: 1 });
    const missing = await readWatcherReport(local, 'master', { nowSeconds: () => 0, path: join(dir, 'nothing.json') });
    expect(missing).toMatchObject({ readable: false, reason: expect.stringMatching(/no report at .*nothing\.json on master .*kubedos-health-watch/) });
    // The detect phase's wait: w-1 and cp-2 are detected in this report; a node that is not runs out of time.
    const det = await waitForWatcherDetection(local, 'master', 'w-1', { afterSeconds: second.report.at - 1, timeoutMs: 2000, nowSeconds: () => second.report.at + 1, path: cfg.reportPath });
    expect(det.latencySeconds).toBe(1);
    expect(det.firstSeenSeconds).toBeCloseTo(first.report.at - (second.report.at - 1), 6);
    await expect(waitForWatcherDetection(local, 'master', 'cp-1', { afterSeconds: 0, timeoutMs: 600, pollMs: 100, nowSeconds: () => second.report.at + 1, path: cfg.reportPath })).rejects.toThrow(
      /did not report cp-1 as detected within 1 s \(findings: cp-2 etcd-member ×2, w-1 wg-handshake ×2\)/,
    );
    // The same report read from a deployed cluster's hub through the substrate's guest agent.
    writeFileSync(join(dir, 'lab-3.yaml'), TEMPLATES['lab-3'].text);
    const hubVmid = plan(parseSpec(TEMPLATES['lab-3'].text).spec!).nodes.find((n) => n.hub)!.vmid;
    const calls: [number, readonly string[]][] = [];
    const driver = {
      guestExec: async (vmid: number, argv: readonly string[]) => {
        calls.push([vmid, argv]);
        return { exitCode: 0, stdout: readFileSync(cfg.reportPath, 'utf8'), stderr: '' };
      },
      close: async () => undefined,
    } as unknown as SubstrateDriver;
    const viaAgent = await readHubHealth({ specPath: join(dir, 'lab-3.yaml'), target: { kind: 'qemu-local' }, env: { KUBEDOS_WORKSPACE: dir }, driver });
    expect(viaAgent).toMatchObject({ readable: true, hub: 'master', agreesWithEngine: true });
    expect(calls).toEqual([[hubVmid, ['cat', HEALTH_WATCH_REPORT_PATH]]]);
    const down = { guestExec: async () => Promise.reject(new Error('guest agent not answering')), close: async () => undefined } as unknown as SubstrateDriver;
    expect(await readHubHealth({ specPath: join(dir, 'lab-3.yaml'), target: { kind: 'qemu-local' }, env: { KUBEDOS_WORKSPACE: dir }, driver: down })).toMatchObject({
      readable: false,
      reason: expect.stringMatching(/^could not reach master to read \/var\/lib\/kubedos\/health\/report\.json: .*guest agent not answering/),
    });
  });

  it('converge drift: the hub fingerprints itself, the others over SSH on wg1, against the record converge left', async () => {
    const base = join(dir, 'drift');
    const bin = join(base, 'bin');
    mkdirSync(bin, { recursive: true });
    const A = 'a'.repeat(64);
    const B = 'b'.repeat(64);
    // ssh stand-in: logs its argv and stdin, answers per host (w-1 moved, cp-3 unreachable).
    writeFileSync(
      join(bin, 'ssh'),
      [
        '#!/bin/sh',
        `printf '%s\\n' "$*" >> ${base}/ssh.log`,
        `cat >> ${base}/ssh.stdin`,
        'for a; do case "$a" in ops@*) host=${a#ops@};; esac; done',
        `case "$host" in 10.1.0.21) echo ${B};; 10.1.0.13) echo "ssh: connect to host $host port 22: No route to host" >&2; exit 255;; *) echo ${A};; esac`,
        '',
      ].join('\n'),
    );
    chmodSync(join(bin, 'ssh'), 0o755);
    writeFileSync(join(bin, 'wg'), '#!/bin/sh\nexit 0\n');
    chmodSync(join(bin, 'wg'), 0o755);
    const record = join(base, 'fingerprints.json');
    writeFileSync(record, JSON.stringify({ runId: 'r1', nodes: { master: A, 'cp-1': A, 'cp-2': A, 'cp-3': A, 'w-1': A } }));
    const cfg: HealthWatchConfig = {
      schema: 'kubedos.health-watch.config/v1',
      cluster: 'c',
      hub: 'master',
      thresholds: { signals: ['converge-drift'], silenceSeconds: 60, handshakeMaxAgeSeconds: 180, heartbeatSeconds: 10 },
      detectAfterProbes: 1,
      nodes: [
        { name: 'cp-1', hub: false, etcd: false, wg1: '10.1.0.11/32', wg2: '10.2.0.11/32', wg3: '10.3.0.11/32' },
        { name: 'cp-3', hub: false, etcd: false, wg1: '10.1.0.13/32', wg2: '10.2.0.13/32', wg3: '10.3.0.13/32' },
        { name: 'master', hub: true, etcd: false, wg1: '10.1.0.1/32', wg2: '10.2.0.1/32', wg3: '10.3.0.1/32' },
        { name: 'w-1', hub: false, etcd: false, wg1: '10.1.0.21/32', wg2: '10.2.0.21/32', wg3: '10.3.0.21/32' },
      ],
      converge: { record, everySeconds: 300, script: `echo ${A}\n`, ssh: { user: 'ops', key: '/root/.ssh/kubedos_converge', knownHosts: '/etc/kubedos/ansible/known_hosts' } },
      reportPath: join(base, 'report.json'),
    };
    writeFileSync(join(base, 'cfg.json'), JSON.stringify(cfg));
    await run(['python3', WATCH, 'run', '--once', '--config', join(base, 'cfg.json')], { env: { PATH: `${bin}:/usr/bin:/bin` }, timeoutMs: 20_000 });
    const r = parseHealthWatchReport(readFileSync(cfg.reportPath, 'utf8'));
    if (!r.ok) throw new Error(r.reason);
    expect(r.report.facts.convergeDrift).toEqual(['w-1']);
    expect(r.report.verdict.converged).toBe(false);
    expect(r.report.findings.map((f) => [f.node, f.signal])).toEqual([['w-1', 'converge-drift']]);
    expect(r.report.detected).toEqual(['w-1']);
    // An unreachable node is not called drifted (the planes' signals see it); the probe error says why.
    expect(r.report.errors).toEqual([expect.stringMatching(/^cp-3: converge fingerprint not taken \(exit 255: ssh: connect to host 10\.1\.0\.13 port 22: No route to host\)$/)]);
    expect(agreesWithEngine(r.report)).toEqual({ agrees: true });
    const log = readFileSync(join(base, 'ssh.log'), 'utf8').trim().split('\n').sort();
    expect(log).toHaveLength(3);
    expect(log[0]).toBe('-i /root/.ssh/kubedos_converge -o BatchMode=yes -o ConnectTimeout=5 -o UserKnownHostsFile=/etc/kubedos/ansible/known_hosts -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null ops@10.1.0.11 sudo -n env LC_ALL=C sh -s');
    expect(readFileSync(join(base, 'ssh.stdin'), 'utf8')).toBe(`echo ${A}\n`.repeat(3));
  });
});

describe('kubedos-health-watch: converge drift follows the record', () => {
  it('a new record starts a new take at once (not everySeconds later) and drops what a take against the old record found', async () => {
    const base = join(dir, 'restamp');
    mkdirSync(base, { recursive: true });
    const A = 'a'.repeat(64);
    const B = 'b'.repeat(64);
    const record = join(base, 'fingerprints.json');
    // The hub fingerprints itself with the configured script (echo A); the first record says B.
    writeFileSync(record, JSON.stringify({ runId: 'r1', nodes: { master: B } }));
    const py = [
      'import importlib.machinery, importlib.util, json, os, sys, time',
      "loader = importlib.machinery.SourceFileLoader('hw', sys.argv[1])",
      "m = importlib.util.module_from_spec(importlib.util.spec_from_loader('hw', loader))",
      'loader.exec_module(m)',
      // While the hold file exists the take waits, so what drift() answers right after the record
      // moved does not depend on how fast the take's thread runs (it raced on a loaded CI machine).
      "hold = sys.argv[2] + '.hold'",
      `p = m.ConvergeProbe({'nodes': [{'name': 'master', 'hub': True}], 'converge': {'record': sys.argv[2], 'everySeconds': 300, 'script': 'while [ -e ' + hold + ' ]; do sleep 0.02; done\\necho ${A}\\n'}})`,
      'def settle(t):',
      '    for _ in range(200):',
      '        r = p.drift(t)',
      '        if r[0] is not None: return r[0]',
      '        time.sleep(0.05)',
      '    return None',
      'out = [settle(1000.0)]',
      "open(hold, 'w').close()",
      // Rewritten in place, same length: only the content tells it moved.
      `open(sys.argv[2], 'w').write(json.dumps({'runId': 'r2', 'nodes': {'master': '${A}'}}))`,
      'out.append(p.drift(1001.0))',
      'os.unlink(hold)',
      'out.append(settle(1002.0))',
      'print(json.dumps(out))',
    ].join('\n');
    const r = await run(['python3', '-c', py, WATCH, record], { env: { PATH: '/usr/bin:/bin' }, timeoutMs: 30_000 });
    const [first, right, after] = JSON.parse(r.stdout) as [string[], [string[] | null, string[]], string[]];
    expect(first).toEqual(['master']);
    // One second later (everySeconds is 300): the drift against the old record is not reported.
    expect(right).toEqual([null, ['converge fingerprints not taken yet against the current record']]);
    expect(after).toEqual([]);
  });
});

describe("kubedos-health-watch: the nodes' versions from their node exporters over wg2", () => {
  it('reads kubedos_artifact_info from each node, says why for a node without it or without an exporter, and leaves the verdict alone', async () => {
    const { createServer } = await import('node:http');
    const served: string[] = [];
    const exporter = (body: string) =>
      createServer((req, res) => {
        served.push(req.url ?? '');
        res.end(body);
      });
    // Stand-ins on loopback addresses as the nodes' wg2: master and cp-1 serve the metric (cp-1's
    // labels escaped), w-1's exporter serves other metrics only, cp-2 has no exporter at all.
    const a = exporter('# HELP x\nnode_load1 0.1\nkubedos_artifact_info{build_digest="' + 'a'.repeat(64) + '",cluster="c",role="master",slot="single",version="2026.12.1"} 1\n');
    await new Promise<void>((res) => a.listen(0, '127.0.0.11', res));
    const port = (a.address() as { port: number }).port;
    const b = exporter('kubedos_artifact_info{build_digest="' + 'b'.repeat(64) + '",slot="b",version="2026.12.2 \\"rc\\""} 1\n');
    const c = exporter('node_load1 0.1\n');
    await new Promise<void>((res) => b.listen(port, '127.0.0.12', res));
    await new Promise<void>((res) => c.listen(port, '127.0.0.14', res));
    try {
      const cfg: HealthWatchConfig = {
        schema: 'kubedos.health-watch.config/v1',
        cluster: 'c',
        hub: 'master',
        thresholds: { signals: ['wg-handshake'], silenceSeconds: 60, handshakeMaxAgeSeconds: 180, heartbeatSeconds: 10 },
        detectAfterProbes: 2,
        nodes: [
          { name: 'master', hub: true, etcd: false, wg1: '10.1.0.1/32', wg2: '127.0.0.11/32', wg3: '10.3.0.1/32' },
          { name: 'cp-1', hub: false, etcd: false, wg1: '10.1.0.11/32', wg2: '127.0.0.12/32', wg3: '10.3.0.11/32' },
          { name: 'cp-2', hub: false, etcd: false, wg1: '10.1.0.12/32', wg2: '127.0.0.13/32', wg3: '10.3.0.12/32' },
          { name: 'w-1', hub: false, etcd: false, wg1: '10.1.0.21/32', wg2: '127.0.0.14/32', wg3: '10.3.0.21/32' },
        ],
        nodeMetrics: { plane: 'wg2', port, everySeconds: 30 },
        reportPath: join(dir, 'metrics', 'report.json'),
      };
      const cfgPath = join(dir, 'health-watch-metrics.json');
      writeFileSync(cfgPath, JSON.stringify(cfg));
      const bin = join(dir, 'bin-metrics');
      mkdirSync(bin);
      writeFileSync(join(bin, 'wg'), '#!/bin/sh\necho "Unable to access interface: No such device" >&2\nexit 1\n');
      chmodSync(join(bin, 'wg'), 0o755);
      await run(['python3', WATCH, 'run', '--once', '--config', cfgPath], { env: { PATH: `${bin}:/usr/bin:/bin` }, timeoutMs: 20_000 });
      const parsed = parseHealthWatchReport(readFileSync(cfg.reportPath, 'utf8'));
      if (!parsed.ok) throw new Error(parsed.reason);
      const r = parsed.report;
      expect(r.nodeMetrics?.map((m) => ('error' in m ? [m.node, m.error] : [m.node, m.version, m.slot, m.buildDigest.slice(0, 4)]))).toEqual([
        ['cp-1', '2026.12.2 "rc"', 'b', 'bbbb'],
        ['cp-2', expect.stringMatching(new RegExp(`^node exporter on http://127\\.0\\.0\\.13:${port} did not answer \\(.*refused`))],
        ['master', '2026.12.1', 'single', 'aaaa'],
        ['w-1', 'its node exporter serves no kubedos_artifact_info (is the kubedos-node-metrics timer running, and /etc/kubedos/payload.json there?)'],
      ]);
      // Only the textfile collector is asked for (a small answer every 30 s).
      expect([...new Set(served)]).toEqual(['/metrics?collect[]=textfile']);
      for (const m of r.nodeMetrics ?? []) expect(Math.abs(m.at - r.at)).toBeLessThan(10);
      // Never judged: the verdict is that of the same facts, and agrees with the engine's.
      expect(agreesWithEngine(r)).toEqual({ agrees: true });
      expect(r.verdict.notObserved).toEqual(['wg-handshake']);
      expect(r.findings).toEqual([]);
    } finally {
      for (const s of [a, b, c]) s.close();
    }
  });
});
