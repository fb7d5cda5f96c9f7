// The proxmox-ssh driver: everything goes through ONE SSH connection to the Proxmox host
// (ssh-session.ts), each command a channel, each command line built by qm.ts from validated
// data and quoted by shell.ts. Artifacts go over SFTP into the storage's own directory.
import { createReadStream } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import type { VmShape } from '../../common/plan/schema';
import type { ArtifactFile, GuestExecResult, Inventory, InventoryVm, OpOptions, PlannedStep, StoredImage, SubstrateDriver, SubstrateEvent, UploadResult } from './driver';
import type { GuestFileWriteOptions } from './guest-file';
import { contentBytes, GUEST_INPUT_MAX_BYTES, planGuestFileWrite, writeGuestFile } from './guest-file';
import { artifactVolid } from './provision';
import { SubstrateError, throwIfAborted } from './driver';
import type { Argv, BootArtifact } from './qm';
import * as qm from './qm';
import { remoteCommand } from './shell';
import type { HostKeyPrompt } from './ssh-session';
import { SshSession } from './ssh-session';
import type { SshTarget } from './ssh-target';
import { parseProxmoxUrl, resolveSshTarget } from './ssh-target';
import * as v from './validate';
import { owns } from '../../common/plan/ownership';
import { fmtBytes } from '../../common/text/bytes';

export interface Ownership {
  /** Tags a VM must carry to be ours (kubedos, cluster-<name>). */
  tags: readonly string[];
  vmidRange: { start: number; end: number };
}

export interface ProxmoxSshOptions {
  /** proxmox://HOST, proxmox://USER@HOST:PORT, or a ~/.ssh/config alias. */
  target: string;
  ownership: Ownership;
  sshConfigPath?: string;
  knownHostsPath?: string;
  home?: string;
  agentSocket?: string | undefined;
  confirmHostKey?: (prompt: HostKeyPrompt) => Promise<boolean>;
  passphrase?: (keyPath: string) => Promise<string | undefined>;
  /** Proxmox node name; default: the host's `hostname`. */
  node?: string;
  maxChannels?: number;
  readyTimeoutMs?: number;
  reconnect?: { attempts: number; backoffMs: number };
}

const UPLOAD_CHUNK = 256 * 1024;

/** The suffix of an upload in progress (renamed into place once its sha256 matches). */
const PART = '.kubedos-part';

export class ProxmoxSshDriver implements SubstrateDriver {
  readonly kind = 'proxmox' as const;
  readonly target: string;
  readonly session: SshSession;
  readonly sshTarget: SshTarget;
  private nodeName: string | undefined;

  constructor(readonly options: ProxmoxSshOptions) {
    const url = options.target.startsWith('proxmox://') ? parseProxmoxUrl(options.target) : { host: options.target };
    const home = options.home ?? homedir();
    this.sshTarget = resolveSshTarget(url.host, {
      home,
      ...(options.sshConfigPath ? { configPath: options.sshConfigPath } : {}),
      ...('user' in url && url.user ? { user: url.user } : {}),
      ...('port' in url && url.port ? { port: url.port } : {}),
    });
    this.target = `proxmox://${url.host}`;
    this.nodeName = options.node;
    this.session = new SshSession({
      target: this.sshTarget,
      knownHostsPath: options.knownHostsPath ?? join(home, '.ssh', 'known_hosts'),
      agentSocket: options.agentSocket,
      ...(options.confirmHostKey ? { confirmHostKey: options.confirmHostKey } : {}),
      ...(options.passphrase ? { passphrase: options.passphrase } : {}),
      ...(options.maxChannels ? { maxChannels: options.maxChannels } : {}),
      ...(options.readyTimeoutMs ? { readyTimeoutMs: options.readyTimeoutMs } : {}),
      ...(options.reconnect ? { reconnect: options.reconnect } : {}),
    });
  }

  /** Runs one argv on the host; non-zero exit → SubstrateError with the stderr tail. */
  async run(argv: Argv, op: OpOptions = {}, extra: { node?: string; okCodes?: number[]; timeoutMs?: number; hint?: string; input?: Buffer } = {}): Promise<{ stdout: string; stdoutBytes: Buffer; stderr: string; exitCode: number }> {
    throwIfAborted(op.signal);
    const command = remoteCommand(argv);
    op.onEvent?.({ kind: 'command', host: this.target, ...(extra.node ? { node: extra.node } : {}), command: extra.input ? `${command} < (${extra.input.length} bytes on stdin)` : command });
    const r = await this.session.exec(command, { ...(op.signal ? { signal: op.signal } : {}), ...(extra.timeoutMs ? { timeoutMs: extra.timeoutMs } : {}), ...(extra.input ? { input: extra.input } : {}) });
    const ok = extra.okCodes ?? [0];
    if (!ok.includes(r.exitCode)) {
      const tail = r.stderr.trim().split('\n').slice(-10).join('\n') || r.stdout.toString('utf8').trim().split('\n').slice(-10).join('\n');
      throw new SubstrateError('remote-command', `${argv.slice(0, 3).join(' ')} failed on ${this.target} (exit ${r.exitCode}): ${tail.split('\n').pop() ?? ''}`, {
        command,
        stderrTail: tail,
        ...(extra.node ? { node: extra.node } : {}),
        hint: extra.hint ?? 'read the stderr above; fix the cause on the host and rerun (converged steps are skipped)',
      });
    }
    return { stdout: r.stdout.toString('utf8'), stdoutBytes: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
  }

  async node(op: OpOptions = {}): Promise<string> {
    if (!this.nodeName) this.nodeName = v.nodeName((await this.run(['hostname'], op)).stdout.trim().split('.')[0]);
    return this.nodeName;
  }

  async inventory(op: OpOptions = {}): Promise<Inventory> {
    const [resources, storages, node] = await Promise.all([this.run(qm.pveshResources(), op), this.run(['pvesm', 'status'], op), this.node(op)]);
    const list = JSON.parse(resources.stdout) as { vmid: number; name?: string; tags?: string; status?: string; node?: string; type?: string }[];
    const vms: InventoryVm[] = list
      .filter((r) => r.type === 'qemu' && (r.node === undefined || r.node === node))
      .map((r) => ({ vmid: r.vmid, name: r.name ?? '', tags: (r.tags ?? '').split(/[;, ]/).filter(Boolean).sort(), status: r.status === 'running' ? 'running' : r.status === 'stopped' ? 'stopped' : 'unknown' }));
    vms.sort((a, b) => a.vmid - b.vmid);
    const { start, end } = this.options.ownership.vmidRange;
    await Promise.all(
      vms
        .filter((vm) => vm.vmid >= start && vm.vmid <= end)
        .map(async (vm) => {
          vm.config = qm.parseVmConfig((await this.run(qm.qmConfig(vm.vmid), op)).stdout);
        }),
    );
    return {
      host: this.target,
      node,
      vms,
      storages: qm.parsePvesmStatus(storages.stdout).map((s) => ({ name: s.name, type: s.type, availableBytes: s.availableBytes, totalBytes: s.totalBytes })),
    };
  }

  /** The one ownership rule (common/plan/ownership.ts). */
  isOwned(vm: { vmid: number; tags: readonly string[] }): boolean {
    return owns(vm, this.options.ownership);
  }

  async upload(artifact: ArtifactFile, storage: string, op: OpOptions = {}): Promise<UploadResult> {
    const content = artifact.kind === 'iso' ? 'iso' : 'import';
    const volid = v.volumeId(`${v.storageId(storage)}:${content}/${v.volumeFileName(artifact.name)}`);
    if (!/^[0-9a-f]{64}$/.test(artifact.sha256)) throw new v.SubstrateInputError('sha256', artifact.sha256, '64 lowercase hex digits');
    const emit = (e: SubstrateEvent): void => op.onEvent?.(e);
    const [pathOut, statusOut] = await Promise.all([
      this.run(qm.pvesmPath(volid), op, { hint: `is "${storage}" a storage on this host with content "${content}" enabled? (pvesm status; Datacenter > Storage > ${storage} > Content)` }),
      this.run(qm.pvesmStatus(storage), op),
    ]);
    const remote = v.remotePath(pathOut.stdout.trim());
    const part = `${remote}${PART}`;
    const sftp = await this.session.sftp(op.signal);
    const stat = (p: string): Promise<number | undefined> => new Promise((resolve) => sftp.stat(p, (err, st) => resolve(err ? undefined : st.size)));
    const sha = async (p: string): Promise<string> => (await this.run(['sha256sum', '--', p], op, { timeoutMs: 30 * 60_000 })).stdout.split(/\s+/)[0] ?? '';

    const existing = await stat(remote);
    if (existing === artifact.sizeBytes && (await sha(remote)) === artifact.sha256) {
      emit({ kind: 'log', level: 'info', message: `${volid}: already on ${this.target} with sha256 ${artifact.sha256.slice(0, 12)}…; not uploading` });
      return { volid, remotePath: remote, action: 'skipped', bytesSent: 0 };
    }
    let offset = (await stat(part)) ?? 0;
    if (offset > artifact.sizeBytes) offset = 0;
    const storageStatus = qm.parsePvesmStatus(statusOut.stdout).find((s) => s.name === storage);
    const needed = artifact.sizeBytes - offset;
    if (storageStatus && storageStatus.availableBytes < needed) {
      throw new SubstrateError('storage-full', `storage "${storage}" on ${this.target} has ${fmtBytes(storageStatus.availableBytes)} free; ${artifact.name} needs ${fmtBytes(needed)} more`, {
        hint: `free space on "${storage}" (old ISOs/images under ${remote.slice(0, remote.lastIndexOf('/'))}), or point isoStorage at a storage with room; nothing was uploaded`,
      });
    }

    for (let attempt = 0; attempt < 2; attempt++) {
      const resumed = offset > 0;
      if (resumed) emit({ kind: 'log', level: 'info', message: `${volid}: resuming the interrupted upload at ${fmtBytes(offset)} of ${fmtBytes(artifact.sizeBytes)}` });
      const sent = await this.sendFrom(sftp, artifact, part, offset, op);
      const got = await sha(part);
      if (got === artifact.sha256) {
        await new Promise<void>((resolve) => sftp.unlink(remote, () => resolve()));
        await new Promise<void>((resolve, reject) => sftp.rename(part, remote, (err) => (err ? reject(new SubstrateError('sftp', `could not move ${part} into place: ${err.message}`)) : resolve())));
        emit({ kind: 'log', level: 'info', message: `${volid}: uploaded and verified sha256 ${got.slice(0, 12)}…` });
        return { volid, remotePath: remote, action: resumed ? 'resumed' : 'uploaded', bytesSent: sent };
      }
      // A partial file that was not a prefix of ours: start over once, from zero.
      emit({ kind: 'log', level: 'warn', message: `${volid}: hash after upload is ${got.slice(0, 12)}…, expected ${artifact.sha256.slice(0, 12)}…; uploading again from the start` });
      offset = 0;
    }
    throw new SubstrateError('upload-verify', `${artifact.name} arrived on ${this.target} with a different sha256 twice`, { hint: 'check the host\'s disk and memory; the partial file is left as ' + part });
  }

  private async sendFrom(sftp: Awaited<ReturnType<SshSession['sftp']>>, artifact: ArtifactFile, part: string, offset: number, op: OpOptions): Promise<number> {
    let sent = 0;
    let lastReport = 0;
    const total = artifact.sizeBytes;
    const progress = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        sent += chunk.length;
        const done = offset + sent;
        if (done - lastReport >= total / 50 || done === total) {
          lastReport = done;
          op.onEvent?.({ kind: 'progress', what: `upload ${artifact.name}`, fraction: total ? done / total : 1, message: `${fmtBytes(done)} / ${fmtBytes(total)}` });
        }
        cb(null, chunk);
      },
    });
    const source = createReadStream(artifact.path, { start: offset, highWaterMark: UPLOAD_CHUNK });
    const sink = sftp.createWriteStream(part, { flags: offset > 0 ? 'r+' : 'w', start: offset, mode: 0o644 });
    const off = this.session.onClose(() => (sink as unknown as { destroy(err: Error): void }).destroy(new Error('SSH connection closed')));
    try {
      await pipeline(source, progress, sink, ...(op.signal ? [{ signal: op.signal }] : []));
    } catch (err) {
      if (op.signal?.aborted) throw new SubstrateError('aborted', `upload of ${artifact.name} aborted at ${fmtBytes(offset + sent)}; rerun to resume`);
      throw new SubstrateError('connection-lost', `upload of ${artifact.name} to ${this.target} broke at ${fmtBytes(offset + sent)} of ${fmtBytes(total)}: ${(err as Error).message}`, {
        hint: 'rerun: the transfer resumes from the partial file and is verified by sha256',
      });
    } finally {
      off();
    }
    return sent;
  }

  async storedImages(storage: string, prefix: string, op: OpOptions = {}): Promise<StoredImage[]> {
    v.storageId(storage);
    const sftp = await this.session.sftp(op.signal);
    const found: Omit<StoredImage, 'usedBy'>[] = [];
    for (const content of ['import', 'iso'] as const) {
      // The content folder, from where Proxmox would put a volume of ours (pvesm path does not need the file).
      const probe = `${storage}:${content}/${v.volumeFileName(`${prefix}x.${content === 'iso' ? 'iso' : 'qcow2'}`)}`;
      const r = await this.run(qm.pvesmPath(probe), op, { okCodes: [0, 2, 255] });
      if (r.exitCode !== 0) continue;
      const dir = dirname(v.remotePath(r.stdout.trim()));
      const list = await new Promise<{ filename: string; attrs: { size: number } }[]>((resolve) => sftp.readdir(dir, (err, l) => resolve(err ? [] : l)));
      for (const f of list.sort((a, b) => a.filename.localeCompare(b.filename))) {
        if (!f.filename.startsWith(prefix)) continue;
        const partial = f.filename.endsWith(PART);
        const name = partial ? f.filename.slice(0, -PART.length) : f.filename;
        if (name.endsWith('.sha256')) continue;
        found.push({ volid: `${storage}:${content}/${name}`, path: `${dir}/${f.filename}`, sizeBytes: f.attrs.size, partial });
      }
    }
    if (!found.length) return [];
    // Which VMs name them: every VM on this node, not only the cluster's range.
    const inv = await this.inventory(op);
    const configs = await Promise.all(inv.vms.map(async (vm) => ({ vm, config: vm.config ?? qm.parseVmConfig((await this.run(qm.qmConfig(vm.vmid), op)).stdout) })));
    return found.map((img) => ({
      ...img,
      usedBy: configs
        .filter(({ config }) => Object.values(config).some((val) => val.split(',').some((part) => part === img.volid || part === `import-from=${img.volid}`)))
        .map(({ vm }) => ({ vmid: vm.vmid, name: vm.name })),
    }));
  }

  async removeImage(image: StoredImage, op: OpOptions = {}): Promise<void> {
    if (!image.partial) {
      await this.run(qm.pvesmFree(image.volid), op, { hint: `remove it in the web UI (Storage > ${image.volid.split(':')[0]} > content) if pvesm cannot` });
      return;
    }
    const path = v.remotePath(image.path);
    const sftp = await this.session.sftp(op.signal);
    await new Promise<void>((resolve, reject) => sftp.unlink(path, (err) => (err ? reject(new SubstrateError('sftp', `could not remove the interrupted upload ${path}: ${err.message}`)) : resolve())));
  }

  async create(shape: VmShape, artifact: BootArtifact | undefined, op: OpOptions = {}): Promise<void> {
    const argv = qm.qmCreate(shape, artifact);
    const node = shape.name;
    if (!this.isOwned({ vmid: shape.vmid, tags: shape.tags })) {
      throw new SubstrateError('not-owned', `refusing to create VMID ${shape.vmid}: it is outside vmidRange ${this.options.ownership.vmidRange.start}-${this.options.ownership.vmidRange.end} or lacks the ownership tags`, { node });
    }
    op.onEvent?.({ kind: 'vm', node, vmid: shape.vmid, state: 'creating' });
    try {
      await this.run(argv, op, { node, timeoutMs: 30 * 60_000 });
    } catch (err) {
      if (err instanceof SubstrateError && /already exists/i.test(err.stderrTail ?? '')) {
        throw new SubstrateError('vmid-taken', `VMID ${shape.vmid} for ${node} already exists on ${this.target}`, { node, command: err.command ?? '', hint: `choose another vmid/vmidRange in the spec, or remove VM ${shape.vmid} if it is really unused` });
      }
      if (err instanceof SubstrateError && /not enough space|no space|out of space/i.test(err.stderrTail ?? '')) {
        throw new SubstrateError('storage-full', `no space on the storage for ${node}'s disks (VMID ${shape.vmid}); Proxmox rolled the create back`, { node, stderrTail: err.stderrTail ?? '', hint: 'free space on the pool named in the spec, or pick another pool; no VM was left behind' });
      }
      throw err;
    }
    // Grow the imported disk to the plan's size. If that fails, the VM we just created is
    // removed again (it carries our tags) so no half-created VM is left behind.
    const first = shape.disks.find((d) => d.index === 0);
    if (artifact?.kind === 'disk-image' && first) {
      try {
        await this.run(qm.qmResize(shape.vmid, 'scsi0', first.sizeGiB), op, { node });
      } catch (err) {
        try {
          await this.run(qm.qmDestroy(shape.vmid), {}, { node });
        } catch {
          throw new SubstrateError('half-created', `${node}: resizing scsi0 failed and the new VM ${shape.vmid} could not be removed: ${(err as Error).message}`, { node, leftBehind: shape.vmid, hint: `remove it by hand: qm destroy ${shape.vmid} --purge 1` });
        }
        throw err;
      }
    }
    op.onEvent?.({ kind: 'vm', node, vmid: shape.vmid, state: 'created' });
  }

  private async requireOwned(vmid: number, op: OpOptions, action: string): Promise<Record<string, string>> {
    const config = qm.parseVmConfig((await this.run(qm.qmConfig(vmid), op)).stdout);
    const tags = (config.tags ?? '').split(/[;, ]/).filter(Boolean);
    if (!this.isOwned({ vmid, tags })) {
      throw new SubstrateError('not-owned', `refusing to ${action} VM ${vmid} (${config.name ?? 'unnamed'}): it is not ours (tags: ${tags.join(', ') || 'none'}; we need ${this.options.ownership.tags.join(', ')} and a VMID in ${this.options.ownership.vmidRange.start}-${this.options.ownership.vmidRange.end})`, {
        hint: 'kubedos never touches VMs it does not own; change the spec\'s vmidRange if this VMID belongs to someone else',
      });
    }
    return config;
  }

  async update(vmid: number, changes: Record<string, string>, op: OpOptions = {}): Promise<void> {
    const config = await this.requireOwned(vmid, op, 'change');
    await this.run(qm.qmSet(vmid, changes), op, { ...(config.name ? { node: config.name } : {}) });
    op.onEvent?.({ kind: 'vm', node: config.name ?? String(vmid), vmid, state: 'updated' });
  }

  async start(vmid: number, op: OpOptions = {}): Promise<void> {
    const config = await this.requireOwned(vmid, op, 'start');
    const node = config.name ?? String(vmid);
    op.onEvent?.({ kind: 'vm', node, vmid, state: 'starting' });
    await this.run(qm.qmStart(vmid), op, { node, timeoutMs: 5 * 60_000, hint: 'see the stderr: a missing storage, bridge or KVM support on the host are the usual causes' });
    op.onEvent?.({ kind: 'vm', node, vmid, state: 'running' });
  }

  async stop(vmid: number, op: OpOptions = {}): Promise<void> {
    const config = await this.requireOwned(vmid, op, 'stop');
    op.onEvent?.({ kind: 'vm', node: config.name ?? String(vmid), vmid, state: 'stopping' });
    await this.run(qm.qmStop(vmid), op, { timeoutMs: 5 * 60_000 });
    op.onEvent?.({ kind: 'vm', node: config.name ?? String(vmid), vmid, state: 'stopped' });
  }

  async destroy(vmid: number, op: OpOptions & { allowDestroy: boolean }): Promise<void> {
    v.vmid(vmid);
    if (!op.allowDestroy) {
      throw new SubstrateError('destroy-refused', `refusing to destroy VM ${vmid}: destroying needs allowDestroy`, { hint: 'rerun with --allow-destroy (or stages.provision.allowDestroy: true in the spec) if you mean it' });
    }
    const config = await this.requireOwned(vmid, op, 'destroy');
    const node = config.name ?? String(vmid);
    if ((await this.status(vmid, op)) === 'running') await this.run(qm.qmStop(vmid), op, { node, timeoutMs: 5 * 60_000 });
    op.onEvent?.({ kind: 'vm', node, vmid, state: 'destroying' });
    await this.run(qm.qmDestroy(vmid), op, { node, timeoutMs: 10 * 60_000 });
    op.onEvent?.({ kind: 'vm', node, vmid, state: 'destroyed' });
  }

  async status(vmid: number, op: OpOptions = {}): Promise<'running' | 'stopped' | 'absent'> {
    const r = await this.run(qm.qmStatus(vmid), op, { okCodes: [0, 2] });
    if (r.exitCode !== 0 || /does not exist/i.test(r.stderr)) return 'absent';
    return /status:\s*running/.test(r.stdout) ? 'running' : 'stopped';
  }

  async guestPing(vmid: number, op: OpOptions = {}): Promise<boolean> {
    const r = await this.run(qm.qmGuestPing(vmid), op, { okCodes: [0, 1, 2, 255], timeoutMs: 60_000 });
    if (r.exitCode === 0) return true;
    if (/guest agent is not running|got timeout/i.test(r.stderr)) return false;
    throw new SubstrateError('guest-agent', `guest ping of VM ${vmid} failed on ${this.target}: ${r.stderr.trim().split('\n').pop() ?? ''}`, {
      stderrTail: r.stderr.trim(),
      hint: /not running|does not exist/.test(r.stderr) ? `start the VM first (qm start ${vmid})` : 'is the agent enabled in the VM config (agent: enabled=1)?',
    });
  }

  async guestExec(vmid: number, argv: readonly string[], op: OpOptions & { timeoutS?: number; input?: Uint8Array | string } = {}): Promise<GuestExecResult> {
    const timeoutS = op.timeoutS ?? 30;
    const input = op.input === undefined ? undefined : contentBytes(op.input);
    if (input && input.length > GUEST_INPUT_MAX_BYTES) throw new v.SubstrateInputError('guest command input', `${input.length} bytes`, `at most ${GUEST_INPUT_MAX_BYTES} bytes (qm guest exec --pass-stdin)`);
    const r = await this.run(qm.qmGuestExec(vmid, argv, timeoutS, input !== undefined), op, { timeoutMs: (timeoutS + 30) * 1000, ...(input ? { input } : {}) });
    const out = JSON.parse(r.stdout) as { exitcode?: number; exited?: number | boolean; 'out-data'?: string; 'err-data'?: string };
    if (!out.exited) throw new SubstrateError('guest-exec-timeout', `guest command did not finish within ${timeoutS} s in VM ${vmid}: ${argv.join(' ')}`);
    return { exitCode: out.exitcode ?? -1, stdout: out['out-data'] ?? '', stderr: out['err-data'] ?? '' };
  }

  async guestFileRead(vmid: number, path: string, op: OpOptions = {}): Promise<Buffer> {
    const r = await this.run(qm.pveshFileRead(await this.node(op), vmid, path), op, { timeoutMs: 60_000 });
    const out = JSON.parse(r.stdout) as { content: string; truncated?: boolean };
    if (out.truncated) throw new SubstrateError('guest-file-truncated', `${path} in VM ${vmid} is larger than the agent's file-read limit (16 MiB)`, { hint: 'read it in pieces with guest exec' });
    return Buffer.from(out.content, 'utf8');
  }

  async guestFileWrite(vmid: number, path: string, data: Uint8Array | string, op: GuestFileWriteOptions = {}): Promise<void> {
    const config = await this.requireOwned(vmid, op, 'write a file into');
    await writeGuestFile((argv, o) => this.guestExec(vmid, argv, o), { vmid, target: this.target, ...(config.name ? { node: config.name } : {}) }, path, data, op);
  }

  preview(step: PlannedStep): string[] {
    switch (step.kind) {
      case 'guest-file-write':
        return [
          remoteCommand(qm.qmConfig(step.vmid)),
          ...planGuestFileWrite(step.path, step.sizeBytes, '<sha256>', step.mode).steps.map((s) =>
            s.range ? `${remoteCommand(qm.qmGuestExec(step.vmid, s.argv, 300, true))} < bytes ${s.range.start}-${s.range.end} of the content` : remoteCommand(qm.qmGuestExec(step.vmid, s.argv, 120)),
          ),
        ];
      case 'upload': {
        const volid = artifactVolid(step.artifact, step.storage);
        return [
          remoteCommand(qm.pvesmPath(volid)),
          remoteCommand(qm.pvesmStatus(step.storage)),
          `# sftp: skip if the remote sha256 is ${step.artifact.sha256.slice(0, 16)}…; else put ${step.artifact.path} (${fmtBytes(step.artifact.sizeBytes)}) to <pvesm path>.kubedos-part, resuming a partial file`,
          remoteCommand(['sha256sum', '--', `<pvesm path of ${volid}>.kubedos-part`]),
          '# sftp: rename <part> -> <pvesm path> after the hash matches',
        ];
      }
      case 'create': {
        const cmds = [remoteCommand(qm.qmCreate(step.shape, step.artifact))];
        const first = step.shape.disks.find((d) => d.index === 0);
        if (step.artifact?.kind === 'disk-image' && first) cmds.push(remoteCommand(qm.qmResize(step.shape.vmid, 'scsi0', first.sizeGiB)));
        return cmds;
      }
      case 'update':
        return [remoteCommand(qm.qmConfig(step.vmid)), remoteCommand(qm.qmSet(step.vmid, step.changes))];
      case 'start':
        return [remoteCommand(qm.qmConfig(step.vmid)), remoteCommand(qm.qmStart(step.vmid))];
      case 'destroy':
        return [remoteCommand(qm.qmConfig(step.vmid)), remoteCommand(qm.qmStatus(step.vmid)), remoteCommand(qm.qmStop(step.vmid)), remoteCommand(qm.qmDestroy(step.vmid))];
    }
  }

  async close(): Promise<void> {
    await this.session.close();
  }
}

export { fmtBytes };
