// The renderer's drill store: events folded, the drill that is running for this cluster (what
// the Topology view colours), the history refreshed when a drill ends.
import { describe, expect, it } from 'vitest';
import { emptyPhases } from '../../../common/drills/timeline';
import type { DrillRecord } from '../../../common/drills/timeline';
import { createDrillsStore, runningDrill } from './store';

const rec = (o: Partial<DrillRecord>): DrillRecord => ({
  schema: 'kubedos.drill/v1',
  id: 'd1',
  kind: 'drill',
  cluster: 'lab-3',
  scenario: 'kill-etcd-member',
  node: 'cp-1',
  target: 'lab',
  status: 'running',
  startedAtMs: 1,
  phases: emptyPhases(),
  goal: { minutes: 2, source: 'test' },
  thresholds: { heartbeatSeconds: 1, silenceSeconds: 3, handshakeMaxAgeSeconds: 123, signals: ['etcd-member'], source: 'test' },
  guard: { ok: true, reasons: [] },
  ...o,
});

describe('drills store', () => {
  it('a running drill of this cluster is what the Topology colours; another cluster or a finished drill is not', () => {
    const s = createDrillsStore();
    s.getState().started();
    s.getState().ingest([{ type: 'record', record: rec({}) }]);
    expect(runningDrill(s.getState(), 'lab-3')?.id).toBe('d1');
    expect(runningDrill(s.getState(), 'other')).toBeUndefined();
    const nonce = s.getState().historyNonce;
    s.getState().ended(rec({ status: 'passed' }));
    expect(runningDrill(s.getState(), 'lab-3')).toBeUndefined();
    expect(s.getState().running).toBe(false);
    expect(s.getState().historyNonce).toBe(nonce + 1);
    s.getState().ended(undefined, 'refused: master is the hub');
    expect(s.getState().runError).toBe('refused: master is the hub');
  });
});
