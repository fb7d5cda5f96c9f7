// Not in CI (npm run test:image-boot): the deploy lab boots the same images as every node of lab-3
// with Secure Boot + TPM and first boot on every CI run; this is the single-VM check of the image alone.
// The qcow2 golden image boots under QEMU (TCG) with OVMF Secure Boot (Microsoft keys) and a
// TPM 2.0 from swtpm, runs first boot to completion as the planned node (chosen by its MAC),
// and answers guest-ping over the guest agent socket.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { dropLabBulk } from '../lab-output';
import { ensureSpec, kubedos, LAB, requireRoot, SPEC } from './env';

// Own output directory (same inputs as build.lab.test.ts, so its cache entries are reused).
const OUT = join(LAB, 'boot-image');
import type { Vm } from './vm';
import { guestAgent, startVm, waitForAgent } from './vm';

const node = plan(parseSpec(TEMPLATES['lab-3'].text).spec!).nodes.find((n) => n.name === 'w-1')!;
let vm: Vm | undefined;

describe('qcow2 golden image boot (worker)', () => {
  beforeAll(() => {
    requireRoot();
    ensureSpec();
    // Always through the build (a cache hit when the earlier suite built it): never a stale artifact.
    const r = kubedos(['build', 'darksite', 'image', '--spec', SPEC, '--out', OUT]);
    if (r.status !== 0) throw new Error(`build failed: ${r.stderr}`);
  });
  afterAll(async () => {
    await vm?.stop();
    dropLabBulk(OUT, [join(LAB, 'vm-image'), join(LAB, 'vm-image-disk.qcow2')]);
  });

  it('boots with Secure Boot + TPM, completes first boot as w-1 and answers guest-ping', async () => {
    const dir = join(LAB, 'vm-image');
    rmSync(dir, { recursive: true, force: true });
    const overlay = join(LAB, 'vm-image-disk.qcow2');
    rmSync(overlay, { force: true });
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', join(OUT, 'images/lab-3-worker.qcow2'), overlay]);
    vm = await startVm({ dir, disk: { file: overlay, format: 'qcow2' }, mac: node.lan.mac, memoryMiB: 1024, bootFrom: 'disk' });
    await vm.waitForSerial(/Secure boot enabled/i, 240_000);
    const firstBootMs = await vm.waitForSerial(/KUBEDOS-FIRSTBOOT-COMPLETE node=w-1/, 480_000, /kubedos-firstboot: FAILED[^\n]*/);
    await waitForAgent(vm.qgaSocket, 120_000, vm);
    expect(await guestAgent(vm.qgaSocket, 'guest-ping')).toEqual({});
    const serial = vm.serial();
    expect(serial).toMatch(/kubedos-firstboot: node w-1 \(w-1\.[^)]+\) from w-1\.json/);
    expect(serial).toMatch(/nftables: planned ruleset loaded \(table inet kubedos/);
    expect(serial).not.toMatch(/kubedos-firstboot: FAILED/);
    console.log(`[bench] qcow2 boot to first-boot complete: ${(firstBootMs / 1000).toFixed(1)} s`);
  });
});
