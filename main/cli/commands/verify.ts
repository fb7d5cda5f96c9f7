import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { verifyBuild } from '../../build/verify';
import type { CliCommand } from '../command';
import { parseCommandArgs, UsageError } from '../command';

export const verifyCommand: CliCommand = {
  name: 'verify',
  summary: 'check a build directory offline: DSSE signatures, then every output against manifest.json',
  usage: 'kubedos verify DIR [--key PUBKEY.pem] [--json]',
  help: [
    'Exit status 0 when everything matches; 1 naming the first file that does not.',
    '  --key FILE   verify with this ed25519 public key (PEM) instead of the one in DIR/signatures/',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, { key: { type: 'string' }, json: { type: 'boolean' } });
    const [dir, extra] = positionals;
    if (!dir || extra) throw new UsageError('exactly one DIR');
    const publicKeyPem = values.key ? readFileSync(resolve(io.cwd, values.key), 'utf8') : undefined;
    const r = await verifyBuild(resolve(io.cwd, dir), publicKeyPem ? { publicKeyPem } : {});
    if (values.json) io.out(JSON.stringify(r, null, 2));
    if (!r.ok) {
      if (!values.json) io.err(`verify FAILED: ${r.file}: ${r.reason}`);
      return 1;
    }
    if (!values.json) io.out(`verify ok: ${r.checked} files match, signatures by key ${r.keyid}`);
    return 0;
  },
};
