// guestFileWrite on both drivers against a booted test guest (busybox + qemu-ga, Secure Boot,
// TCG): a 0600 secret, a ~200 KiB file and a multi-chunk binary file, read back through the
// agent, mode/owner checked with `stat` in the guest. One VM per driver (not all of lab-3).
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Plan } from '../../common/plan/schema';
import type { ArtifactFile, SubstrateDriver, SubstrateEvent } from '../../main/substrate/driver';
import { SubstrateError } from '../../main/substrate/driver';
import { GUEST_INPUT_MAX_BYTES } from '../../main/substrate/guest-file';
import { ownershipTags, waitForAgents } from '../../main/substrate/provision';
import type { ProxmoxSshDriver } from '../../main/substrate/proxmox-ssh';
import { QemuLocalDriver } from '../../main/substrate/qemu-local';
import { SubstrateInputError } from '../../main/substrate/validate';
import type { ProxmoxStandIn } from '../fixtures/proxmox/standin';
import { startProxmoxStandIn } from '../fixtures/proxmox/standin';
import { testGuestImage } from '../fixtures/guest/test-guest';
import { lab3Plan, standInDriver } from './helpers';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The same checks on any driver whose VM `vmid` is booted and answers. */
function fileWriteSuite(get: () => { driver: SubstrateDriver; vmid: number; events: SubstrateEvent[] }, readsBinary: boolean): void {
  const stat = async (path: string): Promise<string> => {
    const { driver, vmid } = get();
    const r = await driver.guestExec(vmid, ['/bin/stat', '-c', '%a %u:%g', path]);
    expect(r.exitCode, r.stderr).toBe(0);
    return r.stdout.trim();
  };

  it('a 0600 secret: parents created, read back exactly, mode 600, root-owned, no staging left', async () => {
    const { driver, vmid, events } = get();
    const secret = `kubeadm-join-token ${randomBytes(24).toString('hex')}\n`;
    events.length = 0;
    await driver.guestFileWrite(vmid, '/etc/kubedos/secrets/join.token', secret, { mode: 0o600, onEvent: (e) => events.push(e) });
    expect((await driver.guestFileRead(vmid, '/etc/kubedos/secrets/join.token')).toString('utf8')).toBe(secret);
    expect(await stat('/etc/kubedos/secrets/join.token')).toBe('600 0:0');
    expect(await stat('/etc/kubedos/secrets')).toMatch(/^755 0:0$/);
    const ls = await driver.guestExec(vmid, ['/bin/ls', '-a', '/etc/kubedos/secrets']);
    expect(ls.stdout.split('\n').filter(Boolean).sort()).toEqual(['.', '..', 'join.token']);
    // The secret was never part of a command line or an event.
    expect(JSON.stringify(events)).not.toContain(secret.trim().split(' ')[1]);
  });

  it('a ~200 KiB file with the default mode 0644, read back through the agent', async () => {
    const { driver, vmid } = get();
    const text = randomBytes(150 * 1024).toString('base64').replace(/.{76}/g, '$&\n');
    expect(text.length).toBeGreaterThan(200_000);
    await driver.guestFileWrite(vmid, '/var/lib/kubedos/manifest.yaml', text);
    expect((await driver.guestFileRead(vmid, '/var/lib/kubedos/manifest.yaml')).toString('utf8')).toBe(text);
    expect(await stat('/var/lib/kubedos/manifest.yaml')).toBe('644 0:0');
  });

  it('binary content over two chunks replaces the previous file, with the new mode; sha256 checked in the guest', async () => {
    const { driver, vmid } = get();
    const data = randomBytes(GUEST_INPUT_MAX_BYTES + 200 * 1024);
    await driver.guestFileWrite(vmid, '/var/lib/kubedos/manifest.yaml', data, { mode: 0o640 });
    const sum = await driver.guestExec(vmid, ['/bin/sha256sum', '/var/lib/kubedos/manifest.yaml']);
    expect(sum.stdout.split(/\s+/)[0]).toBe(sha(data));
    expect(await stat('/var/lib/kubedos/manifest.yaml')).toBe('640 0:0');
    // qemu-local returns the agent's bytes; Proxmox's file-read returns text (decoded as UTF-8).
    if (readsBinary) expect(sha(await driver.guestFileRead(vmid, '/var/lib/kubedos/manifest.yaml'))).toBe(sha(data));
  });

  it('refuses bad paths before anything runs, and a directory target in the guest with a clear error', async () => {
    const { driver, vmid } = get();
    for (const bad of ['relative/x', '/etc/../x', '/etc/x\n']) await expect(driver.guestFileWrite(vmid, bad, 'x')).rejects.toBeInstanceOf(SubstrateInputError);
    const err = await driver.guestFileWrite(vmid, '/etc/kubedos', 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SubstrateError);
    expect((err as SubstrateError).message).toMatch(/is a directory/);
    expect(await stat('/etc/kubedos')).toMatch(/^755 /);
  });
}

describe('guestFileWrite on qemu-local', () => {
  let stateDir: string;
  let p: Plan;
  let image: ArtifactFile;
  let driver: QemuLocalDriver;
  const events: SubstrateEvent[] = [];
  const vmid = (): number => p.nodes[0]?.vmid as number;

  beforeAll(async () => {
    image = testGuestImage();
    p = lab3Plan();
    stateDir = mkdtempSync(join(tmpdir(), 'kubedos-gfw-'));
    driver = new QemuLocalDriver({ stateDir, ownership: { tags: ownershipTags(p), vmidRange: p.substrate.vmidRange }, accel: 'auto' });
    const up = await driver.upload(image, 'local');
    const node = p.nodes[0];
    if (!node) throw new Error('lab-3 has a first node');
    await driver.create(node.vm, { kind: 'disk-image', volid: up.volid });
    await driver.start(node.vmid);
    await waitForAgents(driver, [node.vmid], { timeoutMs: 420_000, intervalMs: 3000 });
  });

  afterAll(async () => {
    if (!stateDir) return;
    for (const vm of (await driver.inventory()).vms) await driver.destroy(vm.vmid, { allowDestroy: true }).catch(() => undefined);
    await driver.stopNetworkIfIdle();
    rmSync(stateDir, { recursive: true, force: true });
  });

  fileWriteSuite(() => ({ driver, vmid: vmid(), events }), true);

  it('refuses a VM that does not exist in its state dir', async () => {
    await expect(driver.guestFileWrite(3999, '/etc/x', 'x')).rejects.toMatchObject({ code: 'absent' });
  });
});

describe('guestFileWrite on the Proxmox stand-in (qm guest exec --pass-stdin over SSH)', () => {
  let standin: ProxmoxStandIn;
  let driver: ProxmoxSshDriver;
  let p: Plan;
  const events: SubstrateEvent[] = [];
  const vmid = (): number => p.nodes[0]?.vmid as number;

  beforeAll(async () => {
    const image = testGuestImage();
    standin = await startProxmoxStandIn();
    p = lab3Plan();
    driver = standInDriver(standin, p);
    const up = await driver.upload(image, 'local');
    const node = p.nodes[0];
    if (!node) throw new Error('lab-3 has a first node');
    await driver.create(node.vm, { kind: 'disk-image', volid: up.volid });
    await driver.start(node.vmid);
    await waitForAgents(driver, [node.vmid], { timeoutMs: 420_000, intervalMs: 3000 });
  });

  afterAll(async () => {
    if (p && driver) await driver.destroy(vmid(), { allowDestroy: true }).catch(() => undefined);
    await driver?.close();
    await standin?.stop();
  });

  fileWriteSuite(() => ({ driver, vmid: vmid(), events }), false);

  it('the content goes on stdin: every write command is `qm guest exec … --pass-stdin 1`, none carries it', async () => {
    const log: SubstrateEvent[] = [];
    const marker = randomBytes(16).toString('hex');
    await driver.guestFileWrite(vmid(), '/root/marker', `${marker}\n`, { mode: 0o600, onEvent: (e) => log.push(e) });
    const commands = log.flatMap((e) => (e.kind === 'command' ? [e.command] : []));
    expect(commands[0]).toBe(`qm config ${vmid()}`);
    expect(commands.filter((c) => c.includes('--pass-stdin 1'))).toHaveLength(1);
    expect(commands.join('\n')).not.toContain(marker);
    expect(driver.session.connects).toBe(1);
  });

  it('stdin past 1 MiB is refused before it is sent; a VM that is not ours gets nothing', async () => {
    await expect(driver.guestExec(vmid(), ['/bin/cat'], { input: Buffer.alloc(GUEST_INPUT_MAX_BYTES + 1) })).rejects.toBeInstanceOf(SubstrateInputError);
    await driver.run(['qm', 'create', '3050', '--name', 'someone-else', '--tags', 'other']);
    await expect(driver.guestFileWrite(3050, '/etc/x', 'x')).rejects.toMatchObject({ code: 'not-owned' });
    await driver.run(['qm', 'destroy', '3050']);
  });
});
