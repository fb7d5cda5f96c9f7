// MTTR per phase of the drills, with the spec's recovery target beside it. Numbers, not pass/fail.
// 1. The worker drill on VMs (delete-worker-vm on lab-3, qemu-local, TCG): the record the deploy
//    lab's drill run left (`kubedos drill --json`, e2e/output/deploy-lab/drill.log; KUBEDOS_BENCH_DRILL_RECORD
//    names another), against the target and the goals (MTTR 10 min, detection 60 s). A VM
//    drill takes a deploy (~25 min): run `npm run test:deploy:drill` first; without a record this
//    part says so.
// 2. kill-etcd-member in the namespace lab (3-member etcd on wg3), RUNS runs on one lab (default 3;
//    0 skips it). Needs root.
// Run: npm run bench:drill   (or node bin/run-ts.mjs bench/drill.bench.ts [RUNS])
//
// The detection thresholds are the lab spec's (e2e/lab/specs.ts labDrillSpec): a probe every
// 1 s, 3 misses in a row. A probe of a dead member waits for etcdctl's 1 s dial and 2 s command
// timeouts, which is most of the detect time.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectThresholds } from '../common/drills/health';
import type { DrillRecord } from '../common/drills/timeline';
import { DRILL_PHASES, DrillRecord as DrillRecordSchema } from '../common/drills/timeline';
import { parseSpec } from '../common/spec/index';
import { renderTable } from '../common/text/table';
import { drillId, runDrill } from '../main/drills/engine';
import { saveDrillRecord } from '../main/drills/history';
import { LabDrillTarget } from '../main/drills/lab-target';
import { requireRoot } from '../main/lab/harness';
import { labDrillPlan, labDrillSpec } from '../e2e/lab/specs';

const runs = Number(process.argv[2] ?? 3);
const sec = (ms: number) => (ms / 1000).toFixed(2);

const workerFile = process.env.KUBEDOS_BENCH_DRILL_RECORD ?? join(import.meta.dirname, '../e2e/output/deploy-lab/drill.log');
if (!existsSync(workerFile)) {
  console.log(`worker drill on VMs: no record at ${workerFile}: run npm run test:deploy:drill (or set KUBEDOS_BENCH_DRILL_RECORD to a kubedos drill --json output)`);
} else {
  const text = readFileSync(workerFile, 'utf8');
  const rec = DrillRecordSchema.parse(JSON.parse(text.slice(text.indexOf('\n{') + 1, text.lastIndexOf('}') + 1)));
  const mttr = rec.mttrMs ?? 0;
  const detect = rec.phases.find((p) => p.name === 'detect')?.durationMs ?? 0;
  console.log(`${rec.scenario} on ${rec.cluster} (${rec.target}, node ${rec.node}), record ${rec.id}: ${rec.status}`);
  console.log(renderTable(['PHASE', 's', 'SHARE'], [...rec.phases.map((p) => [p.name, sec(p.durationMs ?? 0), `${(((p.durationMs ?? 0) / mttr) * 100).toFixed(0)} %`]), ['MTTR', sec(mttr), '100 %']]));
  console.log(`target: ${rec.goal.minutes} min (${rec.goal.source}); MTTR / target = ${(mttr / (rec.goal.minutes * 60_000)).toFixed(3)}; MTTR / 10 min (the issue's goal under TCG) = ${(mttr / 600_000).toFixed(3)}; detection / 60 s = ${(detect / 60_000).toFixed(3)}`);
  console.log('');
}
if (runs <= 0) process.exit(0);

requireRoot('bench/drill.bench.ts');
const spec = parseSpec(labDrillSpec()).spec;
if (!spec) throw new Error('lab drill spec does not parse');
const ws = mkdtempSync(join(tmpdir(), 'kubedos-drill-bench-'));
const t0 = performance.now();
const target = await LabDrillTarget.create(labDrillPlan());
const labMs = performance.now() - t0;
const records: DrillRecord[] = [];
try {
  for (let i = 0; i < runs; i++) {
    const node = target.etcdMembers[i % target.etcdMembers.length] as string;
    const r = await runDrill({
      target,
      spec,
      scenario: 'kill-etcd-member',
      node,
      thresholds: detectThresholds(spec.spec.selfHealing),
      thresholdsSource: 'lab spec selfHealing.detect',
      id: drillId(new Date(), 'kill-etcd-member', node),
      store: (rec) => saveDrillRecord(rec, { ...process.env, KUBEDOS_WORKSPACE: ws }),
      nextOnInterrupt: 'rerun the bench',
      phaseTimeoutMs: 120_000,
    });
    if (r.status !== 'passed') throw new Error(`run ${i + 1} on ${node}: ${r.status} ${JSON.stringify(r.error ?? r.guard.reasons)}`);
    records.push(r);
  }
} finally {
  target.destroy();
  rmSync(ws, { recursive: true, force: true });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const goal = records[0]?.goal ?? { minutes: 0, source: '' };
const rows = DRILL_PHASES.map((ph) => {
  const ds = records.map((r) => r.phases.find((p) => p.name === ph)?.durationMs ?? 0);
  return [ph, sec(median(ds)), sec(Math.min(...ds)), sec(Math.max(...ds))];
});
const mttrs = records.map((r) => r.mttrMs ?? 0);
rows.push(['MTTR', sec(median(mttrs)), sec(Math.min(...mttrs)), sec(Math.max(...mttrs))]);
console.log(`kill-etcd-member in the namespace lab: ${runs} runs on one lab (built in ${sec(labMs)} s), members ${target.etcdMembers.join(', ')}`);
console.log(renderTable(['PHASE', 'MEDIAN s', 'MIN s', 'MAX s'], rows));
console.log('');
console.log(`target: ${goal.minutes} min (${goal.source}); median MTTR / target = ${(median(mttrs) / (goal.minutes * 60_000)).toFixed(3)}`);
console.log(`detection (median ${sec(median(records.map((r) => r.phases[1]?.durationMs ?? 0)))} s) against 60 s (the issue's goal): ratio ${(median(records.map((r) => r.phases[1]?.durationMs ?? 0)) / 60_000).toFixed(3)}`);
