import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isBundleDir, verifyBundle } from '../../bundle/verify';
import { MANIFEST_FILE } from '../../build/attest';
import { verifyBuild } from '../../build/verify';
import type { CliCommand } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { plural } from '../../../common/text/plural';

export const verifyCommand: CliCommand = {
  name: 'verify',
  summary: 'check a build directory or a recovery bundle offline: DSSE signatures, then every file against its manifest',
  usage: 'kubedos verify DIR [--key PUBKEY.pem] [--json]',
  help: [
    'DIR is a build directory (manifest.json: every output is checked) or a recovery bundle',
    '(bundle.json, written by the seal stage: every file, the build attestations, spec/plan hashes,',
    'the hub pin and certificate chain; the ISOs and images are not in a bundle and not required).',
    'Exit status 0 when everything matches; 1 naming the first file that does not.',
    '  --key FILE   verify with this ed25519 public key (PEM) instead of the one in DIR/signatures/;',
    '               a bundle whose embedded key is a different key fails',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, { key: { type: 'string' }, json: { type: 'boolean' } });
    const [dir, extra] = positionals;
    if (!dir || extra) throw new UsageError('exactly one DIR');
    const publicKeyPem = values.key ? readFileSync(resolve(io.cwd, values.key), 'utf8') : undefined;
    const path = resolve(io.cwd, dir);
    if (!existsSync(path) || !statSync(path).isDirectory()) {
      io.err(`verify FAILED: ${dir}: no such directory (a build directory from \`kubedos build --out DIR\`, or <workspace>/clusters/<name>/bundle after a deploy's seal stage)`);
      return 1;
    }
    if (isBundleDir(path)) {
      const r = await verifyBundle(path, publicKeyPem ? { publicKeyPem } : {});
      if (values.json) io.out(JSON.stringify({ kind: 'bundle', ...r }, null, 2));
      else for (const c of r.checks) io.out(`ok    ${c}`);
      if (!r.ok) {
        if (!values.json) io.err(`verify FAILED: recovery bundle ${dir}: ${r.file}: ${r.reason}`);
        return 1;
      }
      if (!values.json) io.out(`verify ok: recovery bundle of ${r.cluster}, signed by key ${r.keyid}`);
      return 0;
    }
    if (!existsSync(join(path, MANIFEST_FILE))) {
      io.err(`verify FAILED: ${dir} is neither a build directory (no ${MANIFEST_FILE}) nor a recovery bundle (no bundle.json)`);
      return 1;
    }
    const r = await verifyBuild(path, publicKeyPem ? { publicKeyPem } : {});
    if (values.json) io.out(JSON.stringify(r, null, 2));
    if (!r.ok) {
      if (!values.json) io.err(`verify FAILED: ${r.file}: ${r.reason}`);
      return 1;
    }
    if (!values.json) io.out(`verify ok: ${plural(r.checked, 'file')} match, signatures by key ${r.keyid}`);
    return 0;
  },
};
