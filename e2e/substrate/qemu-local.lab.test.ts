// lab-3 on the qemu-local driver: three real VMs (TCG here; KVM only if a test boot passes),
// Secure Boot + TPM, guest agent over its socket, a shared isolated L2 between them, and a
// "workbench restart" (a new driver on the same state dir) that re-attaches instead of
// re-creating.
import { existsSync, readdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Plan } from '../../common/plan/schema';
import type { ArtifactFile } from '../../main/substrate/driver';
import { ownershipTags, provision, waitForAgents } from '../../main/substrate/provision';
import { QemuLocalDriver } from '../../main/substrate/qemu-local';
import { testGuestImage } from '../fixtures/guest/test-guest';
import { lab3Plan } from './helpers';

describe('qemu-local driver (lab-3)', () => {
  let stateDir: string;
  let p: Plan;
  let image: ArtifactFile;
  let server: Server;
  let hostPort = 0;
  const driver = (): QemuLocalDriver =>
    new QemuLocalDriver({ stateDir, ownership: { tags: ownershipTags(p), vmidRange: p.substrate.vmidRange }, accel: 'auto', hostServices: [{ guestPort: 8080, hostPort }] });

  beforeAll(async () => {
    image = testGuestImage();
    p = lab3Plan();
    stateDir = mkdtempSync(join(tmpdir(), 'kubedos-qemu-'));
    // A "darksite" on the host's loopback that guests reach through the service NIC.
    server = createServer((req, res) => res.end(`darksite says hello to ${req.url}\n`));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    hostPort = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server?.close();
    if (!stateDir) return;
    const d = driver();
    for (const vm of (await d.inventory()).vms) await d.destroy(vm.vmid, { allowDestroy: true }).catch(() => undefined);
    await d.stopNetworkIfIdle();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('creates and boots the three VMs; each guest agent answers before any network exists', async () => {
    const d = driver();
    const result = await provision({ plan: p, driver: d, artifact: image, storage: 'local', allowDestroy: false });
    expect(result.decisions.map((x) => [x.node, x.action])).toEqual([
      ['master', 'create'],
      ['cp-1', 'create'],
      ['w-1', 'create'],
    ]);
    const accel = JSON.parse(readFileSync(join(stateDir, 'accel-probe.json'), 'utf8')) as { accel: string };
    expect(['kvm', 'tcg,thread=multi']).toContain(accel.accel);
    const vmids = p.nodes.map((n) => n.vmid);
    await waitForAgents(d, vmids, { timeoutMs: 420_000, intervalMs: 3000 });
    for (const n of p.nodes) {
      const info = (await d.guestFileRead(n.vmid, '/etc/kubedos/guest-info')).toString('utf8');
      expect(info).toContain('secure_boot=1');
      expect(info).toContain('tpm=present');
      // The guest's first NIC carries the plan's MAC.
      const mac = await d.guestExec(n.vmid, ['/bin/cat', '/sys/class/net/eth0/address']);
      expect(mac.stdout.trim()).toBe(n.lan.mac.toLowerCase());
      // Overlay on the shared golden image, grown to the plan's size.
      expect(existsSync(join(stateDir, 'vms', String(n.vmid), 'efivars.fd'))).toBe(true);
    }
  });

  it('the VMs share one isolated L2: master reaches cp-1 at its plan address', async () => {
    const d = driver();
    const [master, cp] = p.nodes;
    for (const n of [master, cp]) {
      if (!n) throw new Error('lab-3 has master and cp-1');
      const r = await d.guestExec(n.vmid, ['/bin/sh', '-c', `ip link set eth0 up && ip addr add ${n.lan.address}/${n.lan.prefix} dev eth0`]);
      expect(r.exitCode).toBe(0);
    }
    const ping = await d.guestExec(master?.vmid as number, ['/bin/ping', '-c', '3', '-W', '5', cp?.lan.address as string], { timeoutS: 60 });
    expect(ping.stdout).toMatch(/3 packets transmitted, [1-3] packets received/);
    // Nothing outside: the guests have no route anywhere else.
    const route = await d.guestExec(master?.vmid as number, ['/bin/sh', '-c', 'ip route']);
    expect(route.stdout).not.toMatch(/default/);
  });

  it('the host serves files to the guests on a loopback-forwarded port, and nothing else of the host is reachable', async () => {
    const d = driver();
    const vmid = p.nodes[1]?.vmid as number;
    const up = await d.guestExec(vmid, ['/bin/sh', '-c', 'ip link set eth1 up && ip addr add 10.0.2.15/24 dev eth1']);
    expect(up.exitCode).toBe(0);
    // The link needs a moment after "up"; retry a few times inside the guest. (busybox-static's
    // wget crashes with -T, so the guest's timeout applet bounds it.)
    const got = await d.guestExec(vmid, ['/bin/sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do timeout 10 wget -O - http://10.0.2.100:8080/pool/Release 2>/dev/null && exit 0; sleep 1; done; exit 1'], { timeoutS: 90 });
    expect(got, JSON.stringify(got)).toMatchObject({ exitCode: 0, stdout: 'darksite says hello to /pool/Release\n' });
    // restrict=on: the user-mode gateway does not connect guests to the host's other ports.
    // The same wget straight at the host (10.0.2.2 is slirp's host alias) gets nothing.
    const direct = await d.guestExec(vmid, ['/bin/sh', '-c', `timeout 5 wget -O - http://10.0.2.2:${hostPort}/direct 2>/dev/null`], { timeoutS: 60 });
    expect(direct.exitCode).not.toBe(0);
    expect(direct.stdout).not.toContain('darksite');
  });

  it('after a workbench restart the VMs are re-attached, not re-created: zero changes', async () => {
    const fresh = driver();
    const bootIds = await Promise.all(p.nodes.map(async (n) => /boot_id=(\S+)/.exec((await fresh.guestFileRead(n.vmid, '/etc/kubedos/guest-info')).toString())?.[1]));
    const result = await provision({ plan: p, driver: fresh, artifact: image, storage: 'local', allowDestroy: false });
    expect(result.changes).toBe(0);
    expect(result.decisions.every((x) => x.action === 'keep' && !x.start)).toBe(true);
    for (const [i, n] of p.nodes.entries()) {
      expect(await fresh.guestPing(n.vmid)).toBe(true);
      expect((await fresh.guestFileRead(n.vmid, '/etc/kubedos/guest-info')).toString()).toContain(`boot_id=${bootIds[i]}`);
    }
  });

  // What the first-boot wait does to a guest whose kernel hung before init (main/substrate/boot-hang.ts):
  // the console is readable and a reset boots the VM again, its agent back with a new boot id.
  it('reads a VM\'s console and resets it: a second kernel banner on the console, the agent back with a new boot id', async () => {
    const d = driver();
    const vmid = p.nodes[2]?.vmid as number;
    const before = /boot_id=(\S+)/.exec((await d.guestFileRead(vmid, '/etc/kubedos/guest-info')).toString())?.[1];
    const banners = (t: string) => t.split('Linux version ').length - 1;
    const console0 = await d.consoleTail(vmid, 4 * 1024 * 1024);
    expect(banners(console0)).toBeGreaterThanOrEqual(1);
    await d.reset(vmid);
    await waitForAgents(d, [vmid], { timeoutMs: 420_000, intervalMs: 3000, resetHung: false });
    let after = before;
    for (let i = 0; i < 60 && (after === before || after === undefined); i++) {
      after = /boot_id=(\S+)/.exec((await d.guestFileRead(vmid, '/etc/kubedos/guest-info').catch(() => Buffer.from(''))).toString())?.[1];
      if (after === before || after === undefined) await new Promise((r) => setTimeout(r, 2000));
    }
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
    expect(banners(await d.consoleTail(vmid, 4 * 1024 * 1024))).toBe(banners(console0) + 1);
    await expect(d.reset(9999)).rejects.toThrow();
  }, 600_000);

  it('destroy needs allowDestroy; with it the VM and its processes are gone', async () => {
    const d = driver();
    const vmid = p.nodes[2]?.vmid as number;
    await expect(d.destroy(vmid, { allowDestroy: false })).rejects.toMatchObject({ code: 'destroy-refused' });
    expect(await d.status(vmid)).toBe('running');
    const pid = Number(readFileSync(join(d.runDir(vmid), 'qemu.pid'), 'utf8'));
    await d.destroy(vmid, { allowDestroy: true });
    expect(await d.status(vmid)).toBe('absent');
    expect(existsSync(`/proc/${pid}`)).toBe(false);
  });

  it('destroying the last VM also stops the L2 hub it shared (no process outlives the cluster)', async () => {
    const d = driver();
    const net = join(stateDir, 'net');
    // Running = in /proc and not a zombie (an orphaned hub is reaped by whoever is PID 1 here).
    const running = (pid: number): boolean => {
      try {
        return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    const hubPids = readdirSync(net).filter((f) => f.endsWith('.pid')).map((f) => Number(readFileSync(join(net, f), 'utf8')));
    expect(hubPids.length).toBeGreaterThan(0);
    expect(hubPids.every(running)).toBe(true); // VMs still run: the hub stays
    for (const vm of (await d.inventory()).vms) await d.destroy(vm.vmid, { allowDestroy: true });
    await new Promise((r) => setTimeout(r, 500));
    expect(hubPids.filter(running)).toEqual([]);
  });
});
