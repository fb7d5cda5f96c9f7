import type { CliCommand } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { loadSpec, reportDiagnostics } from '../load-spec';
import { plural } from '../../../common/text/plural';

export const validateCommand: CliCommand = {
  name: 'validate',
  summary: 'check a ClusterSpec: schema and invariants, with file:line:col diagnostics',
  usage: 'kubedos validate FILE [--json] [--quiet]',
  help: [
    'Exit status: 0 valid (warnings allowed), 1 errors found, 2 bad usage.',
    '  --json    print the diagnostics as JSON on standard output',
    '  --quiet   print errors only',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, { json: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' } });
    const [file, extra] = positionals;
    if (!file || extra) throw new UsageError('exactly one FILE');
    const loaded = loadSpec(file, io.cwd, { completeness: true });
    if (values.json) {
      io.out(JSON.stringify({ file, valid: loaded.spec !== undefined, diagnostics: loaded.diagnostics }, null, 2));
      return loaded.spec ? 0 : 1;
    }
    const failed = reportDiagnostics(loaded, file, io, values.quiet);
    if (failed && !loaded.read) return 1;
    if (failed) {
      const n = loaded.diagnostics.filter((d) => d.severity === 'error').length;
      io.err(`${file}: ${n} error${n === 1 ? '' : 's'}`);
      return 1;
    }
    if (!values.quiet) io.out(`${file}: valid (${plural(loaded.spec?.spec.nodes.inventory.length ?? 0, 'node')}, cluster ${loaded.spec?.metadata.name})`);
    return 0;
  },
};
