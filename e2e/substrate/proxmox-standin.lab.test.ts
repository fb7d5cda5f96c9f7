// lab-3 on the strict Proxmox stand-in over real SSH: create 3 VMs in the plan's shape, boot
// them (real QEMU, TCG, Secure Boot + TPM), guest-ping each, rerun -> zero changes, destroy
// refused without allowDestroy, done with it.
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Plan } from '../../common/plan/schema';
import type { ArtifactFile } from '../../main/substrate/driver';
import { SubstrateError } from '../../main/substrate/driver';
import { provision, waitForAgents } from '../../main/substrate/provision';
import type { ProxmoxSshDriver } from '../../main/substrate/proxmox-ssh';
import { compareConfig, parsePropertyString, parseVmConfig } from '../../main/substrate/qm';
import type { ProxmoxStandIn } from '../fixtures/proxmox/standin';
import { startProxmoxStandIn } from '../fixtures/proxmox/standin';
import { testGuestImage } from '../fixtures/guest/test-guest';
import { eventLog, lab3Plan, standInDriver } from './helpers';

describe('proxmox-ssh driver against the stand-in (lab-3)', () => {
  let standin: ProxmoxStandIn;
  let driver: ProxmoxSshDriver;
  let p: Plan;
  let image: ArtifactFile;

  beforeAll(async () => {
    image = testGuestImage();
    standin = await startProxmoxStandIn();
    p = lab3Plan();
    driver = standInDriver(standin, p);
  });

  afterAll(async () => {
    await driver?.close();
    await standin?.stop();
  });

  it('creates the three VMs in the plan shape and every .conf matches it', async () => {
    const log = eventLog();
    const result = await provision({ plan: p, driver, artifact: image, storage: 'local', allowDestroy: false, onEvent: log.onEvent });
    expect(result.decisions.map((d) => [d.node, d.action, d.start])).toEqual([
      ['master', 'create', true],
      ['cp-1', 'create', true],
      ['w-1', 'create', true],
    ]);
    expect(result.upload?.action).toBe('uploaded');
    for (const n of p.nodes) {
      const conf = parseVmConfig(readFileSync(standin.confPath(n.vmid), 'utf8'));
      expect(compareConfig(n.vm, conf)).toEqual([]);
      expect(conf.machine).toBe('q35');
      expect(conf.bios).toBe('ovmf');
      expect(parsePropertyString(conf.efidisk0 ?? '')).toMatchObject({ efitype: '4m', 'pre-enrolled-keys': '1' });
      expect(parsePropertyString(conf.tpmstate0 ?? '')).toMatchObject({ version: 'v2.0' });
      expect(parsePropertyString(conf.agent ?? '').enabled ?? parsePropertyString(conf.agent ?? '')['']).toBe('1');
      expect(parsePropertyString(conf.net0 ?? '')).toMatchObject({ virtio: n.lan.mac.toUpperCase(), bridge: 'kubedos0' });
      expect(parsePropertyString(conf.scsi0 ?? '').size).toBe(`${n.vm.disks[0]?.sizeGiB}G`);
      expect((conf.tags ?? '').split(';')).toEqual(expect.arrayContaining(['kubedos', 'cluster-lab-3', 'artifact-0.1.0', `role-${n.role}`]));
    }
    // Every command went over the one SSH connection, quoted.
    expect(driver.session.connects).toBe(1);
    expect(log.events.filter((e) => e.kind === 'command').length).toBeGreaterThan(6);
  });

  it('boots all three under Secure Boot + TPM and each guest agent answers', async () => {
    const vmids = p.nodes.map((n) => n.vmid);
    const answered = await waitForAgents(driver, vmids, { timeoutMs: 420_000, intervalMs: 3000 });
    expect([...answered.keys()].sort()).toEqual(vmids);
    for (const vmid of vmids) {
      expect(await driver.guestPing(vmid)).toBe(true);
      const info = (await driver.guestFileRead(vmid, '/etc/kubedos/guest-info')).toString('utf8');
      expect(info).toContain('kubedos-test-guest');
      expect(info).toContain('secure_boot=1');
      expect(info).toContain('tpm=present');
      const exec = await driver.guestExec(vmid, ['/bin/sh', '-c', 'echo "$1" && exit 3', 'sh', "it's $(not) `run`"]);
      expect(exec).toEqual({ exitCode: 3, stdout: "it's $(not) `run`\n", stderr: '' });
      // A script over several lines (the converge fingerprint, the wiring probes) goes through qm over SSH as one line.
      const lines = await driver.guestExec(vmid, ['/bin/sh', '-c', 'set -eu\nfor w in "$@"; do\n  printf "%s|" "$w"\ndone\nexit 4', 'sh', 'a', "b 'c'"]);
      expect(lines).toEqual({ exitCode: 4, stdout: "a|b 'c'|", stderr: '' });
    }
    // The stand-in really launched QEMU with the Secure Boot firmware and a per-VM vars copy.
    const cmdline = JSON.parse(readFileSync(`${standin.root}/var/run/qemu-server/${vmids[0]}.cmdline`, 'utf8')) as string[];
    expect(cmdline.join(' ')).toContain('OVMF_CODE_4M.secboot.fd');
    expect(cmdline.join(' ')).toContain('tpm-tis');
  });

  it('a rerun changes nothing', async () => {
    const log = eventLog();
    const result = await provision({ plan: p, driver, artifact: image, storage: 'local', allowDestroy: false, onEvent: log.onEvent });
    expect(result.changes).toBe(0);
    expect(result.upload).toBeUndefined();
    expect(result.decisions.every((d) => d.action === 'keep' && !d.start)).toBe(true);
    const mutating = log.events.filter((e) => e.kind === 'command' && /^qm (create|set|start|stop|destroy)/.test(e.command));
    expect(mutating).toEqual([]);
  });

  it('destroy is refused without allowDestroy and done with it', async () => {
    const vmid = p.nodes[2]?.vmid as number;
    await expect(driver.destroy(vmid, { allowDestroy: false })).rejects.toMatchObject({ code: 'destroy-refused' });
    expect(existsSync(standin.confPath(vmid))).toBe(true);
    expect(await driver.status(vmid)).toBe('running');
    for (const n of p.nodes) await driver.destroy(n.vmid, { allowDestroy: true });
    for (const n of p.nodes) expect(existsSync(standin.confPath(n.vmid))).toBe(false);
    const inv = await driver.inventory();
    expect(inv.vms).toEqual([]);
    await expect(driver.status(vmid)).resolves.toBe('absent');
  });

  it('refuses to touch a VM it does not own, even with allowDestroy', async () => {
    await driver.run(['qm', 'create', '3050', '--name', 'someone-else', '--tags', 'other']);
    const err = await driver.destroy(3050, { allowDestroy: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SubstrateError);
    expect((err as SubstrateError).code).toBe('not-owned');
    expect(existsSync(standin.confPath(3050))).toBe(true);
  });
});
