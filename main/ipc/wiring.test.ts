// wiring.lastCheck / wiring.check over the contract: nothing recorded yet, a cluster never deployed
// refused with the journal's words (nothing probed), then a check on a (fake) deployed cluster
// recorded and read back the same; the request schema refuses a bad target.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import { decodeEnvelope } from '../../common/contract/index';
import { TEMPLATES } from '../../common/spec/index';
import { writeDeployJournal } from '../upgrade/testing';
import { runClusterWiringCheck } from '../wiring/service';
import { fakeCluster } from '../wiring/testing';
import { dispatch } from './dispatch';
import { createWorkbench } from './workbench';

afterAll(removeTempDirs);

describe('wiring.lastCheck / wiring.check', () => {
  it('says none ran, refuses a cluster never deployed, then records a check and returns it', async () => {
    const dir = tempDir('kubedos-ipc-wiring-');
    const env = { KUBEDOS_WORKSPACE: join(dir, 'ws') };
    const fake = fakeCluster();
    const wb = createWorkbench({ transport: 'websocket', workspace: join(dir, 'specs'), emit: () => {}, env, wiringRunner: (q) => runClusterWiringCheck({ ...q, driver: fake.driver }, { runId: 'ipc-1' }) });
    const text = TEMPLATES['lab-3'].text;
    expect(decodeEnvelope(await dispatch(wb.handlers, 'wiring.lastCheck', { text }))).toEqual({});
    const refused = await dispatch(wb.handlers, 'wiring.check', { text, target: { kind: 'qemu-local' } });
    expect(JSON.stringify(refused)).toMatch(/refused: lab-3 has no deploy in its journal .*then run the wiring check; nothing was probed/);
    expect(fake.calls).toEqual([]);
    writeDeployJournal('lab-3', env);
    const rec = decodeEnvelope(await dispatch(wb.handlers, 'wiring.check', { text, target: { kind: 'qemu-local' } })) as { cluster: string; failed: number; flows: number };
    expect(rec).toMatchObject({ cluster: 'lab-3', failed: 0 });
    expect(rec.flows).toBeGreaterThan(100);
    expect(decodeEnvelope(await dispatch(wb.handlers, 'wiring.lastCheck', { text }))).toEqual({ check: rec });
    expect(JSON.stringify(await dispatch(wb.handlers, 'wiring.check', { text, target: { kind: 'nope' } }))).toMatch(/invalid|target/i);
    await wb.dispose();
  });
});
