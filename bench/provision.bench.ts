// Provisioning 16 VMs (reference-16) on the Proxmox stand-in, in one run, two ways:
//   workbench: the proxmox-ssh driver — one SSH connection, commands multiplexed on channels,
//              nodes handled in parallel, artifact over SFTP once;
//   deploy.sh: one `ssh host qm …` process per command (the same commands), one after the other,
//              artifact pushed with scp — the way the original deploy.sh drove Proxmox.
// The stand-in runs without QEMU here (startQemu: false), so the numbers are SSH + workbench
// time, not guest boot time. Numbers, not pass/fail.
// Run: node bin/run-ts.mjs bench/provision.bench.ts
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { plan } from '../common/plan/index';
import { parseSpec, TEMPLATES } from '../common/spec/index';
import { renderTable } from '../common/text/table';
import type { ArtifactFile } from '../main/substrate/driver';
import { ownershipTags, provision } from '../main/substrate/provision';
import { ProxmoxSshDriver } from '../main/substrate/proxmox-ssh';
import { startProxmoxStandIn } from '../e2e/fixtures/proxmox/standin';

const parsed = parseSpec(TEMPLATES['reference-16'].text);
if (!parsed.spec) throw new Error('reference-16 does not parse');
const p = plan(parsed.spec);
const standin = await startProxmoxStandIn({ startQemu: false });
const dir = mkdtempSync(join(tmpdir(), 'kubedos-bench-'));
try {
  standin.update((s) => {
    s.storages['fast-zfs'] = { type: 'dir', path: join(standin.root, 'var/lib/fast-zfs'), content: ['images'], capacity: 2 * 1024 ** 4 };
  });
  const imagePath = join(dir, 'golden.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', imagePath, '1G']);
  const artifact: ArtifactFile = { path: imagePath, sha256: createHash('sha256').update(readFileSync(imagePath)).digest('hex'), sizeBytes: statSync(imagePath).size, kind: 'disk-image', name: 'kubedos-bench-golden.qcow2' };
  const ownership = { tags: ownershipTags(p), vmidRange: p.substrate.vmidRange };
  const driverFor = (): ProxmoxSshDriver => new ProxmoxSshDriver({ target: 'proxmox://pve-standin', sshConfigPath: standin.sshConfig, knownHostsPath: standin.knownHosts, home: standin.dir, agentSocket: undefined, ownership });

  // --- workbench ---------------------------------------------------------------------------
  const wb = driverFor();
  const commands: string[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await provision({ plan: p, driver: wb, artifact, storage: 'local', allowDestroy: false, onEvent: (e) => e.kind === 'command' && commands.push(e.command) });
  const wbWall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const wbTrips = wb.session.roundTrips;
  const wbConnects = wb.session.connects;
  if (result.decisions.filter((d) => d.action === 'create').length !== 16) throw new Error('expected 16 creates');
  // Reset the stand-in (not timed).
  for (const n of p.nodes) await wb.destroy(n.vmid, { allowDestroy: true });
  rmSync(join(standin.root, 'var/lib/vz/import', artifact.name), { force: true });
  await wb.close();

  // --- deploy.sh style: one ssh process per command, sequential ----------------------------
  const ssh = ['-F', standin.sshConfig, '-o', `UserKnownHostsFile=${standin.knownHosts}`, '-o', 'BatchMode=yes'];
  const t1 = performance.now();
  let processes = 0;
  const remote = execFileSync('ssh', [...ssh, 'pve-standin', `pvesm path local:import/${artifact.name}`], { encoding: 'utf8' }).trim();
  processes++;
  execFileSync('scp', ['-q', ...ssh, imagePath, `pve-standin:${remote}`]);
  processes++;
  for (const c of commands.filter((x) => !/^(pvesm|sha256sum|hostname|pvesh get \/cluster|qm config)/.test(x))) {
    execFileSync('ssh', [...ssh, 'pve-standin', c], { stdio: ['ignore', 'ignore', 'pipe'] });
    processes++;
  }
  const shWall = performance.now() - t1;

  const rows = [
    ['workbench (ssh2, one connection)', String(wbConnects), String(wbTrips), `${Math.round(wbWall)}`, `${Math.round((cpu.user + cpu.system) / 1000)}`],
    ['deploy.sh style (ssh per command)', String(processes), String(processes), `${Math.round(shWall)}`, '-'],
  ];
  console.log(`provision reference-16 (16 VMs) on the Proxmox stand-in, QEMU not started\n`);
  console.log(renderTable(['WAY', 'SSH CONNECTIONS', 'ROUND TRIPS (channels/processes)', 'WALL ms', 'WORKBENCH CPU ms'], rows));
  console.log(`\nratios (deploy.sh / workbench): wall ${(shWall / wbWall).toFixed(2)}x, connections ${(processes / wbConnects).toFixed(0)}x`);
  console.log(`workbench commands: ${commands.length} (inventory, config reads, upload checks, ${p.nodes.length}x create + resize + start)`);
} finally {
  await standin.stop();
  rmSync(dir, { recursive: true, force: true });
}
