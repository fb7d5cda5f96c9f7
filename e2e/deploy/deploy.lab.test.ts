// Deploy end to end (issue "Deploy end to end", item 5): lab-3 onto qemu-local under TCG from the
// qcow2 path, with no route out of the VMs' network (the qemu-local L2 has no uplink). One real
// `kubedos deploy` builds the darksite and the role images, provisions three VMs, waits for first
// boot through the guest agents, checks the planes, enrolls the nodes, lets the master converge
// the cluster with Ansible over wg1, runs the workload stage and seals a recovery bundle that
// `kubedos verify` accepts. The cluster is then checked from inside (etcd over wg3 with TLS,
// Prometheus on wg2, handshakes on every plane) and a second deploy must report every stage
// unchanged without running Ansible; with KUBEDOS_LAB_REPAIR=1, a file changed by hand on one node
// is then repaired by a converge of that node only. With KUBEDOS_LAB_IMAGES=1 (npm run
// test:deploy:images) the spec also declares one image, written by our own code and served during
// the build by a loopback registry stand-in (e2e/sources/registry.ts): Kubernetes stays off, the
// workload stage runs containerd alone, and w-1 runs a container of that image from the artifact.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plan } from '../../common/plan/index';
import type { Plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { QemuLocalDriver } from '../../main/substrate/qemu-local';
import { ownershipTags } from '../../main/substrate/provision';
import { dropLabBulk } from '../lab-output';
import { DEPLOY_LAB, deployEnv, etcdctlOn, imagesSpecText, kubedosAsync, LAB_IMAGES, outcomes, requireRoot, writeSpec } from './env';
import { SBOM_FILE } from '../../main/build/attest';
import type { LoopbackRegistry } from '../sources/registry';
import { printExecutable, pushImage, startRegistry } from '../sources/registry';
import { processesMentioning } from '../processes';
import { ClusterHealthNow } from '../../common/health/now';

const WS = join(DEPLOY_LAB, 'workspace');
const STAGES = ['validate', 'plan', 'build', 'provision', 'firstboot', 'backplanes', 'enroll', 'converge', 'workload', 'seal'];
const p: Plan = plan(parseSpec(TEMPLATES['lab-3'].text).spec!);
const node = (name: string) => p.nodes.find((n) => n.name === name)!;
const ip = (a: string) => a.replace(/\/32$/, '');
let driver: QemuLocalDriver;
let spec: string;
// KUBEDOS_LAB_IMAGES=1 only: the registry stand-in (up for the first deploy's build) and the image.
const PROOF_TEXT = 'kubedos proof: a container from the darksite\n';
let registryRoot: string | undefined;
let registry: LoopbackRegistry | undefined;
let proof: { reference: string; digest: string } | undefined;

async function inGuest(name: string, argv: string[]) {
  return driver.guestExec(node(name).vmid, argv, { timeoutS: 120 });
}

describe('kubedos deploy lab-3 --target qemu-local (TCG, qcow2 path, no route out)', () => {
  beforeAll(async () => {
    requireRoot();
    // A fresh cluster every run: VMs of an earlier run are destroyed by afterAll; the workspace
    // (journal, secrets, VM state) starts empty. The build cache lives in the workspace.
    rmSync(WS, { recursive: true, force: true });
    if (LAB_IMAGES) {
      // One image of a static executable (no libc in it), pushed to a loopback registry that only
      // the foundry's build reaches; the VMs get it from the artifact, with no route out.
      registryRoot = mkdtempSync(join(tmpdir(), 'kubedos-deploy-images-'));
      registry = await startRegistry(registryRoot);
      const pushed = await pushImage(registry.host, 'kubedos/kdproof', '1.0', [{ name: 'kdproof', content: printExecutable(PROOF_TEXT), mode: 0o755 }], ['/kdproof']);
      proof = { reference: `${registry.host}/kubedos/kdproof:1.0`, digest: pushed.digest };
      spec = writeSpec(DEPLOY_LAB, 'lab-3.yaml', imagesSpecText({ name: 'kdproof', ...proof }));
    } else {
      spec = writeSpec(DEPLOY_LAB);
    }
    driver = new QemuLocalDriver({ stateDir: join(WS, 'clusters/lab-3/vms'), ownership: { tags: ownershipTags(p), vmidRange: p.substrate.vmidRange } });
  });

  afterAll(async () => {
    registry?.stop();
    if (registryRoot) rmSync(registryRoot, { recursive: true, force: true });
    for (const n of p.nodes) await driver?.destroy(n.vmid, { allowDestroy: true }).catch(() => undefined);
    dropLabBulk(WS, [join(WS, 'cache')]);
  });

  it('deploys: every stage succeeds', async () => {
    const r = await kubedosAsync(['deploy', spec, '--target', 'qemu-local', '--verbose'], { env: deployEnv(WS), cwd: DEPLOY_LAB, logFile: join(DEPLOY_LAB, 'deploy-1.log'), timeoutMs: 55 * 60_000 });
    console.log(`[bench] first deploy of lab-3: ${(r.ms / 1000).toFixed(0)} s`);
    expect(r.stderr + r.stdout.slice(-4000)).not.toMatch(/deploy stopped/);
    expect(r.status).toBe(0);
    const o = outcomes(r.stdout);
    expect(Object.keys(o)).toEqual(STAGES);
    for (const s of STAGES) expect(o[s], s).not.toMatch(/failed|skipped|aborted/);
    // lab-3 turns Kubernetes off (no upstream sources): the workload stage says so and what the spec enables.
    if (LAB_IMAGES) expect(r.stdout).toMatch(/Kubernetes off; containerd running with 1 image from the artifact on cp-1, w-1; the spec enables etcd, prometheus/);
    else expect(r.stdout).toMatch(/Kubernetes off in the spec: no workload layer installed; the spec enables etcd, prometheus, set up by the converge stage/);
  }, 56 * 60_000);

  it('has no route out of the VMs\' network', async () => {
    for (const n of p.nodes) {
      const routes = await inGuest(n.name, ['ip', '-4', 'route', 'show', 'default']);
      expect(routes.stdout.trim(), n.name).toBe('');
      const addr = await inGuest(n.name, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'lan0']);
      expect(addr.stdout).toContain(`${n.lan.address}/20`);
    }
  });

  it.runIf(LAB_IMAGES)('w-1 runs a container of the darksite\'s image through containerd, with no route out; the SBOM lists the image by digest', async () => {
    const { reference, digest } = proof!;
    // The stand-in is no longer needed: the node has the image from the artifact only.
    registry?.stop();
    expect((await inGuest('w-1', ['ip', '-4', 'route', 'show', 'default'])).stdout.trim()).toBe('');
    const ls = await inGuest('w-1', ['ctr', '-n', 'k8s.io', 'images', 'ls']);
    expect(ls.exitCode, ls.stderr).toBe(0);
    const row = ls.stdout.split('\n').find((l) => l.startsWith(`${reference} `));
    expect(row, ls.stdout).toBeDefined();
    expect(row).toContain(digest);
    const run = await inGuest('w-1', ['ctr', '-n', 'k8s.io', 'run', '--rm', reference, 'kdproof', '/kdproof']);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toBe(PROOF_TEXT);
    const sbom = JSON.parse(readFileSync(join(WS, 'clusters/lab-3/build', SBOM_FILE), 'utf8')) as { components: { type: string; version?: string; properties?: { name: string; value: string }[] }[] };
    const c = sbom.components.filter((x) => x.type === 'container');
    expect(c.map((x) => [x.version, x.properties?.find((y) => y.name === 'kubedos:reference')?.value])).toEqual([[digest, reference]]);
  }, 300_000);

  it('every node has fresh handshakes with the hub on wg1, wg2 and wg3', async () => {
    for (const n of p.nodes.filter((x) => !x.hub)) {
      for (const plane of ['wg1', 'wg2', 'wg3'] as const) {
        const r = await inGuest(n.name, ['ping', '-c', '1', '-W', '3', '-I', plane, ip(node('master').planes[plane].address)]);
        expect(r.exitCode, `${n.name} → master on ${plane}`).toBe(0);
      }
    }
    const st = JSON.parse((await inGuest('master', ['/usr/lib/kubedos/backplane/kubedos-planes', 'status'])).stdout);
    for (const plane of ['wg1', 'wg2', 'wg3']) expect(st.planes[plane].peers.filter((x: { latestHandshake: number }) => x.latestHandshake > 0)).toHaveLength(2);
    const hub = JSON.parse((await inGuest('master', ['/usr/lib/kubedos/backplane/kubedos-enroll-hub', 'status'])).stdout);
    expect(hub.enrolled).toEqual(['cp-1', 'w-1']);
    expect(hub.window).toBeNull();
  });

  it('converged for real: etcd on wg3 with TLS from the cluster CA, Prometheus on wg2 scraping every node', async () => {
    const cp = node('cp-1');
    const wg3 = ip(cp.planes.wg3.address);
    const health = await inGuest('cp-1', [...etcdctlOn(cp), 'endpoint', 'health']);
    expect(health.stdout + health.stderr).toMatch(/is healthy/);
    // Plain HTTP is refused: the member speaks TLS only.
    const plain = await inGuest('cp-1', ['etcdctl', `--endpoints=http://${wg3}:2379`, '--dial-timeout=3s', 'endpoint', 'health']);
    expect(plain.exitCode).not.toBe(0);
    const prom = ip(node('master').planes.wg2.address);
    const script = `import json,urllib.request,time
for _ in range(30):
    t=json.load(urllib.request.urlopen("http://${prom}:9090/api/v1/targets"))["data"]["activeTargets"]
    if t and all(x["health"]=="up" for x in t): break
    time.sleep(5)
print(json.dumps(sorted((x["labels"].get("instance",""),x["health"]) for x in t)))`;
    const targets = await inGuest('master', ['python3', '-c', script]);
    const list = JSON.parse(targets.stdout) as [string, string][];
    for (const n of p.nodes) expect(list, n.name).toContainEqual([`${ip(n.planes.wg2.address)}:9100`, 'up']);
  }, 300_000);

  // The live health a user reads (`kubedos status --health`, the Topology view): the hub's own
  // watcher report through the guest agent, folded per node; nothing here is injected.
  it('kubedos status --health: the hub watcher\'s report is fresh and agrees with the engine; every node answers, with its wg1, wg2 and wg3 handshakes measured and fresh', async () => {
    const r = await kubedosAsync(['status', spec, '--health', '--target', 'qemu-local', '--json'], { env: deployEnv(WS), cwd: DEPLOY_LAB, logFile: join(DEPLOY_LAB, 'status-health.log'), timeoutMs: 300_000 });
    const out = JSON.parse(r.stdout) as { live?: ClusterHealthNow };
    const live = ClusterHealthNow.parse(out.live);
    console.log(`[health] ${live.nodes.map((n) => `${n.name}: ${n.state} (${n.summary})`).join('; ')}; report ${live.report ? `${live.report.ageSeconds.toFixed(0)} s old, errors: ${live.report.errors.join(' | ') || 'none'}` : 'none'}`);
    expect(live.unavailable, live.unavailable?.message).toBeUndefined();
    expect(live.report).toMatchObject({ stale: false, agreesWithEngine: true });
    expect(live.etcd).toMatchObject({ members: 1, healthy: 1, hasQuorum: true });
    for (const n of live.nodes) {
      expect(n.agent, `${n.name} agent`).toMatchObject({ measured: true, ok: true });
      if (n.name === 'master') continue;
      for (const plane of ['wg1', 'wg2', 'wg3'] as const) expect(n.handshakes[plane], `${n.name} ${plane}`).toMatchObject({ measured: true, ok: true });
      // The drift check runs every 300 s: right after a deploy it may not have run yet, never a drift.
      if (n.converge.measured) expect(n.converge, `${n.name} converge`).toMatchObject({ ok: true });
    }
    expect(live.nodes.map((n) => n.state).filter((x) => x === 'unreachable' || x === 'unknown')).toEqual([]);
    expect(r.status).toBe(0);
  }, 360_000);

  it('sealed a recovery bundle that kubedos verify accepts', async () => {
    const bundle = join(WS, 'clusters/lab-3/bundle');
    const r = await kubedosAsync(['verify', bundle], { env: deployEnv(WS), cwd: DEPLOY_LAB, logFile: join(DEPLOY_LAB, 'verify.log'), timeoutMs: 120_000 });
    expect(r.stdout + r.stderr).not.toMatch(/mismatch|FAILED/i);
    expect(r.status).toBe(0);
  });

  it('a second deploy reports every stage unchanged, and converge runs no Ansible (every fingerprint matches)', async () => {
    const r = await kubedosAsync(['deploy', spec, '--target', 'qemu-local', '--verbose'], { env: deployEnv(WS), cwd: DEPLOY_LAB, logFile: join(DEPLOY_LAB, 'deploy-2.log'), timeoutMs: 30 * 60_000 });
    console.log(`[bench] converged re-deploy of lab-3: ${(r.ms / 1000).toFixed(0)} s`);
    expect(r.status).toBe(0);
    const o = outcomes(r.stdout);
    expect(o).toEqual(Object.fromEntries(STAGES.map((s) => [s, 'unchanged'])));
    expect(r.stdout).toMatch(/every node's fingerprint and the converge inputs match the last converge .*Ansible not run/);
    expect(r.stdout).not.toMatch(/ansible-playbook -i \S+ -e @\S+ --tags baseline/);
  }, 31 * 60_000);

  // Opt-in (KUBEDOS_LAB_REPAIR=1: npm run test:deploy:repair, and the lifecycle and drill runs of this
  // file): a converge of one node under TCG is 5 min, more than CI's budget leaves. CI keeps the
  // converged redeploy above; the choice of nodes is unit-tested (converge-state.test.ts).
  it.runIf(process.env.KUBEDOS_LAB_REPAIR === '1')('a file changed by hand on one node is repaired by a converge of that node only', async () => {
    const f = '/etc/ssh/sshd_config.d/50-kubedos.conf';
    const before = (await inGuest('w-1', ['sha256sum', f])).stdout;
    await inGuest('w-1', ['sh', '-c', `echo '# changed by hand' >> ${f}`]);
    expect((await inGuest('w-1', ['sha256sum', f])).stdout).not.toBe(before);
    const r = await kubedosAsync(['deploy', spec, '--target', 'qemu-local', '--verbose'], { env: deployEnv(WS), cwd: DEPLOY_LAB, logFile: join(DEPLOY_LAB, 'deploy-3.log'), timeoutMs: 30 * 60_000 });
    console.log(`[bench] re-deploy repairing one drifted node: ${(r.ms / 1000).toFixed(0)} s`);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/w-1: converging: its managed files or services changed since the last converge/);
    expect(r.stdout).toMatch(/--limit w-1 site\.yml/);
    expect(r.stdout).toMatch(/unchanged and not run: master, cp-1/);
    expect(outcomes(r.stdout).converge).toMatch(/^changed \(\d+\)$/);
    expect((await inGuest('w-1', ['sha256sum', f])).stdout).toBe(before);
  }, 31 * 60_000);

  // Rebuild drill on the deployed cluster (opt-in: `npm run test:deploy:drill`, it boots a fourth
  // TCG guest): w-1's VM is destroyed, the guest agent's silence detects it, the hub revokes it, a
  // deploy run of the same spec puts a new VM in its slot and reintegrates it; then everything is
  // checked from inside and a further deploy changes nothing.
  // The plan's whole flow matrix probed on the VMs through their guest agents, every flow as
  // planned, handshake ages from the hub, and the last check recorded in the workspace (13–15 s).
  // Its first runs on VMs (2026-12-03) read 4 of 198 flows as closed: the probe waited for a
  // banner that etcd's TLS listener on cp-1 never sends; a completed handshake is "open" now.
  it('kubedos wiring check --json: every declared and every sampled denied flow as planned, fresh handshakes on every plane, recorded as the last check', async () => {
    const r = await kubedosAsync(['wiring', 'check', spec, '--target', 'qemu-local', '--json'], { env: deployEnv(WS), cwd: DEPLOY_LAB, logFile: join(DEPLOY_LAB, 'wiring.log'), timeoutMs: 20 * 60_000 });
    const out = JSON.parse(r.stdout) as { passed: number; failed: number; durationMs: number; handshakes: { node: string; plane: string; ageSeconds: number | null }[]; results: { kind: string; expect: string; observed: string; ok: boolean; from: { node: string; address: string }; to: { node: string; address: string }; port: number }[] };
    console.log(`[bench] wiring check of lab-3 through the guest agents (TCG): ${out.results.length} flows in ${(out.durationMs / 1000).toFixed(0)} s`);
    const bad = out.results.filter((x) => !x.ok).map((x) => `${x.from.node} ${x.from.address} -> ${x.to.node} ${x.to.address}:${x.port} expected ${x.expect}, observed ${x.observed}`);
    expect(bad, r.stderr.slice(-3000)).toEqual([]);
    expect(r.status).toBe(0);
    expect(out.failed).toBe(0);
    expect(new Set(out.results.map((x) => x.kind))).toEqual(new Set(['same-plane', 'declared', 'undeclared']));
    for (const x of out.results) expect(x.observed === 'open', `${x.from.address} -> ${x.to.address}:${x.port}`).toBe(x.expect === 'allow');
    expect(out.handshakes).toHaveLength(3 * (p.nodes.length - 1));
    for (const h of out.handshakes) expect(h.ageSeconds ?? Infinity, `${h.node}/${h.plane}`).toBeLessThan(180);
    expect(existsSync(join(WS, 'clusters/lab-3/wiring/last-check.json'))).toBe(true);
    // No listener is left on any node.
    for (const n of p.nodes) expect((await inGuest(n.name, ['/bin/sh', '-c', 'pgrep -f "kubedos-prob[e] serve" || true'])).stdout.trim(), n.name).toBe('');
  }, 21 * 60_000);

  it.runIf(process.env.KUBEDOS_LAB_DRILL === '1')('kubedos drill --scenario delete-worker-vm: every phase recorded, w-1 back on all planes and scraped, an etcd key written before still there, a further deploy unchanged', async () => {
    const etcdctl = etcdctlOn(node('cp-1'));
    expect((await inGuest('cp-1', [...etcdctl, 'put', 'kubedos-drill/before', 'written before the drill'])).exitCode).toBe(0);
    const oldBoot = (await inGuest('w-1', ['cat', '/proc/sys/kernel/random/boot_id'])).stdout.trim();

    const r = await kubedosAsync(['drill', spec, '--scenario', 'delete-worker-vm', '--node', 'w-1', '--allow-destroy', '--json'], { env: deployEnv(WS), cwd: DEPLOY_LAB, logFile: join(DEPLOY_LAB, 'drill.log'), timeoutMs: 40 * 60_000 });
    const rec = JSON.parse(r.stdout) as { status: string; mttrMs?: number; pass?: boolean; goal: { minutes: number }; target: string; phases: { name: string; state: string; durationMs?: number; detail?: string }[]; error?: unknown };
    console.log(`[bench] drill delete-worker-vm on lab-3 (TCG): MTTR ${((rec.mttrMs ?? 0) / 1000).toFixed(0)} s (target ${rec.goal.minutes} min); ${rec.phases.map((x) => `${x.name} ${((x.durationMs ?? 0) / 1000).toFixed(0)} s`).join(', ')}`);
    expect(rec.error, r.stderr.slice(-3000)).toBeUndefined();
    expect(rec.target).toBe('cluster');
    expect(rec.phases.map((x) => [x.name, x.state])).toEqual(['inject', 'detect', 'fence', 'replace', 'reintegrate', 'healthy'].map((x) => [x, 'done']));
    expect(rec.phases.find((x) => x.name === 'detect')?.detail).toMatch(/guest-agent|wg-handshake/);
    expect(rec.phases.find((x) => x.name === 'replace')?.detail).toMatch(/provision \d+ changes?/);
    expect(['passed', 'failed']).toContain(rec.status);
    expect(r.status).toBe(rec.pass ? 0 : 1);

    // A new machine in the slot (another boot), back on all three planes with fresh handshakes.
    expect((await inGuest('w-1', ['cat', '/proc/sys/kernel/random/boot_id'])).stdout.trim()).not.toBe(oldBoot);
    for (const plane of ['wg1', 'wg2', 'wg3'] as const) {
      const ping = await inGuest('w-1', ['ping', '-c', '1', '-W', '3', '-I', plane, ip(node('master').planes[plane].address)]);
      expect(ping.exitCode, `w-1 → master on ${plane}`).toBe(0);
    }
    const st = JSON.parse((await inGuest('master', ['/usr/lib/kubedos/backplane/kubedos-planes', 'status'])).stdout);
    for (const plane of ['wg1', 'wg2', 'wg3']) expect(st.planes[plane].peers.filter((x: { latestHandshake: number }) => x.latestHandshake > 0), plane).toHaveLength(2);
    const hub = JSON.parse((await inGuest('master', ['/usr/lib/kubedos/backplane/kubedos-enroll-hub', 'status'])).stdout);
    expect(hub.enrolled).toEqual(['cp-1', 'w-1']);
    expect(hub.revoked).toEqual([]);
    // Prometheus on the master scrapes the new w-1.
    const prom = ip(node('master').planes.wg2.address);
    const want = `${ip(node('w-1').planes.wg2.address)}:9100`;
    const script = `import json,urllib.request,time
h="?"
for _ in range(30):
    t=json.load(urllib.request.urlopen("http://${prom}:9090/api/v1/targets"))["data"]["activeTargets"]
    h=[x["health"] for x in t if x["labels"].get("instance")=="${want}"]
    if h==["up"]: break
    time.sleep(5)
print(json.dumps(h))`;
    expect(JSON.parse((await inGuest('master', ['python3', '-c', script])).stdout)).toEqual(['up']);
    // etcd kept its data.
    expect((await inGuest('cp-1', [...etcdctl, 'get', 'kubedos-drill/before', '--print-value-only'])).stdout.trim()).toBe('written before the drill');
    // The drill is in the history.
    const h = await kubedosAsync(['drill', spec, '--history'], { env: deployEnv(WS), cwd: DEPLOY_LAB, logFile: join(DEPLOY_LAB, 'drill-history.log'), timeoutMs: 60_000 });
    expect(h.stdout).toMatch(/delete-worker-vm/);

    const again = await kubedosAsync(['deploy', spec, '--target', 'qemu-local', '--verbose'], { env: deployEnv(WS), cwd: DEPLOY_LAB, logFile: join(DEPLOY_LAB, 'deploy-after-drill.log'), timeoutMs: 30 * 60_000 });
    expect(again.status).toBe(0);
    expect(outcomes(again.stdout)).toEqual(Object.fromEntries(STAGES.map((x) => [x, 'unchanged'])));
  }, 75 * 60_000);

  // Cluster lifecycle: stop → start (planes and etcd back) → destroy with a foreign VM planted
  // inside the VMID range → nothing of lab-3 left. The start step boots three TCG guests again
  // (several minutes): CI runs stop and destroy; `npm run test:deploy:lifecycle` adds start.
  it('kubedos stop: every VM shuts down through its guest agent, the hub last; no L2 hub process stays', async () => {
    const hubs = [...new Set(p.nodes.flatMap((n) => n.vm.nics.map((x) => driver.hubSocket(x.bridge))))];
    const r = await kubedosAsync(['stop', spec], { env: deployEnv(WS), cwd: DEPLOY_LAB, logFile: join(DEPLOY_LAB, 'stop.log'), timeoutMs: 10 * 60_000 });
    console.log(`[bench] kubedos stop of lab-3: ${(r.ms / 1000).toFixed(0)} s`);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const shut = [...r.stdout.matchAll(/^ {2}(\S+) \(VMID \d+\) shut down$/gm)].map((m) => m[1]);
    expect(shut).toEqual(['w-1', 'cp-1', 'master']);
    for (const n of p.nodes) expect(await driver.status(n.vmid), n.name).toBe('stopped');
    for (const h of hubs) expect(processesMentioning(h), h).toEqual([]);
    const st = await kubedosAsync(['status', spec], { env: deployEnv(WS), cwd: DEPLOY_LAB, logFile: join(DEPLOY_LAB, 'status-stopped.log'), timeoutMs: 60_000 });
    expect(st.stdout).toMatch(/cluster lab-3: stopped at \d{4}-/);
  }, 11 * 60_000);

  it.runIf(process.env.KUBEDOS_LAB_START === '1')('kubedos start: the hub first; the planes are back (fresh handshakes on wg1..wg3) and etcd is healthy', async () => {
    const r = await kubedosAsync(['start', spec], { env: deployEnv(WS), cwd: DEPLOY_LAB, logFile: join(DEPLOY_LAB, 'start.log'), timeoutMs: 25 * 60_000 });
    console.log(`[bench] kubedos start of lab-3 (agents, planes, etcd back): ${(r.ms / 1000).toFixed(0)} s`);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const started = [...r.stdout.matchAll(/^ {2}(\S+) \(VMID \d+\) started$/gm)].map((m) => m[1]);
    expect(started).toEqual(['master', 'cp-1', 'w-1']);
    expect(r.stdout).toMatch(/planes back: every peer has a fresh handshake with the hub on wg1, wg2, wg3/);
    expect(r.stdout).toMatch(/etcd healthy on cp-1/);
    // Checked again from inside, the way the deploy checks were.
    const st = JSON.parse((await inGuest('master', ['/usr/lib/kubedos/backplane/kubedos-planes', 'status'])).stdout);
    for (const plane of ['wg1', 'wg2', 'wg3']) expect(st.planes[plane].peers.filter((x: { latestHandshake: number }) => x.latestHandshake > 0), plane).toHaveLength(2);
    const health = await inGuest('cp-1', [...etcdctlOn(node('cp-1')), 'endpoint', 'health']);
    expect(health.stdout + health.stderr).toMatch(/is healthy/);
  }, 26 * 60_000);

  it('kubedos destroy --allow-destroy: a foreign VM inside the VMID range survives; nothing of lab-3 is left', async () => {
    const stateDir = join(WS, 'clusters/lab-3/vms');
    const theirs = new QemuLocalDriver({ stateDir, ownership: { tags: ['kubedos', 'cluster-other'], vmidRange: p.substrate.vmidRange } });
    const foreign = p.substrate.vmidRange.end;
    const m = node('master').vm;
    await theirs.create({ ...m, vmid: foreign, name: 'stranger', memoryMiB: 256, balloon: 0, tags: ['cluster-other', 'kubedos'], nics: m.nics.map((x) => ({ ...x, mac: '52:54:00:AA:BB:01' })) }, undefined);
    const paths = [...p.nodes.flatMap((n) => driver.vmPaths(n.vmid)), ...new Set(p.nodes.flatMap((n) => n.vm.nics.map((x) => driver.hubSocket(x.bridge))))];
    const r = await kubedosAsync(['destroy', spec, '--allow-destroy'], { env: deployEnv(WS), cwd: DEPLOY_LAB, logFile: join(DEPLOY_LAB, 'destroy.log'), timeoutMs: 10 * 60_000 });
    console.log(`[bench] kubedos destroy of lab-3: ${(r.ms / 1000).toFixed(0)} s`);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`left alone: VM ${foreign} "stranger"`));
    expect(await theirs.status(foreign)).toBe('stopped');
    for (const n of p.nodes) {
      expect(await driver.status(n.vmid), n.name).toBe('absent');
      expect(processesMentioning(driver.vmDir(n.vmid)), n.name).toEqual([]);
    }
    for (const x of paths) expect(existsSync(x), x).toBe(false);
    // Of the cluster's workspace only the foreign VM's folder (and what it may boot from) is left.
    expect(readdirSync(join(WS, 'clusters/lab-3'))).toEqual(['vms']);
    expect(readdirSync(join(stateDir, 'vms'))).toEqual([String(foreign)]);
    const rec = join(WS, 'recovery/lab-3');
    const exported = readdirSync(rec).filter((f) => f.startsWith('exported-'));
    expect(exported).toHaveLength(1);
    expect(readdirSync(join(rec, exported[0]!)).sort()).toEqual(['README.txt', 'bundle', 'plan.json', 'recovery', 'secrets', 'trust']);
    const st = await kubedosAsync(['status', spec], { env: deployEnv(WS), cwd: DEPLOY_LAB, logFile: join(DEPLOY_LAB, 'status-destroyed.log'), timeoutMs: 60_000 });
    expect(st.stdout).toMatch(/cluster lab-3: destroyed at \d{4}-/);
    await theirs.destroy(foreign, { allowDestroy: true });
    expect(processesMentioning(join(WS, 'clusters/lab-3'))).toEqual([]);
    for (const x of paths) expect(processesMentioning(x), x).toEqual([]);
  }, 11 * 60_000);
});
