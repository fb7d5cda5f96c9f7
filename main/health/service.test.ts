// clusterHealthNow with the real reader of the substrate (readHubAndAgents) over an in-memory
// driver: one connection pings every node's guest agent and reads the report on the hub; the
// nodes' states come from both. A substrate that cannot be reached is an answer with the reason.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HEALTH_WATCH_REPORT_PATH } from '../../common/drills/watcher';
import { lab3MixedFacts, watcherReportFor } from '../../common/health/testing';
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { readHubAndAgents } from '../drills/watcher-report';
import type { SubstrateDriver } from '../substrate/driver';
import { writeDeployJournal } from '../upgrade/testing';
import { clusterHealthNow } from './service';

const dir = mkdtempSync(join(tmpdir(), 'kd-h17h-health-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('clusterHealthNow through the substrate', () => {
  it('pings every guest agent and reads the hub report over one driver, then folds both', async () => {
    const text = TEMPLATES['lab-3'].text;
    const vmids = Object.fromEntries(plan(parseSpec(text).spec!).nodes.map((n) => [n.vmid, n.name]));
    const env = { KUBEDOS_WORKSPACE: dir };
    writeDeployJournal('lab-3', env);
    const at = 1_800_000_000;
    const pinged: string[] = [];
    const execs: [string, readonly string[]][] = [];
    let closed = 0;
    const driver = {
      guestPing: async (vmid: number) => {
        pinged.push(vmids[vmid]!);
        return vmids[vmid] !== 'w-1';
      },
      guestExec: async (vmid: number, argv: readonly string[]) => {
        execs.push([vmids[vmid]!, argv]);
        return { exitCode: 0, stdout: JSON.stringify(watcherReportFor(lab3MixedFacts(at))), stderr: '' };
      },
      close: async () => {
        closed++;
      },
    } as unknown as SubstrateDriver;
    const { live, watcher } = await clusterHealthNow({ specText: text, target: { kind: 'qemu-local' }, env }, { reader: (q) => readHubAndAgents({ ...q, driver }), nowSeconds: () => at + 3 });
    expect(pinged.sort()).toEqual(['cp-1', 'master', 'w-1']);
    expect(execs).toEqual([['master', ['cat', HEALTH_WATCH_REPORT_PATH]]]);
    expect(closed).toBe(0); // an injected driver is the caller's to close
    expect(watcher).toMatchObject({ readable: true, stale: false });
    expect(live.nodes.map((n) => [n.name, n.state])).toEqual([
      ['master', 'healthy'],
      ['cp-1', 'degraded'],
      ['w-1', 'unreachable'],
    ]);
    expect(live.nodes.find((n) => n.name === 'w-1')?.agent).toMatchObject({ measured: true, ok: false });

    const down = { guestPing: async () => false, guestExec: async () => Promise.reject(new Error('connect ENOENT qga.sock')), close: async () => undefined } as unknown as SubstrateDriver;
    const off = await clusterHealthNow({ specText: text, target: { kind: 'qemu-local' }, env }, { reader: (q) => readHubAndAgents({ ...q, driver: down }) });
    expect(off.live.unavailable).toEqual({ code: 'unreadable', message: expect.stringMatching(/^the hub master did not give its health report: could not reach master to read .*connect ENOENT qga\.sock/) });
  });
});
