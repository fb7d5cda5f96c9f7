// `kubedos wiring check SPEC --lab`: the plan's reachability matrix (same-plane paths, every
// declared inter-plane flow, and undeclared samples: other ports, other plane pairs, reverse
// direction), executed for real. For now the target is the network-namespace lab (root): it
// brings the plan's backplanes up with the real payload, enrolls every node, then drives every
// probe from the master over SSH on wg1 (the path a deployed cluster will use), tears down. The
// lab is part of the engine (main/lab/), so the shipped command never reaches into test code.
// Reaching a deployed cluster's master needs the deploy stages; until they exist the command
// says so instead of pretending.
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
import { plural } from '../../../common/text/plural';

export const wiringCommand: CliCommand = {
  name: 'wiring',
  summary: 'check the plane wiring: allowed/denied per flow, measured (lab namespaces for now)',
  usage: 'kubedos wiring check FILE --lab [--json] [--deny-pairs all|ring]',
  help: [
    'Runs the plan\'s flow matrix for real and prints allowed/denied per flow.',
    '  --lab                 build the plan in network namespaces (needs root, wireguard-go, nft,',
    '                        python3), bring the planes up, enroll, probe, tear down',
    '  --json                the full result for the workbench\'s wiring map',
    '  --deny-pairs ring     sample undeclared flows on a ring of node pairs (default: all pairs)',
    'Exit status: 0 every flow as declared, 3 mismatches, 1 could not run, 2 bad usage.',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, { lab: { type: 'boolean' }, json: { type: 'boolean' }, 'deny-pairs': { type: 'string' } });
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
    if (!values.lab) {
      io.err('wiring check against a deployed cluster needs the deploy stages (not implemented yet); run it against the namespace lab with --lab');
      return 1;
    }
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
