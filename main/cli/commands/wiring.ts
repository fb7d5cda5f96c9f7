// `kubedos wiring check SPEC`: the plan's reachability matrix (same-plane paths, every declared
// inter-plane flow, and undeclared samples: other ports, other plane pairs, reverse direction),
// executed for real, two ways:
// - on the deployed cluster (default): the probes run on the VMs through their guest agents
//   (main/wiring/service.ts), with the hub's handshake ages; the result is recorded as the
//   cluster's last check for the workbench;
// - --lab: the plan built in network namespaces (root), the planes brought up with the real
//   payload, every node enrolled, every probe driven from the master over SSH on wg1, torn down.
import { plan } from '../../../common/plan/index';
import { canonicalJson } from '../../../common/canonical';
import { closest } from '../../../common/text/suggest';
import type { CliCommand } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { loadSpec, reportInvalidSpec } from '../load-spec';
import { bringUp, makeTrust } from '../../lab/backplane';
import { Lab, requireRoot } from '../../lab/harness';
import { renderWiringReport, runWiringChecks } from '../../wiring/check';
import { labWiringTargetViaMaster } from '../../wiring/lab-target';
import { wiringChecks } from '../../wiring/matrix';
import type { WiringRun } from '../../wiring/service';
import { runClusterWiringCheck, WiringCheckRefused } from '../../wiring/service';
import { plural } from '../../../common/text/plural';
import { renderTable } from '../../../common/text/table';
import type { HandshakeAge } from '../../../common/wiring/last-check';
import type { CliIo } from '../command';
import { clusterOperationRequest, LIFECYCLE_HELP, LIFECYCLE_OPTIONS } from './lifecycle';

export const wiringCommand: CliCommand = {
  name: 'wiring',
  summary: 'check the plane wiring: allowed/denied per flow, measured on the deployed cluster or in a namespace lab',
  usage: 'kubedos wiring check FILE [--target T] [--lab] [--json] [--deny-pairs all|ring]',
  help: [
    'Runs the plan\'s flow matrix for real and prints allowed/denied per flow.',
    'Default: on the deployed cluster, through each VM\'s guest agent (probe listeners started and',
    'stopped on every node, connections tried from every node), plus the hub\'s WireGuard handshake',
    'age per node and plane; recorded as the cluster\'s last check (the workbench\'s Wiring view shows it).',
    '  --lab                 instead: build the plan in network namespaces (needs root, wireguard-go,',
    '                        nft, python3), bring the planes up, enroll, probe, tear down',
    '  --json                the full result for the workbench\'s wiring map',
    '  --deny-pairs ring     sample undeclared flows on a ring of node pairs (default: all pairs)',
    ...LIFECYCLE_HELP,
    'Exit status: 0 every flow as declared, 3 mismatches, 1 could not run, 2 bad usage.',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, { ...LIFECYCLE_OPTIONS, lab: { type: 'boolean' }, json: { type: 'boolean' }, 'deny-pairs': { type: 'string' } });
    const [sub, file, extra] = positionals;
    if (sub !== 'check' || !file || extra) {
      throw new UsageError(sub === undefined ? 'missing the action: kubedos wiring check FILE' : sub !== 'check' ? `unknown action "${sub}"${closest(sub, ['check']) ? '; did you mean check?' : ''} (the only action is check)` : !file ? 'missing the spec FILE to check' : 'exactly one FILE');
    }
    const denyPairs = values['deny-pairs'] ?? 'all';
    if (denyPairs !== 'all' && denyPairs !== 'ring') throw new UsageError('--deny-pairs is all or ring');
    const loaded = loadSpec(file, io.cwd);
    if (!loaded.spec) {
      return reportInvalidSpec(loaded, file, io, 'nothing checked');
    }
    if (values.lab && values.target !== undefined) throw new UsageError('--lab builds its own namespace cluster: drop --target, or drop --lab to check the deployed cluster');
    if (!values.lab) return checkDeployed(file, loaded.spec, loaded.path, values as Record<string, unknown>, denyPairs, io);
    const p = plan(loaded.spec);
    try {
      requireRoot('kubedos wiring check --lab');
    } catch (err) {
      io.err((err as Error).message);
      return 1;
    }
    const t0 = Date.now();
    const lab = await Lab.create(p, { sshd: true, log: (l) => io.err(l) });
    try {
      const trust = await makeTrust(lab);
      const window = await bringUp(lab, trust, 120);
      window.process.kill('SIGTERM');
      await lab.installOperatorKey();
      io.err(`${plural(p.nodes.length, 'node')} up and enrolled in ${Date.now() - t0} ms; probing from ${lab.hub.name} over wg1`);
      const report = await runWiringChecks(labWiringTargetViaMaster(lab), [...lab.nodes.keys()], wiringChecks(p, { denyPairs }));
      if (values.json) {
        io.out(canonicalJson({ cluster: p.cluster.name, target: 'lab', passed: report.passed, failed: report.failed, counters: report.counters, durationMs: report.durationMs, results: report.results }, 2));
      } else {
        io.out(renderWiringReport(report));
      }
      return report.failed === 0 ? 0 : 3;
    } finally {
      lab.destroy();
    }
  },
};

async function checkDeployed(file: string, spec: Parameters<typeof clusterOperationRequest>[1], specPath: string, values: Record<string, unknown>, denyPairs: 'all' | 'ring', io: CliIo): Promise<number> {
  const req = clusterOperationRequest(file, spec, values, io, { action: 'wiring check', by: 'wiring check', specPath, refused: (why) => `kubedos wiring check: refused: ${why}; nothing was probed` });
  if (!req) return 1;
  let run: WiringRun & { recordPath: string };
  try {
    run = await runClusterWiringCheck(req.request, { denyPairs });
  } catch (err) {
    const e = err as Error & { hint?: string };
    if (err instanceof WiringCheckRefused) {
      io.err(`kubedos wiring check: ${e.message}`);
      return 1;
    }
    io.err(`kubedos wiring check: could not finish: ${e.message}`);
    if (e.hint) io.err(`next: ${e.hint}`);
    io.err('nothing was recorded; probe listeners that were started stop by themselves within 10 minutes');
    return io.signal.aborted ? 130 : 1;
  }
  const { report, record } = run;
  if (values.json) {
    io.out(canonicalJson({ cluster: record.cluster, target: record.target, checkedAt: record.checkedAt, passed: report.passed, failed: report.failed, counters: report.counters, durationMs: report.durationMs, handshakes: run.handshakes, ...(run.handshakeError ? { handshakeError: run.handshakeError } : {}), results: report.results }, 2));
  } else {
    io.out(renderWiringReport(report));
    io.out('');
    io.out(renderHandshakes(record.hub, run.handshakes));
  }
  if (run.handshakeError) io.err(`warning: handshake ages not read: ${run.handshakeError}`);
  io.err(`recorded as the last check of ${record.cluster}: ${run.recordPath}`);
  return report.failed === 0 ? 0 : 3;
}

/** One row per node: the hub's last handshake on each plane ("never" when there was none). */
export function renderHandshakes(hub: string, hs: readonly HandshakeAge[]): string {
  if (!hs.length) return `handshakes with ${hub}: none read`;
  const nodes = [...new Set(hs.map((h) => h.node))];
  const age = (n: string, p: string): string => {
    const h = hs.find((x) => x.node === n && x.plane === p);
    return h === undefined ? '-' : h.ageSeconds === null ? 'never' : `${h.ageSeconds} s ago`;
  };
  return [`last handshake with ${hub}:`, renderTable(['NODE', 'WG1', 'WG2', 'WG3'], nodes.map((n) => [n, age(n, 'wg1'), age(n, 'wg2'), age(n, 'wg3')]))].join('\n');
}
