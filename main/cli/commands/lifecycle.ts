// `kubedos stop|start|destroy SPEC`: the cluster lifecycle (main/lifecycle/service.ts). The target
// is read from the spec like `provision` does; --target overrides it.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { PipelineEvent } from '../../../common/pipeline/events';
import { fmtBytes } from '../../../common/text/bytes';
import type { DestroyPreview, LifecycleOutcome, LifecycleRequest } from '../../lifecycle/service';
import { destroyCluster, startCluster, stopCluster } from '../../lifecycle/service';
import { clusterStateRefusal } from '../../drills/service';
import type { Target } from '../../target';
import { parseTarget } from '../../target';
import type { CliCommand, CliIo } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { loadSpec, reportDiagnostics } from '../load-spec';

export const LIFECYCLE_OPTIONS = {
  target: { type: 'string', short: 't' },
  verbose: { type: 'boolean', short: 'v' },
  'accept-host-key': { type: 'string' },
  'ssh-config': { type: 'string' },
  'known-hosts': { type: 'string' },
} as const;

export const LIFECYCLE_HELP = [
  '  --target T            qemu-local or proxmox://HOST; default: the spec\'s substrate',
  '  --verbose             print every command and log line',
  '  --accept-host-key FP  trust this SHA256 host key fingerprint if the host is not in known_hosts yet',
  '  --ssh-config FILE     instead of ~/.ssh/config;  --known-hosts FILE  instead of ~/.ssh/known_hosts',
];

export function specTarget(spec: { spec: { substrate: { type: string; proxmox?: { host?: string | undefined } | undefined } } }, given: string | undefined): Target {
  try {
    const sub = spec.spec.substrate;
    if (given !== undefined) return parseTarget(given);
    if (sub.type === 'proxmox') {
      if (!sub.proxmox?.host) throw new Error('the spec names no Proxmox host: pass --target proxmox://HOST');
      return parseTarget(`proxmox://${sub.proxmox.host}`);
    }
    return { kind: 'qemu-local' };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** The request every command that acts on a deployed cluster sends (stop, start, destroy, drill, heal). */
export function lifecycleRequest(file: string, spec: Parameters<typeof specTarget>[0], values: Record<string, unknown>, io: CliIo, action: string, specPath = resolve(io.cwd, file)): { request: LifecycleRequest; specPath: string } {
  const target = specTarget(spec, values.target as string | undefined);
  const verbose = Boolean(values.verbose);
  const onEvent = (e: PipelineEvent): void => {
    if (e.type === 'log' && (verbose || e.stream === 'warn' || !e.line.startsWith('$ '))) (e.stream === 'warn' ? io.err : io.out)(`  ${e.line}`);
  };
  const request: LifecycleRequest = {
    specText: readFileSync(specPath, 'utf8'),
    target,
    env: io.env,
    cwd: io.cwd,
    by: `kubedos ${action} ${file}`,
    signal: io.signal,
    onEvent,
    ...(values['accept-host-key'] ? { acceptHostKey: values['accept-host-key'] as string } : {}),
    ...(values['ssh-config'] ? { sshConfigPath: resolve(io.cwd, values['ssh-config'] as string) } : {}),
    ...(values['known-hosts'] ? { knownHostsPath: resolve(io.cwd, values['known-hosts'] as string) } : {}),
  };
  return { request, specPath };
}

/**
 * The request of an operation on the deployed cluster (a drill, a heal, a trust operation), or
 * undefined after saying on stderr why the cluster's journal refuses it (never deployed, deploy
 * unfinished, stopped): `refused: WHY` unless `refused` words it otherwise.
 */
export function clusterOperationRequest(
  file: string,
  spec: Parameters<typeof specTarget>[0],
  values: Record<string, unknown>,
  io: CliIo,
  o: { action: 'drill' | 'heal' | 'trust operation' | 'wiring check'; by: string; specPath?: string; refused?: (why: string) => string },
): { request: LifecycleRequest; specPath: string } | undefined {
  const req = lifecycleRequest(file, spec, values, io, o.by, o.specPath);
  const why = clusterStateRefusal(req.request.specText, io.env, file, { action: o.action });
  if (why === undefined) return req;
  io.err(o.refused ? o.refused(why) : `refused: ${why}`);
  return undefined;
}

interface Parsed {
  req: LifecycleRequest;
  file: string;
  values: Record<string, string | boolean | undefined>;
}

function parse(argv: string[], io: CliIo, action: string, extra: Record<string, { type: 'string' | 'boolean'; short?: string }> = {}): Parsed | number {
  const { values, positionals } = parseCommandArgs(argv, { ...LIFECYCLE_OPTIONS, ...extra });
  const [file, more] = positionals;
  if (!file || more) throw new UsageError('exactly one SPEC');
  const loaded = loadSpec(file, io.cwd);
  if (!loaded.spec) {
    reportDiagnostics(loaded, file, io, true);
    io.err(`${file}: not valid; nothing changed`);
    return 1;
  }
  const { request: req } = lifecycleRequest(file, loaded.spec, values as Record<string, unknown>, io, action, loaded.path);
  return { req, file, values: values as Record<string, string | boolean | undefined> };
}

function timeoutOf(values: Record<string, unknown>): number | undefined {
  if (values.timeout === undefined) return undefined;
  const s = Number(values.timeout);
  if (!Number.isFinite(s) || s <= 0) throw new UsageError('--timeout takes a number of seconds');
  return s;
}

function report(o: LifecycleOutcome, io: CliIo, doneWord: string, notDoneWord: string): number {
  if (o.did.length) {
    io.out(`${doneWord} (${o.did.length}):`);
    for (const d of o.did) io.out(`  ${d}`);
  }
  if (o.notDone.length) {
    io.err(`${notDoneWord} (${o.notDone.length}):`);
    for (const d of o.notDone.slice(0, 20)) io.err(`  ${d}`);
    if (o.notDone.length > 20) io.err(`  … ${o.notDone.length - 20} more`);
  }
  if (!o.ok) {
    io.err(`${o.action} ${o.cluster} on ${o.target} failed: ${o.error?.message ?? 'interrupted'}`);
    if (o.error?.hint) io.err(`next: ${o.error.hint}`);
    return io.signal.aborted ? 130 : 1;
  }
  return 0;
}

export const stopCommand: CliCommand = {
  name: 'stop',
  summary: 'shut a deployed cluster down: each VM through its guest agent (power-off after --timeout), the hub last',
  usage: 'kubedos stop SPEC [--target qemu-local|proxmox://HOST] [--timeout S] [--verbose]',
  help: ['Journaled: kubedos status shows "stopped at …". The VMs, their disks and the workspace stay; kubedos start brings them back.', '  --timeout S           seconds a VM may take to shut down before it is powered off (default 120)', ...LIFECYCLE_HELP].join('\n'),
  async run(argv, io) {
    const p = parse(argv, io, 'stop', { timeout: { type: 'string' } });
    if (typeof p === 'number') return p;
    const timeoutS = timeoutOf(p.values);
    const o = await stopCluster({ ...p.req, ...(timeoutS ? { timeoutS } : {}) });
    const code = report(o, io, 'stopped', 'not stopped');
    if (code === 0) io.out(`${o.cluster} stopped on ${o.target} (kubedos start ${p.file} brings it back)`);
    return code;
  },
};

export const startCommand: CliCommand = {
  name: 'start',
  summary: 'start a stopped cluster, the hub first, and wait until the guest agents, the planes and etcd are back',
  usage: 'kubedos start SPEC [--target qemu-local|proxmox://HOST] [--timeout S] [--verbose]',
  help: [
    'Starts the plan\'s VMs in plan order (hub first), waits for every guest agent, then for a fresh WireGuard',
    'handshake of every node with the hub on wg1, wg2 and wg3, then for etcd to report healthy where it runs.',
    'Journaled: kubedos status shows "started at …".',
    '  --timeout S           how long to wait for agents, planes and etcd (default $KUBEDOS_BOOT_TIMEOUT_S or 1200)',
    ...LIFECYCLE_HELP,
  ].join('\n'),
  async run(argv, io) {
    const p = parse(argv, io, 'start', { timeout: { type: 'string' } });
    if (typeof p === 'number') return p;
    const timeoutS = timeoutOf(p.values);
    const o = await startCluster({ ...p.req, ...(timeoutS ? { timeoutS } : {}) });
    const code = report(o, io, 'started', 'not done');
    if (code === 0) io.out(`${o.cluster} is running on ${o.target}: agents, planes and etcd are back`);
    return code;
  },
};

function printPreview(p: DestroyPreview, io: CliIo): void {
  io.out(`cluster ${p.cluster} on ${p.target}:`);
  if (!p.reachable) io.out(`  the target did not answer (${p.unreachable}): its VMs could not be listed`);
  io.out(`  VMs (${p.vms.length}):${p.vms.length ? '' : ' none'}`);
  for (const vm of p.vms) io.out(`    ${vm.vmid} ${vm.name} (${vm.status})${vm.inPlan ? '' : ' (no longer in the plan)'} with its disks and TPM state`);
  if (p.images.length) {
    io.out(`  images on the host's storage (${p.images.length}):`);
    for (const i of p.images) io.out(`    ${i.volid} (${fmtBytes(i.sizeBytes)}${i.partial ? ', an interrupted upload' : ''})`);
  }
  for (const k of p.keptImages) io.out(`  left on the host: image ${k.volid}, used by VM ${k.usedBy.join(', ')}`);
  if (p.processes.length) {
    io.out(`  processes (${p.processes.length}):`);
    for (const x of p.processes) io.out(`    ${x}`);
  }
  io.out(`  files and folders (${p.paths.length}):${p.paths.length ? '' : ' none'}`);
  for (const x of p.paths) io.out(`    ${x}`);
  if (p.keepWorkspace) io.out(`  the workspace ${p.workspace} is kept (--keep-workspace); its journal starts over`);
  if (p.exportTo) io.out(`  first, the trust material, recovery bundle and plan are exported to ${p.exportTo}`);
  for (const f of p.foreign) io.out(`  left alone: VM ${f.vmid} "${f.name}": ${f.reason}`);
}

export const destroyCommand: CliCommand = {
  name: 'destroy',
  summary: 'destroy a cluster: every VM it owns, their disks, TPM state, sockets and hub processes, its uploaded images, and its workspace',
  usage: 'kubedos destroy SPEC --allow-destroy [--keep-workspace] [--dry-run] [--target qemu-local|proxmox://HOST] [--verbose]',
  help: [
    'Only VMs the cluster owns go (VMID in its range AND tagged kubedos + cluster-<name>); any other VM is left alone.',
    'On Proxmox the boot images it uploaded go too (named kubedos_<cluster>_…), except one another VM still uses.',
    'Unless --keep-workspace, the workspace goes too, after its trust material, recovery bundle and plan were',
    'exported to <workspace root>/recovery/<cluster>/ (with the journal: kubedos status shows "destroyed at …").',
    'Interrupted or failed, it says what it removed and what is left; running it again finishes the job.',
    '  --allow-destroy       required: without it nothing is removed and the list of what would go is printed',
    '  --keep-workspace      keep the workspace (secrets, trust, build cache); a later deploy starts its journal over',
    '  --dry-run             print what would go; nothing changes',
    ...LIFECYCLE_HELP,
  ].join('\n'),
  async run(argv, io) {
    const p = parse(argv, io, 'destroy', { 'allow-destroy': { type: 'boolean' }, 'keep-workspace': { type: 'boolean' }, 'dry-run': { type: 'boolean', short: 'n' } });
    if (typeof p === 'number') return p;
    const dryRun = Boolean(p.values['dry-run']);
    const o = await destroyCluster({ ...p.req, allowDestroy: Boolean(p.values['allow-destroy']), keepWorkspace: Boolean(p.values['keep-workspace']), dryRun });
    if (o.preview.neverDeployed) {
      io.out(o.error?.message ?? `nothing to destroy for ${o.cluster}`);
      for (const f of o.preview.foreign) io.out(`  left alone: VM ${f.vmid} "${f.name}": ${f.reason}`);
      return 0;
    }
    if (dryRun || !p.values['allow-destroy']) {
      printPreview(o.preview, io);
      if (dryRun && o.preview.reachable) {
        io.out(`dry run: nothing was removed (kubedos destroy ${p.file} --allow-destroy removes the above)`);
        return 0;
      }
      io.err(`${o.error?.message ?? 'nothing was removed'}${o.error?.hint ? `\nnext: ${o.error.hint}` : ''}`);
      return 1;
    }
    for (const f of o.preview.foreign) io.out(`left alone: VM ${f.vmid} "${f.name}": ${f.reason}`);
    const code = report(o, io, 'removed', 'still there');
    if (code === 0) io.out(`${o.cluster} destroyed on ${o.target}${o.exportedTo ? `; trust material exported to ${o.exportedTo}` : ''}`);
    return code;
  },
};
