// health.now over the contract with an injected reader of the hub: a cluster never deployed here
// and a stopped one are answered from the journal without contacting anything; a running one
// gets its node states from the report; an unreachable hub and a stale report say why; a bad
// target is refused by the request schema.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeEnvelope } from '../../common/contract/index';
import type { ClusterHealthNow } from '../../common/health/now';
import { lab3MixedFacts, watcherReportFor } from '../../common/health/testing';
import { TEMPLATES } from '../../common/spec/index';
import { injectedReader } from '../health/testing';
import { writeDeployJournal } from '../upgrade/testing';
import { dispatch } from './dispatch';
import { createWorkbench } from './workbench';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function bench(reader: ReturnType<typeof injectedReader>) {
  const dir = mkdtempSync(join(tmpdir(), 'kd-h17h-ipc-health-'));
  dirs.push(dir);
  const env = { KUBEDOS_WORKSPACE: join(dir, 'ws') };
  const wb = createWorkbench({ transport: 'websocket', workspace: join(dir, 'specs'), emit: () => {}, env, healthReader: reader });
  const now = (): Promise<ClusterHealthNow> => dispatch(wb.handlers, 'health.now', { text: TEMPLATES['lab-3'].text, target: { kind: 'qemu-local' } }).then((e) => decodeEnvelope(e) as ClusterHealthNow);
  return { env, wb, now };
}

describe('health.now', () => {
  it('answers from the journal when never deployed or stopped (nothing read), then from the hub report', async () => {
    const at = Date.now() / 1000 - 5;
    const reader = injectedReader({ report: watcherReportFor(lab3MixedFacts(at)), nowSeconds: () => Date.now() / 1000 });
    const { env, wb, now } = bench(reader);
    const never = await now();
    expect(never.unavailable).toMatchObject({ code: 'never-deployed', message: expect.stringMatching(/^lab-3 was never deployed from this machine \(no journal at .*\): deploy it first/) });
    expect(never.nodes.map((n) => n.state)).toEqual(['unknown', 'unknown', 'unknown']);
    expect(reader.calls).toBe(0);

    writeDeployJournal('lab-3', env, { after: [{ pipeline: 'stop', ok: true }] });
    const stopped = await now();
    expect(stopped.unavailable).toMatchObject({ code: 'not-running', message: expect.stringMatching(/^lab-3 is not running: .*stop/) });
    expect(reader.calls).toBe(0);

    writeDeployJournal('lab-3', env);
    const live = await now();
    expect(reader.calls).toBe(1);
    expect(live.unavailable).toBeUndefined();
    expect(Object.fromEntries(live.nodes.map((n) => [n.name, n.state]))).toEqual({ master: 'healthy', 'cp-1': 'degraded', 'w-1': 'unreachable' });
    expect(live.report?.ageSeconds).toBeGreaterThanOrEqual(5);
    await wb.dispose();
  });

  it('overlapping reads (two windows, the timer and Refresh) share the one read of the hub in flight', async () => {
    const reader = injectedReader({ report: watcherReportFor(lab3MixedFacts(Date.now() / 1000 - 5)), nowSeconds: () => Date.now() / 1000 });
    const { env, wb, now } = bench(reader);
    writeDeployJournal('lab-3', env);
    const [a, b, c] = await Promise.all([now(), now(), now()]);
    expect(reader.calls).toBe(1);
    expect([b, c]).toEqual([a, a]);
    await now();
    expect(reader.calls).toBe(2); // the next read after the first ended reads again
    await wb.dispose();
  });

  it('an unreachable hub and a stale report are answers with the reason, not errors', async () => {
    const down = bench(injectedReader({ unreachable: 'could not reach master (VMID 9100) through qemu-local: guest agent socket missing' }));
    writeDeployJournal('lab-3', down.env);
    expect((await down.now()).unavailable).toEqual({ code: 'unreadable', message: 'the hub master did not give its health report: could not reach master (VMID 9100) through qemu-local: guest agent socket missing' });
    await down.wb.dispose();

    const old = bench(injectedReader({ report: watcherReportFor(lab3MixedFacts(Date.now() / 1000 - 600)), nowSeconds: () => Date.now() / 1000 }));
    writeDeployJournal('lab-3', old.env);
    const stale = await old.now();
    expect(stale.unavailable?.code).toBe('stale');
    expect(stale.unavailable?.message).toMatch(/stale since \d\d:\d\d:\d\d UTC \((600|601) s old/);
    expect(JSON.stringify(await dispatch(old.wb.handlers, 'health.now', { text: TEMPLATES['lab-3'].text, target: { kind: 'nope' } }))).toMatch(/invalid|target/i);
    await old.wb.dispose();
  });
});
