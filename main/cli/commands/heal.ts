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
import { loadSpecToRun } from '../load-spec';
import type { HealResult } from '../../drills/engine';
import { runClusterHeal } from '../../drills/service';
import type { CliIo } from '../command';
import { clusterOperationRequest, LIFECYCLE_HELP, LIFECYCLE_OPTIONS } from './lifecycle';

export const healCommand: CliCommand = {
  name: 'heal',
  summary: 'find unhealthy nodes (spec selfHealing.detect) and repair them: detect, fence, replace, reintegrate, healthy',
  usage: 'kubedos heal SPEC [--target T] [--lab] [--json]',
  help: [
    'Probes the cluster (guest agents, the hub\'s wg1 handshakes, etcd endpoint health and membership),',
    'prints the verdict, and repairs each unhealthy node in turn. On a deployed cluster: a node that is',
    'gone or down (guest agent silent) or off the planes is revoked at the hub, put back in its plan slot',
    'by a deploy run of the same spec (its VM recreated or started, a fresh single-use token, planes,',
    'converge) and checked healthy. In the namespace lab: a node off the planes is revoked, re-admitted',
    'and its etcd member replaced; a node whose etcd member alone is down gets a fresh member.',
    'Every repair is recorded like a drill (kubedos drill SPEC --history).',
    '',
    '  --lab   the plan built in network namespaces (needs root); it comes up healthy, so there is',
    '          normally nothing to repair — the verdict is what it shows.',
    ...LIFECYCLE_HELP,
    '',
    'Exit status: 0 healthy (or repaired), 1 something is left unhealthy or it could not run, 2 bad usage.',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, { lab: { type: 'boolean' }, json: { type: 'boolean' }, ...LIFECYCLE_OPTIONS });
    const [file, extra] = positionals;
    if (!file || extra) throw new UsageError('give one SPEC file');
    const loaded = loadSpecToRun(file, io);
    if (!loaded) return 1;
    const spec = loaded.spec;
    if (!values.lab) {
      const req = clusterOperationRequest(file, spec, values as Record<string, unknown>, io, { action: 'heal', by: 'heal', specPath: loaded.path });
      if (!req) return 1;
      const res = await runClusterHeal({
        request: req.request,
        specName: file,
        specPath: req.specPath,
        // A heal never destroys: it starts a stopped VM or creates a missing one in its slot.
        allowDestroy: false,
        nextOnInterrupt: `kubedos heal ${file} again (it finds what is still unhealthy)`,
        log: (l) => io.err(l),
      });
      return healOutcome(res, Boolean(values.json), io);
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
      return healOutcome(res, Boolean(values.json), io);
    } finally {
      target.destroy();
    }
  },
};

function healOutcome(res: HealResult, json: boolean, io: CliIo): number {
  if (json) {
    io.out(JSON.stringify({ before: res.before, repairs: res.records, cannot: res.cannot }, null, 2));
  } else {
    io.out(renderHealthReport(res.before));
    for (const r of res.records) io.out(`\n${renderDrillRecord(r)}`);
    for (const c of res.cannot) io.out(`cannot repair ${c.node}: ${c.why}`);
    if (res.before.healthy) io.out('nothing to repair');
  }
  const left = res.cannot.length > 0 || res.records.some((r) => r.error !== undefined || r.status === 'refused');
  return left ? 1 : 0;
}
