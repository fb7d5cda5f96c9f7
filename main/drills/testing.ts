// An in-memory drill target for tests (engine, live fold, the workbench e2e): two or four nodes,
// a kill-etcd-member scenario whose fault and repair flip one endpoint's health. Test helper only.
import type { DetectThresholds, HealthFacts } from '../../common/drills/health';
import type { DrillRecord } from '../../common/drills/timeline';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { CommandError } from '../exec/runner';
import type { RunResult } from '../exec/runner';
import type { DrillOptions } from './engine';
import { runDrill } from './engine';
import type { DrillTarget, ScenarioOps } from './target';

export interface FakeTargetOptions {
  failFence?: boolean;
  onInject?: () => void;
  /** Each of inject, fence, replace and reintegrate takes this long (a drill that can be watched). */
  phaseDelayMs?: number;
}

const pause = (ms: number | undefined) => new Promise<void>((r) => setTimeout(r, ms ?? 0));

export function fakeTarget(o: FakeTargetOptions = {}) {
  const state = { down: false, ran: [] as string[] };
  const ok = (argv: readonly string[]): RunResult => ({ command: [...argv], exitCode: 0, signal: null, stdout: '', stderr: '', durationMs: 1 });
  const ops: ScenarioOps = {
    inject: async (c) => {
      await pause(o.phaseDelayMs);
      await c.sh.exec('cp-1', ['kill', '-KILL', '42']);
      state.down = true;
      o.onInject?.();
      return 'killed';
    },
    fence: async (c) => {
      await pause(o.phaseDelayMs);
      if (o.failFence) {
        await c.sh.exec('master', ['etcdctl', 'member', 'remove', 'a1']).catch(() => undefined);
        throw new CommandError({ message: 'etcdctl member remove exited 1', command: ['etcdctl', 'member', 'remove', 'a1'], exitCode: 1, stderrTail: 'Error: etcdserver: unhealthy cluster', reason: 'exit' });
      }
      return 'removed';
    },
    replace: async () => {
      await pause(o.phaseDelayMs);
      return 'fresh dir';
    },
    reintegrate: async () => {
      await pause(o.phaseDelayMs);
      state.down = false;
      return 'added';
    },
  };
  const target: DrillTarget = {
    kind: 'lab',
    cluster: 'lab-3',
    hub: 'master',
    allowDestroy: false,
    nodes: [
      { name: 'master', role: 'master', hub: true, etcd: false },
      { name: 'cp-1', role: 'control-plane', hub: false, etcd: true },
    ],
    shell: {
      exec: async (node, argv) => {
        state.ran.push(`${node}: ${argv.join(' ')}`);
        return ok(argv);
      },
    },
    gatherFacts: async (_sh, now): Promise<HealthFacts> => ({
      now,
      nodes: [
        { name: 'master', hub: true, etcd: false },
        { name: 'cp-1', hub: false, etcd: true },
      ],
      etcd: { members: [{ id: 'a1', name: 'cp-1', peerUrls: [], clientUrls: ['http://x:2379'] }], endpoints: [{ endpoint: 'http://x:2379', healthy: !state.down }] },
    }),
    ops: (s) => (s === 'kill-etcd-member' ? ops : undefined),
  };
  return { target, state };
}

export function threeMember(o: Parameters<typeof fakeTarget>[0] = {}) {
  const { target, state } = fakeTarget(o);
  const base = target.gatherFacts;
  target.nodes.push({ name: 'cp-2', role: 'control-plane', hub: false, etcd: true }, { name: 'cp-3', role: 'control-plane', hub: false, etcd: true });
  target.gatherFacts = async (sh, now) => {
    const f = await base(sh, now);
    const m = (n: string) => ({ id: n, name: n, peerUrls: [], clientUrls: [`http://${n}:2379`] });
    return {
      ...f,
      nodes: [...f.nodes, { name: 'cp-2', hub: false, etcd: true }, { name: 'cp-3', hub: false, etcd: true }],
      etcd: { members: [...f.etcd!.members, m('cp-2'), m('cp-3')], endpoints: [...f.etcd!.endpoints, { endpoint: 'http://cp-2:2379', healthy: true }, { endpoint: 'http://cp-3:2379', healthy: true }] },
    };
  };
  return { target, state };
}

/** The drill tests' thresholds: etcd-member only, fast enough for an in-memory target. */
export const TEST_THRESHOLDS: DetectThresholds = { signals: ['etcd-member'], silenceSeconds: 0.02, handshakeMaxAgeSeconds: 120, heartbeatSeconds: 0.01 };

/** lab-3's spec, as the drill tests run it. */
export const TEST_SPEC = parseSpec(TEMPLATES['lab-3'].text).spec!;

/**
 * The drill tests' run: kill-etcd-member on cp-1 of lab-3 with TEST_THRESHOLDS (`extra` overrides
 * any option); `stored` keeps a copy of every record the engine stores, in order.
 */
export function startTestDrill(target: DrillTarget, extra: Partial<DrillOptions> = {}): { p: Promise<DrillRecord>; stored: DrillRecord[] } {
  const stored: DrillRecord[] = [];
  const p = runDrill({
    target,
    spec: TEST_SPEC,
    scenario: 'kill-etcd-member',
    node: 'cp-1',
    thresholds: TEST_THRESHOLDS,
    thresholdsSource: 'test',
    id: 'd1',
    store: (r) => stored.push(structuredClone(r)),
    nextOnInterrupt: 'kubedos heal lab.yaml',
    phaseTimeoutMs: 5000,
    ...extra,
  });
  return { p, stored };
}
