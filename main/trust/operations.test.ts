// The trust operations against a scripted NodeShell (what a deployed cluster's guest agents give
// them): which commands run on which node, what is refused before anything changes, a revocation
// kept in the workspace, a failed re-key putting the old keys back. The real payload is exercised by
// e2e/lab/trust-ops.lab.test.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { plan as planOf } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import type { RunResult } from '../exec/runner';
import type { NodeShell } from '../drills/shell';
import { runTrustOperation } from './operations';
import type { TrustTarget } from './operations';
import { preflightTrustOperation, runTrustOperationOnCluster, workspaceRevocations } from './service';

const plan = planOf(parseSpec(TEMPLATES['lab-3'].text).spec!);
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

type Answer = { stdout?: string; exitCode?: number };
/** A shell answering from a script: the first rule whose node and argv prefix match. */
function scripted(rules: [string, string[], Answer | ((argv: readonly string[]) => Answer)][]): NodeShell & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async exec(node, argv, o) {
      calls.push(`${node}: ${argv.join(' ')}`);
      const rule = rules.find(([n, prefix]) => n === node && prefix.every((p, i) => argv[i] === p));
      if (!rule) throw new Error(`unscripted: ${node}: ${argv.join(' ')}`);
      const a = typeof rule[2] === 'function' ? rule[2](argv) : rule[2];
      const r: RunResult = { command: [...argv], exitCode: a.exitCode ?? 0, signal: null, stdout: a.stdout ?? '', stderr: '', durationMs: 1 };
      if (r.exitCode !== 0 && !o?.anyExit) throw Object.assign(new Error(`exit ${r.exitCode}`), { exitCode: r.exitCode });
      return r;
    },
  };
}

const HUB = '/usr/lib/kubedos/backplane/kubedos-enroll-hub';
const status = (o: { enrolled?: string[]; revoked?: string[]; window?: unknown }) => ({ stdout: JSON.stringify({ enrolled: o.enrolled ?? ['cp-1', 'w-1'], revoked: o.revoked ?? [], window: o.window ?? null }) });
const target = (shell: NodeShell): TrustTarget => ({ kind: 'cluster', plan, shell, hmacKey: Buffer.alloc(32, 7) });
const w1 = plan.nodes.find((n) => n.name === 'w-1')!;

describe('trust operations (scripted shell)', () => {
  it('revoke on a cluster: the hub revokes, nothing of the node is left on its planes, the workspace keeps the revocation', async () => {
    const ws = mkdtempSync(join(tmpdir(), 'h17-ops-'));
    dirs.push(ws);
    const sh = scripted([
      ['master', [HUB, 'status'], status({})],
      ['master', [HUB, 'revoke', 'w-1'], { stdout: JSON.stringify({ revoked: 'w-1', removed: ['w-1/wg1', 'w-1/wg2', 'w-1/wg3'] }) }],
      ['master', ['wg', 'show'], { stdout: 'KEYcp1=\t10.111.0.3/32\n' }],
    ]);
    const r = await runTrustOperationOnCluster(target(sh), ws, { op: 'revoke', node: 'w-1', reason: 'stolen disk' }, { now: () => 5_000 });
    expect(sh.calls.slice(0, 2)).toEqual(['master: ' + `${HUB} status`, `master: ${HUB} revoke w-1 --reason stolen disk`]);
    expect(sh.calls.filter((c) => c.startsWith('w-1'))).toEqual([]);
    expect(r.changed).toEqual([
      "w-1 added to the hub's revocation list (/etc/kubedos/enroll/revoked.json): the enrollment window refuses it from now on",
      '3 peers of w-1 removed from the hub (w-1/wg1, w-1/wg2, w-1/wg3): it is cut off every plane',
      `w-1 added to the workspace's revocation list (${join(ws, 'trust', 'revoked.json')})`,
    ]);
    expect(workspaceRevocations(ws, 'lab-3').revoked).toEqual([{ node: 'w-1', at: 5, reason: 'stolen disk' }]);
    // Revoked in the workspace: re-keying it is refused before anything is contacted.
    expect(preflightTrustOperation(plan, { op: 'rotate-node', node: 'w-1' }, { workspace: ws, lab: false })).toMatch(/cannot rotate the keys of w-1: it is revoked/);
    // A lab is a fresh copy of the plan: the workspace's revocations are not in it.
    expect(preflightTrustOperation(plan, { op: 'rotate-node', node: 'w-1' }, { workspace: ws, lab: true, root: true })).toBeUndefined();
  });

  it('revoke fails loudly when the hub still holds a peer with the node\'s address', async () => {
    const sh = scripted([
      ['master', [HUB, 'status'], status({})],
      ['master', [HUB, 'revoke', 'w-1'], { stdout: JSON.stringify({ revoked: 'w-1', removed: [] }) }],
      ['master', ['wg', 'show', 'wg2'], { stdout: `KEYw1=\t${w1.planes.wg2.address}\n` }],
      ['master', ['wg', 'show'], { stdout: '' }],
    ]);
    await expect(runTrustOperation(target(sh), { op: 'revoke', node: 'w-1' })).rejects.toThrow(/still has a peer with its address on wg2: run kubedos-enroll-hub enforce on master/);
  });

  it('rotate-node: refused for a node the hub revoked or never enrolled, with only the status read', async () => {
    const revoked = scripted([['master', [HUB, 'status'], status({ revoked: ['w-1'] })]]);
    await expect(runTrustOperation(target(revoked), { op: 'rotate-node', node: 'w-1' })).rejects.toThrow(/cannot rotate the keys of w-1: it is revoked.*nothing was changed/);
    expect(revoked.calls).toEqual([`master: ${HUB} status`]);
    const never = scripted([['master', [HUB, 'status'], status({ enrolled: ['cp-1'] })]]);
    await expect(runTrustOperation(target(never), { op: 'rotate-node', node: 'w-1' })).rejects.toThrow(/w-1 is not enrolled on the hub, so it has no keys to rotate/);
  });

  it('rotate-node: a refused re-enrollment puts the old keys back and says so; the window it opened is closed', async () => {
    let up = 0;
    let windowOpen = false;
    const sh = scripted([
      ['master', [HUB, 'status'], () => status({ window: windowOpen ? { listen: '10.110.0.16', port: 8443, closesAt: 2e9, pid: 4242 } : null })],
      ['master', ['/bin/sh', '-c'], () => ((windowOpen = true), {})],
      ['master', ['kill', '-TERM', '4242'], () => ((windowOpen = false), {})],
      ['w-1', ['wg', 'show', 'all', 'public-key'], () => ({ stdout: ['wg1', 'wg2', 'wg3'].map((p) => `${p}\tK${up}${p}=`).join('\n') })],
      ['w-1', ['/usr/lib/kubedos/backplane/kubedos-planes', 'up'], () => ((up += 1), {})],
      ['w-1', ['/usr/lib/kubedos/backplane/kubedos-enroll-agent', 'enroll'], { exitCode: 2, stdout: 'refused: token expired' }],
      ['w-1', ['/bin/sh', '-c'], {}],
    ]);
    await expect(runTrustOperation(target(sh), { op: 'rotate-node', node: 'w-1' })).rejects.toThrow(/w-1: re-enrollment with the new keys failed \(kubedos-enroll-agent exit 2: refused: token expired\); its old keys were put back \(kubedos-planes up\)/);
    const onW1 = sh.calls.filter((c) => c.startsWith('w-1'));
    expect(onW1.some((c) => c.includes('mv -f "$f" "$f.old"'))).toBe(true);
    expect(onW1.some((c) => c.includes('mv -f "$f.old" "$f"'))).toBe(true);
    expect(onW1.filter((c) => c.endsWith('kubedos-planes up'))).toHaveLength(2);
    // The token went through stdin: never in an argv.
    expect(sh.calls.some((c) => c.includes('kdt1.'))).toBe(false);
    expect(sh.calls).toContain('master: kill -TERM 4242');
    expect(windowOpen).toBe(false);
  });

  it('window open while one is open, and close while none is: nothing started or stopped', async () => {
    const open = scripted([['master', [HUB, 'status'], status({ window: { listen: '10.110.0.16', port: 8443, closesAt: 2e9, pid: 1 } })]]);
    const r = await runTrustOperation(target(open), { op: 'window-open', minutes: 5 });
    expect(r).toMatchObject({ changed: [], unchanged: ['the enrollment window was already open on 10.110.0.16:8443 until 2033-05-18T03:33:20Z; it was not extended'] });
    expect(open.calls).toEqual([`master: ${HUB} status`]);
    const closed = scripted([['master', [HUB, 'status'], status({})]]);
    expect((await runTrustOperation(target(closed), { op: 'window-close' })).unchanged).toEqual(['no enrollment window was open']);
    expect(closed.calls).toEqual([`master: ${HUB} status`]);
  });
});
