// `kubedos serve` as a user starts it: with a SPEC to open, and without a built renderer.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TEMPLATES } from '../../common/spec/index';
import { ensureRendererBuilt, launchChromium, REPO, startServe } from './harness';

const dir = mkdtempSync(join(tmpdir(), 'kubedos-e2e-serve-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('kubedos serve', () => {
  it('opens the SPEC given on the command line', async () => {
    ensureRendererBuilt();
    const spec = join(dir, 'site.yaml');
    writeFileSync(spec, TEMPLATES['solo-1'].text);
    const served = await startServe([spec]);
    const chromium = await launchChromium();
    try {
      expect(served.output()).toContain(`opening ${spec}`);
      const page = await chromium.context.newPage();
      await page.goto(served.url);
      await expect.poll(() => page.getByTestId('spec-origin').getAttribute('data-origin'), { timeout: 30_000 }).toBe(spec);
      expect(await page.getByTestId('validity').textContent()).toMatch(/^valid/);
      // The printed URL took the token out of the address bar, and it works once.
      expect(page.url()).not.toContain('token=');
      expect((await fetch(served.url, { redirect: 'manual' })).status).toBe(401);
      // Without the session the page loads but the engine refuses it, and says what to do.
      await chromium.context.clearCookies();
      const anonymous = await chromium.context.newPage();
      await anonymous.goto(served.origin);
      await anonymous.getByText(/could not connect to kubedos serve/).waitFor({ timeout: 10_000 });
    } finally {
      await chromium.close();
      await served.stop();
    }
  });

  it('says how to build the UI when the renderer is missing', () => {
    const r = spawnSync(process.execPath, [join(REPO, 'bin/kubedos.mjs'), 'serve', '--renderer', join(dir, 'nothing-here'), '--workspace', dir], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('not built');
    expect(r.stderr).toContain('npm run build');
  });

  it('rejects a bad port and a second SPEC', () => {
    for (const args of [['--port', '70000'], ['a.yaml', 'b.yaml'], ['notes.txt']]) {
      const r = spawnSync(process.execPath, [join(REPO, 'bin/kubedos.mjs'), 'serve', ...args], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toContain('usage: kubedos serve');
    }
  });
});
