import { resolve } from 'node:path';
import type { FailureDetail } from '../../../common/pipeline/events';
import { runPipeline } from '../../pipeline/runner';
import { restoreRunStages } from '../../restore/run';
import { readRestoreIdentity, RestoreRefused } from '../../restore/service';
import type { CliCommand } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { ProgressDisplay } from '../progress';
import { parseTarget } from '../../target';

/** A failed stage of the restore, as one message: what failed, the command and its stderr tail, what to do next. */
function failureText(f: FailureDetail): string {
  return [f.message, ...(f.command ? [`command: ${f.command.join(' ')}`] : []), ...(f.stderrTail ? [`stderr: ${f.stderrTail}`] : []), ...(f.hint ? [`hint: ${f.hint}`] : [])].join('\n');
}

export const restoreCommand: CliCommand = {
  name: 'restore',
  summary: 'rebuild a cluster from its recovery bundle and kept artifact, with the same identity: verify both offline, make a fresh workspace, deploy, put etcd back, seal again',
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
    'at least the snapshot\'s, and --expect-key KEY reads back. Then the restored cluster is sealed again:',
    'the bundle its deploy sealed before etcd was back (its snapshot is the empty etcd) is moved aside and the',
    'deploy runs once more (converged stages are skipped, its seal runs), so <workspace>/bundle holds the',
    'restored data; if that fails, the moved bundle is put back and the command says so. A restore that',
    'stopped part-way (deploy, etcd or seal) finishes when the same command runs again (its workspace is',
    'resumed, not refused). The deploy inside prints as kubedos deploy prints (--verbose: every line).',
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
    let target;
    try {
      target = values.target === undefined ? undefined : parseTarget(values.target);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    let identity: string;
    try {
      identity = readRestoreIdentity(keyFile);
    } catch (err) {
      if (!(err instanceof RestoreRefused)) throw err;
      io.err(`${err.summary}\nhint: ${err.hint}`);
      return 1;
    }
    // The engine's restore run (main/restore/run.ts), the same the workbench's Recovery view runs:
    // its phase lines on stdout, the deploy inside it printed as a deploy prints (one display per
    // deploy run: the restore's deploy, then the one that seals again).
    let deployDisplay: ProgressDisplay | undefined;
    const stages = restoreRunStages({
      bundleDir: resolve(io.cwd, bundle),
      artifactDir: resolve(io.cwd, values.artifact),
      identity,
      identityFile: keyFile,
      env: io.env,
      cwd: io.cwd,
      ...(values.cluster ? { expectCluster: values.cluster } : {}),
      ...(target ? { target } : {}),
      ...(values['expect-key'] !== undefined ? { expectKey: values['expect-key'] } : {}),
      allowDestroy: Boolean(values['allow-destroy']),
      onDeployEvent: (e) => {
        if (e.type === 'run') {
          deployDisplay?.stop();
          deployDisplay = new ProgressDisplay(io.out, io.isTty, { verbose: Boolean(values.verbose) });
        }
        deployDisplay?.handle(e);
      },
    });
    let result;
    try {
      result = await runPipeline(stages, {
        name: 'restore',
        signal: io.signal,
        onEvent: (e) => {
          if (e.type === 'log' && e.stream === 'stdout') io.out(e.line);
          else if (e.type === 'log' && (e.stream === 'warn' || e.stream === 'stderr')) io.err(e.line);
          else if (e.type === 'failed') io.err(failureText(e.error));
        },
      });
    } finally {
      deployDisplay?.stop();
    }
    if (io.signal.aborted) {
      io.err('interrupted; run the same restore again to finish it (it resumes the restored workspace)');
      return 130;
    }
    return result.ok ? 0 : 1;
  },
};
