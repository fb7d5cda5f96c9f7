// Screenshots of a REAL deploy driven through the workbench: starts `kubedos serve SPEC`, walks
// the deploy wizard with qemu-local (Target → Template: the spec from the command line →
// Network → Review → Build → Deploy) in Debian's chromium, then saves the Pipeline view every
// --interval seconds into e2e/output/deploy-live-NNN.png until the run ends, plus the final
// Pipeline, Topology and wizard pages. It never waits forever: past --timeout the deploy is
// cancelled (the journal is kept), and a watchdog ends the process if cleanup itself hangs.
// Chromium and `kubedos serve` are always stopped; VMs the deploy started keep running (they
// are the deploy's result; they live under the workspace's clusters/<name>/vms).
//
//   npx tsx scripts/deploy-screenshots.ts --spec lab-3.yaml --workspace /tmp/kd-ws \
//       [--cache e2e/output/build-lab/cache] [--interval 10] [--timeout 3600] [--allow-destroy] [--offline]
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Page } from 'playwright-core';
import type { Served } from '../e2e/ui/harness';
import { ensureRendererBuilt, launchChromium, OUTPUT, screenshot, startServe } from '../e2e/ui/harness';
import { chooseQemuLocal, chooseSource, next, openWizard, startDeploy, waitForReview } from '../e2e/ui/wizard-driver';

const USAGE = 'usage: npx tsx scripts/deploy-screenshots.ts --spec FILE.yaml --workspace DIR [--cache DIR] [--interval SECONDS] [--timeout SECONDS] [--allow-destroy] [--offline]';

const { values } = parseArgs({
  options: {
    spec: { type: 'string' },
    workspace: { type: 'string' },
    cache: { type: 'string' },
    interval: { type: 'string', default: '10' },
    timeout: { type: 'string', default: '3600' },
    'allow-destroy': { type: 'boolean', default: false },
    offline: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const intervalS = Number(values.interval);
const timeoutS = Number(values.timeout);
if (!values.spec || !values.workspace || !(intervalS >= 1) || !(timeoutS >= 30)) {
  console.error(USAGE);
  console.error('  --spec and --workspace are required; --interval ≥ 1 s; --timeout ≥ 30 s');
  process.exit(2);
}
const spec = resolve(values.spec);
const workspace = resolve(values.workspace);
if (!existsSync(spec) || !/\.ya?ml$/i.test(spec)) {
  console.error(`${spec}: not an existing .yaml/.yml file`);
  process.exit(2);
}

/** How long cleanup (cancel, run end, serve and chromium stop) may take before the watchdog ends us. */
const CLEANUP_GRACE_MS = 180_000;
const STEP_TIMEOUT_MS = 120_000;
const started = Date.now();
const log = (line: string): void => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s] ${line}`);

let served: Served | undefined;
let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
let page: Page | undefined;
let cleaning: Promise<void> | undefined;
const watchdog = setTimeout(
  () => {
    console.error(`deploy-screenshots: still running ${timeoutS} s + ${CLEANUP_GRACE_MS / 1000} s after start; killing kubedos serve and exiting`);
    served?.child.kill('SIGKILL');
    process.exit(3);
  },
  timeoutS * 1000 + CLEANUP_GRACE_MS,
);
watchdog.unref();

async function runStatus(p: Page): Promise<string> {
  return ((await p.getByTestId('run-status').textContent()) ?? '').trim();
}

const ENDED = new Set(['done', 'failed', 'cancelled']);

async function cancelAndWait(p: Page): Promise<void> {
  const status = await runStatus(p).catch(() => '');
  if (ENDED.has(status)) return;
  log('cancelling the deploy (the journal is kept; rerun resumes)');
  await p.getByTestId('nav-pipeline').click();
  await p.getByTestId('cancel-run').click({ timeout: 10_000 }).catch(() => undefined);
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && !ENDED.has(await runStatus(p).catch(() => ''))) await new Promise((r) => setTimeout(r, 1000));
}

async function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    if (page) await cancelAndWait(page).catch((err: unknown) => log(`cancel: ${(err as Error).message}`));
    await browser?.close().catch(() => undefined);
    // A signal may have killed chromium first; its profile directory is ours to remove either way.
    if (browser) rmSync(browser.userDataDir, { recursive: true, force: true });
    if (served) {
      mkdirSync(OUTPUT, { recursive: true });
      writeFileSync(join(OUTPUT, 'deploy-live-serve.log'), served.output());
      await served.stop().catch(() => undefined);
    }
  })();
  return cleaning;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function main(): Promise<number> {
  ensureRendererBuilt();
  mkdirSync(workspace, { recursive: true });
  served = await startServe([spec], dirname(spec), {
    keepWorkspace: true,
    env: { KUBEDOS_WORKSPACE: workspace, ...(values.cache ? { KUBEDOS_CACHE: resolve(values.cache) } : {}), ...(values.offline ? { KUBEDOS_OFFLINE: '1' } : {}) },
  });
  log(`kubedos serve: ${served.origin} (engine workspace ${workspace})`);
  browser = await launchChromium();
  page = await browser.context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const p = page;
  p.on('pageerror', (e) => log(`page error: ${e.message}`));
  await p.goto(served.url);
  await p.getByTestId('connection').filter({ hasText: 'engine · websocket' }).waitFor();
  await p.getByTestId('cluster-badge').waitFor();

  await openWizard(p);
  await chooseQemuLocal(p);
  await screenshot(p, 'deploy-live-wizard-1-target');
  if (await p.getByTestId('shortfalls').count()) log(`capacity: ${await p.getByTestId('shortfalls').textContent()}`);
  await next(p);
  await chooseSource(p, 'editor');
  await next(p);
  await next(p);
  await waitForReview(p);
  await screenshot(p, 'deploy-live-wizard-4-review');
  if (await p.getByTestId('review-blocked').count()) throw new Error(`the review is blocked: ${await p.getByTestId('review-blocked').textContent()}`);
  if (await p.getByTestId('allow-destroy').count()) {
    if (!values['allow-destroy']) throw new Error(`the deploy would destroy VMs (${await p.getByTestId('destroy-warning').textContent()}); rerun with --allow-destroy if that is intended`);
    await p.getByTestId('allow-destroy').check();
  }
  await next(p);
  await startDeploy(p);
  log('deploy started');

  let shot = 0;
  const deadline = started + timeoutS * 1000;
  let status = await runStatus(p);
  while (!ENDED.has(status) && Date.now() < deadline) {
    await p.getByTestId('nav-pipeline').click();
    const name = `deploy-live-${String(shot++).padStart(3, '0')}`;
    await screenshot(p, name);
    const stages = await p.locator('[data-testid="view-pipeline"] [data-testid="stage-row"]').evaluateAll((rows) => rows.map((r) => `${r.getAttribute('data-stage')}:${r.getAttribute('data-state')}`));
    log(`${name}.png  ${status}  ${stages.filter((s) => !s.endsWith(':pending')).join(' ')}`);
    const wait = Math.min(intervalS * 1000, Math.max(0, deadline - Date.now()));
    const until = Date.now() + wait;
    // Poll each second so the end of the run is noticed before the next interval.
    while (Date.now() < until && !ENDED.has(await runStatus(p))) await new Promise((r) => setTimeout(r, Math.min(1000, until - Date.now())));
    status = await runStatus(p);
  }
  const timedOut = !ENDED.has(status);
  if (timedOut) {
    log(`--timeout ${timeoutS} s reached`);
    await cancelAndWait(p);
    status = await runStatus(p);
  }
  await p.getByTestId('nav-pipeline').click();
  await screenshot(p, 'deploy-live-final-pipeline');
  await p.getByTestId('nav-topology').click();
  await screenshot(p, 'deploy-live-final-topology');
  await p.getByTestId('nav-deploy').click();
  await screenshot(p, 'deploy-live-final-wizard');
  log(`deploy ${status}${timedOut ? ' (timed out)' : ''}; ${shot} live screenshots in ${OUTPUT}`);
  return status === 'done' ? 0 : 1;
}

main()
  .then(
    async (code) => {
      await cleanup();
      return code;
    },
    async (err: unknown) => {
      console.error(`deploy-screenshots: ${(err as Error).stack ?? String(err)}`);
      if (page) await screenshot(page, 'deploy-live-error').catch(() => undefined);
      await cleanup();
      return 1;
    },
  )
  .then((code) => {
    clearTimeout(watchdog);
    process.exit(code);
  });
