// A role installer ISO boots under QEMU (TCG) with OVMF Secure Boot (Microsoft keys: only the
// signed shim → signed GRUB → signed kernel chain gets through) and a swtpm TPM 2.0. The
// serial console proves the preseed was read (early_command marker), and the installer
// fetches the darksite from the host: QEMU user networking with restrict=on, the only route
// out being guestfwd 10.0.2.100:80 → a loopback HTTP server serving the build's darksite/.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { dropLabBulk } from '../lab-output';
import { ensureSpec, kubedos, LAB, requireRoot, SPEC } from './env';

// Own output directory (same inputs as build.lab.test.ts, so its cache entries are reused).
const OUT = join(LAB, 'boot-iso');
import type { DarksiteServer, Vm } from './vm';
import { serveDirectory, startVm } from './vm';

const node = plan(parseSpec(TEMPLATES['lab-3'].text).spec!).nodes.find((n) => n.name === 'w-1')!;
let vm: Vm | undefined;
let server: DarksiteServer | undefined;

describe('role installer ISO boot (worker)', () => {
  beforeAll(() => {
    requireRoot();
    ensureSpec();
    // Always through the build (a cache hit when the earlier suite built it): never a stale artifact.
    const r = kubedos(['build', 'darksite', 'iso', '--spec', SPEC, '--out', OUT]);
    if (r.status !== 0) throw new Error(`build failed: ${r.stderr}`);
  });
  afterAll(async () => {
    await vm?.stop();
    await server?.close();
    dropLabBulk(OUT, [join(LAB, 'vm-iso-disk.qcow2')]);
  });

  it('boots with Secure Boot, reads the preseed and installs from the darksite served on loopback', async () => {
    server = await serveDirectory(join(OUT, 'darksite'), '/darksite');
    const dir = join(LAB, 'vm-iso');
    rmSync(dir, { recursive: true, force: true });
    const disk = join(LAB, 'vm-iso-disk.qcow2');
    rmSync(disk, { force: true });
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '8G']);
    vm = await startVm({ dir, cdrom: join(OUT, 'iso/lab-3-worker.iso'), disk: { file: disk, format: 'qcow2' }, mac: node.lan.mac, memoryMiB: 1024, darksitePort: server.port, bootFrom: 'cdrom' });
    await vm.waitForSerial(/Secure boot enabled/i, 240_000);
    const preseedMs = await vm.waitForSerial(/KUBEDOS-PRESEED-READ cluster=lab-3 role=worker/, 300_000);
    // The installer's first contact with a mirror is the darksite's Release; it reads the
    // installer index only after Release.gpg verified against the cluster key it was given.
    const index = /\/darksite\/dists\/bookworm\/main\/debian-installer\/binary-amd64\/Packages(\.gz)?$/;
    const deadline = Date.now() + 600_000;
    let releaseMs = 0;
    while (Date.now() < deadline && !server.requests.some((r) => index.test(r))) {
      if (!releaseMs && server.requests.some((r) => /\/darksite\/dists\/bookworm\/Release$/.test(r))) releaseMs = Date.now() - vm.startedAt;
      if (vm.exited()) throw new Error(`QEMU exited early; serial tail:\n${vm.serial().slice(-2000)}`);
      await sleep(1000);
    }
    const seen = server.requests.join('\n');
    expect(seen).toMatch(/GET \/darksite\/dists\/bookworm\/Release$/m);
    expect(seen).toMatch(/GET \/darksite\/dists\/bookworm\/(Release\.gpg|InRelease)$/m);
    expect(server.requests.some((r) => index.test(r)), seen).toBe(true);
    console.log(`[bench] iso: preseed read ${(preseedMs / 1000).toFixed(1)} s, darksite Release fetched ${(releaseMs / 1000).toFixed(1)} s after VM start`);
    console.log(`[darksite requests]\n${server.requests.slice(0, 40).join('\n')}`);
  });
});
