// The deploy wizard in Debian's chromium against `kubedos serve`, with its own HOME (an
// ~/.ssh/config written here) and engine workspace:
// - qemu-local: the capacity check of this machine against lab-3;
// - a Proxmox host on a loopback port where nothing listens: an actionable error;
// - the strict Proxmox stand-in (real sshd on loopback): the first-use host-key prompt with the
//   SHA256 fingerprint, trust → known_hosts, the node's storages; its review (all create);
// - qemu-local again with VMs already in the workspace: keep / update / create / destroy, the
//   "allow destroy" checkbox gating Next;
// - the real deploy DAG started from the wizard: validate and plan green, build running, then
//   cancel. The build's package downloads go to a proxy on 127.0.0.1 that never answers, so the
//   build stays running and nothing leaves the machine.
// Screenshots of each step go to e2e/output/wizard-*.png.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plan } from '../../common/plan/index';
import type { Plan } from '../../common/plan/schema';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { QemuLocalDriver } from '../../main/substrate/qemu-local';
import type { ProxmoxStandIn } from '../fixtures/proxmox/standin';
import { startProxmoxStandIn } from '../fixtures/proxmox/standin';
import { screenshot } from './harness';
import type { UiSession } from './session';
import { serveSession } from './session';
import { chooseProxmox, chooseQemuLocal, chooseSource, next, openWizard, stageState, startDeploy, waitForReview } from './wizard-driver';

const canRunStandIn = process.getuid?.() === 0 && existsSync('/usr/sbin/sshd');

let session: UiSession;
let page: Page;
let standin: ProxmoxStandIn | undefined;
let stall: Server;
const stalled: Socket[] = [];
const dir = mkdtempSync(join(tmpdir(), 'kubedos-e2e-wizard-'));
const home = join(dir, 'home');
const engine = join(dir, 'engine');
const lab3: Plan = plan(parseSpec(TEMPLATES['lab-3'].text).spec!);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  mkdirSync(join(home, '.ssh'), { recursive: true, mode: 0o700 });
  const closedPort = await freePort();
  const config = [`Host pve-closed`, `  HostName 127.0.0.1`, `  Port ${closedPort}`, `  User root`, ''];
  if (canRunStandIn) {
    standin = await startProxmoxStandIn({ startQemu: false });
    config.push(`Host pve-standin`, `  HostName 127.0.0.1`, `  Port ${standin.port}`, `  User root`, `  IdentityFile ${standin.clientKey}`, '');
  }
  writeFileSync(join(home, '.ssh/config'), config.join('\n'));
  // The build's apt traffic goes here and waits forever: the stage stays running, offline.
  stall = createServer((socket) => {
    stalled.push(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => stall.listen(0, '127.0.0.1', () => r()));
  const proxy = `http://127.0.0.1:${(stall.address() as AddressInfo).port}`;
  session = await serveSession([], undefined, {
    env: { HOME: home, KUBEDOS_WORKSPACE: engine, KUBEDOS_CACHE: join(engine, 'cache'), SSH_AUTH_SOCK: undefined, http_proxy: proxy, https_proxy: proxy, HTTP_PROXY: proxy, HTTPS_PROXY: proxy, no_proxy: undefined, NO_PROXY: undefined },
  });
  page = session.page;
  await page.getByTestId('cluster-badge').filter({ hasText: 'lab-3' }).waitFor({ timeout: 15_000 });
});

afterAll(async () => {
  await session?.close();
  await standin?.stop();
  for (const s of stalled) s.destroy();
  await new Promise<void>((r) => (stall ? stall.close(() => r()) : r()));
  rmSync(dir, { recursive: true, force: true });
});

const check = (id: string) => page.locator(`[data-testid="target-checks"] [data-check="${id}"]`);

describe('deploy wizard', () => {
  it('step 1, qemu-local: a capacity check of this machine against the plan', async () => {
    await openWizard(page);
    await chooseQemuLocal(page);
    for (const tool of ['qemu-system-x86_64', 'qemu-img', 'swtpm', 'swtpm_setup']) expect(await check(`tool:${tool}`).getAttribute('data-status'), tool).toMatch(/ok|error/);
    expect(await check('memory').textContent()).toContain('lab-3 (3 VMs) needs 4.5 GiB');
    expect(await check('cores').textContent()).toMatch(/vCPUs/);
    expect(await check('disk').textContent()).toMatch(/GiB free on/);
    expect(await check('accel').textContent()).toMatch(/KVM|TCG|kvm/);
    expect(await page.getByTestId('plan-totals').textContent()).toContain('3 VMs, 4 vCPUs, 4.5 GiB memory, 30 GiB of disks');
    // This machine has the QEMU tools (scripts/setup-host.sh): the target is ready.
    await page.getByTestId('target-ready').waitFor();
    await screenshot(page, 'wizard-1-target');
  });

  it('step 1, Proxmox: hosts from ~/.ssh/config; a port where nothing listens gives an actionable error', async () => {
    await chooseProxmox(page, 'pve-closed');
    const hosts = await page.getByTestId('ssh-host').evaluateAll((els) => els.map((e) => e.getAttribute('data-alias')));
    expect(hosts).toEqual(canRunStandIn ? ['pve-closed', 'pve-standin'] : ['pve-closed']);
    const error = page.getByTestId('target-error');
    await error.waitFor();
    expect(await error.textContent()).toMatch(/cannot connect to 127\.0\.0\.1:\d+: connection refused.*next: is sshd running there and is the port right/);
    expect(await page.getByTestId('wizard-next').isDisabled()).toBe(true);
    await screenshot(page, 'wizard-1-target-unreachable');
  });

  it.skipIf(!canRunStandIn)('step 1, Proxmox stand-in: the host key prompt shows the SHA256 fingerprint; trusting it writes known_hosts', async () => {
    const s = standin as ProxmoxStandIn;
    await chooseProxmox(page, 'pve-standin');
    await page.getByTestId('host-key-prompt').waitFor();
    expect(await page.getByTestId('host-key-fingerprint').textContent()).toBe(s.hostKeyFingerprint);
    expect(existsSync(join(home, '.ssh/known_hosts'))).toBe(false);
    expect(await page.getByTestId('wizard-next').isDisabled()).toBe(true);
    await screenshot(page, 'wizard-1-target-hostkey');
    await page.getByTestId('accept-host-key').click();
    await page.getByTestId('target-ready').waitFor({ timeout: 30_000 });
    const hostPub = readFileSync(join(s.dir, 'ssh_host_ed25519_key.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    expect(readFileSync(join(home, '.ssh/known_hosts'), 'utf8')).toBe(`[127.0.0.1]:${s.port} ${hostPub}\n`);
    expect(await page.getByTestId('inventory-storages').textContent()).toContain('local');
    expect(await check('storage:local').getAttribute('data-status')).toBe('ok');
    await screenshot(page, 'wizard-1-target-proxmox');
  });

  it.skipIf(!canRunStandIn)('steps 2-4 against the stand-in: lab-3, its network plan, and a review where every node is created', async () => {
    await next(page);
    await chooseSource(page, 'lab-3');
    expect(await page.getByTestId('editor-validity').textContent()).toBe('valid: lab-3');
    expect(await page.getByTestId('substrate-note').textContent()).toContain('written for local QEMU');
    await screenshot(page, 'wizard-2-template');
    await next(page);
    expect(await page.getByTestId('network-node').count()).toBe(3);
    expect(await page.getByTestId('api-vip').textContent()).toBe(lab3.lan.apiVip);
    const master = lab3.nodes.find((n) => n.hub)!;
    expect(await page.locator('[data-testid="network-node"][data-node="master"]').textContent()).toContain(master.planes.wg1.address);
    await screenshot(page, 'wizard-3-network');
    await next(page);
    await waitForReview(page);
    const actions = await page.getByTestId('review-decision').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-node')}:${e.getAttribute('data-action')}`));
    expect(actions).toEqual(['master:create', 'cp-1:create', 'w-1:create']);
    expect(await page.getByTestId('review-summary').textContent()).toContain('create 3');
    await screenshot(page, 'wizard-4-review-proxmox');
  });

  it('step 4 on qemu-local with VMs already there: keep / update / create / destroy, and destroy needs "allow destroy"', async () => {
    // What an earlier deploy left in the workspace (the driver's own records): master in shape,
    // cp-1 with less memory, a worker the plan no longer has.
    const vms = join(engine, 'clusters/lab-3/vms/vms');
    const record = (vmid: number, shape: Plan['nodes'][number]['vm'], config = QemuLocalDriver.configOf(shape, undefined)) => {
      mkdirSync(join(vms, String(vmid)), { recursive: true });
      writeFileSync(join(vms, String(vmid), 'vm.json'), JSON.stringify({ shape, config }));
    };
    const [master, cp1, w1] = lab3.nodes as [Plan['nodes'][number], Plan['nodes'][number], Plan['nodes'][number]];
    record(master.vmid, master.vm);
    record(cp1.vmid, cp1.vm, { ...QemuLocalDriver.configOf(cp1.vm, undefined), memory: '1024' });
    record(3050, { ...w1.vm, vmid: 3050, name: 'w-old' });

    await page.getByTestId('wizard-step-target').click();
    if (!(await page.getByTestId('wizard-target').count())) await openWizard(page);
    await chooseQemuLocal(page);
    await next(page);
    await chooseSource(page, 'editor');
    await next(page);
    await next(page);
    await waitForReview(page);
    const rows = await page.getByTestId('review-decision').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-node')}:${e.getAttribute('data-action')}`));
    expect(rows).toEqual(['master:keep', 'cp-1:update', 'w-1:create', 'w-old:destroy']);
    expect(await page.locator('[data-testid="review-decision"][data-node="cp-1"]').textContent()).toContain('memory: 1024 -> 2048');
    expect(await page.getByTestId('destroy-warning').textContent()).toContain('w-old (VMID 3050): destroy');
    expect(await page.getByTestId('wizard-next').isDisabled()).toBe(true);
    expect(await page.getByTestId('wizard-blocker').textContent()).toContain('allow destroy');
    await page.getByTestId('allow-destroy').check();
    expect(await page.getByTestId('wizard-next').isEnabled()).toBe(true);
    await screenshot(page, 'wizard-4-review');
    // Someone else's VM on a VMID of the plan blocks the deploy, whatever the checkbox says.
    record(w1.vmid, { ...w1.vm, name: 'not-ours', tags: ['other'] });
    await page.getByTestId('review-again').click();
    await page.getByTestId('review-blocked').waitFor();
    expect(await page.locator('[data-testid="review-decision"][data-node="w-1"]').getAttribute('data-blocked')).toBe('true');
    expect(await page.getByTestId('wizard-next').isDisabled()).toBe(true);
    await screenshot(page, 'wizard-4-review-blocked');
    rmSync(join(vms, String(w1.vmid)), { recursive: true });
    await page.getByTestId('review-again').click();
    await page.getByTestId('review-blocked').waitFor({ state: 'detached' });
    await page.getByTestId('allow-destroy').check();
  });

  it('steps 5-6: the deploy starts, validate and plan go green, build runs; cancel stops it', async () => {
    await next(page);
    await page.getByTestId('wizard-build').waitFor();
    expect(await page.getByTestId('wizard-build').textContent()).toContain('master, control-plane, worker');
    await screenshot(page, 'wizard-5-build');
    await startDeploy(page);
    await expect.poll(() => stageState(page, 'validate'), { timeout: 30_000 }).toBe('success');
    await expect.poll(() => stageState(page, 'plan'), { timeout: 30_000 }).toBe('success');
    await expect.poll(() => stageState(page, 'build'), { timeout: 60_000 }).toBe('running');
    expect(await page.getByTestId('run-kind').textContent()).toContain('deploy');
    const chips = page.locator('[data-testid="view-pipeline"] [data-testid="node-chip"]');
    expect(await chips.count()).toBe(3);
    // The plan stage reported every node: the strip (like the topology) shows them ok.
    expect(await chips.evaluateAll((els) => els.map((e) => e.getAttribute('data-state')))).toEqual(['ok', 'ok', 'ok']);
    // Logs per node: a click on a node filters the terminal by it.
    await chips.and(page.locator('[data-node="master"]')).click();
    await expect.poll(() => page.getByTestId('log-node-filter').inputValue()).toBe('master');
    await chips.and(page.locator('[data-node="master"]')).click();
    await expect.poll(() => page.getByTestId('log-node-filter').inputValue()).toBe('');
    await page.mouse.move(700, 60);
    await page.locator('[role="tooltip"]').waitFor({ state: 'detached' });
    await screenshot(page, 'wizard-6-pipeline');
    // The topology follows the same node events.
    await page.getByTestId('nav-topology').click();
    await page.locator('[data-testid="topology-node"][data-node="w-1"]').waitFor();
    expect(await page.getByTestId('topology-node').evaluateAll((els) => els.map((e) => e.getAttribute('data-state')))).toEqual(['ok', 'ok', 'ok']);
    await screenshot(page, 'wizard-6-topology');
    await page.getByTestId('nav-pipeline').click();
    await page.getByTestId('cancel-run').click();
    await expect.poll(() => stageState(page, 'build'), { timeout: 60_000 }).toMatch(/aborted|failed/);
    await expect.poll(() => page.getByTestId('run-status').textContent(), { timeout: 30_000 }).toBe('cancelled');
    for (const later of ['provision', 'firstboot', 'seal']) expect(await stageState(page, later), later).toMatch(/pending|aborted|skipped/);
    // The journal of the run is in the cluster's workspace.
    expect(readFileSync(join(engine, 'clusters/lab-3/journal.jsonl'), 'utf8')).toContain('"stage":"build"');
    await page.getByTestId('nav-deploy').click();
    await page.getByTestId('wizard-deploy').waitFor();
    expect(await page.getByTestId('deploy-status').textContent()).toBe('cancelled');
    expect(await page.locator('[data-testid="deploy-stages"] [data-stage="plan"]').getAttribute('data-state')).toBe('success');
    await screenshot(page, 'wizard-6-deploy');
  });

  it('loaded nothing from outside and logged no errors', () => {
    expect(session.pageErrors).toEqual([]);
    expect(session.foreignRequests).toEqual([]);
    expect(session.consoleErrors).toEqual([]);
  });
});
