// upgrade.progress over the contract: no record, a record (the lab-3 plan's nodes in plan order),
// an invalid spec refused with what to do.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeEnvelope } from '../../common/contract/index';
import { TEMPLATES } from '../../common/spec/index';
import { buildRef } from '../../common/upgrade/testing';
import { upgradeLivePath, upgradeRecordPath, writeUpgradeLive, writeUpgradeRecord } from '../upgrade/apply-run';
import { endLive, foldLive, startLive } from '../../common/upgrade/progress';
import { lab3Waves } from '../../common/upgrade/testing';
import { dispatch } from './dispatch';
import { createWorkbench } from './workbench';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A workbench over a fresh workspace, and upgrade.progress asked through its dispatch. */
function workbench() {
  const dir = mkdtempSync(join(tmpdir(), 'kd-h18w-ipc-upgrade-'));
  dirs.push(dir);
  const env = { KUBEDOS_WORKSPACE: join(dir, 'ws') };
  const wb = createWorkbench({ transport: 'websocket', workspace: join(dir, 'specs'), emit: () => {}, env });
  const ask = (text: string) => dispatch(wb.handlers, 'upgrade.progress', { text }).then(decodeEnvelope);
  return { env, wb, ask };
}

describe('upgrade.progress', () => {
  it('nothing without a record; the record per plan node with one', async () => {
    const { env, wb, ask } = workbench();
    expect(await ask(TEMPLATES['lab-3'].text)).toEqual({});
    const [n, n1] = [buildRef('0.1.0'), buildRef('0.2.0')];
    writeUpgradeRecord(upgradeRecordPath('lab-3', env), { target: n1, slots: { 'cp-1': { A: n, B: n1 } }, bad: [] });
    expect(await ask(TEMPLATES['lab-3'].text)).toMatchObject({ progress: { cluster: 'lab-3', nodes: [{ node: 'master', state: 'not-written' }, { node: 'cp-1', state: 'written', targetSlot: 'B' }, { node: 'w-1', state: 'not-written' }] } });
    expect(JSON.stringify(await dispatch(wb.handlers, 'upgrade.progress', { text: 'apiVersion: nope' }))).toMatch(/spec has \d+ error/);
  });

  it('the live run beside the record: running while its process lives, then finished with its end', async () => {
    const { env, ask } = workbench();
    const n1 = buildRef('0.2.0');
    const live = foldLive(startLive({ pid: process.pid, kind: 'upgrade', target: n1, waves: lab3Waves(), at: 1 }), { node: 'cp-1', step: 'write', slot: 'B', detail: 'wave 1: writing 0.2.0 into slot B' }, 2);
    writeUpgradeLive(upgradeLivePath('lab-3', env), live);
    expect(await ask(TEMPLATES['lab-3'].text)).toMatchObject({ live: { state: 'running', run: { current: 'cp-1', nodes: { 'cp-1': { step: 'write', slot: 'B' } } } }, progress: { cluster: 'lab-3', nodes: [{ node: 'master', state: 'not-written' }, { node: 'cp-1', state: 'not-written' }, { node: 'w-1', state: 'not-written' }] } });
    writeUpgradeLive(upgradeLivePath('lab-3', env), endLive(live, { kind: 'cancelled', message: 'upgrade to 0.2.0 cancelled' }, 3));
    expect(await ask(TEMPLATES['lab-3'].text)).toMatchObject({ live: { state: 'finished', run: { end: { kind: 'cancelled', message: 'upgrade to 0.2.0 cancelled' } } } });
  });
});
