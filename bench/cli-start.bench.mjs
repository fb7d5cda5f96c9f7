// How long `kubedos --help` takes to answer: the prebuilt bundle (out/cli/kubedos.mjs) against the
// sources through tsx, with a bare `node -e 0` as the floor, interleaved in one run so a busy
// machine slows all three alike. Wall and CPU (user+sys of the child, from /usr/bin/time when it is
// there) per variant, median of N. Builds the bundle first. Run: npm run bench:cli-start [N]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../bin/cli-bundle.mjs';

const runs = Number(process.argv[2] ?? 9);
execFileSync(process.execPath, [join(REPO_ROOT, 'scripts/build-cli.mjs')], { stdio: 'inherit' });
const bin = join(REPO_ROOT, 'bin/kubedos.mjs');
const variants = [
  { name: 'node -e 0 (floor)', argv: ['-e', '0'], env: {} },
  { name: 'kubedos --help, bundle', argv: [bin, '--help'], env: {} },
  { name: 'kubedos --help, tsx', argv: [bin, '--help'], env: { KUBEDOS_CLI_FROM_SOURCE: '1' } },
];
const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
const results = new Map(variants.map((v) => [v.name, { wall: [], cpu: [] }]));
for (let i = 0; i < runs; i++) {
  for (const v of variants) {
    const t0 = performance.now();
    const r = timeBin
      ? spawnSync(timeBin, ['-f', 'CPU %U %S', process.execPath, ...v.argv], { env: { ...process.env, ...v.env }, encoding: 'utf8' })
      : spawnSync(process.execPath, v.argv, { env: { ...process.env, ...v.env }, encoding: 'utf8' });
    const wall = performance.now() - t0;
    if (r.status !== 0) throw new Error(`${v.name}: exit ${r.status}: ${r.stderr}`);
    const m = /CPU (\d+\.\d+) (\d+\.\d+)/.exec(r.stderr ?? '');
    const res = results.get(v.name);
    res.wall.push(wall);
    if (m) res.cpu.push((Number(m[1]) + Number(m[2])) * 1000);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const floor = median(results.get(variants[0].name).wall);
console.log(`kubedos start, median of ${runs} interleaved runs (load average ${(await import('node:os')).loadavg()[0].toFixed(1)})`);
for (const v of variants) {
  const r = results.get(v.name);
  const w = median(r.wall);
  console.log(`  ${v.name.padEnd(24)} wall ${w.toFixed(0).padStart(5)} ms (${(w / floor).toFixed(1)}x the floor)${r.cpu.length ? `   CPU ${median(r.cpu).toFixed(0).padStart(5)} ms` : ''}`);
}
const b = median(results.get(variants[1].name).wall);
const s = median(results.get(variants[2].name).wall);
console.log(`  bundle / tsx: ${(b / s).toFixed(2)} (wall)`);
