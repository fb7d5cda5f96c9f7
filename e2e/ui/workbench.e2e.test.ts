// The workbench in Debian's chromium against `kubedos serve`: load reference-16, see its 16
// nodes and 3 planes, break and fix the spec, run the plan pipeline and read its logs.
// Screenshots of every view go to e2e/output/.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { WebSocket } from 'ws';
import { TEMPLATES } from '../../common/spec/index';
import type { Served } from './harness';
import { screenshot } from './harness';
import type { UiSession } from './session';
import { serveSession } from './session';

let session: UiSession<Served>;
let served: Served;
let page: Page;

beforeAll(async () => {
  session = await serveSession();
  ({ server: served, page } = session);
});

afterAll(async () => {
  await session?.close();
});

/** Line numbers of Monaco's visible lines that carry an error (or warning) squiggle. */
async function errorSquiggleLines(p: Page, kind: 'error' | 'warning' = 'error'): Promise<number[]> {
  return p.evaluate((kind) => {
    const numbers = [...document.querySelectorAll<HTMLElement>('.margin-view-overlays .line-numbers')].map((el) => ({ line: Number(el.textContent), top: el.getBoundingClientRect().top }));
    const lines = new Set<number>();
    for (const sq of document.querySelectorAll<HTMLElement>(`.squiggly-${kind}`)) {
      const top = sq.getBoundingClientRect().top;
      const hit = numbers.find((n) => Math.abs(n.top - top) < 4);
      if (hit) lines.add(hit.line);
    }
    return [...lines].sort((a, b) => a - b);
  }, kind);
}

const reference = TEMPLATES['reference-16'].text.split('\n');
// The master's "cpu: 4" — the first cpu line of the inventory.
const CPU_LINE = reference.findIndex((l) => /^\s+cpu: \d+$/.test(l)) + 1;
const W1_VMID_LINE = reference.findIndex((l) => /^\s+vmid: 2010$/.test(l)) + 1;

/** Puts the cursor at the end of a line of the editor. */
async function endOfLine(p: Page, line: number): Promise<void> {
  await p.locator('.view-lines').click();
  await p.keyboard.press('Control+Home');
  for (let i = 1; i < line; i++) await p.keyboard.press('ArrowDown');
  await p.keyboard.press('End');
}

describe('workbench UI over kubedos serve', () => {
  it('loads reference-16 from the template picker into the editor', async () => {
    await page.getByRole('button', { name: 'New from template' }).click();
    await page.getByTestId('template-reference-16').click();
    await expect.poll(() => page.getByTestId('validity').textContent(), { timeout: 15_000 }).toBe('valid: reference-16');
    await expect.poll(() => page.getByTestId('cluster-badge').textContent()).toContain('16 nodes');
    // The editor shows highlighted YAML (Monaco tokens, not plain text).
    await page.locator('.view-lines .mtk1').first().waitFor();
    expect(await page.locator('.view-lines').textContent()).toContain('reference-16');
    await screenshot(page, '1-spec');
    // monaco-yaml serves hover docs from the JSON Schema (descriptions of the zod schema).
    const metadataKey = page.locator('.view-line', { hasText: /^metadata:/ }).first().locator('span', { hasText: /^metadata$/ });
    await expect
      .poll(
        async () => {
          // Re-hover until the worker has the new model and answers.
          await page.mouse.move(5, 400);
          await metadataKey.hover();
          await page.waitForTimeout(700);
          return (await page.locator('.monaco-hover').allTextContents()).join(' ');
        },
        { timeout: 20_000 },
      )
      .toContain('Identity of the cluster');
    await screenshot(page, '1b-spec-hover');
    await page.mouse.move(5, 400);
  });

  it('draws the 16 nodes of the plan in the topology, with details on click', async () => {
    await page.getByTestId('nav-topology').click();
    await expect.poll(() => page.getByTestId('topology-node').count(), { timeout: 20_000 }).toBe(16);
    expect(await page.getByTestId('topology-count').textContent()).toBe('16 nodes');
    const master = page.locator('[data-testid=topology-node][data-node=master]');
    expect(await master.textContent()).toContain('VMID 2000');
    await page.waitForTimeout(300);
    await screenshot(page, '2-topology');
    await master.click();
    const details = page.getByTestId('node-details');
    await details.waitFor();
    await page.waitForTimeout(400); // the drawer's slide-in transition
    expect(await details.textContent()).toMatch(/wg1.*10\.101\.0\.1\/32/s);
    expect(await details.textContent()).toContain('chain forward');
    await screenshot(page, '2b-topology-details');
    await page.keyboard.press('Escape');
    await details.waitFor({ state: 'detached' });
    // Keyboard: a node card is a button; Enter opens its details.
    await page.locator('[data-testid=topology-node][data-node=etcd-2]').focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByTestId('node-details').textContent()).toContain('VMID 2005');
    await page.keyboard.press('Escape');
    await details.waitFor({ state: 'detached' });
    // Grouped by role (8 roles) or by failure domain (3 racks).
    expect(await page.getByTestId('topology-group').count()).toBe(8);
    await page.getByText('by failure domain').click();
    await expect.poll(() => page.getByTestId('topology-group').count()).toBe(3);
    expect(await page.getByTestId('topology-node').count()).toBe(16);
    await page.waitForTimeout(300);
    await screenshot(page, '2c-topology-by-domain');
    await page.getByText('by role').click();
    await expect.poll(() => page.getByTestId('topology-group').count()).toBe(8);
  });

  it('shows three planes and the policy matrix; hovering a flow highlights its rule', async () => {
    await page.getByTestId('nav-wiring').click();
    await expect.poll(() => page.getByTestId('wiring-plane').count()).toBe(3);
    expect(await page.getByTestId('policy-cell').count()).toBe(9);
    const allowed = page.locator('[data-testid=policy-cell][data-from=wg1][data-to=wg3]');
    expect(await allowed.getAttribute('data-verdict')).toBe('allow');
    expect(await allowed.textContent()).toContain('6443');
    expect(await page.locator('[data-testid=policy-cell][data-from=wg3][data-to=wg1]').getAttribute('data-verdict')).toBe('deny');
    await allowed.hover();
    // A hover's re-render took over vitest's default 1 s poll once on this 2-core machine under TCG load (2026-12-05).
    await expect.poll(() => page.locator('[data-testid=hub-rules] [data-highlight=true]').allTextContents(), { timeout: 10_000 }).toEqual([expect.stringContaining('allow wg1->wg3')]);
    expect(await page.locator('[data-testid=wiring-plane][data-plane=wg1]').getAttribute('data-highlight')).toBe('from');
    expect(await page.locator('[data-testid=wiring-plane][data-plane=wg3]').getAttribute('data-highlight')).toBe('to');
    await screenshot(page, '3-wiring');
    // Plane toggles hide and show a plane.
    await page.locator('[data-testid=toggle-wg2] + label').click();
    await expect.poll(() => page.getByTestId('wiring-plane').count()).toBe(2);
    await page.locator('[data-testid=toggle-wg2] + label').click();
    await expect.poll(() => page.getByTestId('wiring-plane').count()).toBe(3);
  });

  it('marks an invalid value on its line and in the problems list, and clears it when fixed', async () => {
    await page.getByTestId('nav-spec').click();
    expect(reference[CPU_LINE - 1]).toMatch(/cpu: 4$/);
    await page.locator('.view-lines').click();
    await page.keyboard.press('Control+Home');
    for (let i = 1; i < CPU_LINE; i++) await page.keyboard.press('ArrowDown');
    await page.keyboard.press('End');
    await page.keyboard.press('Backspace');
    await page.keyboard.type('0');
    await page.keyboard.press('Escape');
    const problem = page.locator(`[data-testid=problem][data-line="${CPU_LINE}"]`);
    await problem.waitFor({ timeout: 10_000 });
    expect(await problem.textContent()).toMatch(/cpu/);
    await expect.poll(() => errorSquiggleLines(page), { timeout: 10_000 }).toContain(CPU_LINE);
    // monaco-yaml's worker validates against the JSON Schema too (minimum 1): a warning marker.
    await expect.poll(() => errorSquiggleLines(page, 'warning'), { timeout: 15_000 }).toContain(CPU_LINE);
    expect(await page.getByTestId('validity').textContent()).toMatch(/error/);
    expect(await page.getByTestId('dirty').isVisible()).toBe(true);
    await screenshot(page, '4-spec-invalid');
    // The problems list jumps to the line.
    await page.keyboard.press('Control+Home');
    await problem.getByRole('button').first().click();
    await expect.poll(() => page.locator('.monaco-editor .current-line ~ *').count().then(() => page.evaluate(() => document.activeElement?.closest('.monaco-editor') !== null))).toBe(true);
    // Fix it again.
    await page.keyboard.press('End');
    await page.keyboard.press('Backspace');
    await page.keyboard.type('4');
    await page.keyboard.press('Escape');
    await expect.poll(() => page.getByTestId('problem').count(), { timeout: 10_000 }).toBe(0);
    await expect.poll(() => errorSquiggleLines(page)).toEqual([]);
    expect(await page.getByTestId('validity').textContent()).toBe('valid: reference-16');
  });

  it('redraws the topology as the spec changes without losing pan/zoom', async () => {
    await page.getByTestId('nav-topology').click();
    await page.locator('.react-flow__controls-zoomin').click();
    await page.locator('.react-flow__controls-zoomin').click();
    await page.waitForTimeout(400);
    const transform = await page.locator('.react-flow__viewport').getAttribute('style');
    await page.getByTestId('nav-spec').click();
    expect(reference[W1_VMID_LINE - 1]).toMatch(/vmid: 2010$/);
    await endOfLine(page, W1_VMID_LINE);
    await page.keyboard.press('Backspace');
    await page.keyboard.press('Backspace');
    await page.keyboard.type('50');
    await page.keyboard.press('Escape');
    await page.getByTestId('nav-topology').click();
    await expect.poll(() => page.locator('[data-testid=topology-node][data-node=w-1]').textContent(), { timeout: 10_000 }).toContain('VMID 2050');
    expect(await page.locator('.react-flow__viewport').getAttribute('style')).toBe(transform);
  });

  it('guards unsaved changes and saves into the workspace', async () => {
    await page.getByTestId('nav-spec').click();
    expect(await page.getByTestId('dirty').isVisible()).toBe(true);
    await page.getByRole('button', { name: 'New from template' }).click();
    await page.getByTestId('template-lab-3').click();
    const keep = page.getByRole('button', { name: 'Keep editing' });
    await keep.waitFor();
    await page.waitForTimeout(400); // modal transitions
    await screenshot(page, '4b-unsaved-guard');
    await keep.click();
    expect(await page.getByTestId('validity').textContent()).toBe('valid: reference-16');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByLabel('File name').fill('ref16.yaml');
    await page.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
    const saved = join(served.workspace, 'ref16.yaml');
    await expect.poll(() => existsSync(saved)).toBe(true);
    expect(readFileSync(saved, 'utf8')).toContain('vmid: 2050');
    await expect.poll(() => page.getByTestId('dirty').count()).toBe(0);
    expect(await page.getByTestId('spec-origin').getAttribute('data-origin')).toBe(saved);
    // A path outside the workspace is refused with the reason shown.
    await page.getByRole('button', { name: 'Save as…' }).click();
    await page.getByLabel('File name').fill('../../escape.yaml');
    await page.getByRole('dialog').getByRole('button', { name: 'Save' }).click();
    await page.getByText(/outside the workspace/).first().waitFor();
    expect(existsSync(join(served.workspace, '../../escape.yaml'))).toBe(false);
    await page.keyboard.press('Escape');
  });

  it('runs the plan pipeline in the engine and streams its log lines into the terminal', async () => {
    await page.getByTestId('nav-pipeline').click();
    await page.getByTestId('run-plan').click();
    await expect.poll(() => page.getByTestId('run-status').textContent(), { timeout: 30_000 }).toBe('done');
    expect(await page.locator('[data-testid=stage-row]').evaluateAll((rows) => rows.map((r) => `${r.getAttribute('data-stage')}=${r.getAttribute('data-state')}`))).toEqual(['validate=success', 'plan=success']);
    await expect.poll(() => page.locator('[data-testid=log-terminal] .xterm-rows').textContent(), { timeout: 10_000 }).toContain('policy: wg1 -> wg3');
    const logs = await page.locator('[data-testid=log-terminal] .xterm-rows').textContent();
    expect(logs).toMatch(/plan\/lb-3/);
    expect(await page.getByTestId('log-count').textContent()).toMatch(/^(1[89]|[2-9]\d) lines$/);
    await screenshot(page, '5-pipeline');
    // Node states from the run colour the topology.
    await page.getByTestId('nav-topology').click();
    await expect.poll(() => page.locator('[data-testid=topology-node][data-state=ok]').count()).toBe(16);
  });

  it('filters the logs by node', async () => {
    await page.getByTestId('nav-pipeline').click();
    await page.getByTestId('log-node-filter').click();
    await page.getByRole('option', { name: 'etcd-2' }).click();
    // xterm parses writes asynchronously: wait for the filtered lines, not just the reset.
    await expect.poll(() => page.locator('[data-testid=log-terminal] .xterm-rows').textContent()).toContain('plan/etcd-2');
    const text = (await page.locator('[data-testid=log-terminal] .xterm-rows').textContent()) ?? '';
    expect(text).not.toContain('policy:');
    expect(text).toContain('etcd-2');
    expect(text).not.toContain('etcd-1 ');
    // Copy takes exactly the filtered lines.
    await session.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: served.origin });
    await page.getByRole('button', { name: 'Copy' }).click();
    await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toContain('plan/etcd-2');
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    expect(copied.split('\n').every((l) => l.includes('etcd-2'))).toBe(true);
    // Clear the node filter and search: the match is highlighted and following stops.
    await page.getByRole('button', { name: 'All lines' }).click();
    await expect.poll(() => page.locator('[data-testid=log-terminal] .xterm-rows').textContent()).toContain('policy:');
    await page.getByLabel('Search the logs').fill('vmid 2005');
    await page.getByLabel('Search the logs').press('Enter');
    await expect.poll(() => page.locator('[data-testid=log-terminal] .xterm-decoration-container > *').count()).toBeGreaterThan(0);
    expect(await page.getByRole('switch', { name: 'Follow the newest lines' }).isChecked()).toBe(false);
    await screenshot(page, '5b-pipeline-search');
  });

  it('shows artifacts (nothing built yet, then the plan, clearly labelled), and drills with their recorded history (none yet)', async () => {
    await page.getByTestId('nav-artifacts').click();
    await expect.poll(() => page.getByTestId('artifacts-empty').textContent()).toContain('No build of reference-16 in its workspace yet');
    expect(await page.getByTestId('plan-only').first().textContent()).toContain('from the plan, not built');
    await screenshot(page, '6-artifacts');
    await page.getByTestId('nav-drills').click();
    await expect.poll(() => page.locator('[data-testid=drills] [data-testid=drills-where]').textContent()).toContain('kubedos drill');
    await expect.poll(() => page.getByTestId('drills').textContent()).toContain('No drill has been recorded for');
    expect(await page.getByTestId('drills').textContent()).toContain('delete-worker-vm');
    await screenshot(page, '7-drills');
  });

  it('navigates views with the keyboard', async () => {
    await page.getByTestId('nav-spec').click();
    await page.keyboard.press('Alt+3');
    await expect.poll(() => page.getByTestId('view-wiring').isVisible()).toBe(true);
    await page.keyboard.press('Alt+1');
    await expect.poll(() => page.getByTestId('view-spec').isVisible()).toBe(true);
    expect(await page.getByTestId('view-wiring').isVisible()).toBe(false);
    // The navigation is a list of real buttons: Tab reaches them, Enter activates.
    await page.getByTestId('nav-pipeline').focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByTestId('view-pipeline').isVisible()).toBe(true);
  });

  it('switches to the light theme', async () => {
    await page.getByTestId('nav-wiring').click();
    await page.getByRole('button', { name: 'Toggle light or dark theme' }).click();
    await expect.poll(() => page.evaluate(() => document.documentElement.getAttribute('data-mantine-color-scheme'))).toBe('light');
    await screenshot(page, '8-wiring-light');
    await page.getByTestId('nav-spec').click();
    await screenshot(page, '8b-spec-light');
  });

  it('answers malformed bridge messages with errors and keeps serving', async () => {
    // The page's session (the printed URL's token was exchanged for this cookie when it loaded).
    const cookie = (await session.context.cookies(served.origin)).map((c) => `${c.name}=${c.value}`).join('; ');
    const ws = new WebSocket(`ws://127.0.0.1:${new URL(served.url).port}/bridge`, { origin: served.origin, headers: { cookie } });
    await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
    const replies: Record<string, unknown>[] = [];
    ws.on('message', (d) => replies.push(JSON.parse(d.toString())));
    ws.send('{"kind":"request","id":1,"channel":"spec.open","payload":{"path":"/etc/passwd"}}');
    ws.send('garbage');
    ws.send(JSON.stringify({ kind: 'request', id: 2, channel: 'spec.parse', payload: { text: { nested: 1 } } }));
    ws.send(JSON.stringify({ kind: 'request', id: 3, channel: 'app.info', payload: {} }));
    await expect.poll(() => replies.length).toBe(4);
    expect(replies.filter((r) => r.error).length).toBe(3);
    expect(replies.find((r) => r.id === 3)?.result).toMatchObject({ transport: 'websocket' });
    ws.close();
    expect(served.child.exitCode).toBeNull();
    // And without the session (even holding the printed token) there is no socket.
    const denied = new WebSocket(`ws://127.0.0.1:${new URL(served.url).port}/bridge?token=${served.token}`, { origin: served.origin });
    const status = await new Promise<number | undefined>((r) => denied.once('unexpected-response', (_q, res) => r(res.statusCode)));
    expect(status).toBe(401);
    expect(session.pageErrors).toEqual([]);
  });

  it('loaded everything from 127.0.0.1 with no CSP violation or console error', () => {
    // Everything — Monaco, its workers, fonts — must come from kubedos serve itself (no CDN).
    expect(session.foreignRequests).toEqual([]);
    expect(session.consoleErrors.filter((e) => /Content Security Policy|Refused to|worker/i.test(e))).toEqual([]);
    expect(session.consoleErrors).toEqual([]);
  });
});
