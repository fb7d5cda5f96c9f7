import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { sha256Hex } from '../../../common/canonical';
import { EtcdRestoreError, identityLines, restoreClusterEtcd } from '../../restore/etcd-cluster';
import type { RestoreIdentityProof } from '../../restore/etcd-cluster';
import { RestoreRefused, restoreWorkspace, verifyRestore, writeRestoreTimeline } from '../../restore/service';
import type { RestorePhase } from '../../restore/service';
import { readIdentityFile } from '../../trust/recovery';
import type { CliCommand } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { deployCommand } from './deploy';
import { PREBUILT_ENV } from '../../stages/prebuilt';
import { parseTarget } from '../../target';
import { BUNDLE_PATHS } from '../../bundle/schema';

export const restoreCommand: CliCommand = {
  name: 'restore',
  summary: 'rebuild a cluster from its recovery bundle and kept artifact, with the same identity: verify both offline, make a fresh workspace, deploy',
  usage: 'kubedos restore BUNDLE --artifact DIR --recovery-key FILE [--cluster NAME] [--target qemu-local|proxmox://HOST [--expect-key KEY]] [--allow-destroy] [--verbose]',
  help: [
    'Checks everything offline first and refuses, writing nothing, with one message each: a bundle that',
    'does not verify (one flipped byte names the file), a bundle of another cluster (--cluster NAME, or a',
    'workspace of another cluster of that name), a recovery key that does not open it, an artifact that is',
    'not the build the bundle names. Then makes a fresh workspace ($KUBEDOS_WORKSPACE must not hold the',
    'cluster yet) with the same root and cluster CA, hub pin, build signing key and plan; the artifact',
    'becomes its build/ (hard links when on the same disk). With --target it then runs the deploy on it',
    '(kubedos deploy <workspace>/spec.yaml --target T) from the kept artifact (the build stage verifies it and',
    'builds nothing), with the recovery key at hand so expired certificates are renewed under the same root.',
    'Once the deploy converged, etcd is put back from the bundle\'s snapshot on every member through the',
    'guest agents: decrypted here with the recovery key (never written to a node), copied to each member,',
    'etcd stopped on all of them, `etcdctl snapshot restore` into a fresh data directory with the plan\'s',
    'member names and peer URLs, swapped in, started, health-gated. Then the identity is proven and printed:',
    'the members trust the bundle\'s root CA, the workspace plans the bundle\'s plan hash, etcd\'s revision is',
    'at least the snapshot\'s, and --expect-key KEY reads back. A restore that stopped part-way (deploy or',
    'etcd) finishes when the same command runs again (its workspace is resumed, not refused).',
    'Its timeline, with the proof, goes to <workspace>/restore-timeline.json.',
    '  --recovery-key FILE  the recovery identity (kubedos recovery-key --out); or KUBEDOS_RECOVERY_IDENTITY_FILE',
    '  --cluster NAME       the cluster you mean to restore (refuses another cluster\'s bundle)',
    '  --expect-key KEY     an etcd key that must read back after the restore (the proof you choose)',
    'Without --target, etcd is not put back (there is no cluster yet): deploy the workspace, then run the',
    'same restore with --target.',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, {
      artifact: { type: 'string' },
      'recovery-key': { type: 'string' },
      cluster: { type: 'string' },
      'expect-key': { type: 'string' },
      target: { type: 'string', short: 't' },
      'allow-destroy': { type: 'boolean' },
      verbose: { type: 'boolean', short: 'v' },
    });
    const [bundle, extra] = positionals;
    if (!bundle || extra) throw new UsageError('exactly one BUNDLE directory');
    if (!values.artifact) throw new UsageError('--artifact DIR (the kept build directory) is required');
    const keyFile = values['recovery-key'] ? resolve(io.cwd, values['recovery-key']) : io.env.KUBEDOS_RECOVERY_IDENTITY_FILE;
    if (!keyFile) throw new UsageError('--recovery-key FILE (the offline recovery identity) is required');
    if (values['expect-key'] !== undefined && !values.target) throw new UsageError('--expect-key needs --target (etcd is put back on the deployed cluster)');
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
    const bundleSha256 = sha256Hex(readFileSync(join(req.bundleDir, 'bundle.json')));
    let proof: RestoreIdentityProof | undefined;
    const timeline = (): string => writeRestoreTimeline(verified.workspace, { cluster: verified.cluster, bundleSha256, rootFingerprint: verified.rootFingerprint, phases, ...(proof ? { proof } : {}) });
    const made = verified.resumed
      ? await phase('workspace', async () => ({ workspace: verified.workspace, specPath: join(verified.workspace, 'spec.yaml') }), (r) => `${r.workspace}: resumed (an earlier run of this restore made it)`)
      : await phase('workspace', () => restoreWorkspace(verified, req), (r) => `${r.workspace}: same root CA and plan ${verified.planSha256.slice(0, 16)}…, ${r.secrets} secrets, ${r.artifactFiles} artifact files`);
    timeline(); // a rerun resumes this workspace even if this run dies in the deploy
    let code = 0;
    if (values.target) {
      if (!existsSync(made.specPath)) throw new Error(`${made.specPath} is missing after the restore`);
      const rerun = ['kubedos', 'restore', req.bundleDir, '--artifact', req.artifactDir, '--recovery-key', keyFile, '--target', values.target, ...(values['expect-key'] !== undefined ? ['--expect-key', values['expect-key']] : [])].join(' ');
      code = await phase(
        'deploy',
        () =>
          deployCommand.run([made.specPath, '--target', values.target!, ...(values['allow-destroy'] ? ['--allow-destroy'] : []), ...(values.verbose ? ['--verbose'] : [])], {
            ...io,
            env: { ...io.env, KUBEDOS_RECOVERY_IDENTITY_FILE: keyFile, KUBEDOS_OFFLINE: '1', [PREBUILT_ENV]: join(made.workspace, 'build') },
          }),
        (c) => (c === 0 ? 'deploy converged' : `deploy stopped (exit ${c}); etcd was not touched; run the same restore again: ${rerun}`),
      );
      const snapshot = verified.opened.etcdSnapshot;
      if (code === 0 && !snapshot) {
        io.out('etcd: the bundle holds no etcd snapshot (the seal said why in its notes); etcd starts empty');
      } else if (code === 0 && snapshot) {
        const etcdT0 = Date.now();
        try {
          proof = await phase(
            'etcd',
            () =>
              restoreClusterEtcd({
                specText: readFileSync(made.specPath, 'utf8'),
                workspace: made.workspace,
                bundle: { rootCaPem: readFileSync(join(req.bundleDir, BUNDLE_PATHS.rootCa), 'utf8'), clusterCaPem: readFileSync(join(req.bundleDir, BUNDLE_PATHS.clusterCa), 'utf8'), planSha256: verified.planSha256 },
                snapshot: snapshot.data,
                target: parseTarget(values.target),
                env: io.env,
                cwd: io.cwd,
                rerun,
                ...(values['expect-key'] !== undefined ? { expectKey: values['expect-key'] } : {}),
                log: (l) => io.out(l),
              }),
            (p) => `restored from the bundle's snapshot: ${p.etcd.members.length} member${p.etcd.members.length === 1 ? '' : 's'}, revision ${p.etcd.revision}`,
          );
          for (const l of identityLines(proof)) io.out(l);
          io.out(`note: this workspace's own bundle was sealed by the deploy above, before etcd was put back (its snapshot is not the restored data); to seal the restored cluster, move ${join(made.workspace, 'bundle')} away and run kubedos deploy ${made.specPath} --target ${values.target} (its seal stage then runs again)`);
        } catch (err) {
          if (!(err instanceof EtcdRestoreError)) throw err;
          phases.push({ name: 'etcd', startedAtMs: etcdT0, durationMs: Date.now() - etcdT0, detail: err.lines[0]! });
          for (const l of err.lines) io.err(l);
          code = 1;
        }
      }
    } else {
      io.out(`workspace restored; deploy it with: kubedos deploy ${made.specPath} --target TARGET (set KUBEDOS_RECOVERY_IDENTITY_FILE if its certificates have expired)`);
      if (verified.opened.etcdSnapshot) io.out('etcd is not put back without --target: run this restore again with --target TARGET once you can reach the target (it resumes this workspace)');
    }
    const path = timeline();
    io.out(`timeline: ${path} (${(phases.reduce((s, p) => s + p.durationMs, 0) / 1000).toFixed(1)} s in all)`);
    return code;
  },
};
