import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { clusterSpecJsonSchemaText } from '../../../common/spec/jsonschema';
import type { CliCommand } from '../command';
import { parseCommandArgs } from '../command';

export const schemaCommand: CliCommand = {
  name: 'schema',
  summary: 'print (or --write) the ClusterSpec JSON Schema generated from the zod schema',
  usage: 'kubedos schema [--write FILE]',
  help: 'The checked-in copy is common/spec/clusterspec.schema.json; `npm run schema` refreshes it.',
  async run(argv, io) {
    const { values } = parseCommandArgs(argv, { write: { type: 'string' } }, false);
    const text = clusterSpecJsonSchemaText();
    if (values.write) {
      writeFileSync(resolve(io.cwd, values.write), text);
      io.out(`wrote ${values.write}`);
    } else io.out(text.trimEnd());
    return 0;
  },
};
