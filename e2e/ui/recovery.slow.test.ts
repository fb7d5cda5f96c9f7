// (Opt-in: npm run test:recovery-ui.) The Recovery view in Debian's chromium against `kubedos serve`: a workspace whose lab-3 cluster
// has a sealed bundle with recovery material; the view lists it, marks the encrypted files, runs
// the offline checks (then one flipped byte is named), and says how to restore. Screenshots at
// 1440x900 and 1280x720, dark and light, in e2e/output/screens/h15/.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { bundleFixture, recoveryFixture, recoveryInputOf } from '../../main/bundle/testing';
import { writeBundle } from '../../main/bundle/write';
import type { Served } from './harness';
import { ensureRendererBuilt, launchChromium, OUTPUT, startServe } from './harness';

let served: Served;
let chromium: Awaited<ReturnType<typeof launchChromium>>;
let page: Page;
let bundleDir: string;
const SCREENS = join(OUTPUT, 'screens', 'h15');

beforeAll(async () => {
  ensureRendererBuilt();
  const ws = mkdtempSync(join(tmpdir(), 'kd-h15-ui-'));
  const fx = await bundleFixture(ws);
  await recoveryFixture(fx, join(ws, 'offline-recovery.txt'));
  bundleDir = writeBundle({ ...fx, recovery: await recoveryInputOf(fx) }).dir;
  writeFileSync(join(ws, 'lab-3.yaml'), fx.specText);
  served = await startServe([join(ws, 'lab-3.yaml')], ws);
  chromium = await launchChromium();
  page = await chromium.context.newPage();
  await page.goto(served.url);
  await page.getByTestId('connection').filter({ hasText: 'engine · websocket' }).waitFor({ timeout: 30_000 });
  mkdirSync(SCREENS, { recursive: true });
});

afterAll(async () => {
  await chromium?.close();
  await served?.stop();
});

async function shots(name: string): Promise<void> {
  for (const [w, h] of [
    [1440, 900],
    [1280, 720],
  ] as const) {
    await page.setViewportSize({ width: w, height: h });
    await page.mouse.move(w / 2, h - 10);
    await page.waitForTimeout(300);
    const scheme = await page.evaluate(() => document.documentElement.getAttribute('data-mantine-color-scheme'));
    await page.screenshot({ path: join(SCREENS, `${name}-${w}x${h}-${scheme}.png`) });
  }
}

describe('Recovery view', () => {
  it('lists the bundle with its encrypted recovery files, verifies it offline, and says how to restore', async () => {
    await page.getByTestId('nav-recovery').click();
    await expect.poll(() => page.getByTestId('recovery-files').textContent(), { timeout: 20_000 }).toContain('recovery/root-ca.key.age');
    expect(await page.getByTestId('recovery-recipient').textContent()).toMatch(/^age1/);
    expect(await page.getByTestId('recovery-files').textContent()).toContain('encrypted');
    expect(await page.getByTestId('restore-limits').textContent()).toContain('does not rebuild the VMs');
    await page.getByTestId('recovery-verify').click();
    await expect.poll(() => page.getByTestId('recovery-verify-result').textContent(), { timeout: 30_000 }).toContain('ok');
    expect(await page.getByTestId('recovery-restorable-result').textContent()).toContain('checked without the recovery identity');
    await shots('recovery');
    await page.getByRole('button', { name: 'Toggle light or dark theme' }).click();
    await shots('recovery');
    await page.getByRole('button', { name: 'Toggle light or dark theme' }).click();
    await page.setViewportSize({ width: 1440, height: 900 });
  });

  it('the USB dialog lists this machine\'s disks with why each may or may not be written', async () => {
    await page.getByTestId('open-usb').click();
    await expect.poll(() => page.getByTestId('usb-summary').textContent(), { timeout: 20_000 }).toMatch(/may be written/);
    expect(await page.getByTestId('usb-cli').textContent()).toContain('kubedos usb write');
    // Every disk listed here (a loop device, the machine's own disk…) carries its reason when refused.
    const rows = await page.locator('[data-testid=usb-devices] tbody tr').allTextContents();
    for (const r of rows) expect(r).toMatch(/yes|no: /);
    await shots('usb-dialog');
    await page.keyboard.press('Control+Shift+L');
    await expect.poll(() => page.evaluate(() => document.documentElement.getAttribute('data-mantine-color-scheme'))).toBe('light');
    await shots('usb-dialog');
    await page.keyboard.press('Control+Shift+L');
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
    await shots('recovery-flipped');
  });
});
