// drills.history over the contract: records from the workspace, validated on the way out; a bad
// cluster name is refused by the request schema.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeEnvelope } from '../../common/contract/index';
import { emptyPhases } from '../../common/drills/timeline';
import { saveDrillRecord } from '../drills/history';
import { dispatch } from './dispatch';
import { createWorkbench } from './workbench';

describe('drills.history', () => {
  it('returns the recorded drills of a cluster, oldest first, and refuses a name that is not a cluster name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubedos-ipc-drills-'));
    const env = { KUBEDOS_WORKSPACE: join(dir, 'ws') };
    const wb = createWorkbench({ transport: 'websocket', workspace: join(dir, 'specs'), emit: () => {}, env });
    expect(decodeEnvelope(await dispatch(wb.handlers, 'drills.history', { cluster: 'lab-3' }))).toEqual({ records: [], total: 0, unreadable: 0 });
    const rec = {
      schema: 'kubedos.drill/v1' as const,
      id: 'x1',
      kind: 'drill' as const,
      cluster: 'lab-3',
      scenario: 'kill-etcd-member',
      node: 'cp-1',
      target: 'lab' as const,
      status: 'refused' as const,
      startedAtMs: 5,
      phases: emptyPhases(),
      goal: { minutes: 30, source: 'acceptance.mttrTargetMinutes' },
      thresholds: { heartbeatSeconds: 10, silenceSeconds: 60, handshakeMaxAgeSeconds: 180, signals: ['etcd-member'], source: 'spec' },
      guard: { ok: false, reasons: [{ code: 'quorum', message: 'would leave 0 of 1' }] },
    };
    saveDrillRecord(rec, env);
    saveDrillRecord({ ...rec, id: 'x0', startedAtMs: 1 }, env);
    const got = decodeEnvelope(await dispatch(wb.handlers, 'drills.history', { cluster: 'lab-3' })) as { records: { id: string }[]; total: number };
    expect(got.records.map((r) => r.id)).toEqual(['x0', 'x1']);
    expect(got.total).toBe(2);
    await expect(dispatch(wb.handlers, 'drills.history', { cluster: '../etc' }).then(decodeEnvelope)).rejects.toThrow(/cluster name/);
    await wb.dispose();
  });
});
