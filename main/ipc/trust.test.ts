// The workbench's trust channels: the inventory of any valid spec (also one that does not build
// yet), refusals with the reason before anything runs, one operation at a time.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TEMPLATES } from '../../common/spec/index';
import { trustInventoryOf, trustRun } from './trust';

const ws = mkdtempSync(join(tmpdir(), 'h17-ipc-'));
afterAll(() => rmSync(ws, { recursive: true, force: true }));
const b = { env: { KUBEDOS_WORKSPACE: ws } };

describe('trust.inventory / trust.run', () => {
  it('lists an empty inventory for a spec that is valid but does not build yet (reference-16 turns on Kubernetes without sources)', () => {
    const inv = trustInventoryOf(b, { text: TEMPLATES['reference-16'].text });
    expect(inv).toMatchObject({ identities: [], wireguard: [], revoked: [], warnings: [] });
    expect(inv.dir).toBe(join(ws, 'clusters', inv.cluster, 'trust'));
  });

  it('refuses without running anything: a deployed cluster (not reachable yet), the hub, an unknown node', async () => {
    const text = TEMPLATES['lab-3'].text;
    await expect(trustRun(b, { text, operation: { op: 'window-open' }, lab: false })).rejects.toMatchObject({ code: 'trust.refused', message: expect.stringMatching(/cannot reach a deployed cluster from here yet.*Nothing was changed/) });
    await expect(trustRun(b, { text, operation: { op: 'revoke', node: 'master' }, lab: true })).rejects.toMatchObject({ code: 'trust.refused', message: expect.stringMatching(/cannot revoke master: it is the hub/) });
    await expect(trustRun(b, { text, operation: { op: 'rotate-node', node: 'cp1' }, lab: true })).rejects.toMatchObject({ message: expect.stringMatching(/no node "cp1" in lab-3; did you mean cp-1\?/) });
    await expect(trustRun({ ...b, running: new Promise(() => undefined) }, { text, operation: { op: 'rotate-hub' }, lab: true })).rejects.toMatchObject({ code: 'trust.busy' });
  });
});
