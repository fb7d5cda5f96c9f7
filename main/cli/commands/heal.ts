// `kubedos heal SPEC --lab`: look at the cluster now, repair every unhealthy node with the drill
// phases (inject skipped), record each repair. Thin over main/drills/engine.ts runHeal.
import { renderHealthReport } from '../../../common/drills/health';
import { renderDrillRecord } from '../../../common/drills/timeline';
import { plan } from '../../../common/plan/index';
import { drillId, runHeal, specDrillSettings } from '../../drills/engine';
import { LabDrillTarget } from '../../drills/lab-target';
import { requireRoot } from '../../lab/harness';
import type { CliCommand } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { loadSpec, reportDiagnostics } from '../load-spec';
import { NO_CLUSTER_PATH } from './drill';

export const healCommand: CliCommand = {
  name: 'heal',
  summary: 'find unhealthy nodes (spec selfHealing.detect) and repair them: detect, fence, replace, reintegrate, healthy',
  usage: 'kubedos heal SPEC --lab [--json]',
  help: [
    'Probes the cluster from its hub (wg1 handshakes, etcd endpoint health and membership), prints the',
    'verdict, and repairs each unhealthy node in turn: a node off the planes is revoked, re-admitted with a',
    'fresh single-use token and its etcd member replaced; a node whose etcd member alone is down gets a',
    'fresh member. Every repair is recorded like a drill (kubedos drill SPEC --history).',
    '',
    '  --lab   the plan built in network namespaces (needs root); it comes up healthy, so there is',
    '          normally nothing to repair — the verdict is what it shows.',
    '',
    'Exit status: 0 healthy (or repaired), 1 something is left unhealthy or it could not run, 2 bad usage.',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, { lab: { type: 'boolean' }, json: { type: 'boolean' } });
    const [file, extra] = positionals;
    if (!file || extra) throw new UsageError('give one SPEC file');
    const loaded = loadSpec(file, io.cwd);
    if (!loaded.spec) {
      reportDiagnostics(loaded, file, io, true);
      io.err(`${file}: not valid; nothing run (run kubedos validate ${file})`);
      return 1;
    }
    const spec = loaded.spec;
    if (!values.lab) {
      io.err(`kubedos heal ${spec.metadata.name}: ${NO_CLUSTER_PATH}`);
      return 1;
    }
    try {
      requireRoot('kubedos heal --lab');
    } catch (err) {
      io.err((err as Error).message);
      return 1;
    }
    const target = await LabDrillTarget.create(plan(spec), { log: (l) => io.err(l) });
    try {
      const res = await runHeal({
        target,
        spec,
        ...specDrillSettings(spec, io.env),
        idFor: (s, n) => drillId(new Date(), `heal-${s}`, n),
        nextOnInterrupt: 'the namespace lab was removed with the command; run kubedos heal again',
        signal: io.signal,
        log: (l) => io.err(l),
      });
      if (values.json) {
        io.out(JSON.stringify({ before: res.before, repairs: res.records, cannot: res.cannot }, null, 2));
      } else {
        io.out(renderHealthReport(res.before));
        for (const r of res.records) io.out(`\n${renderDrillRecord(r)}`);
        for (const c of res.cannot) io.out(`cannot repair ${c.node}: ${c.why}`);
        if (res.before.healthy) io.out('nothing to repair');
      }
      const left = res.cannot.length > 0 || res.records.some((r) => r.error !== undefined || r.status === 'refused');
      return left ? 1 : 0;
    } finally {
      target.destroy();
    }
  },
};
