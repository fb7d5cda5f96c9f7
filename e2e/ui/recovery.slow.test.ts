// (Opt-in: npm run test:recovery-ui.) The Recovery view in Debian's chromium against `kubedos serve`: a workspace whose lab-3 cluster
// has a sealed bundle with recovery material; the view lists it, marks the encrypted files, runs
// the offline checks (then one flipped byte is named), and says how to restore. The restore panel
// offers a target (none, local QEMU, the deploy wizard's Proxmox hosts) and an expected etcd key,
// and a restore without a target runs live to a fresh workspace (a restore WITH a target rebuilds
// VMs: the VM test's job, never run here). Screenshots at 1440x900 and 1280x720, dark and light,
// in e2e/output/screens/h15/ and (the restore panel) e2e/output/screens/h15e/.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { bundleFixture, recoveryFixture, recoveryInputOf, writeFakeBuild } from '../../main/bundle/testing';
import { writeBundle } from '../../main/bundle/write';
import type { UiSession } from './session';
import { screensDir, serveSession, shots } from './session';

let session: UiSession;
let page: Page;
let bundleDir: string;
let ws: string;
const SCREENS = screensDir('h15');
const RESTORE_SCREENS = screensDir('h15e');

beforeAll(async () => {
  ws = mkdtempSync(join(tmpdir(), 'kd-h15-ui-'));
  const fx = await bundleFixture(ws);
  writeFakeBuild(fx.buildDir, fx.plan, fx.specText, fx.signingKey, true); // the kept build, with its images
  await recoveryFixture(fx, join(ws, 'offline-recovery.txt'));
  bundleDir = writeBundle({ ...fx, recovery: await recoveryInputOf(fx) }).dir;
  writeFileSync(join(ws, 'lab-3.yaml'), fx.specText);
  session = await serveSession([join(ws, 'lab-3.yaml')], ws);
  page = session.page;
});

afterAll(async () => {
  await session?.close();
});

describe('Recovery view', () => {
  it('lists the bundle with its encrypted recovery files, verifies it offline, and says how to restore', async () => {
    await page.getByTestId('nav-recovery').click();
    await expect.poll(() => page.getByTestId('recovery-files').textContent(), { timeout: 20_000 }).toContain('recovery/root-ca.key.age');
    expect(await page.getByTestId('recovery-recipient').textContent()).toMatch(/^age1/);
    expect(await page.getByTestId('recovery-files').textContent()).toContain('encrypted');
    expect(await page.getByTestId('restore-limits').textContent()).toContain('does not check the target first');
    await page.getByTestId('recovery-verify').click();
    await expect.poll(() => page.getByTestId('recovery-verify-result').textContent(), { timeout: 30_000 }).toContain('ok');
    expect(await page.getByTestId('recovery-restorable-result').textContent()).toContain('checked without the recovery identity');
    await shots(page, SCREENS, 'recovery', { schemes: 'both' });
  });

  it('the restore panel offers a target and an expected key, and follows a restore of the workspace live', async () => {
    const panel = page.getByTestId('restore-panel');
    await panel.scrollIntoViewIfNeeded();
    await page.getByTestId('restore-key').fill(join(ws, 'offline-recovery.txt'));
    await page.getByTestId('restore-into').fill(join(ws, 'restored'));
    // No target: the workspace only, and no expected key to give.
    expect(await page.getByTestId('restore-expect-key').isDisabled()).toBe(true);
    expect(await page.getByTestId('restore-start').textContent()).toBe('Check and restore the workspace');
    await page.getByTestId('restore-target').click();
    await page.getByRole('option', { name: 'Local QEMU (this machine)' }).click();
    expect(await page.getByTestId('restore-expect-key').isDisabled()).toBe(false);
    await page.getByTestId('restore-expect-key').fill('/registry/namespaces/default');
    expect(await page.getByTestId('recovery-restore-cli').textContent()).toContain('--target qemu-local --expect-key /registry/namespaces/default');
    expect(await page.getByTestId('restore-start').textContent()).toBe('Check, restore and rebuild on qemu-local');
    await shots(page, RESTORE_SCREENS, 'restore-target', { schemes: 'both', prepare: () => panel.scrollIntoViewIfNeeded() });
    // Back to no target (a restore on qemu-local would start VMs) and run it: verify, workspace, timeline, live.
    await page.getByTestId('restore-target').click();
    await page.getByRole('option', { name: 'No target: make the workspace only' }).click();
    expect(await page.getByTestId('restore-expect-key').isDisabled()).toBe(true);
    await page.getByTestId('restore-start').click();
    await expect.poll(() => page.getByTestId('restore-status').textContent(), { timeout: 60_000 }).toBe('done');
    const stages = await page.locator('[data-testid=restore-stages] [data-stage]').evaluateAll((els) => els.map((e) => `${e.getAttribute('data-stage')}=${e.getAttribute('data-state')}`));
    expect(stages).toEqual(['verify=success', 'workspace=success', 'timeline=success']);
    expect(await page.getByTestId('restore-next').textContent()).toContain('Run this restore again with a target');
    expect(await page.getByTestId('restore-log').textContent()).toMatch(/timeline: .*restore-timeline\.json/);
    await shots(page, RESTORE_SCREENS, 'restore-done', { schemes: 'both', prepare: () => page.getByTestId('restore-run').scrollIntoViewIfNeeded() });
  });

  it('the USB dialog lists this machine\'s disks with why each may or may not be written', async () => {
    await page.getByTestId('open-usb').click();
    await expect.poll(() => page.getByTestId('usb-summary').textContent(), { timeout: 20_000 }).toMatch(/may be written/);
    expect(await page.getByTestId('usb-cli').textContent()).toContain('kubedos usb write');
    // Every disk listed here (a loop device, the machine's own disk…) carries its reason when refused.
    const rows = await page.locator('[data-testid=usb-devices] tbody tr').allTextContents();
    for (const r of rows) expect(r).toMatch(/yes|no: /);
    await shots(page, SCREENS, 'usb-dialog', { schemes: 'both' });
    await page.keyboard.press('Escape');
  });

  it('names the file when one byte of the bundle is flipped', async () => {
    const f = join(bundleDir, 'hub.json');
    const bytes = readFileSync(f);
    bytes[5] = bytes[5]! ^ 0x01;
    writeFileSync(f, bytes);
    await page.getByTestId('recovery-verify').click();
    await expect.poll(() => page.getByTestId('recovery-verify-result').textContent(), { timeout: 30_000 }).toContain('failed');
    expect(await page.getByTestId('recovery-verify-result').textContent()).toContain('hub.json');
    expect(await page.getByTestId('recovery-restorable-result').textContent()).toContain('Not checked');
    await shots(page, SCREENS, 'recovery-flipped');
  });
});
