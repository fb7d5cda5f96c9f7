// Live logs under load, in chromium: a stage that logs 10,000 lines/s through the real bridge
// and runner. Every line must arrive, in order, the page must stay responsive while it
// streams, and Cancel must reach the runner's AbortSignal. Frame gaps are printed as numbers
// (not asserted: timings depend on the machine).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StageDefinition } from '../../main/pipeline/runner';
import { TEMPLATES } from '../../common/spec/index';
import { screenshot } from './harness';
import type { BridgeServer, UiSession } from './session';
import { bridgeSession } from './session';

const RATE = 10_000; // lines per second
const TICK_MS = 10;

/** Logs `seconds` worth of lines at RATE, in ticks; the duration comes from the spec's name. */
function floodStage(seconds: number): StageDefinition {
  return {
    name: 'flood',
    description: `logs ${RATE} lines/s for ${seconds} s`,
    needs: [],
    rerun: 'safe-rerun',
    async run(ctx) {
      const total = RATE * seconds;
      const perTick = (RATE * TICK_MS) / 1000;
      const start = performance.now();
      let n = 0;
      while (n < total) {
        if (ctx.signal.aborted) throw new Error('cancelled');
        const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * RATE) + perTick);
        for (; n < due; n++) ctx.log(`flood line ${n} ${'x'.repeat(40)}`, { node: `n${n % 4}` });
        ctx.progress(n / total);
        await new Promise((r) => setTimeout(r, TICK_MS));
      }
    },
  };
}

let session: UiSession<BridgeServer>;
let page: Page;
const workspace = mkdtempSync(join(tmpdir(), 'kubedos-e2e-flood-'));

beforeAll(async () => {
  // The spec's cluster name picks the flood length: "flood-3" = 3 s, "flood-60" = 60 s.
  session = await bridgeSession({
    workspace,
    pipelines: {
      plan: (source) => {
        const m = /name: flood-(\d+)/.exec(source.text);
        return [floodStage(Number(m?.[1] ?? 1))];
      },
    },
  });
  page = session.page;
});

afterAll(async () => {
  await session?.close();
  rmSync(workspace, { recursive: true, force: true });
});

async function openSpecNamed(name: string): Promise<void> {
  const file = join(workspace, `${name}.yaml`);
  writeFileSync(file, TEMPLATES['lab-3'].text.replace(/name: lab-3/, `name: ${name}`));
  await page.getByTestId('nav-spec').click();
  await page.getByRole('button', { name: 'Open…' }).click();
  await page.getByText(file).click();
  await expect.poll(() => page.getByTestId('spec-origin').getAttribute('data-origin')).toBe(file);
}

/** Starts measuring requestAnimationFrame gaps in the page. */
async function startFrameProbe(): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __gaps: number[]; __probe: boolean };
    w.__gaps = [];
    w.__probe = true;
    let last = performance.now();
    const tick = (t: number): void => {
      w.__gaps.push(t - last);
      last = t;
      if (w.__probe) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
}
async function stopFrameProbe(): Promise<{ frames: number; p50: number; p95: number; max: number }> {
  return page.evaluate(() => {
    const w = window as unknown as { __gaps: number[]; __probe: boolean };
    w.__probe = false;
    const g = [...w.__gaps].sort((a, b) => a - b);
    const at = (q: number): number => Math.round(g[Math.min(g.length - 1, Math.floor(q * g.length))] ?? 0);
    return { frames: g.length, p50: at(0.5), p95: at(0.95), max: Math.round(g.at(-1) ?? 0) };
  });
}

describe('live logs at 10,000 lines/s', () => {
  it('shows every line, in order, and the page keeps responding while they stream', async () => {
    await openSpecNamed('flood-3');
    await page.getByTestId('nav-pipeline').click();
    await startFrameProbe();
    await page.waitForTimeout(1000);
    const idle = await stopFrameProbe();
    await startFrameProbe();
    const t0 = Date.now();
    await page.getByTestId('run-plan').click();
    // Interact while the flood runs: switch the stage filter and back, toggle follow.
    await expect.poll(() => page.getByTestId('log-count').textContent().then((t) => Number.parseInt(t ?? '0', 10)), { timeout: 10_000 }).toBeGreaterThan(5000);
    await page.getByRole('switch', { name: 'Follow the newest lines' }).click({ force: true });
    await page.getByRole('switch', { name: 'Follow the newest lines' }).click({ force: true });
    await expect.poll(() => page.getByTestId('run-status').textContent(), { timeout: 60_000 }).toBe('done');
    const wall = Date.now() - t0;
    const frames = await stopFrameProbe();
    expect(await page.getByTestId('log-count').textContent()).toBe(`${RATE * 3} lines`);
    await expect.poll(() => page.locator('[data-testid=log-terminal] .xterm-rows').textContent()).toContain(`flood line ${RATE * 3 - 1} `);
    await screenshot(page, '9-pipeline-flood');
    console.log(`log flood: ${RATE * 3} lines in ${wall} ms wall; animation frames during the run: ${frames.frames}, gap p50 ${frames.p50} ms, p95 ${frames.p95} ms, max ${frames.max} ms (idle, same page: ${idle.frames} frames/s, p50 ${idle.p50} ms, p95 ${idle.p95} ms, max ${idle.max} ms)`);
    expect(session.pageErrors).toEqual([]);
  });

  it('Cancel aborts the running stage through the runner', async () => {
    await openSpecNamed('flood-60');
    await page.getByTestId('nav-pipeline').click();
    await page.getByTestId('run-plan').click();
    await expect.poll(() => page.getByTestId('log-count').textContent().then((t) => Number.parseInt(t ?? '0', 10)), { timeout: 10_000 }).toBeGreaterThan(2000);
    // A running stage shows its elapsed time; scrolling up stops following.
    await expect.poll(() => page.locator('[data-testid=stage-row][data-stage=flood] td').nth(3).textContent()).toMatch(/…$/);
    await page.getByTestId('log-terminal').hover();
    await page.mouse.wheel(0, -600);
    await expect.poll(() => page.getByRole('switch', { name: 'Follow the newest lines' }).isChecked()).toBe(false);
    await page.getByTestId('cancel-run').click();
    await expect.poll(() => page.locator('[data-testid=stage-row][data-stage=flood]').getAttribute('data-state'), { timeout: 10_000 }).toBe('aborted');
    await expect.poll(() => page.getByTestId('run-status').textContent(), { timeout: 10_000 }).toBe('cancelled');
    const count = Number.parseInt((await page.getByTestId('log-count').textContent()) ?? '0', 10);
    expect(count).toBeLessThan(RATE * 60);
    await page.waitForTimeout(500);
    expect(Number.parseInt((await page.getByTestId('log-count').textContent()) ?? '0', 10)).toBe(count);
    expect(session.pageErrors).toEqual([]);
  });
});
