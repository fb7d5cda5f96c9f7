import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { createRecoveryKey, readRecoveryRecipient, recoveryIdentityFileText, writeRecoveryRecipient } from '../../trust/recovery';
import { clusterWorkspace, writePrivateFile } from '../../workspace';
import type { CliCommand } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { loadSpec, reportInvalidSpec } from '../load-spec';

export const recoveryKeyCommand: CliCommand = {
  name: 'recovery-key',
  summary: "name the cluster's offline recovery recipient (age): the root CA key and the recovery bundle's secrets are encrypted to it only",
  usage: 'kubedos recovery-key SPEC | --cluster NAME [--out FILE | --recipient age1…] [--force]',
  help: [
    'The recovery identity opens the offline root CA key and the bundle\'s secrets; keep it OFFLINE',
    '(print it, or a second stick in a safe). The workspace keeps only its recipient (public), in',
    '<workspace>/clusters/<name>/recovery/recipient.txt.',
    '  --out FILE         create a new recovery identity in FILE (0600; refused if FILE exists) and name its recipient',
    '  --recipient age1…  name the recipient of an identity you already keep (e.g. made with age-keygen)',
    '  --force            replace a different recipient already named',
    'Without --out or --recipient: prints the recipient the workspace names.',
    'Name it before the first deploy; otherwise the first deploy creates one and says where to move it from.',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, { cluster: { type: 'string' }, out: { type: 'string' }, recipient: { type: 'string' }, force: { type: 'boolean' } });
    if (values.out && values.recipient) throw new UsageError('give --out FILE or --recipient age1…, not both');
    let cluster = values.cluster;
    if (!cluster) {
      const [file] = positionals;
      if (!file) throw new UsageError('give a SPEC or --cluster NAME');
      const loaded = loadSpec(file, io.cwd);
      if (!loaded.spec) return reportInvalidSpec(loaded, file, io);
      cluster = loaded.spec.metadata.name;
    }
    const ws = clusterWorkspace(cluster, io.env);
    if (!values.out && !values.recipient) {
      const have = readRecoveryRecipient(ws, io.env);
      if (!have) {
        io.err(`no recovery recipient named for ${cluster}; create one with: kubedos recovery-key --cluster ${cluster} --out FILE (on a stick you then put away)`);
        return 1;
      }
      io.out(have);
      return 0;
    }
    try {
      if (values.recipient) {
        const path = writeRecoveryRecipient(ws, values.recipient.trim(), { force: values.force ?? false });
        io.out(`recovery recipient of ${cluster}: ${values.recipient.trim()} (${path})`);
        return 0;
      }
      const out = resolve(io.cwd, values.out!);
      if (existsSync(out)) {
        io.err(`recovery-key: ${out} exists; choose a new file (an identity is never overwritten)`);
        return 1;
      }
      const { identity, recipient } = await createRecoveryKey();
      // Record first: a refusal (another recipient named) must not leave an orphan identity file.
      writeRecoveryRecipient(ws, recipient, { force: values.force ?? false });
      writePrivateFile(out, recoveryIdentityFileText(cluster, identity, recipient));
      io.out(`recovery identity written to ${out} (0600); recipient ${recipient} named for ${cluster}`);
      io.out('Move that file OFFLINE now (print it, or a second stick in a safe): restore and a new cluster intermediate need it, nothing else does.');
      return 0;
    } catch (err) {
      io.err(`recovery-key: ${(err as Error).message}`);
      return 1;
    }
  },
};
