// The topology's live health in Debian's chromium, over the bridge `kubedos serve` runs (started
// in-process, as the USB test does, so the test can inject what the hub's watcher report says:
// no VM runs here). A cluster never deployed from this workspace says so and keeps the last
// run's colours, labelled as such; a hub that does not answer says so; a report read from the
// hub colours each node (healthy / degraded / unreachable) with a legend, its read time and age;
// the node drawer lists each signal; a stale report falls back again. Screenshots of the live
// and the cannot-read states and of the drawer (a degraded and an unreachable node, wg1/wg2/wg3
// handshakes each, with the artifact version and boot slot each node's exporter serves) in
// e2e/output/screens/h17p/ (the drawer's: h18m/) with KUBEDOS_E2E_SCREENS=1 (npm run
// test:ui:topology): the sixteen pictures double the test's time, too much for CI.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAB3_AGENT_PINGS, lab3MixedFacts, lab3NodeMetrics, watcherReportFor } from '../../common/health/testing';
import { TEMPLATES } from '../../common/spec/index';
import type { HubHealthReader } from '../../main/health/service';
import { injectedReader } from '../../main/health/testing';
import { writeDeployJournal } from '../../main/upgrade/testing';
import type { BridgeServer, UiSession } from './session';
import { bridgeSession, screensDir, shots as shotsOf } from './session';

const SCREENS = screensDir('h17p');
const DRAWER_SCREENS = screensDir('h18m');
const TAKE_SCREENS = process.env.KUBEDOS_E2E_SCREENS === '1';
const root = mkdtempSync(join(tmpdir(), 'kd-h17h-topology-'));
const ws = join(root, 'ws');
let session: UiSession<BridgeServer>;
let page: Page;
/** What the hub "answers" now; the test switches it between readings. */
let hub: HubHealthReader = injectedReader({ unreachable: 'could not reach master (VMID 9100) through qemu-local: the guest agent socket does not exist (is the VM running?)' });
const reader: HubHealthReader = (q) => hub(q);

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
    await shots('topology-cannot-read');
  });

  it('colours each node from the hub report, with the legend, read time and age; the drawer lists each signal', async () => {
    const at = Date.now() / 1000 - 6;
    hub = injectedReader({ report: watcherReportFor(lab3MixedFacts(at), { nodeMetrics: lab3NodeMetrics(at) }), nowSeconds: () => Date.now() / 1000, agents: LAB3_AGENT_PINGS });
    await page.getByTestId('topology-live-refresh').click();
    await expect.poll(liveStates, { timeout: 15_000 }).toEqual({ master: 'healthy', 'cp-1': 'degraded', 'w-1': 'unreachable' });
    expect(await page.getByTestId('topology-live').getAttribute('data-live')).toBe('live');
    expect(await page.getByTestId('live-legend-healthy').textContent()).toBe('healthy: 1');
    expect(await page.getByTestId('live-legend-unknown').textContent()).toBe('unknown: 0');
    expect(await page.getByTestId('topology-live-read').textContent()).toMatch(/^read at \d\d:\d\d:\d\d · report \d+ s old$/);
    expect(await node('w-1').getAttribute('aria-label')).toContain('live: unreachable');
    expect(await page.getByTestId('topology-live-cannot').count()).toBe(0);
    expect(await page.getByTestId('topology-live-refresh').getAttribute('title')).toBe("read the health report of lab-3's hub again on qemu-local");
    await shots('topology-live');
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

  it('a stale report falls back to the last run colours and says since when', async () => {
    hub = injectedReader({ report: watcherReportFor(lab3MixedFacts(Date.now() / 1000 - 900)), nowSeconds: () => Date.now() / 1000 });
    await page.getByTestId('topology-live-refresh').click();
    await expect.poll(() => page.getByTestId('topology-live-cannot').textContent(), { timeout: 15_000 }).toMatch(/Report stale.*is stale since \d\d:\d\d:\d\d UTC \(\d+ s old.*the watcher stopped writing/);
    expect(await liveStates()).toEqual({ master: 'none', 'cp-1': 'none', 'w-1': 'none' });
    expect(session.pageErrors).toEqual([]);
    expect(session.foreignRequests).toEqual([]);
  });
});
