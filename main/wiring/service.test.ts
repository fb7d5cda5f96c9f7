// The deployed-cluster wiring check end to end over a fake substrate driver (what each VM's guest
// agent answers): listeners started and stopped on every node, one connect-many per source node
// with its JSON on stdin, a flow that disagrees reported and recorded, handshake ages by the hub's
// clock, and the record written privately in the workspace. The real probe runs in
// e2e/lab/wiring-shell.lab.test.ts.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import { TEMPLATES } from '../../common/spec/index';
import type { SubstrateDriver } from '../substrate/driver';
import { wiringChecks } from './matrix';
import { lastCheckPath, readLastCheck, runClusterWiringCheck } from './service';
import { fakeCluster, lab3 } from './testing';

afterAll(removeTempDirs);

const p = lab3;

function request(driver: SubstrateDriver, env: NodeJS.ProcessEnv) {
  return { specText: TEMPLATES['lab-3'].text, target: { kind: 'qemu-local' as const }, env, by: 'test', driver };
}

describe('wiring check on a deployed cluster (fake guest agents)', () => {
  it('probes every flow from its source node, reports and records the flow that disagrees, and the handshake ages', async () => {
    const env = { KUBEDOS_WORKSPACE: join(tempDir('kd-wiring-svc-'), 'ws') };
    const checks = wiringChecks(p, { denyPairs: 'ring' });
    const denied = checks.find((c) => c.expect === 'deny')!;
    const flip = `${denied.from.address}>${denied.to.address}:${denied.port}`;
    const { driver, calls } = fakeCluster({ flip });
    const run = await runClusterWiringCheck(request(driver, env), { denyPairs: 'ring', now: () => new Date('2027-01-02T03:04:05Z'), runId: 'test-1' });
    expect(run.report.results).toHaveLength(checks.length);
    expect(run.report.failed).toBe(1);
    expect(run.record).toMatchObject({ cluster: 'lab-3', checkedAt: '2027-01-02T03:04:05.000Z', target: 'qemu-local', hub: 'master', flows: checks.length, passed: checks.length - 1, failed: 1 });
    expect(run.record.mismatches).toEqual([expect.objectContaining({ fromNode: denied.from.node, from: denied.from.address, to: denied.to.address, port: denied.port, expect: 'deny', observed: 'open' })]);
    // Every listener started was stopped, on the node it ran on, under this run's id.
    const started = calls.filter((c) => c.argv[3] === 'kubedos-probe-serve').map((c) => `${c.node}:${c.argv[4]}`).sort();
    const stopped = calls.filter((c) => c.argv[3] === 'kubedos-probe-stop').map((c) => `${c.node}:${c.argv[4]}`).sort();
    expect(started).toEqual(p.nodes.map((n) => `${n.name}:test-1-${n.name}`).sort());
    expect(stopped).toEqual(started);
    // Each node's listeners know its plane addresses (where a port held by a service is still served).
    const cp1 = p.nodes.find((n) => n.name === 'cp-1')!;
    expect(calls.find((c) => c.node === 'cp-1' && c.argv[3] === 'kubedos-probe-serve')?.argv[8]).toBe([cp1.planes.wg1.address, cp1.planes.wg2.address, cp1.planes.wg3.address].map((a) => a.replace('/32', '')).join(','));
    // One connect-many per source node.
    expect(calls.filter((c) => c.argv[2] === 'connect-many').map((c) => c.node).sort()).toEqual(p.nodes.map((n) => n.name).sort());
    expect(run.handshakes).toContainEqual({ node: 'w-1', plane: 'wg3', ageSeconds: null });
    expect(run.handshakes).toContainEqual({ node: 'cp-1', plane: 'wg1', ageSeconds: 42 });
    expect(run.handshakes).toHaveLength(3 * (p.nodes.length - 1));
    // Summed over the nodes (each fake node counts every probe made so far).
    expect(run.record.counters).toEqual({ before: { default_deny_inter_plane: 0 }, after: { default_deny_inter_plane: p.nodes.length * checks.length } });
    // Recorded privately, read back the same.
    expect(run.recordPath).toBe(lastCheckPath('lab-3', env));
    expect(statSync(run.recordPath).mode & 0o777).toBe(0o600);
    expect(readLastCheck('lab-3', env).check).toEqual(run.record);
  });

  it('fails with the node, the command and its stderr tail when a probe cannot run, stops the listeners and records nothing', async () => {
    const env = { KUBEDOS_WORKSPACE: join(tempDir('kd-wiring-svc-'), 'ws') };
    const { driver, calls } = fakeCluster({ failConnectOn: 'w-1' });
    await expect(runClusterWiringCheck(request(driver, env), { runId: 'test-2' })).rejects.toThrow(/^w-1: \/usr\/lib\/kubedos\/backplane\/kubedos-probe connect-many \(\d+ connections\) failed: .*stderr: .*Too many open files; run it by hand on w-1/);
    expect(calls.filter((c) => c.argv[3] === 'kubedos-probe-stop')).toHaveLength(p.nodes.length);
    expect(readLastCheck('lab-3', env)).toEqual({});
  });
});
