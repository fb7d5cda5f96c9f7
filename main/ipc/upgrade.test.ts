// upgrade.progress over the contract: no record, a record (the lab-3 plan's nodes in plan order),
// an invalid spec refused with what to do.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeEnvelope } from '../../common/contract/index';
import { TEMPLATES } from '../../common/spec/index';
import { buildRef } from '../../common/upgrade/testing';
import { upgradeRecordPath, writeUpgradeRecord } from '../upgrade/apply-run';
import { dispatch } from './dispatch';
import { createWorkbench } from './workbench';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('upgrade.progress', () => {
  it('nothing without a record; the record per plan node with one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kd-h17u-ipc-upgrade-'));
    dirs.push(dir);
    const env = { KUBEDOS_WORKSPACE: join(dir, 'ws') };
    const wb = createWorkbench({ transport: 'websocket', workspace: join(dir, 'specs'), emit: () => {}, env });
    const ask = (text: string) => dispatch(wb.handlers, 'upgrade.progress', { text }).then(decodeEnvelope);
    expect(await ask(TEMPLATES['lab-3'].text)).toEqual({});
    const [n, n1] = [buildRef('0.1.0'), buildRef('0.2.0')];
    writeUpgradeRecord(upgradeRecordPath('lab-3', env), { target: n1, slots: { 'cp-1': { A: n, B: n1 } }, bad: [] });
    expect(await ask(TEMPLATES['lab-3'].text)).toMatchObject({ progress: { cluster: 'lab-3', nodes: [{ node: 'master', state: 'not-written' }, { node: 'cp-1', state: 'written', targetSlot: 'B' }, { node: 'w-1', state: 'not-written' }] } });
    expect(JSON.stringify(await dispatch(wb.handlers, 'upgrade.progress', { text: 'apiVersion: nope' }))).toMatch(/spec has \d+ error/);
  });
});
