// The lifecycle bar of the Deploy view in Debian's chromium against `kubedos serve`: lab-3 has
// three VMs in the engine workspace (created, not booted: their disks, firmware vars and TPM
// folders are real files) and a VM of another cluster sits inside lab-3's VMID range. The
// destroy dialog names the cluster, counts what goes, lists the VM that stays, and only works
// once the name is typed; the destroy then really removes lab-3's VMs and workspace and leaves
// the other VM. Screenshots of the bar and the dialog at 1440×900 and 1280×720, dark and light,
// go to e2e/output/lifecycle-*.png.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plan } from '../../common/plan/index';
import type { Plan } from '../../common/plan/schema';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { ownershipTags } from '../../main/substrate/provision';
import { QemuLocalDriver } from '../../main/substrate/qemu-local';
import type { Served } from './harness';
import { ensureRendererBuilt, launchChromium, screenshot, startServe } from './harness';
import { openWizard } from './wizard-driver';

let served: Served;
let chromium: Awaited<ReturnType<typeof launchChromium>>;
let page: Page;
const dir = mkdtempSync(join(tmpdir(), 'kubedos-e2e-lifecycle-'));
const engine = join(dir, 'engine');
const ws = join(engine, 'clusters/lab-3');
const stateDir = join(ws, 'vms');
const lab3: Plan = plan(parseSpec(TEMPLATES['lab-3'].text).spec!);
const foreign = lab3.substrate.vmidRange.end;
const pageErrors: string[] = [];

beforeAll(async () => {
  ensureRendererBuilt();
  mkdirSync(join(dir, 'home'), { recursive: true, mode: 0o700 });
  mkdirSync(join(ws, 'trust'), { recursive: true });
  writeFileSync(join(ws, 'trust/root-ca.crt'), 'a certificate\n');
  const ours = new QemuLocalDriver({ stateDir, ownership: { tags: ownershipTags(lab3), vmidRange: lab3.substrate.vmidRange } });
  for (const n of lab3.nodes) await ours.create(n.vm, undefined);
  const theirs = new QemuLocalDriver({ stateDir, ownership: { tags: ['kubedos', 'cluster-other'], vmidRange: lab3.substrate.vmidRange } });
  const m = lab3.nodes[0]!.vm;
  await theirs.create({ ...m, vmid: foreign, name: 'stranger', tags: ['cluster-other', 'kubedos'], nics: m.nics.map((x) => ({ ...x, mac: '52:54:00:AA:BB:01' })) }, undefined);
  served = await startServe([], undefined, { env: { HOME: join(dir, 'home'), KUBEDOS_WORKSPACE: engine, SSH_AUTH_SOCK: undefined } });
  chromium = await launchChromium();
  page = await chromium.context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(served.url);
  await page.getByTestId('connection').filter({ hasText: 'engine · websocket' }).waitFor({ timeout: 30_000 });
  await page.getByTestId('cluster-badge').filter({ hasText: 'lab-3' }).waitFor({ timeout: 15_000 });
}, 300_000);

afterAll(async () => {
  await chromium?.close();
  await served?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function theme(want: 'dark' | 'light'): Promise<void> {
  const current = await page.evaluate(() => document.documentElement.getAttribute('data-mantine-color-scheme'));
  if (current !== want) await page.getByRole('button', { name: 'Toggle light or dark theme' }).click();
}

describe('lifecycle bar and destroy dialog', () => {
  it('names the cluster and the target, with stop, start and destroy', async () => {
    await openWizard(page);
    const bar = page.getByTestId('cluster-actions');
    await bar.waitFor();
    expect(await bar.textContent()).toMatch(/Cluster lab-3 on\s*qemu-local/);
    for (const id of ['cluster-stop', 'cluster-start', 'cluster-destroy']) expect(await page.getByTestId(id).isEnabled(), id).toBe(true);
  });

  it('the destroy dialog counts what goes, lists the VM that stays, and wants the name typed', async () => {
    await page.getByTestId('cluster-destroy').click();
    const counts = page.getByTestId('destroy-counts');
    await counts.waitFor({ timeout: 30_000 });
    expect(await counts.textContent()).toMatch(/This removes 3 VMs, 0 processes, 4 files and folders\. It cannot be undone\./);
    const dialog = page.getByTestId('destroy-dialog');
    expect(await dialog.textContent()).toContain('Destroy cluster lab-3 on qemu-local?');
    expect(await dialog.textContent()).toContain(`1 VM in the VMID range stays: not this cluster's`);
    expect(await dialog.textContent()).toContain(`${foreign} stranger`);
    expect(await dialog.textContent()).toMatch(/copied to .*recovery\/lab-3, so a restore stays possible/);
    expect(await page.getByTestId('destroy-confirm').isDisabled()).toBe(true);
    await page.getByTestId('destroy-confirm-name').fill('lab');
    expect(await page.getByTestId('destroy-confirm').isDisabled()).toBe(true);
    await page.getByTestId('destroy-confirm-name').fill('lab-3');
    expect(await page.getByTestId('destroy-confirm').isEnabled()).toBe(true);
    // The theme switch is behind the dialog: close it, switch, open it again for each shot.
    for (const [w, h] of [[1440, 900], [1280, 720]] as const) {
      await page.setViewportSize({ width: w, height: h });
      for (const t of ['dark', 'light'] as const) {
        await page.getByRole('button', { name: 'Cancel' }).click();
        await dialog.waitFor({ state: 'detached' });
        await theme(t);
        await page.getByTestId('cluster-destroy').click();
        await counts.waitFor({ timeout: 30_000 });
        await page.getByTestId('destroy-confirm-name').fill('lab-3');
        await page.waitForTimeout(400);
        await screenshot(page, `lifecycle-destroy-dialog-${w}x${h}-${t}`);
      }
    }
  });

  it('destroys lab-3 for real; the foreign VM and its folder stay', async () => {
    await page.getByTestId('destroy-confirm').click();
    const outcome = page.getByTestId('lifecycle-outcome');
    await outcome.waitFor({ timeout: 120_000 });
    expect(await outcome.textContent()).toContain('lab-3 destroyed on qemu-local');
    expect(readdirSync(join(stateDir, 'vms'))).toEqual([String(foreign)]);
    expect(readdirSync(ws)).toEqual(['vms']);
    for (const n of lab3.nodes) expect(existsSync(join(stateDir, 'vms', String(n.vmid))), n.name).toBe(false);
    for (const [w, h] of [[1440, 900], [1280, 720]] as const) {
      await page.setViewportSize({ width: w, height: h });
      for (const t of ['light', 'dark'] as const) {
        await theme(t);
        await page.mouse.move(w / 2, h - 5);
        await page.waitForTimeout(600);
        await screenshot(page, `lifecycle-bar-${w}x${h}-${t}`);
      }
    }
    expect(pageErrors).toEqual([]);
  }, 180_000);
});
