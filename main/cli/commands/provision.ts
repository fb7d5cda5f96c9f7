// `kubedos provision SPEC --target proxmox://HOST|qemu-local`: make the substrate hold the plan's
// VMs in the plan's shape (through the substrate driver), or with --dry-run print every command
// it would run, grouped per node.
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { plan as makePlan } from '../../../common/plan/index';
import type { Plan } from '../../../common/plan/schema';
import { imageFileName, imagePrefix } from '../../../common/plan/ownership';
import type { Target } from '../../target';
import { TargetNotSetError, targetOf } from '../../target';
import type { ArtifactFile, Inventory, SubstrateEvent } from '../../substrate/driver';
import { SubstrateError } from '../../substrate/driver';
import { substrateFor } from '../../substrate/factory';
import { decide, previewCommands, provision, waitForAgents } from '../../substrate/provision';
import { clusterWorkspace } from '../../workspace';
import type { CliCommand, CliIo } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { loadSpec, reportInvalidSpec } from '../load-spec';
import { printQemuLocalNotes } from '../qemu-local-notes';
import { renderTable } from '../../../common/text/table';
import { plural } from '../../../common/text/plural';

async function fileArtifact(path: string, kind: ArtifactFile['kind'], p: Plan): Promise<ArtifactFile> {
  const st = statSync(path);
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  const sha256 = h.digest('hex');
  return { path, sha256, sizeBytes: st.size, kind, name: imageFileName(p.cluster.name, [p.cluster.artifactVersion], sha256, kind) };
}

function printEvent(io: CliIo, e: SubstrateEvent): void {
  if (e.kind === 'command') io.out(`  $ ${e.command}`);
  else if (e.kind === 'log') (e.level === 'warn' ? io.err : io.out)(`  ${e.node ? `${e.node}: ` : ''}${e.message}`);
  else if (e.kind === 'vm') io.out(`  ${e.node} (VMID ${e.vmid}): ${e.state}`);
  else if (e.kind === 'progress' && (e.fraction === 1 || Math.round(e.fraction * 100) % 25 === 0)) io.out(`  ${e.what}: ${Math.round(e.fraction * 100)}% ${e.message ?? ''}`);
}

export const provisionCommand: CliCommand = {
  name: 'provision',
  summary: 'create/start the plan\'s VMs on Proxmox (over SSH) or local QEMU; --dry-run prints every command',
  usage: 'kubedos provision FILE [--target proxmox://HOST|qemu-local] [--image FILE.qcow2 | --iso FILE.iso] [--dry-run] [--allow-destroy]',
  help: [
    'Reads the inventory once, then per node: create / keep / update (qm set) / replace / start / destroy.',
    'A VMID owned by someone else stops the run before anything changes; destroy and replace need --allow-destroy.',
    '  --target T            proxmox://HOST (a ~/.ssh/config alias or user@host:port) or qemu-local; default from the spec',
    '  --image FILE          golden qcow2 to import as scsi0 of new VMs (uploaded once, by sha256)',
    '  --iso FILE            installer ISO to attach as CD-ROM instead',
    '  --dry-run             print the commands grouped per node; with no reachable host, assume an empty one',
    '  --allow-destroy       allow destroying VMs of this cluster (replace, or nodes no longer in the plan)',
    '  --accept-host-key FP  trust this SHA256 host key fingerprint if the host is not in known_hosts yet',
    '  --ssh-config FILE     instead of ~/.ssh/config;  --known-hosts FILE  instead of ~/.ssh/known_hosts',
    '  --no-start            create but do not start;   --wait-agent S  wait up to S seconds for every guest agent',
    'Encrypted keys: the passphrase is asked on the terminal, or read from $KUBEDOS_SSH_PASSPHRASE.',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, {
      target: { type: 'string', short: 't' },
      image: { type: 'string' },
      iso: { type: 'string' },
      'dry-run': { type: 'boolean', short: 'n' },
      'allow-destroy': { type: 'boolean' },
      'accept-host-key': { type: 'string' },
      'ssh-config': { type: 'string' },
      'known-hosts': { type: 'string' },
      'no-start': { type: 'boolean' },
      'wait-agent': { type: 'string' },
    });
    const [file, extra] = positionals;
    if (!file || extra) throw new UsageError('exactly one FILE');
    if (values.image && values.iso) throw new UsageError('--image and --iso exclude each other');
    const loaded = loadSpec(file, io.cwd);
    if (!loaded.spec) {
      return reportInvalidSpec(loaded, file, io, 'nothing provisioned');
    }
    const spec = loaded.spec;
    const p = makePlan(spec);
    const allowDestroy = Boolean(values['allow-destroy']) || p.stages.provision?.allowDestroy === true;
    const dryRun = Boolean(values['dry-run']);
    let target: Target;
    try {
      target = targetOf(spec, values.target, { loose: true });
    } catch (err) {
      if (err instanceof TargetNotSetError) {
        io.err(`kubedos provision: ${err.message}; nothing ${dryRun ? 'shown (a dry run reads the host\'s VMs to decide)' : 'provisioned'}\nhint: ${err.hint}`);
        return 2;
      }
      throw new UsageError((err as Error).message);
    }
    if (target.kind === 'qemu-local') printQemuLocalNotes(spec, p, clusterWorkspace(p.cluster.name, io.env), io, { dryRun });
    const accept = values['accept-host-key'];
    const { driver, storage } = substrateFor({
      spec,
      plan: p,
      target,
      workspace: clusterWorkspace(p.cluster.name, io.env),
      cwd: io.cwd,
      env: io.env,
      ...(accept ? { acceptHostKey: accept } : {}),
      ...(values['ssh-config'] ? { sshConfigPath: resolve(io.cwd, values['ssh-config']) } : {}),
      ...(values['known-hosts'] ? { knownHostsPath: resolve(io.cwd, values['known-hosts']) } : {}),
      dryRun,
      warn: (message) => io.err(message),
      passphrase: async (keyPath) => {
        if (!io.isTty || !process.stdin.isTTY) return undefined;
        const rl = createInterface({ input: process.stdin, output: process.stderr });
        try {
          return await rl.question(`passphrase for ${keyPath}: `);
        } finally {
          rl.close();
        }
      },
    });
    const artifactPath = values.image ?? values.iso;
    const artifact = artifactPath ? await fileArtifact(resolve(io.cwd, artifactPath), values.iso ? 'iso' : 'disk-image', p) : undefined;
    const start = !values['no-start'];
    try {
      if (dryRun) {
        let inventory: Inventory;
        try {
          inventory = await driver.inventory({ signal: io.signal });
          io.out(`# ${driver.target}: ${plural(inventory.vms.length, 'VM')} found${inventory.vms.length ? ` (${inventory.vms.map((x) => x.vmid).join(', ')})` : ''}`);
        } catch (err) {
          if (err instanceof SubstrateError && ['vmid-taken', 'destroy-refused'].includes(err.code)) throw err;
          io.out(`# ${driver.target} is not reachable (${(err as Error).message.split('\n')[0]}); assuming an EMPTY host`);
          inventory = { host: driver.target, node: 'unknown', vms: [], storages: [] };
        }
        const decisions = decide(p, inventory, { allowDestroy, start });
        const fallback: ArtifactFile = artifact ?? { path: '<--image FILE>', sha256: '0'.repeat(64), sizeBytes: 0, kind: 'disk-image', name: `${imagePrefix(p.cluster.name)}IMAGE.qcow2` };
        for (const [group, commands] of previewCommands(p, decisions, driver, fallback, storage)) {
          io.out(`\n## ${group}`);
          for (const c of commands) io.out(c.startsWith('#') ? `  ${c}` : `  $ ${c}`);
        }
        io.out(`\n# dry run: nothing was changed on ${driver.target}`);
        return 0;
      }
      const result = await provision({ plan: p, driver, ...(artifact ? { artifact } : {}), storage, allowDestroy, start, signal: io.signal, onEvent: (e) => printEvent(io, e) });
      io.out(renderTable(['NODE', 'VMID', 'ACTION', 'WHY'], result.decisions.map((d) => [d.node, String(d.vmid), `${d.action}${d.start ? ' + start' : ''}`, d.reasons.join('; ')])));
      io.out(result.changes === 0 ? `${driver.target}: already converged, nothing changed` : `${driver.target}: ${plural(result.changes, 'change')}`);
      if (values['wait-agent']) {
        const seconds = Number(values['wait-agent']);
        if (!Number.isFinite(seconds) || seconds <= 0) throw new UsageError('--wait-agent takes a number of seconds');
        const answered = await waitForAgents(driver, p.nodes.map((n) => n.vmid), { timeoutMs: seconds * 1000, signal: io.signal });
        for (const [vmid, ms] of answered) io.out(`  VMID ${vmid}: guest agent answered after ${(ms / 1000).toFixed(1)} s`);
      }
      return 0;
    } finally {
      await driver.close();
    }
  },
};
