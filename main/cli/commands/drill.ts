// `kubedos drill SPEC --scenario NAME [--node NODE] --lab` and `kubedos drill SPEC --history
// [--export FILE]`: thin over main/drills (service, engine, history, report).
import { existsSync, statSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { CATALOGUE, isScenario, SCENARIOS, scenarioOfDrillName } from '../../../common/drills/catalogue';
import { drillReport, drillReportHtml, drillReportJson } from '../../../common/drills/report';
import type { DrillRecord } from '../../../common/drills/timeline';
import { renderDrillHistory, renderDrillRecord } from '../../../common/drills/timeline';
import { CLUSTER_SCENARIOS } from '../../drills/cluster-target';
import { plan } from '../../../common/plan/index';
import { readDrillHistory } from '../../drills/history';
import { clusterDrillNext, clusterDrillPreflight, drillPreflight, runClusterDrill, runLabDrill } from '../../drills/service';
import { lifecycleRequest, LIFECYCLE_OPTIONS, LIFECYCLE_HELP } from './lifecycle';
import { writePrivateFile } from '../../workspace';
import type { CliCommand, CliIo } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { loadSpecToRun } from '../load-spec';

const CLUSTER_LIST = CLUSTER_SCENARIOS.join(', ');

export const LAB_NEXT = 'the namespace lab was removed with the command, so nothing stays fenced; run the drill again';

export const drillCommand: CliCommand = {
  name: 'drill',
  summary: 'run a rebuild drill (inject, detect, fence, replace, reintegrate, healthy) and record its MTTR; --history lists past drills',
  usage: 'kubedos drill SPEC --scenario NAME [--node NODE] [--allow-destroy] [--target T] [--lab] [--json] | kubedos drill SPEC --history [--json] [--export FILE.json|FILE.html]',
  help: [
    'Scenarios:',
    ...CATALOGUE.map((s) => `  ${s.padEnd(24)} ${SCENARIOS[s].summary}`),
    '',
    'The guard refuses a drill on a node that does not exist, on the hub, on an unhealthy or unconverged',
    'cluster, or one that would leave etcd without quorum, and says why. Detection follows the spec\'s',
    'selfHealing.detect; the target is acceptance.drills[].expectRecoveryMinutes (else mttrTargetMinutes).',
    'Every drill is recorded in <workspace>/clusters/<name>/drills/<id>.json (also when refused or interrupted).',
    '',
    'Without --lab the drill runs on the deployed cluster, through each VM\'s guest agent: it runs',
    `${CLUSTER_LIST} there (on an etcd member only kill-etcd-member and delete-control-plane-vm, and`,
    'only when the other members keep quorum: its member is removed, added again before its etcd starts,',
    'and joins at the node\'s converge). The node is replaced in its plan slot',
    '(same VMID, MAC and addresses) from the same artifact by a deploy run of the same spec, which',
    'recreates or starts its VM, enrolls it with a fresh single-use token and converges it.',
    '',
    '  --allow-destroy  let delete-worker-vm / delete-control-plane-vm destroy the VM (or set stages.drill.allowDestroy: true)',
    '  --lab       run on the plan built in network namespaces: real planes, enrollment, a real etcd per',
    '              planned member (needs root). The lab runs partition-node and kill-etcd-member.',
    ...LIFECYCLE_HELP,
    '  --history   print the recorded drills of this cluster',
    '  --export F  with --history: write a drill report to F, JSON (.json) or one self-contained HTML page (.html)',
    '',
    'Exit status: 0 passed (MTTR within target), 1 refused, failed or could not run, 2 bad usage, 130 interrupted.',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, {
      scenario: { type: 'string' },
      node: { type: 'string' },
      lab: { type: 'boolean' },
      history: { type: 'boolean' },
      json: { type: 'boolean' },
      export: { type: 'string' },
      'allow-destroy': { type: 'boolean' },
      ...LIFECYCLE_OPTIONS,
    });
    const [file, extra] = positionals;
    if (!file || extra) throw new UsageError('give one SPEC file');
    const spec = loadSpecToRun(file, io)?.spec;
    if (!spec) return 1;
    const cluster = spec.metadata.name;

    if (values.export !== undefined && !values.history) throw new UsageError('--export goes with --history: kubedos drill SPEC --history --export FILE');
    if (values.history) {
      const h = readDrillHistory(cluster, io.env);
      if (values.export !== undefined) {
        const out = resolve(io.cwd, values.export);
        const kind = extname(out).toLowerCase();
        if (kind !== '.json' && kind !== '.html') throw new UsageError(`--export ${values.export}: the report is written as .json or .html; name the file so`);
        if (existsSync(out) && statSync(out).isDirectory()) {
          io.err(`--export ${values.export}: is a directory; give a file name ending in ${kind || '.json or .html'}`);
          return 1;
        }
        const report = drillReport(cluster, h.records);
        writePrivateFile(out, kind === '.json' ? drillReportJson(report) : drillReportHtml(report));
        io.out(`wrote the drill report of ${cluster} (${h.records.length} drill${h.records.length === 1 ? '' : 's'}) to ${out}`);
        return 0;
      }
      if (values.json) io.out(JSON.stringify(h.records, null, 2));
      else if (h.records.length === 0) io.out(`no drills recorded for ${cluster}`);
      else io.out(renderDrillHistory(h.records));
      for (const u of h.unreadable) io.err(`skipped ${u.file}: not a drill record (${u.error})`);
      if (h.unreadableCount > h.unreadable.length) io.err(`and ${h.unreadableCount - h.unreadable.length} more unreadable records`);
      return 0;
    }

    const scenario = values.scenario;
    if (!scenario) throw new UsageError(`--scenario NAME is needed (${CATALOGUE.join(', ')})`);
    if (!isScenario(scenario)) {
      const m = scenarioOfDrillName(scenario);
      io.err('scenario' in m ? `"${scenario}" is called ${m.scenario} in the catalogue: kubedos drill ${file} --scenario ${m.scenario}` : `${scenario}: ${m.refused}`);
      return 1;
    }
    const p = plan(spec);
    const pre = drillPreflight(p, scenario, values.node);
    const node = pre.node;
    if (!node || pre.reasons.some((r) => r.code === 'unknown-node')) {
      for (const r of pre.reasons) io.err(r.message);
      return 1;
    }
    if (pre.reasons.length) {
      for (const r of pre.reasons) io.err(`refused: ${r.message}`);
      return 1;
    }
    if (!values.lab) {
      const { request, specPath } = lifecycleRequest(file, spec, values as Record<string, unknown>, io, 'drill');
      const cpre = clusterDrillPreflight(p, spec, { specText: request.specText, specName: file, env: io.env, scenario, node });
      if (cpre.refusal) {
        io.err(cpre.refusalKind === 'state' ? `refused: ${cpre.refusal}` : cpre.refusal);
        return 1;
      }
      if (!values.node) io.err(`target: ${node} (no --node given)`);
      const r = await runClusterDrill({
        request,
        specName: file,
        specPath,
        scenario,
        node,
        allowDestroy: Boolean(values['allow-destroy']) || cpre.allowDestroyBySpec,
        nextOnInterrupt: clusterDrillNext(`kubedos heal ${file}${values.target ? ` --target ${String(values.target)}` : ''}`, node),
        log: (l) => io.err(l),
      });
      return drillOutcome(r, Boolean(values.json), io);
    }
    if (pre.cannotRun) {
      io.err(pre.cannotRun);
      return 1;
    }
    if (!values.node) io.err(`target: ${node} (no --node given)`);
    const r = await runLabDrill({ plan: p, spec, scenario, node, env: io.env, nextOnInterrupt: LAB_NEXT, signal: io.signal, log: (l) => io.err(l) });
    return drillOutcome(r, Boolean(values.json), io);
  },
};


function drillOutcome(r: DrillRecord, json: boolean, io: CliIo): number {
  if (json) io.out(JSON.stringify(r, null, 2));
  else if (r.status === 'refused') for (const reason of r.guard.reasons) io.out(`refused: ${reason.message}`);
  else io.out(renderDrillRecord(r));
  if (r.status === 'interrupted') return 130;
  return r.status === 'passed' ? 0 : 1;
}
