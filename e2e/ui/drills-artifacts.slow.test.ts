// The Drills view in Debian's chromium against `kubedos serve`: a drill history made by this test
// through the real drill engine (an in-memory target, so no root and no lab: each run takes well
// under a second), then the view: history table, MTTR chart per scenario against its target, the
// guard's verdict through drills.check (allowed, refused, cannot run here), the report exported
// from the UI byte-identical to `kubedos drill --history --export`. Screenshots at 1440x900 and
// 1280x720, dark and light, into e2e/output/screens/h14/ when KUBEDOS_E2E_SCREENS=1 (or with the lab run).
// KUBEDOS_E2E_LAB_DRILL=1 (root) also runs a real kill-etcd-member on the namespace lab from the
// Run button and follows it live (npm run test:ui:drills-lab).
// How each drill was detected (the hub watcher or the engine's probes, with the detect line) in the
// history; the deployed cluster as the place to run: refused with the journal's words while it was
// never deployed, then the confirmation naming cluster, node, scenario and the VM destroyed (the
// cluster's name typed); no VM is touched (the dialog is cancelled). Screenshots into
// e2e/output/screens/h14u/ for those. The file is in the slow project:
// about 30 s on this machine, over what CI has room for (npm run test:ui:drills-artifacts).
// The Artifacts view over a small signed build the test writes into the cluster's workspace with
// the real attest functions: manifest, SBOM search, provenance, signatures, a full verify that
// then fails on a changed output.
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { parseSpec } from '../../common/spec/index';
import type { DrillRecord } from '../../common/drills/timeline';
import { drillReport, drillReportHtml } from '../../common/drills/report';
import { runDrill } from '../../main/drills/engine';
import { readDrillHistory, saveDrillRecord } from '../../main/drills/history';
import { threeMember } from '../../main/drills/testing';
import { writeSmallBuild } from '../../main/build/testing';
import { clusterWorkspace } from '../../main/workspace';
import { evaluateHealth } from '../../common/drills/health';
import type { HealthWatchReport } from '../../common/drills/watcher';
import { HEALTH_WATCH_REPORT_PATH, watcherStatusOf } from '../../common/drills/watcher';
import { writeDeployJournal } from '../../main/upgrade/testing';
import { labDrillSpec } from '../lab/specs';
import type { UiSession } from './session';
import { colorScheme, screensDir, serveSession, shots } from './session';

const SHOTS = screensDir('h14');
const SHOTS_U = screensDir('h14u');
const LAB = process.env.KUBEDOS_E2E_LAB_DRILL === '1';
/** Screenshots at two sizes and two themes cost seconds CI does not have: on request (and with the lab run). */
const SCREENS = LAB || process.env.KUBEDOS_E2E_SCREENS === '1';

let session: UiSession;
let page: Page;
let workspace: string;
let specFile: string;
const made: DrillRecord[] = [];

async function history(env: NodeJS.ProcessEnv): Promise<void> {
  const text = labDrillSpec();
  const spec = parseSpec(text).spec!;
  const thresholds = { signals: ['etcd-member' as const], silenceSeconds: 0.06, handshakeMaxAgeSeconds: 120, heartbeatSeconds: 0.02 };
  const runs: { id: string; failFence?: boolean; delay: number; node?: string; watcher?: boolean }[] = [
    { id: 'e2e-1', delay: 40 },
    { id: 'e2e-2', delay: 80, watcher: true },
    { id: 'e2e-3', failFence: true, delay: 20 },
    { id: 'e2e-4', delay: 60, watcher: true },
  ];
  for (const r of runs) {
    const { target } = threeMember({ phaseDelayMs: r.delay, ...(r.failFence ? { failFence: true } : {}) });
    target.cluster = spec.metadata.name;
    // A hub watcher whose report is what the watcher would write of the fake's facts now (taken
    // after the fault): its detection ends the detect phase, as on a deployed master.
    if (r.watcher)
      target.readWatcher = async (sh, now) => {
        await sh.exec('master', ['cat', HEALTH_WATCH_REPORT_PATH], { anyExit: true });
        const facts = await target.gatherFacts(sh, now);
        const verdict = evaluateHealth(facts, thresholds);
        const rep: HealthWatchReport = { schema: 'kubedos.health-watch/v1', cluster: spec.metadata.name, hub: 'master', at: now, startedAt: now - 60, sequence: 60, probeMs: 12, thresholds, detectAfterProbes: 3, facts, verdict, findings: verdict.findings.map((f) => ({ ...f, since: now - 0.06, probes: 3 })), detected: [...new Set(verdict.findings.map((f) => f.node))], errors: [] };
        return watcherStatusOf('master', HEALTH_WATCH_REPORT_PATH, JSON.stringify(rep), now);
      };
    const rec = await runDrill({ target, spec, scenario: 'kill-etcd-member', node: 'cp-1', thresholds, thresholdsSource: 'e2e', id: r.id, store: (x) => saveDrillRecord(x, env), nextOnInterrupt: 'run the drill again', phaseTimeoutMs: 5000 });
    made.push(rec);
  }
}

/** The Drills view scrolled to its top part (and, for the history, once more to the MTTR chart). */
async function shoot(name: string): Promise<void> {
  if (!SCREENS) return;
  await shots(page, SHOTS, name, { prepare: () => page.getByTestId('drills-where').scrollIntoViewIfNeeded() });
  if (name === 'drills-history') await shots(page, SHOTS, `${name}-chart`, { prepare: () => page.getByTestId('mttr-chart').scrollIntoViewIfNeeded() });
}
/** The deployed-cluster parts of the view (issue 14's workbench item), both themes. */
async function shootU(name: string, testId: string): Promise<void> {
  if (SCREENS) await shots(page, SHOTS_U, name, { schemes: 'both', prepare: () => page.getByTestId(testId).scrollIntoViewIfNeeded() });
}
async function shootView(name: string): Promise<void> {
  if (SCREENS) await shots(page, SHOTS, name, { settleMs: 200 });
}
const scheme = () => colorScheme(page);

beforeAll(async () => {
  workspace = mkdtempSync(join(tmpdir(), 'kubedos-e2e-h14-'));
  specFile = join(workspace, 'lab-drill.yaml');
  writeFileSync(specFile, labDrillSpec());
  await history({ KUBEDOS_WORKSPACE: workspace });
  writeSmallBuild(join(clusterWorkspace('lab-drill', { KUBEDOS_WORKSPACE: workspace }), 'build'), 'lab-drill');
  session = await serveSession([specFile], workspace);
  page = session.page;
  await page.getByTestId('validity').filter({ hasText: 'valid: lab-drill' }).waitFor({ timeout: 15_000 });
});

afterAll(async () => {
  await session?.close();
});

describe('Drills view over kubedos serve', () => {
  it('shows the recorded drills, the MTTR chart per scenario against its target, and the last drill', async () => {
    expect(made.map((r) => r.status)).toEqual(['passed', 'passed', 'failed', 'passed']);
    await page.getByTestId('nav-drills').click();
    await expect.poll(() => page.locator('[data-testid=drill-history] tbody tr').count()).toBe(4);
    // The chart: one scenario, one point per measured drill (the failed one has no MTTR).
    const chart = page.locator('[data-testid=mttr-chart-scenario][data-scenario=kill-etcd-member]');
    await expect.poll(() => chart.getAttribute('data-points')).toBe('3');
    await expect.poll(() => chart.locator('.recharts-line').count()).toBe(2);
    expect(await chart.textContent()).toContain('target 2 min');
    // The last drill that ran: e2e-4, every node back to healthy, six phases done.
    const live = page.getByTestId('drill-live');
    await expect.poll(() => live.textContent()).toContain('e2e-4');
    expect(await page.locator('[data-testid=drill-phase][data-state=done]').count()).toBe(6);
    expect(await page.locator('[data-testid=drill-node][data-state=healthy]').count()).toBe(5);
    await shoot('drills-history');
  });

  it('says how each drill was detected: the hub watcher or the engine\'s probes, with the detect line, in the history and the last drill', async () => {
    expect(made.map((r) => r.detectedBy)).toEqual(['engine-probes', 'hub-watcher', 'engine-probes', 'hub-watcher']);
    // Newest first: e2e-4 (watcher), e2e-3, e2e-2 (watcher), e2e-1.
    const cells = page.getByTestId('drill-history-detected-by');
    const by = (await cells.allTextContents()).map((t) => (t.startsWith('hub watcher') ? 'hub-watcher' : t.startsWith('engine probes') ? 'engine-probes' : t));
    expect(by).toEqual([...made].reverse().map((r) => r.detectedBy));
    const lines = await page.getByTestId('drill-history-detection').allTextContents();
    expect(lines[0]).toMatch(/^hub watcher: etcd-member since \d\d:\d\d:\d\d\.\dZ \(etcd member unhealthy; 3 probes in a row\)/);
    expect(lines[1]).toBe(made[2]!.phases[1]!.detail);
    expect(lines[1]).not.toMatch(/^hub watcher/);
    const live = page.getByTestId('drill-detected-by');
    expect(await live.getAttribute('data-by')).toBe('hub-watcher');
    expect(await live.textContent()).toMatch(/^Detected by the hub watcher: hub watcher: etcd-member since /);
    await shootU('drills-history-detected-by', 'drill-history');
  });

  it('asks the guard through drills.check: allowed, refused (the hub), cannot run here (a VM scenario)', async () => {
    const guard = page.getByTestId('drill-guard');
    await expect.poll(() => guard.getAttribute('data-ok')).toBe('true');
    expect(await guard.textContent()).toContain('The guard allows kill-etcd-member on cp-3');
    await page.getByTestId('drill-node-select').click();
    await page.getByRole('option', { name: 'master (master)' }).click();
    await expect.poll(() => guard.getAttribute('data-ok')).toBe('false');
    expect(await guard.textContent()).toMatch(/master is the hub/);
    expect(await page.getByTestId('drill-run').isDisabled()).toBe(true);
    await shoot('drills-guard-refused');
    await page.getByTestId('drill-scenario').click();
    await page.getByRole('option', { name: 'delete-worker-vm' }).click();
    await expect.poll(() => page.getByTestId('drill-cannot-run').textContent()).toMatch(/needs a hypervisor/);
    expect(await page.getByTestId('drill-run').isDisabled()).toBe(true);
    await page.getByTestId('drill-scenario').click();
    await page.getByRole('option', { name: 'kill-etcd-member' }).click();
    await expect.poll(() => guard.getAttribute('data-ok')).toBe('true');
  });

  it('on the deployed cluster: refused in plain words while never deployed; then a confirmation naming cluster, node, scenario and the VM destroyed', async () => {
    await page.getByTestId('drill-scenario').click();
    await page.getByRole('option', { name: 'delete-worker-vm' }).click();
    await page.getByTestId('drill-where').getByText('Deployed cluster').click();
    expect(await page.getByTestId('drills-where').getAttribute('data-where')).toBe('cluster');
    const cannot = page.getByTestId('drill-cannot-run');
    await expect.poll(() => cannot.textContent()).toMatch(/^Cannot run on lab-drilllab-drill has no deploy in its journal .*: deploy it first \(kubedos deploy SPEC\), then run the drill$/);
    expect(await page.getByTestId('drill-run').isDisabled()).toBe(true);
    expect(await page.getByTestId('drill-run').textContent()).toBe('Run on the deployed cluster…');
    await shootU('drills-cluster-refused', 'drill-run-panel');
    // An etcd member with a worker scenario: the guard says why.
    await page.getByTestId('drill-node-select').click();
    await page.getByRole('option', { name: 'cp-1 (control-plane)' }).click();
    await expect.poll(() => page.getByTestId('drill-guard').textContent()).toMatch(/delete-worker-vm targets worker|refuses/);
    // The cluster deployed (its journal says so): allowed, and the run asks first.
    writeDeployJournal('lab-drill', { KUBEDOS_WORKSPACE: workspace });
    await page.getByTestId('drill-node-select').click();
    await page.getByRole('option', { name: 'w-1 (worker)' }).click();
    await expect.poll(() => page.getByTestId('drill-guard').getAttribute('data-ok')).toBe('true');
    await expect.poll(() => page.getByTestId('drill-run').isDisabled()).toBe(false);
    expect(await page.getByTestId('drill-guard').textContent()).toContain("delete-worker-vm destroys w-1's VM: you confirm it by typing the cluster's name");
    await page.getByTestId('drill-run').click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    const said = await dialog.textContent();
    expect(said).toMatch(/Run delete-worker-vm on w-1 of lab-drill \(qemu-local\)\?/);
    expect(said).toMatch(/VM \d+ \(w-1\) is destroyed with its disks and TPM state/);
    expect(said).toContain('Stopping the drill midway leaves lab-drill healing');
    const go = page.getByTestId('drill-confirm-run');
    expect(await go.isDisabled()).toBe(true);
    await page.getByTestId('drill-confirm-type').fill('lab-drill');
    expect(await go.isDisabled()).toBe(false);
    await shootU('drills-cluster-confirm', 'drill-confirm-type');
    // Cancelled: nothing ran (no new record).
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    // Heal asks too, and says it destroys nothing; cancelled as well.
    await page.getByTestId('drill-heal').click();
    await dialog.waitFor();
    expect(await dialog.textContent()).toMatch(/Heal lab-drill \(qemu-local\)\?.*Nothing is destroyed\./);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    expect(readDrillHistory('lab-drill', { KUBEDOS_WORKSPACE: workspace }).records).toHaveLength(4);
    await page.getByTestId('drill-where').getByText('Namespace lab').click();
    await page.getByTestId('drill-scenario').click();
    await page.getByRole('option', { name: 'kill-etcd-member' }).click();
    await expect.poll(() => page.getByTestId('drill-guard').getAttribute('data-ok')).toBe('true');
  });

  it('exports the report from the UI, byte-identical to what kubedos drill --history --export writes', async () => {
    // The CLI's export is tested in main/cli/commands/drill.test.ts; here the same functions it calls, in process.
    const cliHtml = drillReportHtml(drillReport('lab-drill', readDrillHistory('lab-drill', { KUBEDOS_WORKSPACE: workspace }).records));
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('drill-export-html').click()]);
    expect(download.suggestedFilename()).toBe('lab-drill-drills.html');
    const got = readFileSync((await download.path()) as string, 'utf8');
    expect(got).toBe(cliHtml);
    expect(got).toContain('e2e-3');
    const [dj] = await Promise.all([page.waitForEvent('download'), page.getByTestId('drill-export-json').click()]);
    expect(JSON.parse(readFileSync((await dj.path()) as string, 'utf8')).records.map((x: DrillRecord) => x.id)).toEqual(['e2e-1', 'e2e-2', 'e2e-3', 'e2e-4']);
  });

  it.runIf(LAB)('runs kill-etcd-member on the namespace lab from the Run button and follows it live', async () => {
    await page.getByTestId('drill-run').click();
    const live = page.getByTestId('drill-live');
    await expect.poll(() => live.getAttribute('data-status'), { timeout: 120_000 }).toBe('running');
    await expect.poll(() => page.locator('[data-testid=drill-node][data-node=cp-3]').getAttribute('data-state'), { timeout: 120_000, interval: 200 }).toBe('unhealthy');
    await shoot('drills-live');
    // The Topology view follows the running drill too.
    await page.getByTestId('nav-topology').click();
    await expect.poll(() => page.locator('[data-testid=topology-node][data-node=cp-3]').getAttribute('data-drill-state'), { timeout: 60_000, interval: 200 }).not.toBe('none');
    await shootView('topology-mid-drill');
    await page.getByTestId('nav-drills').click();
    await expect.poll(() => live.getAttribute('data-status'), { timeout: 180_000 }).toBe('passed');
    await shoot('drills-live-done');
    await expect.poll(() => page.locator('[data-testid=drill-history] tbody tr').count()).toBe(5);
  });

  it('Artifacts: the workspace build — outputs, SBOM search, provenance, signatures, a full verify that catches a changed output', async () => {
    await page.getByTestId('nav-artifacts').click();
    await expect.poll(() => page.getByTestId('artifacts-built').getAttribute('data-present')).toBe('true');
    const badge = page.getByTestId('artifacts-verify');
    expect(await badge.getAttribute('data-ok')).toBe('true');
    expect(await badge.getAttribute('data-scope')).toBe('signatures');
    expect(await page.locator('[data-testid=artifacts-outputs] tbody tr').count()).toBe(2);
    expect(await page.getByTestId('sbom-row').count()).toBe(3);
    await page.getByTestId('sbom-search').fill('security');
    await expect.poll(() => page.getByTestId('sbom-row').count()).toBe(1);
    expect(await page.getByTestId('sbom-row').textContent()).toContain('openssl');
    expect(await page.getByTestId('artifacts-provenance').textContent()).toContain('2 subjects');
    await page.getByTestId('sbom-search').fill('');
    await page.getByTestId('artifacts-verify-full').click();
    await expect.poll(() => badge.getAttribute('data-scope')).toBe('full');
    expect(await badge.textContent()).toBe('verified: 5 files');
    await page.getByTestId('nav-artifacts').scrollIntoViewIfNeeded();
    await shootView('artifacts');
    appendFileSync(join(clusterWorkspace('lab-drill', { KUBEDOS_WORKSPACE: workspace }), 'build', 'images/lab-drill-worker.qcow2'), 'x');
    await page.getByTestId('artifacts-verify-full').click();
    await expect.poll(() => badge.getAttribute('data-ok')).toBe('false');
    expect(await page.getByTestId('artifacts-built').textContent()).toMatch(/Verification failed at images\/lab-drill-worker\.qcow2/);
    await shootView('artifacts-verify-failed');
  });

  it('light theme, and no page errors', async () => {
    await page.getByRole('button', { name: 'Toggle light or dark theme' }).click();
    await expect.poll(scheme).toBe('light');
    await shootView('artifacts-verify-failed');
    await page.getByTestId('nav-drills').click();
    await shoot('drills-history');
    await page.getByRole('button', { name: 'Toggle light or dark theme' }).click();
    expect(session.pageErrors).toEqual([]);
  });
});
