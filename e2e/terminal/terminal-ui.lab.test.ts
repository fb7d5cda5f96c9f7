// The workbench's Terminal panel against the namespace lab (root + Debian's Chromium): `kubedos
// serve` with the lab's spec and workspace, topology → node w-1 → Open terminal, a command and
// its output, a resize the node sees, Ctrl-C, and the panel when no deploy is recorded.
// Screenshots at 1440x900 and 1280x720, dark and light, in e2e/output/screens/h17/.
import { mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WORKSPACE_LAYOUT } from '../../main/workspace';
import type { Served } from '../ui/harness';
import { ensureRendererBuilt, launchChromium, OUTPUT, startServe } from '../ui/harness';
import type { TerminalLab } from './terminal-lab';
import { createTerminalLab } from './terminal-lab';

const SHOTS = join(OUTPUT, 'screens', 'h17');
let t: TerminalLab;
let served: Served;
let chromium: Awaited<ReturnType<typeof launchChromium>>;
let page: Page;
const pageErrors: string[] = [];
const started = Date.now();

beforeAll(async () => {
  ensureRendererBuilt();
  t = await createTerminalLab();
  served = await startServe([t.specPath], t.dir, { env: { KUBEDOS_WORKSPACE: t.env.KUBEDOS_WORKSPACE }, keepWorkspace: true });
  chromium = await launchChromium();
  page = await chromium.context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(served.url);
  await page.getByTestId('validity').filter({ hasText: 'h17-term' }).waitFor({ timeout: 30_000 });
  mkdirSync(SHOTS, { recursive: true });
}, 600_000);

afterAll(async () => {
  await chromium?.close();
  await served?.stop();
  t?.destroy();
  console.log(`terminal UI suite: ${Math.round((Date.now() - started) / 1000)} s`);
});

const screenText = (): Promise<string> => page.locator('[data-testid=node-terminal] .xterm-rows').innerText();

/** The app's theme through its shortcut (the toggle button is behind the dialog); the terminal follows. */
async function theme(want: 'dark' | 'light'): Promise<void> {
  const current = (): Promise<string | null> => page.evaluate(() => document.documentElement.getAttribute('data-mantine-color-scheme'));
  if ((await current()) === want) return;
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  await page.keyboard.press('Control+Shift+L');
  await expect.poll(current).toBe(want);
}

async function openTerminal(node: string, shots = false): Promise<void> {
  await page.getByTestId('nav-topology').click();
  await page.locator(`[data-testid=topology-node][data-node=${node}]`).click();
  await page.getByTestId('open-terminal').waitFor();
  if (shots) {
    for (const [w, h] of [
      [1440, 900],
      [1280, 720],
    ] as const) {
      await page.setViewportSize({ width: w, height: h });
      for (const scheme of ['dark', 'light'] as const) {
        await theme(scheme);
        await page.waitForTimeout(300);
        await page.screenshot({ path: join(SHOTS, `node-details-${w}x${h}-${scheme}.png`) });
      }
    }
    await page.setViewportSize({ width: 1440, height: 900 });
    await theme('dark');
  }
  await page.getByTestId('open-terminal').click();
}

async function closeTerminal(): Promise<void> {
  await page.keyboard.press('Escape');
  await page.getByTestId('node-terminal').waitFor({ state: 'detached' });
}

async function typeLine(text: string): Promise<void> {
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

describe('Terminal panel (kubedos serve + namespace lab)', () => {
  it('opens a shell on w-1 from the topology, runs a command and shows its output', async () => {
    await openTerminal('w-1', true);
    await expect.poll(() => page.getByTestId('terminal-status').textContent(), { timeout: 30_000 }).toContain('connected');
    expect(await page.getByTestId('terminal-status').textContent()).toContain('ops@10.218.0.1:22 → ops@10.218.0.3:22');
    await page.getByTestId('node-terminal').click();
    await typeLine("PS1='READY> '");
    await typeLine('echo "node=$(hostname) user=$(id -un)"');
    await expect.poll(screenText, { timeout: 10_000 }).toContain(`node=${t.lab.node('w-1').plan.hostname} user=ops`);
  });

  it('resizes with the window: the node sees the new tty size', async () => {
    await typeLine('clear; stty size');
    await expect.poll(screenText, { timeout: 10_000 }).toMatch(/^\d+ \d+$/m);
    const before = /^(\d+ \d+)$/m.exec(await screenText())![1];
    await page.setViewportSize({ width: 1280, height: 720 });
    await page.waitForTimeout(400);
    await typeLine('clear; stty size');
    await expect.poll(async () => /^(\d+ \d+)$/m.exec(await screenText())?.[1], { timeout: 10_000 }).not.toBe(before);
    await page.setViewportSize({ width: 1440, height: 900 });
  });

  it('Ctrl-C interrupts a running sleep', async () => {
    await typeLine('clear; sleep 30');
    await page.waitForTimeout(300);
    const t0 = Date.now();
    await page.keyboard.press('Control+C');
    await expect.poll(async () => (await screenText()).includes('^C'), { timeout: 5000, interval: 20 }).toBe(true);
    await expect.poll(async () => /READY> \s*$/.test(await screenText()), { timeout: 5000, interval: 20 }).toBe(true);
    console.log(`UI Ctrl-C → prompt back: ${Date.now() - t0} ms (browser → serve → hub → node and back)`);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('screenshots: 1440x900 and 1280x720, dark and light', async () => {
    await typeLine('clear; uname -sr; ip -4 -o addr show dev wg1 | cut -c1-60; ls /');
    await page.waitForTimeout(500);
    for (const [w, h] of [
      [1440, 900],
      [1280, 720],
    ] as const) {
      await page.setViewportSize({ width: w, height: h });
      for (const scheme of ['dark', 'light'] as const) {
        await theme(scheme);
        await page.waitForTimeout(300);
        await page.screenshot({ path: join(SHOTS, `terminal-${w}x${h}-${scheme}.png`) });
      }
    }
    await page.setViewportSize({ width: 1440, height: 900 });
    await theme('dark');
    await page.getByTestId('node-terminal').click();
  });

  it('ending the shell shows the exit and the transcript hash recorded in the workspace', async () => {
    await typeLine('exit 3');
    await expect.poll(() => page.getByTestId('terminal-status').textContent(), { timeout: 10_000 }).toContain('session ended (exit 3)');
    await expect.poll(() => page.getByTestId('terminal-transcript').textContent()).toMatch(/sha256 [0-9a-f]{64} \(recorded in the workspace\)/);
    await closeTerminal();
  });

  it('says what is missing when the cluster has no recorded deploy', async () => {
    const journal = join(t.workspace, WORKSPACE_LAYOUT.journal);
    renameSync(journal, `${journal}.away`);
    try {
      await openTerminal('master');
      await expect.poll(() => page.getByTestId('terminal-error').textContent(), { timeout: 15_000 }).toContain('deploy the cluster first');
      for (const scheme of ['dark', 'light'] as const) {
        await theme(scheme);
        await page.screenshot({ path: join(SHOTS, `terminal-no-deploy-1440x900-${scheme}.png`) });
      }
      await theme('dark');
      await closeTerminal();
    } finally {
      renameSync(`${journal}.away`, journal);
    }
    expect(pageErrors).toEqual([]);
  });
});
