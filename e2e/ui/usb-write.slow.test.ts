// (Opt-in, root: npm run test:usb-ui.) The Recovery view's USB dialog writing a real loop device in
// Debian's chromium, over the bridge `kubedos serve` runs (started in-process, as log-flood does, so
// the test can show its loop devices as sticks with the same hook as e2e/usb: loopAsStick; the
// production rule never lists a loop device). A write held at 64 MiB is seen mid-way (phase,
// MB/s, ETA) and photographed, then finishes with a receipt whose digest is the device's bytes;
// verify passes, then names range 1 after one byte there is flipped. A stick too small is refused
// before anything is written, and a stopped write is never shown as good. Then a restore from the
// view into an empty workspace, followed live. Screenshots in e2e/output/screens/h15/.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { bundleFixture, recoveryFixture, recoveryInputOf, writeFakeBuild } from '../../main/bundle/testing';
import { writeBundle } from '../../main/bundle/write';
import { loopAsStick } from '../../main/usb/testing';
import { certFingerprint } from '../../main/trust/ca';
import type { BridgeServer, UiSession } from './session';
import { bridgeSession, screensDir, shots as shotsOf } from './session';

const MIB = 1024 * 1024;
const SCREENS = screensDir('h15');
const root = mkdtempSync(join(tmpdir(), 'kd-h15-usb-ui-'));
const loops: string[] = []; // only these are detached, by path
let session: UiSession<BridgeServer>;
let page: Page;
let stick: string;
let stickFile: string;
let small: string;
let idFile: string;
let rootFingerprint: string;
/** While set, a write waits at 64 MiB until the test releases it. */
let hold: { reached: () => void; release: Promise<void> } | undefined;

function attach(name: string, mib: number): { dev: string; file: string } {
  const file = join(root, `${name}.img`);
  writeFileSync(file, '');
  truncateSync(file, mib * MIB);
  const dev = execFileSync('losetup', ['-f', '--show', file], { encoding: 'utf8' }).trim();
  loops.push(dev);
  return { dev, file };
}

beforeAll(async () => {
  const ws = join(root, 'ws');
  const fx = await bundleFixture(ws);
  writeFakeBuild(fx.buildDir, fx.plan, fx.specText, fx.signingKey, true); // a build that verifies, with its images
  idFile = join(root, 'offline-recovery.txt');
  await recoveryFixture(fx, idFile);
  rootFingerprint = certFingerprint(fx.trust.rootCaPem);
  writeBundle({ ...fx, recovery: await recoveryInputOf(fx) });
  ({ dev: stick, file: stickFile } = attach('stick', 400));
  ({ dev: small } = attach('small', 48));
  const specs = join(root, 'specs');
  mkdirSync(specs);
  writeFileSync(join(specs, 'lab-3.yaml'), fx.specText);
  session = await bridgeSession({
    workspace: specs,
    specPath: join(specs, 'lab-3.yaml'),
    env: { ...process.env, KUBEDOS_WORKSPACE: ws },
    usbSource: loopAsStick([stick, small]),
    usbAfterBytes: {
      bytes: 64 * MIB,
      fn: async () => {
        const h = hold;
        if (!h) return;
        h.reached();
        await h.release;
      },
    },
  });
  page = session.page;
}, 300_000);

afterAll(async () => {
  await session?.close();
  for (const l of loops) {
    try {
      execFileSync('losetup', ['-d', l], { stdio: 'ignore' });
    } catch {
      /* already detached */
    }
  }
  rmSync(root, { recursive: true, force: true });
});

const shots = (name: string): Promise<string[]> => shotsOf(page, SCREENS, name, { schemes: 'both' });

const outcome = () => page.getByTestId('usb-outcome');
const pick = async (dev: string): Promise<void> => page.locator(`[data-testid=usb-devices] tr[data-device="${dev}"] input[type=radio]`).check();

describe('USB dialog on loop devices', () => {
  it('refuses a stick smaller than the image before writing anything, in words', async () => {
    await page.getByTestId('nav-recovery').click();
    await page.getByTestId('open-usb').click();
    await expect.poll(() => page.getByTestId('usb-summary').textContent(), { timeout: 20_000 }).toMatch(/2 removable disks may be written/);
    // A disk the rule refuses cannot be picked for writing, and says why.
    const refusedRow = page.locator('[data-testid=usb-devices] tbody tr').filter({ hasText: 'no: ' }).first();
    if ((await refusedRow.count()) > 0) {
      const dev = (await refusedRow.getAttribute('data-device'))!;
      await pick(dev);
      expect(await page.getByTestId('usb-write').isDisabled()).toBe(true);
      expect(await page.getByTestId('usb-refusal').textContent()).toContain(`${dev} cannot be written: `);
    }
    await pick(small);
    await page.getByTestId('usb-write').click();
    expect(await page.getByTestId('usb-confirm').textContent()).toMatch(new RegExp(`Erase ${small} \\(no model name, 50 MB\\)\\?.*will be erased`));
    await page.getByTestId('usb-confirm-write').click();
    await expect.poll(() => outcome().getAttribute('data-outcome'), { timeout: 120_000 }).toBe('refused');
    expect(await outcome().textContent()).toMatch(/is too small: the image is \d+ MB, the stick 50 MB\. Nothing was written/);
  });

  it('writes the stick with live progress, shows the signed receipt, and verify passes', async () => {
    let reached!: () => void;
    const atHold = new Promise<void>((r) => (reached = r));
    let release!: () => void;
    hold = { reached, release: new Promise<void>((r) => (release = r)) };
    await pick(stick);
    await page.getByTestId('usb-write').click();
    expect(await page.getByTestId('usb-confirm').textContent()).toContain(`Erase ${stick} (no model name, 419 MB)?`);
    await shots('usb-confirm');
    await page.getByTestId('usb-confirm-write').click();
    await atHold;
    await expect.poll(() => page.getByTestId('usb-progress-text').getAttribute('data-phase'), { timeout: 20_000 }).toBe('write');
    expect(await page.getByTestId('usb-progress-text').textContent()).toMatch(/writing .*· \d+ % · [\d.]+ MB\/s · \d+:\d\d left/);
    expect(await page.getByTestId('usb-stop').isVisible()).toBe(true);
    await shots('usb-writing');
    hold = undefined;
    release();
    await expect.poll(() => outcome().getAttribute('data-outcome'), { timeout: 180_000 }).toBe('written');
    const digest = (await page.getByTestId('usb-receipt-digest').textContent())!.trim();
    const ranges = await page.locator('[data-testid=usb-receipt-ranges] tbody tr').count();
    const size = ranges > 0 ? Number((await page.locator('[data-testid=usb-receipt-ranges] tbody tr').last().locator('td').nth(1).textContent())!.split('–')[1]) + 1 : 0;
    expect(size % MIB).toBe(0);
    // The receipt's digest is the sha256 of what is on the device.
    expect(createHash('sha256').update(readFileSync(stickFile).subarray(0, size)).digest('hex')).toBe(digest);
    expect(await page.getByTestId('usb-receipt').textContent()).toContain(`${stick} (no model name, 419 MB)`);
    await shots('usb-receipt');
    await page.getByTestId('usb-verify').click();
    await expect.poll(() => outcome().getAttribute('data-outcome'), { timeout: 120_000 }).toBe('verified');
    expect(await outcome().textContent()).toContain(`${ranges} ranges match the receipt`);
  });

  it('verify names the range holding one flipped byte', async () => {
    const at = 64 * MIB + 12345; // inside range 1
    const old = readFileSync(stickFile).subarray(at, at + 1)[0]!;
    execFileSync('dd', [`of=${stick}`, 'bs=1', `seek=${at}`, 'count=1', 'conv=notrunc', 'status=none'], { input: Buffer.from([old ^ 0xff]) });
    await page.getByTestId('usb-verify').click();
    await expect.poll(() => outcome().getAttribute('data-outcome'), { timeout: 120_000 }).toBe('differs');
    expect(await outcome().textContent()).toContain('1 range differs: range 1 (bytes 67108864–');
    expect(await page.locator('[data-testid=usb-receipt-ranges] tr[data-range="1"]').textContent()).toContain('differs');
    expect(await page.locator('[data-testid=usb-receipt-ranges] tr[data-range="0"]').textContent()).toContain('matches');
    await shots('usb-verify-flipped');
  });

  it('a write stopped mid-way is shown as NOT good, and the stick then fails its check', async () => {
    let reached!: () => void;
    const atHold = new Promise<void>((r) => (reached = r));
    let release!: () => void;
    hold = { reached, release: new Promise<void>((r) => (release = r)) };
    await page.getByTestId('usb-write').click();
    await page.getByTestId('usb-confirm-write').click();
    await atHold;
    await page.getByTestId('usb-stop').click();
    await expect.poll(() => page.getByTestId('usb-stop').textContent()).toBe('Stopping…');
    hold = undefined;
    release();
    await expect.poll(() => outcome().getAttribute('data-outcome'), { timeout: 60_000 }).toBe('stopped');
    expect(await outcome().textContent()).toMatch(/is NOT a good stick: the write was stopped.*aborted while writing .* no receipt was written/);
    await page.getByTestId('usb-verify').click();
    await expect.poll(() => outcome().getAttribute('data-outcome'), { timeout: 120_000 }).toBe('differs');
    expect(await outcome().textContent()).toContain('range 0');
    await page.keyboard.press('Escape');
  });
});

describe('restore from the Recovery view', () => {
  it('refuses a missing key in words, then restores into an empty workspace, followed stage by stage', async () => {
    const into = join(root, 'restored');
    await page.getByTestId('restore-key').fill(join(root, 'no-such-key.txt'));
    await page.getByTestId('restore-into').fill(into);
    await page.getByTestId('restore-start').click();
    await expect.poll(() => page.getByTestId('restore-error').textContent(), { timeout: 20_000 }).toContain('does not exist; nothing was written');
    // The engine's one refusal (the CLI prints the same line and hint): the check named, then what to do.
    expect(await page.getByTestId('restore-error').textContent()).toMatch(/restore refused \(recovery-key\): recovery identity .*no-such-key\.txt does not exist; nothing was written — give the file holding the recovery identity/);
    await page.getByTestId('restore-error').scrollIntoViewIfNeeded();
    await shots('recovery-restore-refused');
    await page.getByTestId('restore-key').fill(idFile);
    await page.getByTestId('restore-start').click();
    await expect.poll(() => page.getByTestId('restore-status').textContent(), { timeout: 60_000 }).toBe('done');
    for (const st of ['verify', 'workspace', 'timeline']) expect(await page.locator(`[data-testid=restore-stages] [data-stage="${st}"]`).getAttribute('data-state')).toBe('success');
    expect(await page.getByTestId('restore-log').textContent()).toContain('workspace restored; deploy it with: kubedos deploy');
    expect(await page.getByTestId('restore-next').textContent()).toContain(`kubedos deploy ${into}/clusters/lab-3/spec.yaml --target TARGET`);
    expect(certFingerprint(readFileSync(join(into, 'clusters/lab-3/trust/root-ca.crt'), 'utf8'))).toBe(rootFingerprint);
    await page.getByTestId('restore-panel').scrollIntoViewIfNeeded();
    await shots('recovery-restore');
  });
});
