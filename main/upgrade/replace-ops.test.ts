// ClusterReplaceOps (a deployed cluster's ReplaceOps) against an in-memory substrate and the nodes'
// guest agents (fence-testing.ts): what runs on which node and in which order, that a provision
// acts on its node alone (a deploy run of that node from the kept artifact of the build, no other
// VM touched), the gate asked again until it passes or its window ends, and the refusal of a build
// no kept artifact is of.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../common/canonical';
import type { PipelineEvent } from '../../common/pipeline/events';
import type { BuildRef } from '../../common/upgrade/agent';
import { MANIFEST_FILE } from '../build/attest';
import { etcdMemberVarsPath } from '../drills/etcd-member';
import { fakeFenceCluster, lab5Plan } from '../drills/fence-testing';
import type { PipelineResult } from '../pipeline/runner';
import type { GuestExecResult, Inventory, SubstrateDriver } from '../substrate/driver';
import { ClusterReplaceOps } from './replace-ops';

const p = lab5Plan();
const byVmid = new Map(p.nodes.map((n) => [n.vmid, n.name]));

const root = mkdtempSync(join(tmpdir(), 'h21c-replace-ops-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A kept build directory whose signed manifest is `text`; its BuildRef. */
function kept(name: string, version: string): { dir: string; ref: BuildRef } {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const text = JSON.stringify({ artifactVersion: version, cluster: p.cluster.name });
  writeFileSync(join(dir, MANIFEST_FILE), text);
  return { dir, ref: { version, digest: sha256Hex(Buffer.from(text)) } };
}
const N = kept('build-n', '0.1.0');
const N1 = kept('build-n1', '0.2.0');

const stage = (name: string, state: 'running' | 'success' | 'failed', seq: number): PipelineEvent => ({ type: 'stage', stage: name, state, rerun: 'safe-rerun', attempt: 0, runId: 'node-run', seq, time: '2026-12-05T00:00:00.000Z', ...(state === 'success' ? { changes: 1, durationMs: 2000 } : {}) }) as PipelineEvent;

/** The substrate: every planned VM present and answering; records what is asked of it. */
function fakeCluster(o: { gate?: GuestExecResult[]; deploy?: (node: string, dir: string) => PipelineResult } = {}) {
  const c = fakeFenceCluster(p);
  const present = new Set(p.nodes.map((n) => n.vmid));
  const calls: string[] = [];
  const gates = [...(o.gate ?? [])];
  const driver = {
    async inventory(): Promise<Inventory> {
      calls.push('inventory');
      return { host: 'fake', node: 'fake', storages: [], vms: [...present].map((vmid) => ({ vmid, name: byVmid.get(vmid)!, tags: [], status: 'running' as const })) };
    },
    async destroy(vmid: number, d: { allowDestroy: boolean }) {
      calls.push(`destroy ${byVmid.get(vmid)} allowDestroy=${d.allowDestroy}`);
      present.delete(vmid);
    },
    async guestPing(vmid: number) {
      return present.has(vmid);
    },
    async guestExec(vmid: number, argv: readonly string[]): Promise<GuestExecResult> {
      calls.push(`${byVmid.get(vmid)}: ${argv.join(' ')}`);
      return gates.shift() ?? { exitCode: 0, stdout: 'gate: pass (slot A, already active)\n', stderr: '' };
    },
  } as unknown as SubstrateDriver;
  const deployed: string[] = [];
  const ops = (extra: Partial<ConstructorParameters<typeof ClusterReplaceOps>[0]> = {}) =>
    new ClusterReplaceOps({
      plan: p,
      driver,
      shell: c.shell,
      artifactDirs: [N1.dir, N.dir],
      metrics: async (node) => `kubedos_gate_success{node="${node}"} 1\n`,
      async deployNode(node, dir, _build, onEvent) {
        deployed.push(`${node} from ${dir}`);
        c.log.push(`deploy run of ${node}`);
        const r = o.deploy?.(node, dir) ?? { runId: 'node-run', ok: true, states: {}, failures: [], durationMs: 1, outputs: {} };
        ['provision', 'firstboot', 'backplanes', 'enroll'].forEach((s, i) => onEvent(stage(s, r.ok ? 'success' : 'failed', i)));
        return r;
      },
      ...extra,
    });
  return { c, calls, deployed, present, ops };
}

describe('ClusterReplaceOps (a deployed cluster\'s replace operations)', () => {
  it('fence: an etcd member removed on a healthy peer first, then revoked at the hub; a worker is only revoked', async () => {
    const f = fakeCluster();
    expect(await f.ops().fence('cp-2')).toBe('revoked at the hub; plane peers removed: cp-2/wg1, cp-2/wg2, cp-2/wg3; etcd member a2 (cp-2) removed on cp-1; 2 of 2 members healthy');
    expect(f.c.log).toEqual(['cp-1: etcdctl endpoint health -w json', 'cp-1: etcdctl member list -w json', 'cp-1: etcdctl member list -w json', 'cp-1: etcdctl endpoint health -w json', 'cp-1: etcdctl member remove a2', 'master: /usr/lib/kubedos/backplane/kubedos-enroll-hub revoke cp-2 --reason upgrade: replaced by a new VM']);
    const w = fakeCluster();
    await w.ops().fence('w-1');
    expect(w.c.log).toEqual(['master: /usr/lib/kubedos/backplane/kubedos-enroll-hub revoke w-1 --reason upgrade: replaced by a new VM']);
    expect([...w.c.members.keys()]).toEqual(['a1', 'a2', 'a3']);
  });

  it('fence refused by the quorum rule: nothing removed and the node not revoked', async () => {
    const f = fakeCluster();
    f.c.unhealthy.add('cp-3');
    await expect(f.ops().fence('cp-2')).rejects.toThrow(/cp-2's etcd member a2 is not removed \(membership left as is\)/);
    expect(f.c.revoked()).toEqual([]);
    expect(f.c.members.size).toBe(3);
  });

  it('exists and destroy: the VMID in the inventory; destroyed with allowDestroy, the other VMs kept', async () => {
    const f = fakeCluster();
    const ops = f.ops();
    expect(await ops.exists('w-1')).toBe(true);
    expect(await ops.destroy('w-1')).toBe(`VM ${p.nodes.find((n) => n.name === 'w-1')!.vmid} (w-1) destroyed with its disks and TPM state`);
    expect(await ops.exists('w-1')).toBe(false);
    expect(f.calls.filter((x) => x.startsWith('destroy'))).toEqual(['destroy w-1 allowDestroy=true']);
    expect(f.present.size).toBe(p.nodes.length - 1);
  });

  it('provision: revocation lifted, a deploy run of that node alone from the kept artifact of the build, then its etcd member added and recorded; no other VM touched', async () => {
    const f = fakeCluster();
    const ops = f.ops();
    await ops.fence('cp-2');
    await ops.destroy('cp-2');
    f.c.log.length = 0;
    f.calls.length = 0;
    const line = await ops.provision('cp-2', N1.ref);
    expect(f.deployed).toEqual([`cp-2 from ${N1.dir}`]);
    expect(f.c.revoked()).toEqual([]);
    // Lift (read, write), the deploy run, then the member (health, list on a peer; add; list; record on the master).
    expect(f.c.log.slice(0, 3)).toEqual([expect.stringMatching(/^master: \/bin\/sh -c cat /), expect.stringMatching(/^master: \/bin\/sh -c umask 022; cat /), 'deploy run of cp-2']);
    expect(f.c.log.slice(3).filter((l) => /member add|mkdir/.test(l))).toEqual(['cp-1: etcdctl member add cp-2', expect.stringMatching(/^master: \/bin\/sh -c umask 022 && mkdir -p /)]);
    expect(f.c.files.get(etcdMemberVarsPath('cp-2'))).toContain('kubedos_etcd_initial_cluster_state: existing');
    expect(line).toMatch(/^VM 3003 \(cp-2\) created from 0\.2\.0; cp-2 taken off the revocation list for its replacement; deploy of cp-2 from .*build-n1: provision 1 change \(2 s\), firstboot 1 change \(2 s\), backplanes 1 change \(2 s\), enroll 1 change \(2 s\); etcd member d0 \(cp-2, /);
    // The substrate was asked nothing by provision itself (the deploy run is the one that creates the VM).
    expect(f.calls.filter((x) => /destroy|inventory/.test(x))).toEqual([]);
    // Rolling back: N's kept artifact.
    f.deployed.length = 0;
    await ops.provision('w-1', N.ref);
    expect(f.deployed).toEqual([`w-1 from ${N.dir}`]);
  });

  it('provision whose deploy run fails: the stage, node and command said; no etcd member added', async () => {
    const f = fakeCluster({ deploy: () => ({ runId: 'node-run', ok: false, states: {}, failures: [{ stage: 'enroll', node: 'cp-2', message: 'cp-2 did not enroll: kubedos-enroll-agent exited 2', command: ['kubedos-enroll-agent', 'enroll'], exitCode: 2, stderrTail: 'refused: revoked' }], durationMs: 1, outputs: {} }) });
    const ops = f.ops();
    await ops.fence('cp-2');
    await expect(ops.provision('cp-2', N1.ref)).rejects.toMatchObject({ message: expect.stringMatching(/failed at enroll on cp-2: cp-2 did not enroll/), command: ['kubedos-enroll-agent', 'enroll'], stderrTail: 'refused: revoked' });
    expect(f.c.members.size).toBe(2);
  });

  it('a build no kept artifact is of: refused, naming the directories and their digests; nothing run', async () => {
    const f = fakeCluster();
    const ops = f.ops();
    const other: BuildRef = { version: '0.3.0', digest: 'f'.repeat(64) };
    expect(ops.cannotProvision(N.ref)).toBeUndefined();
    expect(ops.cannotProvision(N1.ref)).toBeUndefined();
    expect(ops.cannotProvision(other)).toMatch(new RegExp(`^no kept artifact of 0\\.3\\.0 \\(manifest sha256 ffffffffffff\\) to create replaced nodes from: .*build-n1: manifest ${N1.ref.digest.slice(0, 12)}; .*build-n: manifest ${N.ref.digest.slice(0, 12)}\\. .*nothing was touched$`));
    await expect(ops.provision('w-1', other)).rejects.toThrow(/no kept artifact of 0\.3\.0/);
    expect(f.deployed).toEqual([]);
    expect(f.c.log).toEqual([]);
  });

  it('gate: kubedos-health-gate --no-reboot on the node until it passes, then its textfile; at the end of its window, the textfile as the last pass left it', async () => {
    const fail = { exitCode: 1, stdout: 'node-ready: not Ready\ngate: fail (node-ready: not Ready) on the active slot A: nothing to fall back to; heal the node\n', stderr: '' };
    const f = fakeCluster({ gate: [fail, fail] });
    let t = 0;
    const slept: number[] = [];
    const ops = f.ops({ now: () => t, sleep: async (ms) => void slept.push((t += ms)), gateIntervalMs: 10_000, gateWindowMs: 60_000 });
    expect(await ops.gate('w-1')).toBe('kubedos_gate_success{node="w-1"} 1\n');
    expect(f.calls).toEqual(['w-1: /usr/local/sbin/kubedos-health-gate --no-reboot', 'w-1: /usr/local/sbin/kubedos-health-gate --no-reboot', 'w-1: /usr/local/sbin/kubedos-health-gate --no-reboot']);
    expect(slept).toEqual([10_000, 20_000]);
    const lines: string[] = [];
    const g = fakeCluster({ gate: Array.from({ length: 20 }, () => fail) });
    t = 0;
    const ops2 = g.ops({ now: () => t, sleep: async (ms) => void (t += ms), gateIntervalMs: 10_000, gateWindowMs: 30_000, log: (l) => lines.push(l) });
    expect(await ops2.gate('w-1')).toBe('kubedos_gate_success{node="w-1"} 1\n');
    expect(g.calls).toHaveLength(4);
    expect(lines).toEqual(['w-1: its gate still fails at the end of its window: node-ready: not Ready']);
  });

  it('gate: a failure the gate reports as final is asked once (a unit systemd gave up on, a check it does not wait on); a waiting one is asked again; a gate that cannot run is said at once', async () => {
    const active = (check: string) => ({ exitCode: 1, stdout: `gate: services FAILED: x\ngate: fail (${check}) on the active slot A: nothing to fall back to; heal the node\n`, stderr: '' });
    const clock = () => {
      let t = 0;
      return { now: () => t, sleep: async (ms: number) => void (t += ms), gateIntervalMs: 10_000, gateWindowMs: 300_000 };
    };
    // Definite: returns after one ask, the textfile as the gate left it (the loop reads the failing check there).
    for (const check of ['services: kubelet failed (systemd gave up)', 'planes: planes down: wg2: not waiting']) {
      const lines: string[] = [];
      const f = fakeCluster({ gate: Array.from({ length: 40 }, () => active(check)) });
      expect(await f.ops({ ...clock(), log: (l) => lines.push(l) }).gate('w-1'), check).toBe('kubedos_gate_success{node="w-1"} 1\n');
      expect(f.calls, check).toEqual(['w-1: /usr/local/sbin/kubedos-health-gate --no-reboot']);
      expect(lines, check).toEqual([`w-1: its gate failed for good (${check}): not asked again`]);
    }
    // Waiting checks (a unit not active yet, a stale hub handshake, node-ready): asked again until they pass.
    for (const check of ['services: not active: kubelet', 'planes: no hub handshake within 180 s on wg1', 'node-ready: node Ready is \'False\'']) {
      const f = fakeCluster({ gate: [active(check), active(check)] });
      await f.ops(clock()).gate('w-1');
      expect(f.calls, check).toHaveLength(3);
    }
    // The gate missing (127) or not executable (126), or one that does not know --no-reboot: thrown after one ask, saying so.
    for (const [r, why] of [
      [{ exitCode: 127, stdout: '', stderr: 'sh: 1: /usr/local/sbin/kubedos-health-gate: not found\n' }, /exit 127: not found; sh: 1: .*not found\)/],
      [{ exitCode: 126, stdout: '', stderr: '' }, /exit 126: not executable\)/],
      [{ exitCode: 2, stdout: '', stderr: 'kubedos-health-gate: unknown option --no-reboot\n' }, /refused its arguments \("kubedos-health-gate: unknown option --no-reboot": an older gate\)/],
    ] as const) {
      const f = fakeCluster({ gate: Array.from({ length: 40 }, () => r) });
      await expect(f.ops(clock()).gate('w-1')).rejects.toThrow(why);
      expect(f.calls).toHaveLength(1);
    }
  });
});
