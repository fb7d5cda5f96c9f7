// The trust operations (main/trust/operations.ts) on lab-3 in network namespaces, with the real
// payload, through the same NodeShell a deployed cluster gives them: the enrollment window closed
// refuses an enrollment and open admits it; rotating a node's keys gives a fresh handshake with
// the new key and the old one is gone from the hub; revoking a node removes its peers from the hub
// (its handshakes stop) and its next token is refused; the refusals name the mistake.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, enroll, token } from '../../main/lab/backplane';
import type { LabTrustTarget } from '../../main/trust/lab-target';
import { createLabTrustTarget } from '../../main/trust/lab-target';
import { runTrustOperation } from '../../main/trust/operations';
import { lab3Plan } from './specs';

const PLANES = ['wg1', 'wg2', 'wg3'] as const;

describe('trust operations on the lab-3 namespace lab', () => {
  let t: LabTrustTarget;
  const started = Date.now();

  beforeAll(async () => {
    t = await createLabTrustTarget(lab3Plan(), { log: (l) => console.log(l) });
  }, 120_000);
  afterAll(() => {
    t?.destroy();
    console.log(`trust operations suite: ${Math.round((Date.now() - started) / 1000)} s`);
  });

  const keysOf = async (node: string): Promise<Record<string, string>> => {
    const out: Record<string, string> = {};
    for (const p of PLANES) out[p] = (await t.lab.exec(node, ['wg', 'show', p, 'public-key'])).stdout.trim();
    return out;
  };
  const hubHandshakes = async (plane: string): Promise<Record<string, number>> => {
    const r = await t.lab.exec(t.lab.hub.name, ['wg', 'show', plane, 'latest-handshakes']);
    return Object.fromEntries(r.stdout.trim().split('\n').filter(Boolean).map((l) => l.split('\t')).map(([k, v]) => [k, Number(v)]));
  };
  const hubPeerKeys = async (plane: string): Promise<string[]> => Object.keys(await hubHandshakes(plane));

  it('window closed: an enrollment is refused; opened: accepted; closed again by PID', async () => {
    const closed = await runTrustOperation(t, { op: 'window-close' });
    expect(closed.changed).toEqual([]);
    expect(closed.unchanged).toEqual(['no enrollment window was open']);
    const refused = await enroll(t.lab, 'cp-1', token(t.lab, t.trust, { node: 'cp-1' }));
    expect(refused.exitCode, refused.stderr).toBe(4); // hub unreachable / window closed

    const opened = await runTrustOperation(t, { op: 'window-open', minutes: 2 });
    expect(opened.changed[0]).toMatch(/enrollment window opened on .*:\d+ until .* \(2 min\)/);
    const again = await runTrustOperation(t, { op: 'window-open' });
    expect(again.changed).toEqual([]);
    expect(again.unchanged[0]).toMatch(/already open/);
    const accepted = await enroll(t.lab, 'cp-1', token(t.lab, t.trust, { node: 'cp-1' }));
    expect(accepted.exitCode, accepted.stderr).toBe(0);

    const shut = await runTrustOperation(t, { op: 'window-close' });
    expect(shut.changed[0]).toMatch(/closed/);
    const status = JSON.parse((await t.lab.exec(t.lab.hub.name, [bin('kubedos-enroll-hub'), 'status'])).stdout) as { window: unknown };
    expect(status.window).toBeNull();
  }, 120_000);

  it('rotating a node\'s keys: new keys on every plane, the hub holds only them, a fresh handshake', async () => {
    const before = await keysOf('w-1');
    const t0 = Math.floor(Date.now() / 1000);
    const r = await runTrustOperation(t, { op: 'rotate-node', node: 'w-1' }, { log: (l) => console.log(l) });
    expect(r.changed.join('\n')).toMatch(/re-enrolled with a fresh single-use token through a window opened for it/);
    const after = await keysOf('w-1');
    for (const p of PLANES) {
      expect(after[p], p).not.toBe(before[p]);
      const hs = await hubHandshakes(p);
      expect(Object.keys(hs), `${p}: the old key is gone from the hub`).not.toContain(before[p]);
      expect(hs[after[p]!], `${p}: handshake with the new key`).toBeGreaterThanOrEqual(t0);
    }
    // No window left open by the rotation.
    const status = JSON.parse((await t.lab.exec(t.lab.hub.name, [bin('kubedos-enroll-hub'), 'status'])).stdout) as { window: unknown };
    expect(status.window).toBeNull();
    console.log(`rotate-node w-1 in ${r.durationMs} ms`);
  }, 180_000);

  it('rotating the hub\'s keys: every spoke switches and reaches the hub on every plane', async () => {
    const before = await keysOf('master');
    const r = await runTrustOperation(t, { op: 'rotate-hub' });
    const after = await keysOf('master');
    for (const p of PLANES) expect(after[p]).not.toBe(before[p]);
    expect(r.changed[1]).toMatch(/2 nodes switched to them \(cp-1, w-1\)/);
    console.log(`rotate-hub in ${r.durationMs} ms`);
  }, 120_000);

  it('revoking a node: its peers leave the hub, its handshakes stop, its next token is refused', async () => {
    const w1 = await keysOf('w-1');
    const r = await runTrustOperation(t, { op: 'revoke', node: 'w-1', reason: 'lab: stolen disk' });
    expect(r.changed.join('\n')).toMatch(/3 peers of w-1 removed from the hub/);
    for (const p of PLANES) expect(await hubPeerKeys(p), p).not.toContain(w1[p]);
    const ping = await t.lab.try('w-1', ['ping', '-c', '1', '-W', '2', '-I', 'wg1', t.lab.hub.plan.planes.wg1.address.replace(/\/32$/, '')]);
    expect(ping.exitCode, 'w-1 no longer reaches the hub on wg1').not.toBe(0);

    const again = await runTrustOperation(t, { op: 'revoke', node: 'w-1' });
    expect(again.changed).toEqual([]);
    expect(again.unchanged[0]).toMatch(/already on the hub's revocation list/);

    await runTrustOperation(t, { op: 'window-open', minutes: 1 });
    try {
      const refused = await enroll(t.lab, 'w-1', token(t.lab, t.trust, { node: 'w-1' }));
      expect(refused.exitCode, refused.stderr).toBe(2);
      expect(refused.stderr).toMatch(/revoked/);
    } finally {
      await runTrustOperation(t, { op: 'window-close' });
    }
    await expect(runTrustOperation(t, { op: 'rotate-node', node: 'w-1' })).rejects.toThrow(/cannot rotate the keys of w-1: it is revoked/);
  }, 120_000);

  it('refuses the hub, unknown nodes (with the closest name) before touching anything', async () => {
    await expect(runTrustOperation(t, { op: 'revoke', node: 'master' })).rejects.toThrow(/cannot revoke master: it is the hub/);
    await expect(runTrustOperation(t, { op: 'rotate-node', node: 'w-2' })).rejects.toThrow(/no node "w-2" in lab-3; did you mean w-1\?/);
    await expect(runTrustOperation(t, { op: 'rotate-node', node: 'master' })).rejects.toThrow(/rotate its keys with --hub/);
  });
});
