// Time from "namespaces created" to "all planes up and enrolled" in the namespace lab, for 3, 6
// and 16 nodes (lab-3, the lab-6 variant, reference-16). Numbers, not pass/fail. Needs root.
// Run: node bin/run-ts.mjs bench/backplanes.bench.ts   (or npm run bench:backplanes)
import { renderTable } from '../common/text/table';
import type { Plan } from '../common/plan/index';
import { bringUp, makeTrust } from '../main/lab/backplane';
import { Lab, requireRoot } from '../main/lab/harness';
import { planeReachability } from '../e2e/lab/checks';
import { lab3Plan, lab6Plan, reference16Plan } from '../e2e/lab/specs';

requireRoot('bench/backplanes.bench.ts');
const rows: string[][] = [];
for (const [name, p] of [['lab-3', lab3Plan()], ['lab-6', lab6Plan()], ['reference-16', reference16Plan()]] as [string, Plan][]) {
  const t0 = performance.now();
  const lab = await Lab.create(p, { sshd: true });
  const created = performance.now();
  try {
    const trust = await makeTrust(lab);
    const trustDone = performance.now();
    const window = await bringUp(lab, trust, 300);
    const enrolled = performance.now();
    window.process.kill('SIGTERM');
    // Proof that "enrolled" means connected: one spoke reaches every node on every plane.
    const reach = await planeReachability(lab, [lab.spokes[0]?.name ?? lab.hub.name]);
    const bad = reach.filter((r) => !r.ok).length;
    rows.push([
      name,
      String(p.nodes.length),
      `${Math.round(created - t0)}`,
      `${Math.round(enrolled - trustDone)}`,
      `${Math.round(trustDone - created)}`,
      bad === 0 ? `ok ${reach.length}/${reach.length}` : `FAILED ${bad}`,
    ]);
  } finally {
    lab.destroy();
  }
}
console.log(renderTable(['PLAN', 'NODES', 'NAMESPACES MS', 'PLANES UP + ENROLLED MS', 'TRUST MS (not counted)', 'REACH CHECK'], rows));
