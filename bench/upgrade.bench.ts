// Per-node upgrade and rollback times of lab-3 on A/B VMs, side by side, from the last run of the
// upgrade VM test (npm run test:upgrade:vm leaves e2e/output/upgrade-lab/bench.json). This bench
// runs nothing itself (a run is two hours of TCG): with no run on record it says so and exits 1.
// Run: npm run bench:upgrade   (or node bin/run-ts.mjs bench/upgrade.bench.ts [FILE])
import { existsSync, readFileSync, statSync } from 'node:fs';
import { renderTable } from '../common/text/table';
import { UPGRADE_BENCH_FILE, UpgradeBench } from '../e2e/upgrade/upgrade-bench';

const file = process.argv[2] ?? UPGRADE_BENCH_FILE;
if (!existsSync(file)) {
  console.error(`no upgrade run on record (${file} does not exist): run npm run test:upgrade:vm first (root, about two hours under TCG)`);
  process.exit(1);
}
const parsed = UpgradeBench.safeParse(JSON.parse(readFileSync(file, 'utf8')));
if (!parsed.success) {
  console.error(`${file}: not an upgrade bench record (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}); rerun npm run test:upgrade:vm`);
  process.exit(1);
}
const b = parsed.data;
const nodes = [...new Set([...Object.keys(b.upgrade), ...Object.keys(b.rollback)])];
if (!nodes.length) {
  console.error(`${file}: the run recorded no node's events (did the upgrade fail before its first write?); see e2e/output/upgrade-lab/upgrade.log`);
  process.exit(1);
}
const sec = (s: number | undefined): string => (s === undefined ? '—' : s.toFixed(0));
console.log(`${b.cluster} ${b.from} → ${b.to} → ${b.from} on A/B VMs (qemu-local), run of ${statSync(file).mtime.toISOString()}`);
console.log(renderTable(['NODE', 'UPGRADE s', 'ROLLBACK s'], [...nodes.map((n) => [n, sec(b.upgrade[n]), sec(b.rollback[n])]), ['(whole command)', sec(b.upgradeTotalS), sec(b.rollbackTotalS)]]));
