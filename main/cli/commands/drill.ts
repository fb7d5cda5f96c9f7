// `kubedos drill SPEC --scenario NAME [--node NODE] --lab` and `kubedos drill SPEC --history`:
// thin over main/drills (engine, lab target, history).
import type { GuardNode } from '../../../common/drills/catalogue';
import { CATALOGUE, guardDrill, isScenario, SCENARIOS, scenarioOfDrillName } from '../../../common/drills/catalogue';
import { renderDrillHistory, renderDrillRecord } from '../../../common/drills/timeline';
import { plan } from '../../../common/plan/index';
import type { Plan } from '../../../common/plan/index';
import { drillId, runDrill, specDrillSettings } from '../../drills/engine';
import { readDrillHistory } from '../../drills/history';
import { etcdMembersOf, LAB_SCENARIOS, LabDrillTarget } from '../../drills/lab-target';
import { requireRoot } from '../../lab/harness';
import type { CliCommand, CliIo } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { loadSpec, reportDiagnostics } from '../load-spec';

/** What `kubedos drill` and `kubedos heal` say when asked to act on a deployed cluster. */
export const NO_CLUSTER_PATH =
  'cannot reach a deployed cluster yet: the probes and repairs run from the cluster\'s hub, and this version cannot drive them there. Nothing was changed. Run it on a copy of the plan in network namespaces with --lab (needs root).';

export const LAB_NEXT = 'the namespace lab was removed with the command, so nothing stays fenced; run the drill again';

export function guardNodes(p: Plan): GuardNode[] {
  const etcd = etcdMembersOf(p);
  return p.nodes.map((n) => ({ name: n.name, role: n.role, hub: n.hub, etcd: etcd.includes(n.name) }));
}

/** The node a scenario targets when none is named: the last eligible one by name (stable). */
export function defaultTarget(scenario: string, nodes: readonly GuardNode[]): string | undefined {
  if (!isScenario(scenario)) return undefined;
  const s = SCENARIOS[scenario];
  const ok = nodes.filter((n) => !n.hub && (!s.roles || s.roles.includes(n.role)) && (!s.etcdMemberOnly || n.etcd)).map((n) => n.name).sort();
  return ok.at(-1);
}

function loadOrReport(file: string, io: CliIo) {
  const loaded = loadSpec(file, io.cwd);
  if (!loaded.spec) {
    reportDiagnostics(loaded, file, io, true);
    io.err(`${file}: not valid; nothing run (run kubedos validate ${file})`);
  }
  return loaded.spec;
}

export const drillCommand: CliCommand = {
  name: 'drill',
  summary: 'run a rebuild drill (inject, detect, fence, replace, reintegrate, healthy) and record its MTTR; --history lists past drills',
  usage: 'kubedos drill SPEC --scenario NAME [--node NODE] --lab [--json] | kubedos drill SPEC --history [--json]',
  help: [
    'Scenarios:',
    ...CATALOGUE.map((s) => `  ${s.padEnd(24)} ${SCENARIOS[s].summary}`),
    '',
    'The guard refuses a drill on a node that does not exist, on the hub, on an unhealthy or unconverged',
    'cluster, or one that would leave etcd without quorum, and says why. Detection follows the spec\'s',
    'selfHealing.detect; the target is acceptance.drills[].expectRecoveryMinutes (else mttrTargetMinutes).',
    'Every drill is recorded in <workspace>/clusters/<name>/drills/<id>.json (also when refused or interrupted).',
    '',
    '  --lab       run on the plan built in network namespaces: real planes, enrollment, a real etcd per',
    '              planned member (needs root). The lab runs partition-node and kill-etcd-member.',
    '  --history   print the recorded drills of this cluster',
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
    });
    const [file, extra] = positionals;
    if (!file || extra) throw new UsageError('give one SPEC file');
    const spec = loadOrReport(file, io);
    if (!spec) return 1;
    const cluster = spec.metadata.name;

    if (values.history) {
      const h = readDrillHistory(cluster, io.env);
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
    const nodes = guardNodes(p);
    const node = values.node ?? defaultTarget(scenario, nodes);
    if (!node) {
      io.err(`${scenario} has no eligible node in ${cluster} (${SCENARIOS[scenario].etcdMemberOnly ? 'it needs an etcd member' : `it targets ${SCENARIOS[scenario].roles?.join(' or ') ?? 'a node other than the hub'}`})`);
      return 1;
    }
    if (!nodes.some((n) => n.name === node)) {
      io.err(`there is no node "${node}" in ${cluster}; nodes: ${nodes.map((n) => n.name).slice(0, 8).join(', ')}${nodes.length > 8 ? ` and ${nodes.length - 8} more` : ''}`);
      return 1;
    }
    // What the guard can say without looking at the cluster (wrong kind of node, the hub…).
    const statically = guardDrill({ scenario, node, nodes, health: undefined, allowDestroy: false }).reasons.filter((r) => r.code !== 'health-unknown' && r.code !== 'not-destroyable');
    if (statically.length) {
      for (const r of statically) io.err(`refused: ${r.message}`);
      return 1;
    }
    if (!values.lab) {
      io.err(`kubedos drill ${cluster}: ${NO_CLUSTER_PATH}`);
      return 1;
    }
    if (!LAB_SCENARIOS.includes(scenario)) {
      io.err(`${scenario} cannot run in the namespace lab: it needs a hypervisor to ${SCENARIOS[scenario].destroysVm ? 'destroy and recreate the VM' : 'stop and start the VM'}; the lab runs ${LAB_SCENARIOS.join(' and ')}`);
      return 1;
    }
    try {
      requireRoot('kubedos drill --lab');
    } catch (err) {
      io.err((err as Error).message);
      return 1;
    }
    if (!values.node) io.err(`target: ${node} (no --node given)`);
    const t0 = Date.now();
    const target = await LabDrillTarget.create(p, { log: (l) => io.err(l) });
    try {
      io.err(`lab of ${p.nodes.length} nodes up in ${Date.now() - t0} ms (etcd members: ${target.etcdMembers.join(', ') || 'none'})`);
      const r = await runDrill({
        target,
        spec,
        scenario,
        node,
        ...specDrillSettings(spec, io.env),
        id: drillId(new Date(), scenario, node),
        nextOnInterrupt: LAB_NEXT,
        signal: io.signal,
        log: (l) => io.err(l),
      });
      if (values.json) io.out(JSON.stringify(r, null, 2));
      else if (r.status === 'refused') for (const reason of r.guard.reasons) io.out(`refused: ${reason.message}`);
      else io.out(renderDrillRecord(r));
      if (r.status === 'interrupted') return 130;
      return r.status === 'passed' ? 0 : 1;
    } finally {
      target.destroy();
    }
  },
};
