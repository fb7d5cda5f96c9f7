// The topology's live health in Debian's chromium, over the bridge `kubedos serve` runs (started
// in-process, as the USB test does, so the test can inject what the hub's watcher report says:
// no VM runs here). A cluster never deployed from this workspace says so and keeps the last
// run's colours, labelled as such; a hub that does not answer says so; a report read from the
// hub colours each node (healthy / degraded / unreachable) with a legend, its read time and age;
// the node drawer lists each signal. While the view is open it reads again by itself (the
// interval set to 5 s here): a node's colour changes without a click; a hub that stops answering
// keeps the last picture, marked stale with why; a stale report too; pause stops the reads (counted
// on the bridge). Screenshots of the cannot-read, running, stale and paused states and of the
// drawer (a degraded and an unreachable node, wg1/wg2/wg3 handshakes each, with the artifact
// version and boot slot each node's exporter serves; in h18m/) in e2e/output/screens/h17r/ with KUBEDOS_E2E_SCREENS=1 (npm run test:ui:topology): the pictures
// double the test's time, too much for CI. Then the version · slot line on the node boxes (the
// older node marked), the interval and Pause kept across a reload, and the Pipeline view's Upgrade
// panel over a record the real apply loop wrote (pictures of both in h17u/); then the panel
// following a run of the apply loop paused mid-way, finished without a click, reading no more once
// finished, and a run whose process is gone (pictures in h18w/), with the run's lines below the
// table, filtered by a node chip's click (pictures of the lines in h20c/); last, a replace-based
// upgrade the real loop ran (nodes replaced by new VMs, one stopped mid-replacement, the rerun,
// --rollback replacing them again) read by the panel (pictures pipeline-upgrade-replace-* in h17u/).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HealthFacts } from '../../common/drills/health';
import { LAB3_AGENT_PINGS, lab3MixedFacts, lab3NodeMetrics, watcherReportFor } from '../../common/health/testing';
import { TEMPLATES } from '../../common/spec/index';
import type { HubHealthReader } from '../../main/health/service';
import { injectedReader } from '../../main/health/testing';
import { buildRef, lab3Waves, replaceWaves } from '../../common/upgrade/testing';
import type { ApplyEvent, UpgradeRecord } from '../../main/upgrade/apply-run';
import { readUpgradeRecord, runApply, runRollback, upgradeLivePath, upgradeRecordPath, writeUpgradeLive, writeUpgradeRecord } from '../../main/upgrade/apply-run';
import { foldLive, startLive, UpgradeLive } from '../../common/upgrade/progress';
import { SimCluster, writeDeployJournal, writeSealedBuild } from '../../main/upgrade/testing';
import { generateKeyPairSync } from 'node:crypto';
import { keyidOf } from '../../main/build/keys';
import type { BridgeServer, UiSession } from './session';
import { bridgeSession, screensDir, shots as shotsOf } from './session';

const SCREENS = screensDir('h17r');
const DRAWER_SCREENS = screensDir('h18m');
const H17U_SCREENS = screensDir('h17u');
const H18W_SCREENS = screensDir('h18w');
const H20C_SCREENS = screensDir('h20c');
const TAKE_SCREENS = process.env.KUBEDOS_E2E_SCREENS === '1';
const root = mkdtempSync(join(tmpdir(), 'kd-h17h-topology-'));
const ws = join(root, 'ws');
let session: UiSession<BridgeServer>;
let page: Page;
/** What the hub "answers" now; the test switches it between readings. */
let hub: HubHealthReader = injectedReader({ unreachable: 'could not reach master (VMID 9100) through qemu-local: the guest agent socket does not exist (is the VM running?)' });
/** Reads of the hub through the bridge (every health.now that reached the engine's reader). */
let reads = 0;
const reader: HubHealthReader = (q) => {
  reads++;
  return hub(q);
};
/** A hub whose watcher wrote its report 6 s before each read, of the facts at that time. */
const answering =
  (facts: (now: number) => HealthFacts, agents: Record<string, boolean>): HubHealthReader =>
  (q) => {
    const now = Date.now() / 1000;
    return injectedReader({ report: watcherReportFor(facts(now - 6), { nodeMetrics: lab3NodeMetrics(now - 6) }), nowSeconds: () => Date.now() / 1000, agents })(q);
  };
/** lab-3 with w-1 back: its handshakes fresh, its guest agent answering. */
const w1Back = (now: number): HealthFacts => {
  const f = lab3MixedFacts(now);
  return { ...f, wg1Handshakes: { ...f.wg1Handshakes, 'w-1': now - 20 }, wg2Handshakes: { ...f.wg2Handshakes, 'w-1': now - 15 }, wg3Handshakes: { ...f.wg3Handshakes, 'w-1': now - 10 } };
};

beforeAll(async () => {
  const specs = join(root, 'specs');
  mkdirSync(specs);
  writeFileSync(join(specs, 'lab-3.yaml'), TEMPLATES['lab-3'].text);
  session = await bridgeSession({ workspace: specs, specPath: join(specs, 'lab-3.yaml'), env: { ...process.env, KUBEDOS_WORKSPACE: ws }, healthReader: reader });
  page = session.page;
}, 300_000);

afterAll(async () => {
  await session?.close();
  rmSync(root, { recursive: true, force: true });
});

const node = (name: string) => page.locator(`[data-testid=topology-node][data-node=${name}]`);
/** The upgrade run's lines as the Pipeline view shows them ("+0:04 cp-1: reboot rebooting into slot B"). */
const upgradeLines = (): Promise<string[]> => page.getByTestId('upgrade-line').evaluateAll((els) => els.map((e) => (e.textContent ?? '').trim()));
const liveStates = () => page.locator('[data-testid=topology-node]').evaluateAll((els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-node'), e.getAttribute('data-live-state')])));
// After each resize, "fit view" (xyflow's control), as a window opened at that size shows it.
const shots = async (name: string, fit = true, dir = SCREENS): Promise<unknown> => TAKE_SCREENS && shotsOf(page, dir, name, { schemes: 'both', ...(fit ? { prepare: () => page.locator('.react-flow__controls-fitview').click() } : {}) });

describe('topology live health', () => {
  it('says a cluster never deployed from here cannot be read, and keeps the last run colours, labelled', async () => {
    await page.getByTestId('nav-topology').click();
    await expect.poll(() => page.getByTestId('topology-node').count(), { timeout: 20_000 }).toBe(3);
    const cannot = page.getByTestId('topology-live-cannot');
    await cannot.waitFor({ timeout: 15_000 });
    expect(await cannot.textContent()).toMatch(/Never deployed from here.*lab-3 was never deployed from this machine \(no journal at .*\): deploy it first.*showing the last pipeline run's colours instead/);
    expect(await liveStates()).toEqual({ master: 'none', 'cp-1': 'none', 'w-1': 'none' });
  });

  it('a hub that does not answer is said in words', async () => {
    writeDeployJournal('lab-3', { KUBEDOS_WORKSPACE: ws });
    await page.getByTestId('topology-live-refresh').click();
    await expect.poll(() => page.getByTestId('topology-live-cannot').textContent(), { timeout: 15_000 }).toMatch(/Hub did not answer.*the hub master did not give its health report: could not reach master \(VMID 9100\)/);
    expect(await liveStates()).toEqual({ master: 'none', 'cp-1': 'none', 'w-1': 'none' });
    // No live report: no version line on the boxes (no placeholder).
    expect(await page.getByTestId('topology-node-version').count()).toBe(0);
    await shots('topology-cannot-read');
  });

  it('colours each node from the hub report, with the legend, read time and age; the drawer lists each signal', async () => {
    hub = answering(lab3MixedFacts, LAB3_AGENT_PINGS);
    await page.getByTestId('topology-live-refresh').click();
    await expect.poll(liveStates, { timeout: 15_000 }).toEqual({ master: 'healthy', 'cp-1': 'degraded', 'w-1': 'unreachable' });
    expect(await page.getByTestId('topology-live').getAttribute('data-live')).toBe('live');
    expect(await page.getByTestId('live-legend-healthy').textContent()).toBe('healthy: 1');
    expect(await page.getByTestId('live-legend-unknown').textContent()).toBe('unknown: 0');
    expect(await page.getByTestId('topology-live-read').textContent()).toMatch(/^read \d\d:\d\d:\d\d, \d+ s ago · report \d+ s old$/);
    expect(await node('w-1').getAttribute('aria-label')).toContain('live: unreachable');
    // Version and slot on the boxes: master runs an older version than cp-1 (mid-upgrade): behind.
    const versionOf = (name: string) => node(name).getByTestId('topology-node-version');
    expect(await versionOf('cp-1').textContent()).toBe('2026.12.2 · slot b');
    expect(await versionOf('cp-1').getAttribute('data-behind')).toBe('false');
    expect(await versionOf('master').textContent()).toBe('↓ 2026.12.1 · one root');
    expect(await versionOf('master').getAttribute('data-behind')).toBe('true');
    expect(await node('master').getAttribute('aria-label')).toContain('runs 2026.12.1 on one root, behind 2026.12.2');
    // Its exporter did not answer: nothing guessed, why in the tooltip.
    expect(await versionOf('w-1').textContent()).toBe('version not read');
    expect(await versionOf('w-1').getAttribute('title')).toBe('not read: node exporter on http://10.112.0.4:9100 did not answer (timed out)');
    // Legible: 11 px at least, and not cut (the line fits the box).
    const fit = await versionOf('master').evaluate((e) => ({ px: parseFloat(getComputedStyle(e).fontSize), cut: e.scrollWidth > e.clientWidth, inside: e.getBoundingClientRect().bottom <= e.closest('[data-testid=topology-node]')!.getBoundingClientRect().bottom }));
    expect(fit).toEqual({ px: expect.any(Number), cut: false, inside: true });
    expect(fit.px).toBeGreaterThanOrEqual(11);
    await shots('topology-live-versions', true, H17U_SCREENS);
    expect(await page.getByTestId('topology-live-cannot').count()).toBe(0);
    expect(await page.getByTestId('topology-live-refresh').getAttribute('title')).toBe("read the health report of lab-3's hub again on qemu-local");
    await node('cp-1').click();
    const section = page.getByTestId('node-live');
    await section.waitFor();
    const text = await section.textContent();
    expect(text).toMatch(/degraded/);
    expect(text).toMatch(/failing: etcd member unhealthy: context deadline exceeded/);
    expect(text).toMatch(/failing: converge fingerprint differs from the last converge/);
    // wg2/wg3 handshakes as the watcher read them on the hub, judged by the wg1 limit.
    expect(text).toMatch(/wg2 handshakeok: wg2 handshake 12 s old/);
    expect(text).toMatch(/wg3 handshakeok: wg3 handshake 47 s old/);
    expect(text).not.toMatch(/not measured/);
    // The artifact cp-1 runs and the slot it booted, as its node exporter serves them to the watcher.
    expect(await page.getByTestId('node-live-version').textContent()).toBe(`2026.12.2 ${'b'.repeat(12)}`);
    expect(await page.getByTestId('node-live-version').getAttribute('title')).toBe(`build digest (payload sha256) ${'b'.repeat(64)}`);
    expect(await page.getByTestId('node-live-slot').textContent()).toBe('b · read 20 s before the report');
    await shots('topology-live-node', false, DRAWER_SCREENS); // the drawer covers the controls
    await page.keyboard.press('Escape');
    await section.waitFor({ state: 'detached' });
    await page.locator('.react-flow__controls-fitview').click();
    await node('w-1').click();
    await section.waitFor();
    const w1 = await section.textContent();
    expect(w1).toMatch(/wg2 handshakefailing: wg2 handshake 900 s old \(limit 180 s\)/);
    expect(w1).toMatch(/wg3 handshakefailing: no wg3 handshake yet/);
    // No version for a node whose exporter did not answer the watcher: why, never a guess.
    expect(await page.getByTestId('node-live-version').textContent()).toBe('not read: node exporter on http://10.112.0.4:9100 did not answer (timed out)');
    expect(await page.getByTestId('node-live-slot').count()).toBe(0);
    await shots('topology-live-node-unreachable', false, DRAWER_SCREENS);
    await page.keyboard.press('Escape');
    await section.waitFor({ state: 'detached' });
  });

  it('reads again by itself: a node turns healthy without a click, the read time ticks', async () => {
    await page.getByTestId('topology-live-interval').selectOption('5');
    expect(await page.getByTestId('topology-live').getAttribute('data-poll')).toBe('running');
    const before = reads;
    const read = page.getByTestId('topology-live-read');
    const first = await read.textContent();
    hub = answering(w1Back, { ...LAB3_AGENT_PINGS, 'w-1': true });
    await expect.poll(liveStates, { timeout: 15_000 }).toEqual({ master: 'healthy', 'cp-1': 'degraded', 'w-1': 'healthy' });
    expect(reads).toBeGreaterThan(before);
    expect(await page.getByTestId('live-legend-healthy').textContent()).toBe('healthy: 2');
    // "N s ago" ticks between reads.
    await expect.poll(() => read.textContent(), { timeout: 5_000 }).not.toBe(first);
    expect(await page.getByTestId('topology-live-next').textContent()).toMatch(/^(next read in \d+ s|reading now)$/);
    await shots('topology-live-running');
  });

  it('a hub that stops answering keeps the last picture, marked stale with why, and backs off', async () => {
    hub = injectedReader({ unreachable: 'could not reach master (VMID 9100) through qemu-local: the guest agent did not answer within 15 s' });
    await expect.poll(() => page.getByTestId('topology-live').getAttribute('data-live'), { timeout: 15_000 }).toBe('stale');
    expect(await liveStates()).toEqual({ master: 'healthy', 'cp-1': 'degraded', 'w-1': 'healthy' });
    expect(await node('cp-1').getAttribute('data-live-stale')).toBe('true');
    expect(await node('cp-1').getAttribute('aria-label')).toContain('live (stale): degraded');
    expect(await page.getByTestId('topology-live-stale').textContent()).toMatch(
      /^Hub did not answer: the read at \d\d:\d\d:\d\d failed: the hub master did not give its health report: could not reach master \(VMID 9100\).* — still showing the report read at \d\d:\d\d:\d\d \(dashed nodes\)/,
    );
    expect(await page.getByTestId('topology-live-stale-badge').textContent()).toBe('stale');
    expect(await page.getByTestId('topology-live-cannot').count()).toBe(0);
    // One failed read: the next waits twice the interval.
    await expect.poll(() => page.getByTestId('topology-live-next').textContent(), { timeout: 5_000 }).toMatch(/^next read in \d+ s \(backing off\)$/);
    expect(await page.getByTestId('topology-live-next').getAttribute('title')).toBe('waiting longer after 1 failed read in a row: the wait doubles per failed read, up to 240 s');
    await shots('topology-live-stale');
  });

  it('pause stops the reads (none reach the bridge); resume reads at once and the stale mark goes', async () => {
    hub = answering(lab3MixedFacts, LAB3_AGENT_PINGS);
    await page.getByTestId('topology-live-pause').click();
    expect(await page.getByTestId('topology-live').getAttribute('data-poll')).toBe('paused');
    expect(await page.getByTestId('topology-live-pause').textContent()).toBe('Resume');
    expect(await page.getByTestId('topology-live-next').textContent()).toBe('paused');
    const paused = reads;
    await page.waitForTimeout(12_000); // more than two intervals (and the back-off's wait)
    expect(reads).toBe(paused);
    expect(await page.getByTestId('topology-live').getAttribute('data-live')).toBe('stale');
    await shots('topology-live-paused');
    await page.getByTestId('topology-live-pause').click();
    await expect.poll(() => page.getByTestId('topology-live').getAttribute('data-live'), { timeout: 15_000 }).toBe('live');
    expect(reads).toBe(paused + 1);
    expect(await liveStates()).toEqual({ master: 'healthy', 'cp-1': 'degraded', 'w-1': 'unreachable' });
    expect(await node('cp-1').getAttribute('data-live-stale')).toBe('false');
  });

  it('no reads while the window is hidden; shown again, it reads at once', async () => {
    const setHidden = (hidden: boolean) =>
      page.evaluate((h) => {
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
        document.dispatchEvent(new Event('visibilitychange'));
      }, hidden);
    await setHidden(true);
    await expect.poll(() => page.getByTestId('topology-live-next').textContent(), { timeout: 5_000 }).toBe('paused while hidden');
    const hidden = reads;
    await page.waitForTimeout(7_000); // more than the 5 s interval
    expect(reads).toBe(hidden);
    await setHidden(false);
    await expect.poll(() => reads, { timeout: 5_000 }).toBe(hidden + 1);
  });

  it('a stale report keeps the last picture too, and says since when', async () => {
    hub = injectedReader({ report: watcherReportFor(lab3MixedFacts(Date.now() / 1000 - 900)), nowSeconds: () => Date.now() / 1000 });
    await page.getByTestId('topology-live-refresh').click();
    await expect.poll(() => page.getByTestId('topology-live-stale').textContent(), { timeout: 15_000 }).toMatch(/^Report stale: the read at \d\d:\d\d:\d\d failed: the health report on master is stale since \d\d:\d\d:\d\d UTC \(\d+ s old.*the watcher stopped writing/);
    expect(await liveStates()).toEqual({ master: 'healthy', 'cp-1': 'degraded', 'w-1': 'unreachable' });
    expect(session.pageErrors).toEqual([]);
    expect(session.foreignRequests).toEqual([]);
  });

  it('the interval and the paused state are remembered across a reload', async () => {
    expect(await page.getByTestId('topology-live-interval').inputValue()).toBe('5');
    await page.getByTestId('topology-live-pause').click();
    expect(await page.getByTestId('topology-live').getAttribute('data-poll')).toBe('paused');
    await page.reload();
    await page.getByTestId('nav-topology').click();
    await expect.poll(() => page.getByTestId('topology-live').getAttribute('data-poll'), { timeout: 20_000 }).toBe('paused');
    expect(await page.getByTestId('topology-live-interval').inputValue()).toBe('5');
    await page.getByTestId('topology-live-pause').click();
    expect(await page.getByTestId('topology-live').getAttribute('data-poll')).toBe('running');
  });

  it('the Pipeline view shows the last upgrade as the real apply loop recorded it', async () => {
    await page.getByTestId('nav-pipeline').click();
    expect(await page.getByTestId('upgrade-none').textContent({ timeout: 15_000 })).toBe('Upgrade: no upgrade has run on lab-3 from this workspace.');
    // The apply loop over simulated lab-3 nodes (their real boot counter and gate): w-1 fails its gate.
    const N = buildRef('2026.12.1');
    const N1 = buildRef('2026.12.2');
    const sim = new SimCluster(join(root, 'sim'), ['cp-1', 'w-1', 'master'], N);
    sim.breaks = (n, b) => (n === 'w-1' && b.digest === N1.digest ? 'kubelet' : undefined);
    const path = upgradeRecordPath('lab-3', { KUBEDOS_WORKSPACE: ws });
    let t = 1_000;
    const end = await runApply({ waves: lab3Waves(), from: N, target: N1, ops: sim, record: readUpgradeRecord(path), saveRecord: (r) => writeUpgradeRecord(path, r), livePath: upgradeLivePath('lab-3', { KUBEDOS_WORKSPACE: ws }), now: () => t, sleep: async (ms) => void (t += Math.max(ms, 1)), pollMs: 1000 });
    expect(end.kind).toBe('stop');
    // The sealed deploy's build (its recovery bundle): what the slots this foundry never wrote hold.
    const k = generateKeyPairSync('ed25519');
    const publicKeyPem = k.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    writeSealedBuild('lab-3', { KUBEDOS_WORKSPACE: ws }, { version: '2026.12.1', key: { privateKey: k.privateKey, publicKeyPem, keyid: keyidOf(publicKeyPem) }, packages: {}, payload: {} });
    await page.getByTestId('upgrade-reload').click();
    await page.getByTestId('upgrade-progress').waitFor({ timeout: 15_000 });
    expect(await page.getByTestId('upgrade-verdict').textContent()).toBe('2026.12.2 rolled back at w-1');
    expect(await page.getByTestId('upgrade-stopped').textContent()).toBe('w-1: slot B failed its health gate (services); the node fell back to slot A');
    // The header says why: the last run's line is its headline alone (the whole message in its title).
    expect(await page.getByTestId('upgrade-live-line').textContent()).toBe('Upgrade to 2026.12.2: stopped at w-1');
    expect(await page.getByTestId('upgrade-live-line').getAttribute('title')).toMatch(/^upgrade to 2026\.12\.2 stopped at w-1 \(wave 2\): slot B failed its health gate/);
    // At 1280×720 the long reason wraps under the title: Reload stays inside the window, the badge is not cut.
    const size = page.viewportSize()!;
    await page.setViewportSize({ width: 1280, height: 720 });
    try {
      const reload = (await page.getByTestId('upgrade-reload').boundingBox())!;
      expect(reload.x + reload.width).toBeLessThanOrEqual(1280);
      const badge = page.getByTestId('upgrade-live').locator('.mantine-Badge-root');
      expect(await badge.evaluate((el) => [el.textContent, el.scrollWidth <= el.clientWidth])).toEqual(['last run', true]);
    } finally {
      await page.setViewportSize(size);
    }
    const states = await page.getByTestId('upgrade-node').evaluateAll((els) => els.map((e) => [e.getAttribute('data-node'), e.getAttribute('data-state')]));
    expect(await page.locator('[data-testid="upgrade-node"][data-node="master"] [data-testid^="upgrade-slot-"]').allTextContents()).toEqual(['2026.12.1 (deployed)', '2026.12.1 (deployed)']);
    expect(states).toEqual([
      ['master', 'not-written'],
      ['cp-1', 'written'],
      ['w-1', 'rolled-back'],
    ]);
    expect(session.pageErrors).toEqual([]);
    if (TAKE_SCREENS) await shotsOf(page, H17U_SCREENS, 'pipeline-upgrade', { schemes: 'both' });
  });

  it('the Pipeline view follows a run of the apply loop while it runs (paused mid-way at w-1), then shows the finished record without a click', async () => {
    const env = { KUBEDOS_WORKSPACE: ws };
    const N = buildRef('2026.12.1');
    const N2 = buildRef('2026.12.3');
    const sim = new SimCluster(join(root, 'sim-live'), ['cp-1', 'w-1', 'master'], N);
    const MiB = 1048576;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let paused!: () => void;
    const atPause = new Promise<void>((r) => (paused = r));
    sim.duringWrite = async (node, _slot, progress) => {
      if (node !== 'w-1') return;
      progress({ bytes: 1234 * MiB, total: 2048 * MiB, rate: 52 * MiB });
      paused();
      await held;
    };
    const path = upgradeRecordPath('lab-3', env);
    let t = 1_000;
    // The loop's clock moves 0.7 s at each read too (the simulated nodes answer at once): the lines' times differ.
    // Once every node runs N+2, the upgrade service seals the recovery bundle again inside the run
    // (main/upgrade/vm-ops.ts; the real seal is main/upgrade/reseal.test.ts's): its lines as it emits them.
    const sealedLine = 'recovery bundle sealed again for 2026.12.3 (was 2026.12.1): /var/lib/kubedos/lab-3/bundle, etcd snapshot of 2,048 bytes from cp-1; restore needs 2026.12.3\'s build directory as its --artifact';
    const afterDone = async (end: { kind: 'done'; nodes: string[]; message: string }, emit: (e: ApplyEvent) => void) => {
      emit({ step: 'seal', detail: 'the recovery bundle again for 2026.12.3, the build every node runs: an etcd snapshot first; verified and proven restorable before it replaces the one in place' });
      emit({ step: 'seal', detail: 'etcd snapshot: 2048 bytes from cp-1, encrypted to the recovery recipient' });
      emit({ step: 'seal', detail: sealedLine });
      return { ...end, message: `${end.message}\n${sealedLine}` };
    };
    const run = runApply({ waves: lab3Waves(), from: N, target: N2, ops: sim, record: readUpgradeRecord(path), saveRecord: (r) => writeUpgradeRecord(path, r), livePath: upgradeLivePath('lab-3', env), now: () => (t += 700), sleep: async (ms) => void (t += Math.max(ms, 1)), pollMs: 1000, afterDone });
    try {
      await atPause;
      // The panel read the record before this run began: one Reload finds the run; from then on it reads by itself.
      await page.getByTestId('upgrade-reload').click();
      await expect.poll(() => page.getByTestId('upgrade-live').getAttribute('data-live-state'), { timeout: 15_000 }).toBe('running');
      expect(await page.getByTestId('upgrade-live-line').textContent()).toBe('Upgrading to 2026.12.3 — wave 2 of 3: w-1 writing slot B, 1,234 of 2,048 MiB, 52.0 MiB/s');
      const steps = await page.getByTestId('upgrade-node').evaluateAll((els) => els.map((e) => [e.getAttribute('data-node'), e.querySelector('[data-testid="upgrade-live-step"]')?.textContent ?? null]));
      expect(steps).toEqual([
        ['master', null],
        ['cp-1', 'now: converged'],
        ['w-1', 'now: writing slot B, 1,234 of 2,048 MiB, 52.0 MiB/s'],
      ]);
      // The run's lines, as the CLI prints them: cp-1's wave (write, reboot, converge) before w-1's write and its one progress line, the last.
      const lines = await upgradeLines();
      const at = (re: RegExp): number => lines.findIndex((l) => re.test(l));
      expect(lines[0]).toMatch(/^\+0:0\d drain no Kubernetes/);
      expect(at(/^\+\d+:\d\d cp-1: write wave 1: writing 2026\.12\.3 into slot B/)).toBeGreaterThan(0);
      expect(at(/ cp-1: write wave 1/)).toBeLessThan(at(/ cp-1: reboot rebooting into slot B$/));
      expect(at(/ cp-1: reboot rebooting/)).toBeLessThan(at(/ cp-1: converge converged on 2026\.12\.3$/));
      expect(at(/ cp-1: converge converged/)).toBeLessThan(at(/ w-1: write wave 2: writing 2026\.12\.3 into slot B/));
      expect(lines.filter((l) => / w-1: progress /.test(l))).toHaveLength(1);
      expect(lines.at(-1)).toMatch(/^\+\d+:\d\d w-1: progress 1,234 of 2,048 MiB, 52\.0 MiB\/s$/);
      // Each line's time since the run began, in order, the later ones past the first.
      const secs = lines.map((l) => l.match(/^\+(\d+):(\d\d) /)!.slice(1).reduce((m, x) => m * 60 + Number(x), 0));
      expect(secs).toEqual([...secs].sort((a, b) => a - b));
      expect(secs.at(-1)).toBeGreaterThan(secs[0]!);
      expect(await page.getByTestId('upgrade-lines-count').textContent()).toBe(`${lines.length} lines`);
      // The Logs panel has no pipeline run's lines: it says where the upgrade's are, never "0 lines".
      expect(await page.getByTestId('log-count').textContent()).toBe(`0 pipeline lines · the upgrade's lines are above (${lines.length} lines)`);
      // Following the end: the box is scrolled to its bottom.
      expect(await page.getByTestId('upgrade-lines').evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight)).toBeLessThan(2);
      expect(session.pageErrors).toEqual([]);
      if (TAKE_SCREENS) await shotsOf(page, H18W_SCREENS, 'pipeline-upgrade-live', { schemes: 'both' });
      if (TAKE_SCREENS) await shotsOf(page, H20C_SCREENS, 'pipeline-upgrade-lines-live', { schemes: 'both' });
      // The node filter (a node chip's click): cp-1's lines only; a second click shows all again.
      await page.locator('[data-testid=node-chip][data-node=cp-1]').click();
      const cp1 = await upgradeLines();
      expect(cp1.length).toBeGreaterThan(3);
      expect(cp1.every((l) => / cp-1: /.test(l))).toBe(true);
      expect(await page.getByTestId('upgrade-lines-count').textContent()).toBe(`${cp1.length} of ${lines.length} lines: cp-1's only`);
      if (TAKE_SCREENS) await shotsOf(page, H20C_SCREENS, 'pipeline-upgrade-lines-filtered', { schemes: 'both' });
      await page.locator('[data-testid=node-chip][data-node=cp-1]').click();
      expect(await upgradeLines()).toHaveLength(lines.length);
    } finally {
      release();
    }
    expect((await run).kind).toBe('done');
    // No click: the panel's own reads (every 3 s while the run is live) find it finished and stop.
    await expect.poll(() => page.getByTestId('upgrade-live').getAttribute('data-live-state'), { timeout: 20_000 }).toBe('finished');
    expect(await page.getByTestId('upgrade-live-line').textContent()).toBe('Upgrade to 2026.12.3: done');
    expect(await page.getByTestId('upgrade-verdict').textContent()).toBe('2026.12.3: 3 of 3 nodes written');
    expect(await page.getByTestId('upgrade-live-step').count()).toBe(0);
    // After the run: its lines stay, its done, then the recovery bundle's seal, the last saying what a restore brings back.
    const endLines = (await upgradeLines()).slice(-4);
    expect(endLines[0]).toMatch(/^\+\d+:\d\d done 3 nodes on 2026\.12\.3: cp-1, w-1, master$/);
    expect(endLines[1]).toMatch(/^\+\d+:\d\d seal the recovery bundle again for 2026\.12\.3, the build every node runs/);
    expect(endLines[3]).toMatch(/^\+\d+:\d\d seal recovery bundle sealed again for 2026\.12\.3 \(was 2026\.12\.1\)/);
    expect(await page.getByTestId('upgrade-live-line').getAttribute('title')).toContain(sealedLine);
    expect(await page.getByTestId('upgrade-line').evaluateAll((els) => els.filter((e) => e.getAttribute('data-node') === 'w-1' && e.getAttribute('data-step') === 'progress').length)).toBe(1);
    // Still at the end in a smaller window (more lines wrap).
    await page.setViewportSize({ width: 1280, height: 720 });
    await expect.poll(() => page.getByTestId('upgrade-lines').evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight), { timeout: 5_000 }).toBeLessThan(2);
    await page.setViewportSize({ width: 1440, height: 900 });
    expect(session.pageErrors).toEqual([]);
    if (TAKE_SCREENS) await shotsOf(page, H18W_SCREENS, 'pipeline-upgrade-finished', { schemes: 'both' });
    if (TAKE_SCREENS) await shotsOf(page, H20C_SCREENS, 'pipeline-upgrade-lines-finished', { schemes: 'both' });

    // Finished: no more reads. A live file that says running again is not seen until Reload.
    const livePath = upgradeLivePath('lab-3', env);
    const finished = UpgradeLive.parse(JSON.parse(readFileSync(livePath, 'utf8')));
    const again = foldLive(startLive({ pid: process.pid, kind: 'upgrade', target: N2, waves: lab3Waves(), at: 1 }), { node: 'master', step: 'reboot', slot: 'B', detail: 'rebooting into slot B' }, 2);
    writeUpgradeLive(livePath, again);
    await page.waitForTimeout(7_000); // more than two of the panel's 3 s reads
    expect(await page.getByTestId('upgrade-live').getAttribute('data-live-state')).toBe('finished');
    await page.getByTestId('upgrade-reload').click();
    await expect.poll(() => page.getByTestId('upgrade-live-line').textContent(), { timeout: 15_000 }).toBe('Upgrading to 2026.12.3 — wave 3 of 3: master rebooting into slot B');
    // Its process dies (a pid that ended): the panel's own read says so, never as running, and stops reading.
    const dead = spawnSync('true').pid;
    writeUpgradeLive(livePath, { ...again, pid: dead });
    await expect.poll(() => page.getByTestId('upgrade-live').getAttribute('data-live-state'), { timeout: 15_000 }).toBe('gone');
    expect(await page.getByTestId('upgrade-live').textContent()).toBe(`the upgrade process (pid ${dead}) is gone: it was interrupted at master (rebooting into slot B); rerun kubedos upgrade with the 2026.12.3 build to continue, or kubedos upgrade --rollback`);
    expect(await page.getByTestId('upgrade-live-step').count()).toBe(0);
    // Gone: its lines are still shown under the message.
    expect(await upgradeLines()).toEqual(['+0:00 master: reboot rebooting into slot B']);
    expect(session.pageErrors).toEqual([]);
    if (TAKE_SCREENS) await shotsOf(page, H18W_SCREENS, 'pipeline-upgrade-gone', { schemes: 'both' });
    writeUpgradeLive(livePath, finished);
  });
  it('the Pipeline view shows nodes a replace-based upgrade replaced by new VMs, one mid-replacement, then --rollback replacing them again', async () => {
    // The REAL apply loop under replace (its replace operations over SimCluster, as main/upgrade/apply-run-replace.test.ts runs it):
    // cp-1..cp-3 and w-1 replaced one by one, the hub slot-switched; w-1's provision fails once (its deploy run stopped at enroll).
    const env = { KUBEDOS_WORKSPACE: ws };
    const N = buildRef('2026.12.1');
    const N4 = buildRef('2026.12.4');
    const sim = new SimCluster(join(root, 'sim-replace'), ['cp-1', 'cp-2', 'cp-3', 'w-1', 'master'], N);
    let once = true;
    sim.refuseReplace = (n, phase) => {
      if (n !== 'w-1' || phase !== 'provision' || !once) return undefined;
      once = false;
      return 'the deploy run failed at enroll on w-1: kubedos-enroll: token expired';
    };
    const path = upgradeRecordPath('lab-3', env);
    let t = 1_000;
    const record = { slots: {}, bad: [] };
    const base = { waves: replaceWaves(), from: N, ops: sim, replace: sim, kubernetes: true, allowDestroy: true, saveRecord: (r: UpgradeRecord) => writeUpgradeRecord(path, r), livePath: upgradeLivePath('lab-3', env), now: () => t, sleep: async (ms: number) => void (t += Math.max(ms, 1)), pollMs: 1000 };
    expect(await runApply({ ...base, target: N4, record })).toMatchObject({ kind: 'stop', node: 'w-1' });
    expect(readUpgradeRecord(path).replaced?.['w-1']).toEqual({ build: N4, state: 'provisioning' });
    const rows = () =>
      page.getByTestId('upgrade-node').evaluateAll((els) =>
        els.map((e) => [e.getAttribute('data-node'), e.getAttribute('data-state'), ...[...e.querySelectorAll('td')].slice(1).map((td) => (td.textContent ?? '').trim())]),
      );
    const replaced = (node: string, v: string) => [node, 'replaced', 'replaced', `${v} (new VM)`, `${v} (new VM)`, `replaced by a new VM from ${v}`];
    /** Nothing cut at 1280×720: Reload inside the window, the badges and slot cells not clipped, the table inside its panel. */
    const fitsAt1280 = async () => {
      const size = page.viewportSize()!;
      await page.setViewportSize({ width: 1280, height: 720 });
      try {
        const reload = (await page.getByTestId('upgrade-reload').boundingBox())!;
        expect(reload.x + reload.width).toBeLessThanOrEqual(1280);
        const table = (await page.getByTestId('upgrade-nodes').boundingBox())!;
        const panel = (await page.getByTestId('upgrade-progress').boundingBox())!;
        expect(table.x + table.width).toBeLessThanOrEqual(panel.x + panel.width + 1);
        const cut = await page.locator('[data-testid=upgrade-node] .mantine-Badge-root, [data-testid=upgrade-node] [data-testid^=upgrade-slot-], [data-testid=upgrade-verdict]').evaluateAll((els) => els.filter((el) => el.scrollWidth > el.clientWidth).map((el) => el.textContent));
        expect(cut).toEqual([]);
        // Each note on one line (a wrapped one is taller than two lines' height less its padding).
        const wrapped = await page.getByTestId('upgrade-note').evaluateAll((els) => els.filter((el) => !(el.getBoundingClientRect().height <= 1.5 * parseFloat(getComputedStyle(el).lineHeight) + 6)).map((el) => el.textContent));
        expect(wrapped).toEqual([]);
      } finally {
        await page.setViewportSize(size);
      }
    };

    await page.getByTestId('nav-pipeline').click();
    await page.getByTestId('upgrade-reload').click();
    await expect.poll(() => page.getByTestId('upgrade-verdict').textContent(), { timeout: 15_000 }).toBe('2026.12.4: 3 of 5 nodes written or replaced');
    expect(await rows()).toEqual([
      ['master', 'not-written', 'not written', '2026.12.1 (deployed)', '2026.12.1 (deployed)', ''],
      replaced('cp-1', '2026.12.4'),
      ['w-1', 'replacing', 'replacing', 'none yet (new VM)', 'none yet (new VM)', 'its new VM is being created from 2026.12.4'],
      replaced('cp-2', '2026.12.4'),
      replaced('cp-3', '2026.12.4'),
    ]);
    expect(await page.getByTestId('upgrade-live-line').textContent()).toMatch(/^Upgrade to 2026\.12\.4: stopped at w-1 — provisioning its replacement from 2026\.12\.4/);
    await fitsAt1280();
    expect(session.pageErrors).toEqual([]);
    if (TAKE_SCREENS) await shotsOf(page, H17U_SCREENS, 'pipeline-upgrade-replace-stopped', { schemes: 'both' });

    // The rerun provisions w-1 again (never destroys it), then switches the hub's slots.
    expect(await runApply({ ...base, target: N4, record: readUpgradeRecord(path) })).toMatchObject({ kind: 'done' });
    await page.getByTestId('upgrade-reload').click();
    await expect.poll(() => page.getByTestId('upgrade-verdict').textContent(), { timeout: 15_000 }).toBe('2026.12.4: 5 of 5 nodes written or replaced');
    expect(await rows()).toEqual([
      ['master', 'written', 'written', '2026.12.1', '2026.12.4 (target)', 'slot B holds 2026.12.4; the slot it booted is on its Topology box'],
      replaced('cp-1', '2026.12.4'),
      replaced('w-1', '2026.12.4'),
      replaced('cp-2', '2026.12.4'),
      replaced('cp-3', '2026.12.4'),
    ]);
    await fitsAt1280();
    if (TAKE_SCREENS) await shotsOf(page, H17U_SCREENS, 'pipeline-upgrade-replace-done', { schemes: 'both' });

    // --rollback: the hub back on slot A, then w-1, cp-3, cp-2, cp-1 replaced again from 2026.12.1.
    expect(await runRollback({ ...base, target: N4, record: readUpgradeRecord(path) })).toMatchObject({ kind: 'done', nodes: ['master', 'w-1', 'cp-3', 'cp-2', 'cp-1'] });
    await page.getByTestId('upgrade-reload').click();
    await expect.poll(() => page.getByTestId('upgrade-verdict').textContent(), { timeout: 15_000 }).toBe('2026.12.4 rolled back');
    // A whole-cluster --rollback: no node to blame in the header, and the run's line says what ran.
    expect(await page.getByTestId('upgrade-stopped').textContent()).toBe('rolled back by kubedos upgrade --rollback');
    expect(await page.getByTestId('upgrade-live-line').textContent()).toBe('Rollback from 2026.12.4: done');
    expect(await page.getByTestId('upgrade-bad').textContent()).toBe('never applied again (rolled back): 2026.12.4 (kubedos upgrade --rollback)');
    const back = (node: string) => [node, 'rolled-back', 'rolled back', '2026.12.1 (new VM)', '2026.12.1 (new VM)', 'back on 2026.12.1: replaced again by a new VM'];
    expect(await rows()).toEqual([['master', 'rolled-back', 'rolled back', '2026.12.1', '2026.12.4 (target)', 'rolled back by kubedos upgrade --rollback'], back('cp-1'), back('w-1'), back('cp-2'), back('cp-3')]);
    await fitsAt1280();
    expect(session.pageErrors).toEqual([]);
    if (TAKE_SCREENS) await shotsOf(page, H17U_SCREENS, 'pipeline-upgrade-replace-rollback', { schemes: 'both' });
  });
});
