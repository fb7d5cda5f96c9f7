// The qemu-local driver refuses what Proxmox refuses before it creates anything: here, a first
// disk smaller than the image it is made from (Proxmox: "shrinking disks is not supported"). Real
// qemu-img on a sparse image; nothing boots. And the TCG translation cache its QEMU command line asks for.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { SubstrateError } from './driver';
import { ownershipTags } from './provision';
import { QemuLocalDriver, TCG_TB_SIZE_MIB } from './qemu-local';
import { qmpCommands } from './qga';

const root = mkdtempSync(join(tmpdir(), 'kubedos-qemu-local-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('QemuLocalDriver.create', () => {
  it('refuses a first disk smaller than its image, naming both sizes, and leaves no VM behind', async () => {
    const p = plan(parseSpec(TEMPLATES['lab-3'].text).spec!);
    const master = p.nodes.find((n) => n.name === 'master')!;
    expect(master.vm.disks[0]!.sizeGiB).toBe(8);
    // An image of 8 GiB + 64 MiB, like the A/B image that was built 66 MiB over lab-3's master disk.
    const img = join(root, 'kubedos_lab-3_master.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', img, `${8 * 1024 + 64}M`]);
    const d = new QemuLocalDriver({ stateDir: join(root, 'state'), ownership: { tags: ownershipTags(p), vmidRange: p.substrate.vmidRange } });
    const up = await d.upload({ path: img, sha256: createHash('sha256').update(readFileSync(img)).digest('hex'), sizeBytes: statSync(img).size, kind: 'disk-image', name: 'kubedos_lab-3_master.qcow2' }, 'local');
    const err = await d.create(master.vm, { kind: 'disk-image', volid: up.volid }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(SubstrateError);
    expect((err as SubstrateError).code).toBe('disk-too-small');
    expect((err as SubstrateError).message).toBe(`master (VMID ${master.vmid}): its disk scsi0 is 8 GiB but the image ${up.volid} is 8.06 GiB; shrinking disks is not supported`);
    expect((err as SubstrateError).hint).toMatch(/^give master a first disk of at least 9 GiB in the spec/);
    expect(existsSync(join(root, 'state', 'vms', String(master.vmid)))).toBe(false);
  });
});

describe('QemuLocalDriver.qemuArgv under TCG', () => {
  it("caps TCG's translation cache at TCG_TB_SIZE_MIB (QEMU itself says so), and leaves KVM alone", async () => {
    const p = plan(parseSpec(TEMPLATES['lab-3'].text).spec!);
    const d = new QemuLocalDriver({ stateDir: join(root, 'state-argv'), ownership: { tags: ownershipTags(p), vmidRange: p.substrate.vmidRange } });
    const vm = p.nodes[0]!.vm;
    const accelOf = (argv: string[]): string => argv[argv.indexOf('-accel') + 1]!;
    expect(accelOf(d.qemuArgv(vm, undefined, 'kvm'))).toBe('kvm');
    const tcg = accelOf(d.qemuArgv(vm, undefined, 'tcg,thread=multi'));
    expect(tcg).toBe(`tcg,thread=multi,tb-size=${TCG_TB_SIZE_MIB}`);
    // A real QEMU with that -accel, stopped before the first instruction: its monitor reports the cache's size.
    const dir = mkdtempSync(join(root, 'jit-'));
    const qmp = join(dir, 'qmp.sock');
    execFileSync('qemu-system-x86_64', ['-nodefaults', '-display', 'none', '-accel', tcg, '-machine', 'q35', '-m', '64', '-S', '-daemonize', '-pidfile', join(dir, 'qemu.pid'), '-chardev', `socket,id=qmp,path=${qmp},server=on,wait=off`, '-mon', 'chardev=qmp,mode=control']);
    const pid = Number(readFileSync(join(dir, 'qemu.pid'), 'utf8').trim());
    try {
      const [jit] = await qmpCommands(qmp, [{ execute: 'human-monitor-command', arguments: { 'command-line': 'info jit' } }]);
      const size = /gen code size\s+\d+\/(\d+)/.exec(String(jit));
      expect(size, String(jit)).not.toBeNull();
      // QEMU keeps a little of the buffer for itself: at most the size asked for, and more than half of it.
      expect(Number(size![1])).toBeLessThanOrEqual(TCG_TB_SIZE_MIB * 1024 * 1024);
      expect(Number(size![1])).toBeGreaterThan((TCG_TB_SIZE_MIB / 2) * 1024 * 1024);
    } finally {
      process.kill(pid, 'SIGTERM');
    }
  });
});
