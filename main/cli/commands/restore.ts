import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { sha256Hex } from '../../../common/canonical';
import { RestoreRefused, restoreWorkspace, verifyRestore, writeRestoreTimeline } from '../../restore/service';
import type { RestorePhase } from '../../restore/service';
import { readIdentityFile } from '../../trust/recovery';
import type { CliCommand } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { deployCommand } from './deploy';
import { PREBUILT_ENV } from '../../stages/prebuilt';

export const restoreCommand: CliCommand = {
  name: 'restore',
  summary: 'rebuild a cluster from its recovery bundle and kept artifact, with the same identity: verify both offline, make a fresh workspace, deploy',
  usage: 'kubedos restore BUNDLE --artifact DIR --recovery-key FILE [--cluster NAME] [--target qemu-local|proxmox://HOST] [--allow-destroy] [--verbose]',
  help: [
    'Checks everything offline first and refuses, writing nothing, with one message each: a bundle that',
    'does not verify (one flipped byte names the file), a bundle of another cluster (--cluster NAME, or a',
    'workspace of another cluster of that name), a recovery key that does not open it, an artifact that is',
    'not the build the bundle names. Then makes a fresh workspace ($KUBEDOS_WORKSPACE must not hold the',
    'cluster yet) with the same root and cluster CA, hub pin, build signing key and plan; the artifact',
    'becomes its build/ (hard links when on the same disk). With --target it then runs the deploy on it',
    '(kubedos deploy <workspace>/spec.yaml --target T) from the kept artifact (the build stage verifies it and',
    'builds nothing), with the recovery key at hand so expired certificates are renewed under the same root.',
    'Its timeline goes to <workspace>/restore-timeline.json.',
    '  --recovery-key FILE  the recovery identity (kubedos recovery-key --out); or KUBEDOS_RECOVERY_IDENTITY_FILE',
    '  --cluster NAME       the cluster you mean to restore (refuses another cluster\'s bundle)',
    'The etcd snapshot in the bundle (recovery/etcd-snapshot.db.age) is not restored by this command:',
    'decrypt it with `age -d -i FILE` on the etcd member and run `etcdctl snapshot restore` there.',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, {
      artifact: { type: 'string' },
      'recovery-key': { type: 'string' },
      cluster: { type: 'string' },
      target: { type: 'string', short: 't' },
      'allow-destroy': { type: 'boolean' },
      verbose: { type: 'boolean', short: 'v' },
    });
    const [bundle, extra] = positionals;
    if (!bundle || extra) throw new UsageError('exactly one BUNDLE directory');
    if (!values.artifact) throw new UsageError('--artifact DIR (the kept build directory) is required');
    const keyFile = values['recovery-key'] ? resolve(io.cwd, values['recovery-key']) : io.env.KUBEDOS_RECOVERY_IDENTITY_FILE;
    if (!keyFile) throw new UsageError('--recovery-key FILE (the offline recovery identity) is required');
    const phases: RestorePhase[] = [];
    const phase = async <T>(name: string, fn: () => Promise<T>, detail: (v: T) => string): Promise<T> => {
      const t0 = Date.now();
      const v = await fn();
      phases.push({ name, startedAtMs: t0, durationMs: Date.now() - t0, detail: detail(v) });
      io.out(`${name}: ${detail(v)} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      return v;
    };
    let identity: string;
    try {
      identity = readIdentityFile(keyFile);
    } catch (err) {
      io.err(`restore refused: ${(err as Error).message}; nothing was written`);
      return 1;
    }
    const req = {
      bundleDir: resolve(io.cwd, bundle),
      artifactDir: resolve(io.cwd, values.artifact),
      identity,
      env: io.env,
      ...(values.cluster ? { expectCluster: values.cluster } : {}),
    };
    let verified;
    try {
      verified = await phase('verify', () => verifyRestore(req), (v) => `bundle, recovery key and artifact of ${v.cluster} check out offline (root CA ${v.rootFingerprint})`);
    } catch (err) {
      if (err instanceof RestoreRefused) {
        io.err(`${err.summary}\nhint: ${err.hint}`);
        return 1;
      }
      throw err;
    }
    for (const c of verified.checks) io.out(`ok    ${c}`);
    const made = await phase('workspace', () => restoreWorkspace(verified, req), (r) => `${r.workspace}: same root CA and plan ${verified.planSha256.slice(0, 16)}…, ${r.secrets} secrets, ${r.artifactFiles} artifact files`);
    let code = 0;
    if (values.target) {
      if (!existsSync(made.specPath)) throw new Error(`${made.specPath} is missing after the restore`);
      code = await phase(
        'deploy',
        () =>
          deployCommand.run([made.specPath, '--target', values.target!, ...(values['allow-destroy'] ? ['--allow-destroy'] : []), ...(values.verbose ? ['--verbose'] : [])], {
            ...io,
            env: { ...io.env, KUBEDOS_RECOVERY_IDENTITY_FILE: keyFile, KUBEDOS_OFFLINE: '1', [PREBUILT_ENV]: join(made.workspace, 'build') },
          }),
        (c) => (c === 0 ? 'deploy converged' : `deploy stopped (exit ${c}); run the same restore's deploy again with kubedos deploy ${made.specPath} --target ${values.target}`),
      );
    } else {
      io.out(`workspace restored; deploy it with: kubedos deploy ${made.specPath} --target TARGET (set KUBEDOS_RECOVERY_IDENTITY_FILE if its certificates have expired)`);
    }
    const path = writeRestoreTimeline(made.workspace, { cluster: verified.cluster, bundleSha256: sha256Hex(readFileSync(join(req.bundleDir, 'bundle.json'))), rootFingerprint: verified.rootFingerprint, phases });
    io.out(`timeline: ${path} (${(phases.reduce((s, p) => s + p.durationMs, 0) / 1000).toFixed(1)} s in all)`);
    return code;
  },
};
