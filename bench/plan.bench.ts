// Validate + plan wall time for 16, 100 and 1,000 nodes (median of several runs, one process).
// Run: npm run bench:plan
import { planJson, plan } from '../common/plan/index';
import { parseSpec } from '../common/spec/index';
import { syntheticSpec, toYaml } from '../common/testing/specs';
import { TEMPLATES } from '../common/spec/templates/index';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

function measure(text: string, runs: number): { parse: number; plan: number; total: number; bytes: number } {
  const parseT: number[] = [];
  const planT: number[] = [];
  let bytes = 0;
  for (let i = 0; i < runs + 1; i++) {
    const t0 = performance.now();
    const r = parseSpec(text);
    const t1 = performance.now();
    if (!r.spec) throw new Error(`spec invalid: ${JSON.stringify(r.diagnostics.slice(0, 3))}`);
    const json = planJson(plan(r.spec));
    const t2 = performance.now();
    bytes = json.length;
    if (i === 0) continue; // warm-up
    parseT.push(t1 - t0);
    planT.push(t2 - t1);
  }
  return { parse: median(parseT), plan: median(planT), total: median(parseT.map((p, i) => p + (planT[i] ?? 0))), bytes };
}

const sizes: [string, string][] = [
  ['16 (reference-16)', TEMPLATES['reference-16'].text],
  ['100', toYaml(syntheticSpec(100))],
  ['1000', toYaml(syntheticSpec(1000))],
];
console.log('validate + plan (median of 5 after one warm-up; canonical plan JSON included)');
console.log('nodes              spec KiB  validate ms  plan ms  total ms  plan JSON KiB');
for (const [label, text] of sizes) {
  const m = measure(text, 5);
  console.log(
    `${label.padEnd(18)} ${(text.length / 1024).toFixed(0).padStart(8)}  ${m.parse.toFixed(1).padStart(11)}  ${m.plan.toFixed(1).padStart(7)}  ${m.total.toFixed(1).padStart(8)}  ${(m.bytes / 1024).toFixed(0).padStart(13)}`,
  );
}
const cold = performance.now();
const r = parseSpec(sizes[2]![1]);
plan(r.spec!);
console.log(`\n1000 nodes, first run in a fresh process would include JIT warm-up; this process: ${(performance.now() - cold).toFixed(1)} ms`);
