// The qemu-local driver refuses what Proxmox refuses before it creates anything: here, a first
// disk smaller than the image it is made from (Proxmox: "shrinking disks is not supported"). Real
// qemu-img on a sparse image; nothing boots.
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
import { QemuLocalDriver } from './qemu-local';

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
