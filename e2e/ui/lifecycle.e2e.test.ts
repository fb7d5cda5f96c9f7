// The lifecycle bar of the Deploy view in Debian's chromium against `kubedos serve`: lab-3 has
// three VMs in the engine workspace (created, not booted: their disks, firmware vars and TPM
// folders are real files) and a VM of another cluster sits inside lab-3's VMID range. The
// destroy dialog names the cluster, counts what goes, lists the VM that stays, and only works
// once the name is typed; the destroy then really removes lab-3's VMs and workspace and leaves
// the other VM. Screenshots of the bar and the dialog at 1440×900 and 1280×720, dark and light,
// go to e2e/output/lifecycle-*.png.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plan } from '../../common/plan/index';
import type { Plan } from '../../common/plan/schema';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { ownershipTags } from '../../main/substrate/provision';
import { QemuLocalDriver } from '../../main/substrate/qemu-local';
import { OUTPUT } from './harness';
import type { UiSession } from './session';
import { serveSession, shots } from './session';
import { openWizard } from './wizard-driver';

let session: UiSession;
let page: Page;
const dir = mkdtempSync(join(tmpdir(), 'kubedos-e2e-lifecycle-'));
const engine = join(dir, 'engine');
const ws = join(engine, 'clusters/lab-3');
const stateDir = join(ws, 'vms');
const lab3: Plan = plan(parseSpec(TEMPLATES['lab-3'].text).spec!);
const foreign = lab3.substrate.vmidRange.end;

beforeAll(async () => {
  mkdirSync(join(dir, 'home'), { recursive: true, mode: 0o700 });
  mkdirSync(join(ws, 'trust'), { recursive: true });
  writeFileSync(join(ws, 'trust/root-ca.crt'), 'a certificate\n');
  const ours = new QemuLocalDriver({ stateDir, ownership: { tags: ownershipTags(lab3), vmidRange: lab3.substrate.vmidRange } });
  for (const n of lab3.nodes) await ours.create(n.vm, undefined);
  const theirs = new QemuLocalDriver({ stateDir, ownership: { tags: ['kubedos', 'cluster-other'], vmidRange: lab3.substrate.vmidRange } });
  const m = lab3.nodes[0]!.vm;
  await theirs.create({ ...m, vmid: foreign, name: 'stranger', tags: ['cluster-other', 'kubedos'], nics: m.nics.map((x) => ({ ...x, mac: '52:54:00:AA:BB:01' })) }, undefined);
  session = await serveSession([], undefined, { env: { HOME: join(dir, 'home'), KUBEDOS_WORKSPACE: engine, SSH_AUTH_SOCK: undefined } });
  page = session.page;
  await page.getByTestId('cluster-badge').filter({ hasText: 'lab-3' }).waitFor({ timeout: 15_000 });
}, 300_000);

afterAll(async () => {
  await session?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('lifecycle bar and destroy dialog', () => {
  it('names the cluster and the target, with stop, start and destroy', async () => {
    await openWizard(page);
    const bar = page.getByTestId('cluster-actions');
    await bar.waitFor();
    expect(await bar.textContent()).toMatch(/Cluster lab-3 on\s*qemu-local/);
    for (const id of ['cluster-stop', 'cluster-start', 'cluster-destroy']) expect(await page.getByTestId(id).isEnabled(), id).toBe(true);
  });

  it('the destroy dialog counts what goes, lists the VM that stays, and wants the name typed', async () => {
    await page.getByTestId('cluster-destroy').click();
    const counts = page.getByTestId('destroy-counts');
    await counts.waitFor({ timeout: 30_000 });
    expect(await counts.textContent()).toMatch(/This removes 3 VMs, 0 processes, 4 files and folders\. It cannot be undone\./);
    const dialog = page.getByTestId('destroy-dialog');
    expect(await dialog.textContent()).toContain('Destroy cluster lab-3 on qemu-local?');
    expect(await dialog.textContent()).toContain(`1 VM in the VMID range stays: not this cluster's`);
    expect(await dialog.textContent()).toContain(`${foreign} stranger`);
    expect(await dialog.textContent()).toMatch(/copied to .*recovery\/lab-3, so a restore stays possible/);
    expect(await page.getByTestId('destroy-confirm').isDisabled()).toBe(true);
    await page.getByTestId('destroy-confirm-name').fill('lab');
    expect(await page.getByTestId('destroy-confirm').isDisabled()).toBe(true);
    await page.getByTestId('destroy-confirm-name').fill('lab-3');
    expect(await page.getByTestId('destroy-confirm').isEnabled()).toBe(true);
    // The theme switches through its shortcut with the dialog open; the typed name stays.
    await shots(page, OUTPUT, 'lifecycle-destroy-dialog', { schemes: 'both', settleMs: 400 });
    expect(await page.getByTestId('destroy-confirm').isEnabled()).toBe(true);
  });

  it('destroys lab-3 for real; the foreign VM and its folder stay', async () => {
    await page.getByTestId('destroy-confirm').click();
    const outcome = page.getByTestId('lifecycle-outcome');
    await outcome.waitFor({ timeout: 120_000 });
    expect(await outcome.textContent()).toContain('lab-3 destroyed on qemu-local');
    expect(readdirSync(join(stateDir, 'vms'))).toEqual([String(foreign)]);
    expect(readdirSync(ws)).toEqual(['vms']);
    for (const n of lab3.nodes) expect(existsSync(join(stateDir, 'vms', String(n.vmid))), n.name).toBe(false);
    await shots(page, OUTPUT, 'lifecycle-bar', { schemes: 'both', settleMs: 600 });
    expect(session.pageErrors).toEqual([]);
  }, 180_000);
});
