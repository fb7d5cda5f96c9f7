// Replace-based upgrades (docs/upgrades.md, "Replace-based upgrades") driven by nextApplyAction
// over a pure model of a cluster: the hub, cp-1..cp-3 (etcd) and w-1. Each replace action is done
// to the model the way the apply loop does it (the record's ReplacedNode written before each step
// that cannot be undone), with a failure injected where a test asks; the hub is slot-switched.
import { describe, expect, it } from 'vitest';
import type { BuildRef } from './agent';
import type { ApplyAction, ApplyNode, ApplyStep, ReplacePhase, RolledBackBuild } from './apply';
import { ApplyStep as ApplyStepSchema, nextApplyAction, nextReplaceStep } from './apply';
import { activeGate } from './observe';
import type { ReplacedNode } from './progress';
import { buildRef as build, replaceWaves } from './testing';

const N = build('0.1.0');
const N1 = build('0.2.0');
const waves = replaceWaves();
const OK = 'booted=A\nactive=A\ntry=\ntries=0\nfailed=\n';

interface ModelNode {
  vm: boolean;
  /** The build its VM runs. */
  runs: BuildRef;
  status: string;
  replaced?: ReplacedNode;
  converged?: BuildRef;
  step?: ApplyStep;
}

class Model {
  readonly nodes: Record<string, ModelNode> = {};
  readonly trace: string[] = [];
  readonly cordoned = new Set<string>();
  /** VMs destroyed per node (a destroy that failed destroyed nothing). */
  readonly destroyed: Record<string, number> = {};
  readonly bad: RolledBackBuild[] = [];
  /** A phase that fails on a node (its error message); `gate` failures mark the build bad. */
  fail: Partial<Record<string, { phase: ReplacePhase; error: string }>> = {};

  constructor() {
    for (const w of waves) for (const n of w.nodes) this.nodes[n] = { vm: true, runs: N, status: OK };
  }

  view(): Record<string, ApplyNode> {
    return Object.fromEntries(Object.entries(this.nodes).map(([name, n]) => [name, { status: n.status, running: n.runs, vm: n.vm, ...(n.replaced ? { replaced: n.replaced } : {}), ...(n.converged ? { converged: n.converged } : {}), ...(n.step ? { step: n.step } : {}) }]));
  }

  /** A new run: this run's journal starts empty (what the record and the nodes say stays). */
  newRun(): void {
    for (const n of Object.values(this.nodes)) delete n.step;
  }

  /** Runs until done, stop or refuse, or `maxActions` actions (an interrupted run). */
  run(target: BuildRef, o: { kubernetes?: boolean; allowDestroy?: boolean; maxActions?: number } = {}): ApplyAction | undefined {
    for (let i = 0; i < (o.maxActions ?? 100); i++) {
      const a = nextApplyAction({ waves, target, nodes: this.view(), bad: this.bad, now: 0, allowDestroy: o.allowDestroy ?? true, ...(o.kubernetes ? { kubernetes: true } : {}) });
      if (a.kind === 'done' || a.kind === 'refuse') return a;
      if (a.kind === 'stop') {
        if (a.markBad) this.bad.push(a.markBad);
        return a;
      }
      this.trace.push(`${a.kind === 'replace' ? a.phase : a.kind} ${a.node}`);
      this.act(a, target);
    }
    return undefined;
  }

  private act(a: Exclude<ApplyAction, { kind: 'done' | 'refuse' | 'stop' }>, target: BuildRef): void {
    const n = this.nodes[a.node]!;
    if (a.kind !== 'replace') {
      // The hub's slot switch, as the rolling path does it (its own tests cover its failures).
      if (a.kind === 'write') n.status = `booted=A\nactive=A\ntry=${a.slot}\ntries=1\nfailed=\n`;
      if (a.kind === 'reboot') {
        n.status = `booted=${a.slot}\nactive=${a.slot}\ntry=\ntries=0\nfailed=\n`;
        n.runs = target;
      }
      if (a.kind === 'converge') n.converged = target;
      if (a.kind === 'drain') this.cordoned.add(a.node);
      if (a.kind === 'uncordon') this.cordoned.delete(a.node);
      n.step = a.kind === 'write' || a.kind === 'drain' || a.kind === 'converge' ? { kind: a.kind, slot: a.slot, ok: true } : a.kind === 'reboot' ? { kind: 'reboot', slot: a.slot, at: 0 } : a.kind === 'uncordon' ? { kind: 'uncordon', slot: a.slot } : n.step;
      return;
    }
    const fault = this.fail[a.node]?.phase === a.phase ? this.fail[a.node]! : undefined;
    const set = (state: ReplacedNode['state']): void => void (n.replaced = { build: a.build, state });
    // The loop writes `destroying` before the destroy and `provisioning` before any VM is created.
    if (a.phase === 'destroy') set('destroying');
    if (a.phase === 'provision') set('provisioning');
    if (fault) {
      n.step = { kind: 'replace', phase: a.phase, ok: false, error: fault.error, ...(a.phase === 'gate' ? { bad: true as const } : {}) };
      ApplyStepSchema.parse(n.step);
      return;
    }
    switch (a.phase) {
      case 'drain':
        this.cordoned.add(a.node);
        break;
      case 'fence':
        break;
      case 'destroy':
        expect(n.runs.digest).not.toBe(a.build.digest); // never a VM created from the build it is replaced with
        n.vm = false;
        this.destroyed[a.node] = (this.destroyed[a.node] ?? 0) + 1;
        set('provisioning');
        break;
      case 'provision':
        n.vm = true;
        n.runs = a.build;
        n.status = OK; // the fresh disk boots slot A of the build's image
        set('provisioned');
        break;
      case 'converge':
        set('converged');
        break;
      case 'gate':
        set('passed');
        break;
      case 'uncordon':
        this.cordoned.delete(a.node);
        set('done');
        break;
    }
    n.step = { kind: 'replace', phase: a.phase, ok: true };
  }
}

describe('nextApplyAction under replace', () => {
  it('replaces cp-1, cp-2, cp-3 and w-1 in order, each drained, fenced, destroyed, provisioned from N+1, converged, gated and uncordoned; the hub slot-switches last', () => {
    const m = new Model();
    expect(waves.map((w) => `${w.nodes.join('+')}:${w.action}`)).toEqual(['cp-1:replace', 'cp-2:replace', 'cp-3:replace', 'w-1:replace', 'master:slot-switch']);
    const end = m.run(N1, { kubernetes: true });
    expect(end).toEqual({ kind: 'done', nodes: ['cp-1', 'cp-2', 'cp-3', 'w-1', 'master'], message: '5 nodes on 0.2.0: cp-1, cp-2, cp-3, w-1, master' });
    const per = (node: string): string[] => ['drain', 'fence', 'destroy', 'provision', 'converge', 'gate', 'uncordon'].map((p) => `${p} ${node}`);
    expect(m.trace).toEqual([...per('cp-1'), ...per('cp-2'), ...per('cp-3'), ...per('w-1'), 'write master', 'drain master', 'reboot master', 'converge master', 'uncordon master']);
    expect(m.cordoned.size).toBe(0);
    // Without Kubernetes: nothing drained or uncordoned.
    const plain = new Model();
    expect(plain.run(N1)).toMatchObject({ kind: 'done' });
    expect(plain.trace.slice(0, 5)).toEqual(['fence cp-1', 'destroy cp-1', 'provision cp-1', 'converge cp-1', 'gate cp-1']);
  });

  it('a replacement that fails its gate: the stop names the node and the step, N+1 is recorded as bad, the rerun is refused', () => {
    const m = new Model();
    m.fail['cp-2'] = { phase: 'gate', error: 'services: kubelet failed, systemd gave up' };
    const end = m.run(N1, { kubernetes: true });
    expect(end).toMatchObject({ kind: 'stop', node: 'cp-2', wave: 2, reason: 'its replacement on 0.2.0 failed its health gate (services: kubelet failed, systemd gave up)', markBad: { digest: N1.digest, node: 'cp-2' }, cordoned: 'until-replaced', upgraded: ['cp-1'], inProgress: [], untouched: ['cp-3', 'w-1', 'master'] });
    if (end?.kind === 'stop')
      expect(end.message.split('\n')).toEqual([
        'upgrade to 0.2.0 stopped at cp-2 (wave 2): its replacement on 0.2.0 failed its health gate (services: kubelet failed, systemd gave up)',
        '1 node on 0.2.0 (cp-1), 3 untouched (cp-3, w-1, master)',
        'build 0.2.0 is recorded as bad: fix N+1 and rerun with the new build, or `kubedos upgrade --rollback` (it replaces cp-2 again from the build before), or `kubedos heal SPEC`',
      ]);
    m.newRun();
    const trace = m.trace.length;
    expect(m.run(N1, { kubernetes: true })).toMatchObject({ kind: 'refuse', message: expect.stringMatching(/^build 0\.2\.0 rolled back on cp-2 \(its replacement on 0\.2\.0 failed its health gate/) });
    expect(m.trace.length).toBe(trace);
  });

  it('each step that fails stops at its node naming the step and what next; the rerun goes on from that step, and never destroys a VM created from N+1', () => {
    const phases: [ReplacePhase, RegExp, string | undefined][] = [
      ['drain', /^draining it before its replacement failed: PDB; nothing else was done to it/, 'uncordon'],
      ['fence', /^fencing it before its replacement \(the drill's fence: its etcd member out under the quorum rule where it has one, revoked at the hub\) failed: PDB; its VM was not destroyed/, 'until-replaced'],
      ['destroy', /^destroying its VM for its replacement failed: PDB; it is fenced/, 'until-replaced'],
      ['provision', /^provisioning its replacement from 0\.2\.0 \(the same plan slot: VM, first boot, enroll, planes\) failed: PDB; the rerun provisions it again .*never destroys a VM created from 0\.2\.0/, 'until-replaced'],
      ['converge', /^its replacement runs 0\.2\.0 and is enrolled, but converging it failed: PDB; the rerun converges it again/, 'until-replaced'],
    ];
    for (const [phase, reason, cordoned] of phases) {
      const m = new Model();
      m.fail['w-1'] = { phase, error: 'PDB' };
      const end = m.run(N1, { kubernetes: true });
      expect(end, phase).toMatchObject({ kind: 'stop', node: 'w-1', wave: 4, reason: expect.stringMatching(reason), cordoned, upgraded: ['cp-1', 'cp-2', 'cp-3'] });
      if (end?.kind === 'stop') {
        expect(end.markBad).toBeUndefined();
        expect(end.message.split('\n').at(-1)).toBe('rerun to continue (it goes on from this step), or `kubedos upgrade --rollback`, or `kubedos heal SPEC`');
      }
      // The rerun (a new journal) goes on from what the record says.
      delete m.fail['w-1'];
      m.newRun();
      const before = m.trace.length;
      expect(m.run(N1, { kubernetes: true }), phase).toMatchObject({ kind: 'done' });
      const rerun = m.trace.slice(before).filter((t) => t.endsWith('w-1'));
      const from = { drain: 'drain', fence: 'drain', destroy: 'destroy', provision: 'provision', converge: 'converge' }[phase as 'drain'];
      expect(rerun[0], phase).toBe(`${from} w-1`);
      expect(m.destroyed['w-1'], phase).toBe(1);
    }
  });

  it('an interrupted run at every point: the rerun finishes, every replaced node destroyed exactly once', () => {
    const full = new Model();
    expect(full.run(N1, { kubernetes: true })).toMatchObject({ kind: 'done' });
    expect(full.trace).toHaveLength(4 * 7 + 5);
    for (let cut = 1; cut < full.trace.length; cut++) {
      const m = new Model();
      expect(m.run(N1, { kubernetes: true, maxActions: cut })).toBeUndefined();
      m.newRun();
      expect(m.run(N1, { kubernetes: true }), `cut after ${cut}`).toMatchObject({ kind: 'done' });
      expect(m.destroyed, `cut after ${cut}`).toEqual({ 'cp-1': 1, 'cp-2': 1, 'cp-3': 1, 'w-1': 1 });
      // A replaced node drained by the cut run is uncordoned once replaced (the record says how far it got). The hub's
      // slot switch cut between its converge and its uncordon stays cordoned: the rolling path's own rule (its loop
      // uncordons on a cancel; a crash there is not in its journal), not changed here.
      expect([...m.cordoned].filter((n) => n !== 'master'), `cut after ${cut}`).toEqual([]);
      expect(Object.values(m.nodes).every((n) => n.runs.digest === N1.digest)).toBe(true);
    }
  });

  it('where each node is, from the record and its VM: the next step of its replacement', () => {
    const at = (o: Partial<ApplyNode>, k8s = true): string => {
      const a = nextReplaceStep('w-1', 4, { status: '', running: N, ...o }, N1, k8s);
      return a.kind === 'replace' ? a.phase : a.kind;
    };
    const rec = (state: ReplacedNode['state'], b: BuildRef = N1): { replaced: ReplacedNode } => ({ replaced: { build: b, state } });
    expect(at({ vm: true })).toBe('drain');
    expect(at({ vm: true }, false)).toBe('fence');
    expect(at({ vm: false })).toBe('fence'); // a VM gone without a record: fence (idempotent), then provision
    expect(at({ vm: false, step: { kind: 'replace', phase: 'fence', ok: true } })).toBe('provision');
    expect(at({ vm: true, ...rec('destroying') })).toBe('destroy'); // the destroy did not finish: the old VM
    expect(at({ vm: false, ...rec('destroying') })).toBe('provision');
    expect(at({ vm: true, ...rec('provisioning') })).toBe('provision'); // a VM created from N+1: never destroyed
    expect(at({ vm: false, ...rec('provisioning') })).toBe('provision');
    expect(at({ vm: true, ...rec('provisioned') })).toBe('converge');
    expect(at({ vm: true, ...rec('converged') })).toBe('gate');
    expect(at({ vm: true, ...rec('passed') })).toBe('uncordon');
    expect(at({ vm: true, ...rec('passed') }, false)).toBe('committed');
    expect(at({ vm: true, ...rec('done') })).toBe('committed');
    // A record of another build (the node replaced with N before): this build starts over.
    expect(at({ vm: true, ...rec('done', N) })).toBe('drain');
  });

  it('the gate of a replaced node\'s active slot: passed only when the gate\'s textfile is about the booted, active slot and says success', () => {
    const prom = (slot: string, success: 0 | 1, extra = ''): string => `kubedos_boot_slot{slot="${slot}"} 1\nkubedos_boot_active_slot{slot="${slot}"} 1\nkubedos_boot_success ${success}\n${extra}`;
    expect(activeGate(OK, prom('A', 1))).toEqual({ passed: true, slot: 'A' });
    expect(activeGate(OK, prom('A', 0, 'kubedos_health_gate_check{check="planes"} 0\nkubedos_health_gate_check{check="services"} 1\n'))).toEqual({ passed: false, ran: true, why: 'planes' });
    expect(activeGate(OK, prom('A', 0, 'kubedos_health_gate_check{check="services"} 0\nkubedos_health_gate_unit_failed{unit="kubelet"} 1\n'))).toEqual({ passed: false, ran: true, why: 'services: kubelet failed, systemd gave up' });
    // Nothing to judge by: not marked bad.
    expect(activeGate(OK, undefined)).toEqual({ passed: false, ran: false, why: 'the gate wrote no kubedos.prom' });
    expect(activeGate(OK, prom('B', 1))).toEqual({ passed: false, ran: false, why: "the gate's kubedos.prom is about slot B, the node booted A" });
    expect(activeGate('booted=B\nactive=A\ntry=B\ntries=1\nfailed=\n', prom('B', 1))).toMatchObject({ passed: false, ran: false });
    expect(activeGate('no such command', prom('A', 1))).toMatchObject({ passed: false, ran: false });
  });
});
