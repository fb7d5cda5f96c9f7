// Deploy timings of lab-3 on qemu-local (TCG) on this machine (numbers, not pass/fail):
//  - per stage: wall time, and the engine's own CPU time in that stage (process.cpuUsage of this
//    process, which runs the pipeline in-process exactly as `kubedos deploy` does; QEMU, swtpm,
//    debootstrap and the guests are other processes) → the workbench's own share of the wall time;
//  - a first deploy (fresh workspace; the build cache is kept unless --cold), then side by side in
//    the same run: a converged redeploy (converge probes each node's fingerprint and runs no
//    Ansible), the same redeploy with --force (Ansible on every node: what every redeploy did
//    before fingerprints), and a redeploy after one file was changed by hand on w-1 (Ansible on
//    w-1 only, the file repaired); their ratios.
// Usage: node bin/run-ts.mjs bench/deploy.bench.ts [--cold] [--keep]   (root; 20-40 minutes)
import { rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { plan } from '../common/plan/index';
import type { PipelineEvent } from '../common/pipeline/events';
import { parseSpec, TEMPLATES } from '../common/spec/index';
import { runPipeline } from '../main/pipeline/runner';
import { deployCompat, deployPipeline } from '../main/stages/index';
import { ownershipTags } from '../main/substrate/provision';
import { QemuLocalDriver } from '../main/substrate/qemu-local';
import { bridgesOf } from '../main/lifecycle/service';
import { dropLabBulk } from '../e2e/lab-output';

const repo = resolve(import.meta.dirname, '..');
const dir = join(repo, 'e2e/output/deploy-bench');
const args = new Set(process.argv.slice(2));
const ws = join(dir, 'workspace');
const cache = args.has('--cold') ? join(dir, 'cache') : join(repo, 'e2e/output/shared-build/cache');
mkdirSync(dir, { recursive: true });
const p = plan(parseSpec(TEMPLATES['lab-3'].text).spec!);
const workspace = join(ws, 'clusters/lab-3');
const driver = new QemuLocalDriver({ stateDir: join(workspace, 'vms'), ownership: { tags: ownershipTags(p), vmidRange: p.substrate.vmidRange } });
// A previous run with --keep left its VMs running: destroy them through the driver before the
// workspace goes, or they run on, orphaned, on deleted disks (and their exit later removes the
// pid files and sockets of the VMs that reuse their paths).
for (const n of p.nodes) await driver.destroy(n.vmid, { allowDestroy: true }).catch(() => undefined);
await driver.stopNetwork(bridgesOf(p)).catch(() => undefined);
rmSync(ws, { recursive: true, force: true });
if (args.has('--cold')) rmSync(cache, { recursive: true, force: true });
const specPath = join(dir, 'lab-3.yaml');
writeFileSync(specPath, TEMPLATES['lab-3'].text);
const env: NodeJS.ProcessEnv = { ...process.env, KUBEDOS_WORKSPACE: ws, KUBEDOS_CACHE: cache };
delete env.SOURCE_DATE_EPOCH;

interface StageRow { wallMs: number; cpuMs: number; changes?: number; state: string }

async function deploy(label: string, force = false): Promise<{ wallMs: number; cpuMs: number; stages: Record<string, StageRow>; logs: string[] }> {
  const pipeline = deployPipeline({ name: specPath, text: TEMPLATES['lab-3'].text }, { target: { kind: 'qemu-local' }, workspace, env, specPath, planPath: join(workspace, 'plan.json'), force });
  const logs: string[] = [];
  const stages: Record<string, StageRow> = {};
  const started: Record<string, { t: number; cpu: NodeJS.CpuUsage }> = {};
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const onEvent = (e: PipelineEvent): void => {
    if (e.type === 'log' && e.stage === 'converge') logs.push(e.line);
    if (e.type !== 'stage') return;
    // From queued: a stage skipped as converged spends its time in the probe, before any 'running'.
    if (e.state === 'queued') started[e.stage] = { t: performance.now(), cpu: process.cpuUsage() };
    if (['success', 'failed', 'skipped', 'aborted'].includes(e.state)) {
      const s = started[e.stage];
      const c = s ? process.cpuUsage(s.cpu) : { user: 0, system: 0 };
      stages[e.stage] = { wallMs: s ? performance.now() - s.t : 0, cpuMs: (c.user + c.system) / 1000, state: e.state, ...(e.changes !== undefined ? { changes: e.changes } : {}) };
    }
    if (e.type === 'stage' && e.state === 'failed') console.error(`${label}: ${e.stage} failed: ${e.reason}`);
  };
  try {
    const r = await runPipeline(pipeline.stages, { name: 'deploy', journalPath: join(workspace, 'journal.jsonl'), concurrency: 2, onEvent, force, compat: deployCompat(TEMPLATES['lab-3'].text) });
    if (!r.ok) throw new Error(`${label} failed:\n${r.failures.map((f) => [`${f.stage}${f.node ? ` on ${f.node}` : ''}: ${f.message}`, ...(f.stderrTail ? [`  stderr: ${f.stderrTail.split('\n').join('\n          ')}`] : []), ...(f.hint ? [`  next: ${f.hint}`] : [])].join('\n')).join('\n')}`);
  } finally {
    await pipeline.close();
  }
  const c = process.cpuUsage(cpu0);
  return { wallMs: performance.now() - t0, cpuMs: (c.user + c.system) / 1000, stages, logs };
}

try {
  const first = await deploy('first deploy');
  const second = await deploy('second deploy');
  const forced = await deploy('second deploy with --force', true);
  const file = '/etc/ssh/sshd_config.d/50-kubedos.conf';
  const w1 = p.nodes.find((n) => n.name === 'w-1')!;
  await driver.guestExec(w1.vmid, ['sh', '-c', `echo '# changed by hand' >> ${file}`], { timeoutS: 120 });
  const drift = await deploy('redeploy after a hand edit on w-1');
  const rows = Object.keys(first.stages).map((s) => ({
    stage: s,
    'first wall (s)': +(first.stages[s]!.wallMs / 1000).toFixed(1),
    'first engine CPU (s)': +(first.stages[s]!.cpuMs / 1000).toFixed(2),
    'engine share': `${((100 * first.stages[s]!.cpuMs) / Math.max(1, first.stages[s]!.wallMs)).toFixed(1)}%`,
    'converged wall (s)': +((second.stages[s]?.wallMs ?? 0) / 1000).toFixed(1),
    'converged': second.stages[s]?.state === 'skipped' ? 'skipped' : second.stages[s]?.changes ?? second.stages[s]?.state,
    '--force wall (s)': +((forced.stages[s]?.wallMs ?? 0) / 1000).toFixed(1),
    'drift wall (s)': +((drift.stages[s]?.wallMs ?? 0) / 1000).toFixed(1),
    'drift': drift.stages[s]?.state === 'skipped' ? 'skipped' : drift.stages[s]?.changes ?? drift.stages[s]?.state,
  }));
  console.table(rows);
  console.log(`converge on the drifted cluster: ${drift.logs.filter((l) => /converging:|unchanged and not run|--limit/.test(l)).map((l) => l.slice(0, 160)).join(' | ')}`);
  console.log(`first deploy: ${(first.wallMs / 1000).toFixed(0)} s wall, engine CPU ${(first.cpuMs / 1000).toFixed(1)} s = ${((100 * first.cpuMs) / first.wallMs).toFixed(1)}% of the wall time`);
  console.log(`second (converged) deploy: ${(second.wallMs / 1000).toFixed(0)} s wall, engine CPU ${(second.cpuMs / 1000).toFixed(1)} s = ${((100 * second.cpuMs) / second.wallMs).toFixed(1)}%`);
  console.log(`redeploy with --force (Ansible on every node): ${(forced.wallMs / 1000).toFixed(0)} s wall; after one hand edit on w-1: ${(drift.wallMs / 1000).toFixed(0)} s wall`);
  console.log(`ratios: first/converged ${(first.wallMs / second.wallMs).toFixed(1)}×, --force/converged ${(forced.wallMs / second.wallMs).toFixed(1)}×, --force/drift ${(forced.wallMs / drift.wallMs).toFixed(1)}×`);
  writeFileSync(join(dir, 'results.json'), `${JSON.stringify({ first, second, forced, drift }, null, 2)}\n`);
} finally {
  if (!args.has('--keep')) {
    for (const n of p.nodes) await driver.destroy(n.vmid, { allowDestroy: true }).catch(() => undefined);
    dropLabBulk(ws); // images and disks; the journal, plan and bundle stay
  }
}
