// How long the CLI takes to answer: `kubedos --help` (with a current bundle, from the stored help
// texts) and `kubedos init --template lab-3 -` (a command that loads the whole engine), from the
// prebuilt bundle (out/cli/kubedos.mjs) and from the sources through tsx, with a bare
// `node -e 0` as the floor, interleaved in one run so a busy machine slows all of them alike. Wall and CPU (user+sys of the child, from /usr/bin/time when it is
// there) per variant, median of N. Builds the bundle first. Run: npm run bench:cli-start [N]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../bin/cli-bundle.mjs';

const runs = Number(process.argv[2] ?? 9);
execFileSync(process.execPath, [join(REPO_ROOT, 'scripts/build-cli.mjs')], { stdio: 'inherit' });
const bin = join(REPO_ROOT, 'bin/kubedos.mjs');
// `init --template lab-3 -` prints a template: a command that loads the whole engine.
const init = [bin, 'init', '--template', 'lab-3', '-'];
const variants = [
  { name: 'node -e 0 (floor)', argv: ['-e', '0'], env: {} },
  { name: 'kubedos --help, bundle', argv: [bin, '--help'], env: {} },
  { name: 'kubedos --help, tsx', argv: [bin, '--help'], env: { KUBEDOS_CLI_FROM_SOURCE: '1' } },
  { name: 'kubedos init -, bundle', argv: init, env: {} },
  { name: 'kubedos init -, tsx', argv: init, env: { KUBEDOS_CLI_FROM_SOURCE: '1' } },
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
const ratio = (a, b) => (median(results.get(variants[a].name).wall) / median(results.get(variants[b].name).wall)).toFixed(2);
console.log(`  bundle / tsx (wall): --help ${ratio(1, 2)}, init ${ratio(3, 4)}`);
