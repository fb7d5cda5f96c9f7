import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isTemplateName, TEMPLATE_NAMES, TEMPLATES } from '../../../common/spec/index';
import { closest } from '../../../common/text/suggest';
import type { CliCommand } from '../command';
import { parseCommandArgs, UsageError } from '../command';

export const initCommand: CliCommand = {
  name: 'init',
  summary: 'write a new ClusterSpec from a template',
  usage: 'kubedos init --template NAME [FILE] [--force]',
  help: [
    'Writes the template to FILE (default: cluster.yaml), or to standard output with FILE "-".',
    'Refuses to overwrite an existing file unless --force.',
    '',
    'templates:',
    ...TEMPLATE_NAMES.map((n) => `  ${n.padEnd(13)} ${TEMPLATES[n].description}`),
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, { template: { type: 'string', short: 't' }, force: { type: 'boolean' } });
    if (!values.template) throw new UsageError(`--template is required (${TEMPLATE_NAMES.join(', ')})`);
    if (!isTemplateName(values.template)) {
      const suggestion = closest(values.template, TEMPLATE_NAMES);
      throw new UsageError(`unknown template "${values.template}"${suggestion ? `; did you mean ${suggestion}?` : ''} (templates: ${TEMPLATE_NAMES.join(', ')})`);
    }
    if (positionals.length > 1) throw new UsageError('at most one FILE');
    const text = TEMPLATES[values.template].text;
    const file = positionals[0] ?? 'cluster.yaml';
    if (file === '-') {
      io.out(text);
      return 0;
    }
    const path = resolve(io.cwd, file);
    if (existsSync(path) && !values.force) {
      io.err(`kubedos init: ${file} exists; pass --force to overwrite it`);
      return 1;
    }
    writeFileSync(path, text);
    io.out(`wrote ${file} from template ${values.template}; next: kubedos validate ${file} && kubedos plan ${file}`);
    return 0;
  },
};
