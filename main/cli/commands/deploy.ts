import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { prepareDeploy } from '../../deploy/start';
import { runPipeline } from '../../pipeline/runner';
import type { CliCommand } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { loadSpec, reportInvalidSpec } from '../load-spec';
import { printQemuLocalNotes } from '../qemu-local-notes';
import { plan } from '../../../common/plan/index';
import { clusterWorkspace } from '../../workspace';
import { ProgressDisplay } from '../progress';
import { reviewDeploy } from './deploy-review';
import { formatTarget, TargetNotSetError, targetOf } from '../../target';

export const deployCommand: CliCommand = {
  name: 'deploy',
  summary: 'run the convergence DAG: validate → plan → build → provision → first boot → planes → enroll → converge → workload → seal',
  usage: 'kubedos deploy SPEC [--target qemu-local|proxmox://HOST] [--review] [--allow-destroy] [--force] [--verbose] [--accept-host-key SHA256:…] [--ssh-config F] [--known-hosts F]',
  help: [
    'Progress is shown per stage and per node. Every event is journaled to the cluster workspace',
    '($KUBEDOS_WORKSPACE or ~/.kubedos)/clusters/<name>/journal.jsonl; running the same command again',
    'resumes: a stage is skipped as converged when its inputs did not change since its last success',
    'and one quick look at the nodes (a fingerprint per node, the hub\'s roster, the VM inventory) says',
    'nothing moved; converge then runs Ansible only on the nodes that moved. validate, plan and build',
    'always run (build\'s own cache makes an unchanged build a few seconds).',
    'Ctrl-C stops after the current step and keeps the journal.',
    '  --target T        qemu-local or proxmox://HOST (an ~/.ssh/config Host alias); default from the spec:',
    '                    qemu-local for a qemu substrate, proxmox://<substrate.proxmox.host> for proxmox',
    '  --review          print what the deploy would do (per node create/keep/update/replace/destroy, blocked',
    '                    VMIDs, plan changes, capacity and storage checks) and stop; nothing changes',
    '  --allow-destroy   let destructive stages replace or destroy VMs the cluster owns',
    '  --force           ignore the journal and run every stage (converge runs Ansible on every node)',
    '  --verbose         print every log line (default: warnings, errors and state changes)',
    '  --accept-host-key FP   trust this SHA256 host key fingerprint of a Proxmox host not in known_hosts yet',
    '  --ssh-config FILE      instead of ~/.ssh/config;  --known-hosts FILE  instead of ~/.ssh/known_hosts',
    'Environment: KUBEDOS_BOOT_TIMEOUT_S (default 1200) bounds the wait for guests; KUBEDOS_AGE_IDENTITY_FILE',
    'names the age identity that encrypts the cluster\'s secrets (default <workspace root>/age-identity.txt).',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, {
      target: { type: 'string', short: 't' },
      'allow-destroy': { type: 'boolean' },
      review: { type: 'boolean' },
      force: { type: 'boolean' },
      verbose: { type: 'boolean', short: 'v' },
      'accept-host-key': { type: 'string' },
      'ssh-config': { type: 'string' },
      'known-hosts': { type: 'string' },
    });
    const [file, extra] = positionals;
    if (!file || extra) throw new UsageError('exactly one SPEC');
    const loaded = loadSpec(file, io.cwd, { completeness: true });
    if (!loaded.spec) {
      return reportInvalidSpec(loaded, file, io, 'nothing deployed');
    }
    let target;
    try {
      target = targetOf(loaded.spec, values.target);
    } catch (err) {
      if (err instanceof TargetNotSetError) {
        io.err(`kubedos deploy: ${err.message}; nothing deployed\nhint: ${err.hint}`);
        return 2;
      }
      throw new UsageError((err as Error).message);
    }
    if (values.review) {
      try {
        return await reviewDeploy(target, readFileSync(loaded.path, 'utf8'), io, {
          ...(values['ssh-config'] ? { sshConfigPath: resolve(io.cwd, values['ssh-config']) } : {}),
          ...(values['known-hosts'] ? { knownHostsPath: resolve(io.cwd, values['known-hosts']) } : {}),
        });
      } catch (err) {
        const e = err as Error & { hint?: string };
        io.err(`review failed: ${e.message}${e.hint ? `\nhint: ${e.hint}` : ''}`);
        return 1;
      }
    }
    if (target.kind === 'qemu-local') printQemuLocalNotes(loaded.spec, plan(loaded.spec), clusterWorkspace(loaded.spec.metadata.name, io.env), io);
    let prepared;
    try {
      prepared = prepareDeploy({
        cluster: loaded.spec.metadata.name,
        source: { name: file, text: readFileSync(loaded.path, 'utf8') },
        target,
        env: io.env,
        specPath: loaded.path,
        allowDestroy: Boolean(values['allow-destroy']),
        force: Boolean(values.force),
        by: `kubedos deploy ${file}`,
        ...(values['accept-host-key'] ? { acceptHostKey: values['accept-host-key'] } : {}),
        ...(values['ssh-config'] ? { sshConfigPath: resolve(io.cwd, values['ssh-config']) } : {}),
        ...(values['known-hosts'] ? { knownHostsPath: resolve(io.cwd, values['known-hosts']) } : {}),
      });
    } catch (err) {
      io.err(`${(err as Error).message}`);
      return 1;
    }
    const workspace = prepared.workspace;
    io.out(`deploying ${loaded.spec.metadata.name} to ${formatTarget(target)} (workspace ${workspace})`);
    const display = new ProgressDisplay(io.out, io.isTty, { verbose: Boolean(values.verbose) });
    let result;
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    try {
      result = await runPipeline(prepared.stages, { ...prepared.runOptions, onEvent: (e) => display.handle(e), signal: io.signal });
    } finally {
      display.stop();
      await prepared.close();
    }
    // The workbench's own share of the deploy: this process's CPU time against the wall time
    // (QEMU, debootstrap and the guests are other processes).
    const cpu = process.cpuUsage(cpu0);
    const wallMs = performance.now() - wall0;
    io.out(`engine: ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU in ${(wallMs / 1000).toFixed(0)} s wall (${((100 * (cpu.user + cpu.system)) / 1000 / Math.max(1, wallMs)).toFixed(1)}%)`);
    if (io.signal.aborted) {
      io.err(`interrupted; the journal is kept: run the same command again to resume (kubedos status ${file})`);
      return 130;
    }
    if (!result.ok) {
      io.err(`deploy stopped: ${result.failures.map((f) => `${f.stage}${f.node ? `/${f.node}` : ''}: ${f.message.split('\n')[0]}`).join('; ')}`);
      return 1;
    }
    io.out('deploy converged');
    return 0;
  },
};
