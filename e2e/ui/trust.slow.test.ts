// (Opt-in: npm run test:ui:trust; root.) The Trust panel of the Recovery view in Debian's chromium
// against `kubedos serve`: a lab-3 workspace whose trust material and node identity certificates
// were made 85 days ago (the node certificates are due for rotation soon, the hub's 30-day
// enrollment certificate has expired, the WireGuard keys are overdue but w-1's), listed with days left; a revoke confirmed in the dialog that
// names the node runs on the namespace lab and reports what changed. Screenshots at 1440x900 and
// 1280x720, dark and light, in e2e/output/screens/h17/.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { plan as planOf } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { ensureNodeIdentities } from '../../main/stages/node-identities';
import { clusterTrust } from '../../main/stages/trust';
import { recordWireguardKeys } from '../../main/trust/inventory';
import { createRecoveryKey, writeRecoveryRecipient } from '../../main/trust/recovery';
import { clusterWorkspace } from '../../main/workspace';
import type { UiSession } from './session';
import { screensDir, serveSession, shots } from './session';

let session: UiSession;
let page: Page;
const SCREENS = screensDir('h17');

beforeAll(async () => {
  const ws = mkdtempSync(join(tmpdir(), 'h17-ui-'));
  const env = { KUBEDOS_WORKSPACE: ws };
  const spec = parseSpec(TEMPLATES['lab-3'].text).spec!;
  const plan = planOf(spec);
  const cws = clusterWorkspace(plan.cluster.name, env);
  writeRecoveryRecipient(cws, (await createRecoveryKey()).recipient);
  const issued = new Date(Date.now() - 85 * 86_400_000);
  const t = await clusterTrust(cws, plan, env, issued);
  await ensureNodeIdentities({ plan, trustDir: t.dir, store: t.store, intermediate: t.intermediate, kubeCertDays: spec.spec.security.keyRotation.kubeCertDays, now: issued });
  // WireGuard keys first seen 85 days ago (overdue: wireguardDays is 30), w-1's rotated 25 days ago (due soon).
  const key = (n: string, p: number): string => Buffer.alloc(32, n.length * 7 + p).toString('base64');
  const keysOf = (n: string) => ({ wg1: key(n, 1), wg2: key(n, 2), wg3: key(n, 3) });
  recordWireguardKeys(cws, plan.cluster.name, Object.fromEntries(plan.nodes.map((n) => [n.name, keysOf(n.name)])), issued);
  recordWireguardKeys(cws, plan.cluster.name, { ...Object.fromEntries(plan.nodes.map((n) => [n.name, keysOf(n.name)])), 'w-1': keysOf('w-1-new') }, new Date(Date.now() - 25 * 86_400_000));
  writeFileSync(join(ws, 'lab-3.yaml'), TEMPLATES['lab-3'].text);
  session = await serveSession([join(ws, 'lab-3.yaml')], ws);
  page = session.page;
}, 300_000);

afterAll(async () => {
  await session?.close();
});

async function bothThemes(name: string, scrollTo?: string): Promise<void> {
  await shots(page, SCREENS, name, { schemes: 'both', ...(scrollTo ? { prepare: () => page.getByTestId(scrollTo).scrollIntoViewIfNeeded() } : {}) });
}

describe('Trust panel', () => {
  it('lists every certificate with days left and status, node identities included, and the warnings', async () => {
    await page.getByTestId('nav-recovery').click();
    await expect.poll(() => page.getByTestId('trust-identities').textContent(), { timeout: 20_000 }).toContain('node-w-1.crt');
    const rows = await page.locator('[data-testid=trust-identities] tbody tr').allTextContents();
    expect(rows.map((r) => r.split('.crt')[0])).toEqual(['cluster-ca', 'hub', 'node-cp-1', 'node-master', 'node-w-1', 'root-ca']);
    expect(rows.find((r) => r.startsWith('node-w-1'))).toMatch(/rotate soon/);
    expect(rows.find((r) => r.startsWith('hub'))).toMatch(/expired/);
    expect(await page.getByTestId('trust-warnings').textContent()).toMatch(/hub\.crt .* expired/);
    expect(await page.getByTestId('trust-revoked').textContent()).toBe('Revoked: none');
    const wg = await page.locator('[data-testid=trust-wireguard] tbody tr').allTextContents();
    expect(wg.find((r) => r.startsWith('master'))).toMatch(/rotation due/);
    expect(wg.find((r) => r.startsWith('w-1'))).toMatch(/rotate soon/);
    await bothThemes('trust', 'trust');
  });

  it('revoke asks for a confirmation naming the node, then runs on the namespace lab and says what changed', async () => {
    await page.getByTestId('trust-revoke').click();
    await expect.poll(() => page.getByRole('dialog').textContent()).toMatch(/Revoke w-1\?.*w-1 goes on the hub's revocation list/);
    await bothThemes('trust-confirm');
    await page.getByTestId('trust-confirm-run').click();
    await expect.poll(() => page.getByTestId('trust-result').textContent(), { timeout: 90_000, interval: 1000 }).toMatch(/revoke w-1 on the namespace lab of lab-3/);
    const text = await page.getByTestId('trust-result').textContent();
    expect(text).toContain("changed: w-1 added to the hub's revocation list");
    expect(text).toContain('3 peers of w-1 removed from the hub');
    // The lab is a copy: the workspace's revocation list is unchanged.
    expect(await page.getByTestId('trust-revoked').textContent()).toBe('Revoked: none');
    await bothThemes('trust-result', 'trust-result');
  }, 150_000);

  it('closing a window that is not open changes nothing, and says so', async () => {
    await page.getByTestId('trust-window-close').click();
    await page.getByTestId('trust-confirm-run').click();
    await expect.poll(() => page.getByTestId('trust-result').textContent(), { timeout: 90_000, interval: 1000 }).toMatch(/window-close on the namespace lab of lab-3/);
    expect(await page.getByTestId('trust-result').textContent()).toContain('unchanged: no enrollment window was open');
  }, 150_000);
});
