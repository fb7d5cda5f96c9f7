// Screenshots of every workbench view at 1440×900 and 1280×720, dark and light, through
// `kubedos serve` and Debian's Chromium: npx tsx scripts/view-shots.ts [OUTDIR]
// (default e2e/output/views). Needs `npm run build` (the renderer) first.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TEMPLATES } from '../common/spec/index';
import { ensureRendererBuilt, launchChromium, startServe } from '../e2e/ui/harness';

const out = resolve(process.argv[2] ?? 'e2e/output/views');
mkdirSync(out, { recursive: true });
ensureRendererBuilt();
const ws = mkdtempSync(join(tmpdir(), 'kubedos-shots-'));
writeFileSync(join(ws, 'lab-3.yaml'), TEMPLATES['lab-3'].text);
const served = await startServe([join(ws, 'lab-3.yaml')], ws);
const browser = await launchChromium();
const views = ['Spec', 'Topology', 'Wiring', 'Pipeline', 'Artifacts', 'Drills', 'Deploy'];
try {
  const page = await browser.context.newPage();
  await page.goto(served.url);
  await page.getByRole('link', { name: /Spec/ }).first().waitFor({ timeout: 60_000 }).catch(() => undefined);
  for (const [w, h] of [[1440, 900], [1280, 720]] as const) {
    // A window opened at this size (a resize keeps the user's pan/zoom on purpose; a fresh load fits).
    await page.setViewportSize({ width: w, height: h });
    await page.reload();
    await page.waitForTimeout(1500);
    for (const theme of ['dark', 'light'] as const) {
      const current = await page.evaluate(() => document.documentElement.getAttribute('data-mantine-color-scheme'));
      if (current !== theme) await page.getByRole('button', { name: 'Toggle light or dark theme' }).click();
      await page.mouse.move(w / 2, h - 5);
      for (const [i, v] of views.entries()) {
        await page.locator('nav').getByText(v, { exact: true }).first().click();
        await page.mouse.move(w / 2, h - 5);
        await page.waitForTimeout(1200);
        const path = join(out, `${String(i + 1)}-${v.toLowerCase()}-${w}x${h}-${theme}.png`);
        await page.screenshot({ path });
        console.log(path);
      }
    }
  }
} finally {
  await browser.close();
  await served.stop();
  rmSync(ws, { recursive: true, force: true });
}
