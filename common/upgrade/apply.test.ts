// Whole simulated upgrades of lab-3 (3 nodes, 3 waves) driven by nextApplyAction, with a failure
// injected at each node and each step. The simulated node prints what the real scripts print
// (`kubedos-boot status`'s key=value lines, the gate's kubedos.prom samples) and follows the GRUB
// counter of boot-select.cfg; main/upgrade/observe.test.ts checks the observer on the real
// scripts' outputs.
import { describe, expect, it } from 'vitest';
import type { BuildRef, Slot } from './agent';
import type { ApplyAction, ApplyNode, ApplyStep, RolledBackBuild } from './apply';
import { answerWaitUntil, ApplyStep as ApplyStepSchema, GATE_AFTER_ANSWER_MS, GATE_DEADLINE_MS, gateWaitUntil, heardFrom, nextApplyAction, planRollback } from './apply';
import type { UpgradeNode, Wave } from './waves';
import { planWaves } from './waves';
import { buildRef as build, LAB3_UPGRADE_NODES, lab3Waves as lab3WavesOf } from './testing';

const N = build('0.1.0');
const N1 = build('0.2.0');
const N1fixed = build('0.2.1');

const lab3: UpgradeNode[] = [...LAB3_UPGRADE_NODES];
const lab3Waves: Wave[] = lab3WavesOf();
const waves = lab3Waves;
const ORDER = waves.flatMap((w) => w.nodes);

type Fault = 'write-fails' | 'power-off-during-write' | 'try-lost' | 'never-boots' | 'gate-fails' | 'gate-hangs' | 'drain-fails' | 'converge-fails';
const FAULTS: Exclude<Fault, 'drain-fails' | 'converge-fails'>[] = ['write-fails', 'power-off-during-write', 'try-lost', 'never-boots', 'gate-fails', 'gate-hangs'];

interface SimNode {
  active: Slot;
  try: Slot | '';
  tries: number;
  failed: Slot | '';
  booted: Slot;
  slots: Record<Slot, string>;
  /** The build on the active slot (what the agent reports). */
  running: BuildRef;
  metrics?: string;
  step?: ApplyStep;
  /** The build the foundry last converged the node on (the upgrade record: kept across runs). */
  converged?: BuildRef;
}

const newNode = (): SimNode => ({ active: 'A', try: '', tries: 0, failed: '', booted: 'A', slots: { A: N.digest, B: N.digest }, running: N });
const status = (n: SimNode): string => `booted=${n.booted}\nactive=${n.active}\ntry=${n.try}\ntries=${n.try || n.tries ? n.tries : ''}\nfailed=${n.failed}\n`;
const prom = (n: SimNode, success: boolean, services: boolean): string =>
  [`kubedos_boot_slot{slot="${n.booted}"} 1`, `kubedos_boot_active_slot{slot="${n.active}"} 1`, `kubedos_boot_tries_left ${n.tries}`, ...(n.failed ? [`kubedos_boot_failed_slot{slot="${n.failed}"} 1`] : []), `kubedos_boot_success ${success ? 1 : 0}`, `kubedos_health_gate_check{check="services"} ${services ? 1 : 0}`].join('\n') + '\n';

/** GRUB's side (boot-select.cfg): the slot of the next boot, counting a try down. */
function grub(n: SimNode): void {
  n.booted = n.active;
  if (n.try) {
    if (n.tries > 0) {
      n.tries--;
      n.booted = n.try;
    } else {
      n.failed = n.try;
      n.try = '';
      n.tries = 0;
    }
  }
}

class Cluster {
  nodes: Record<string, SimNode>;
  now = 1_000_000;
  trace: string[] = [];
  /** Where Kubernetes runs (drain before the reboot, uncordon after the gate); cordoned nodes. */
  kubernetes = false;
  cordoned = new Set<string>();
  constructor(
    private faults: { node: string; fault: Fault }[] = [],
    private waves: Wave[] = lab3Waves,
  ) {
    this.nodes = Object.fromEntries(waves.flatMap((w) => w.nodes).map((name) => [name, newNode()]));
  }

  view(): Record<string, ApplyNode> {
    return Object.fromEntries(Object.entries(this.nodes).map(([k, n]) => [k, { status: status(n), running: n.running, ...(n.metrics ? { metrics: n.metrics } : {}), ...(n.step ? { step: n.step } : {}), ...(n.converged ? { converged: n.converged } : {}) }]));
  }

  private faultOn(node: string, f: Fault): boolean {
    return this.faults.some((x) => x.node === node && x.fault === f);
  }

  /** A boot and what the node does after it: the gate on a tried slot. */
  private reboot(name: string, target: BuildRef): void {
    const n = this.nodes[name]!;
    n.metrics = undefined; // the foundry keeps the gate's metrics it read while the tried slot ran
    for (let i = 0; i < 5; i++) {
      grub(n);
      if (n.booted !== n.try || !n.try) return; // back on the active slot
      if (this.faultOn(name, 'never-boots')) continue; // the kernel never comes up: GRUB again
      if (this.faultOn(name, 'gate-hangs')) return; // the gate never decides (within the foundry's deadline)
      if (this.faultOn(name, 'gate-fails')) {
        n.tries = 0; // kubedos-boot mark-bad
        n.metrics = prom(n, false, false);
        continue; // the gate reboots
      }
      // kubedos-boot mark-good
      n.active = n.booted;
      n.try = '';
      n.tries = 0;
      n.failed = '';
      n.running = n.slots[n.active] === target.digest ? target : n.running;
      n.metrics = prom(n, true, true);
      return;
    }
  }

  /** Runs the foundry's loop until done, stop or refuse. */
  run(target: BuildRef, bad: RolledBackBuild[]): ApplyAction {
    for (const n of Object.values(this.nodes)) delete n.step; // a new run: its journal is empty
    for (let i = 0; i < 50; i++) {
      const a = nextApplyAction({ waves: this.waves, target, nodes: this.view(), bad, now: this.now, kubernetes: this.kubernetes });
      this.trace.push(a.kind === 'done' || a.kind === 'refuse' ? a.kind : `${a.kind} ${a.node}${'slot' in a ? ` ${a.slot}` : ''}`);
      if (a.kind === 'done' || a.kind === 'refuse' || a.kind === 'stop') {
        if (a.kind === 'stop' && a.markBad) bad.push(a.markBad);
        return a;
      }
      const n = this.nodes[a.node]!;
      this.now += 1000;
      if (a.kind === 'write') {
        if (this.faultOn(a.node, 'write-fails')) {
          n.step = { kind: 'write', slot: a.slot, ok: false, error: `slot ${a.slot} reads back sha256 0000…, expected ${target.digest.slice(0, 4)}…: the boot environment is unchanged: the next boot is slot ${n.active}` };
          continue;
        }
        if (this.faultOn(a.node, 'power-off-during-write')) {
          n.slots[a.slot] = 'half written';
          grub(n); // power comes back: a boot, no try named
          n.step = { kind: 'write', slot: a.slot, ok: false, error: 'the connection to the node was lost during the write (exit 255)' };
          continue;
        }
        n.slots[a.slot] = target.digest;
        n.try = a.slot;
        n.tries = 3;
        n.failed = '';
        n.step = { kind: 'write', slot: a.slot, ok: true };
        if (this.faultOn(a.node, 'try-lost')) {
          n.try = ''; // the environment block lost the try (torn save_env)
          n.tries = 0;
        }
        ApplyStepSchema.parse(n.step); // what the run's journal would hold
      } else if (a.kind === 'reboot') {
        n.step = { kind: 'reboot', slot: a.slot, at: this.now };
        this.reboot(a.node, target);
      } else if (a.kind === 'drain') {
        this.cordoned.add(a.node);
        // The loop withdraws the try and uncordons before it records a failed drain.
        if (this.faultOn(a.node, 'drain-fails')) {
          n.try = '';
          n.tries = 0;
          this.cordoned.delete(a.node);
          n.step = { kind: 'drain', slot: a.slot, ok: false, error: 'kubectl drain: timed out waiting for the condition' };
        } else n.step = { kind: 'drain', slot: a.slot, ok: true };
        ApplyStepSchema.parse(n.step);
      } else if (a.kind === 'uncordon') {
        this.cordoned.delete(a.node);
        n.step = { kind: 'uncordon', slot: a.slot };
      } else if (a.kind === 'converge') {
        expect(n).toMatchObject({ active: a.slot, booted: a.slot, running: target }); // only a node that runs N+1, its gate passed
        if (this.faultOn(a.node, 'converge-fails')) n.step = { kind: 'converge', slot: a.slot, ok: false, error: 'kubedos_etcd: the member did not join within 120 s' };
        else {
          n.converged = target;
          n.step = { kind: 'converge', slot: a.slot, ok: true };
        }
        ApplyStepSchema.parse(n.step);
      } else if (a.kind === 'wait') {
        expect(a.until).toBeGreaterThan(this.now);
        this.now = a.until;
      } else throw new Error(`a rolling upgrade asked for ${a.kind}`);
    }
    throw new Error(`no end after 50 actions: ${this.trace.join(', ')}`);
  }

  /** Power-cycles a node that is still trying a slot until it is back on its active slot (its gate gave up). */
  settle(name: string): void {
    const n = this.nodes[name]!;
    if (n.booted !== n.active) {
      n.tries = 0;
      grub(n);
    }
  }
}

describe('nextApplyAction: whole simulated upgrades of lab-3 (rolling, 3 waves)', () => {
  it('the waves: cp-1, w-1, the hub last', () => {
    expect(ORDER).toEqual(['cp-1', 'w-1', 'master']);
  });

  it('a good N+1: write B, reboot, gate, converge, node after node; every node on N+1 with slot B active', () => {
    const c = new Cluster();
    const end = c.run(N1, []);
    expect(end).toEqual({ kind: 'done', nodes: ORDER, message: '3 nodes on 0.2.0: cp-1, w-1, master' });
    expect(c.trace).toEqual(['write cp-1 B', 'reboot cp-1 B', 'converge cp-1 B', 'write w-1 B', 'reboot w-1 B', 'converge w-1 B', 'write master B', 'reboot master B', 'converge master B', 'done']);
    for (const n of Object.values(c.nodes)) expect(n).toMatchObject({ active: 'B', booted: 'B', running: N1, try: '', failed: '' });
    // A rerun finds nothing to do; the rollback takes the hub back first.
    expect(c.run(N1, [])).toMatchObject({ kind: 'done' });
    const rb = planRollback(waves, c.view(), N1);
    expect(rb).toEqual({ ok: true, steps: ['master', 'w-1', 'cp-1'].map((node, i) => ({ node, wave: 3 - i, from: 'B', to: 'A', argv: ['/usr/local/sbin/kubedos-boot', 'try', 'A', '1'] })) });
  });

  const expected: Record<Exclude<Fault, 'drain-fails' | 'converge-fails'>, { reason: RegExp; bad: boolean; fellBackTo: Slot }> = {
    'write-fails': { reason: /^writing slot B failed: slot B reads back sha256/, bad: false, fellBackTo: 'A' },
    'power-off-during-write': { reason: /^writing slot B failed: the connection to the node was lost/, bad: false, fellBackTo: 'A' },
    'try-lost': { reason: /^slot B was written but the node does not try it at its next boot \(not-tried\)/, bad: false, fellBackTo: 'A' },
    'never-boots': { reason: /^slot B ran out of boot tries without passing its health gate .*fell back to slot A$/, bad: true, fellBackTo: 'A' },
    'gate-fails': { reason: /^slot B failed its health gate \(services\); the node fell back to slot A$/, bad: true, fellBackTo: 'A' },
    'gate-hangs': { reason: /^no gate pass within 300 s of the reboot: the node runs slot B, its gate has not passed; it falls back to slot A by itself/, bad: false, fellBackTo: 'A' },
  };

  for (const [i, failing] of ORDER.entries())
    for (const fault of FAULTS)
      it(`${fault} on ${failing}: the upgrade stops there, earlier nodes stay on N+1, later ones untouched; a rerun with a fixed N+1 completes`, () => {
        const c = new Cluster([{ node: failing, fault }]);
        const bad: RolledBackBuild[] = [];
        const start = c.now;
        const stop = c.run(N1, bad);
        const want = expected[fault];
        expect(stop).toMatchObject({ kind: 'stop', node: failing, wave: i + 1, reason: expect.stringMatching(want.reason), fellBackTo: want.fellBackTo, upgraded: ORDER.slice(0, i), inProgress: [], untouched: ORDER.slice(i + 1) });
        if (stop.kind !== 'stop') throw new Error('not a stop');
        // The reason says which slot the node keeps booting (the stop line prints it as it is).
        expect(stop.reason).toContain(`slot ${want.fellBackTo}`);
        expect(stop.message.split('\n')[0]).toBe(`upgrade to 0.2.0 stopped at ${failing} (wave ${i + 1}): ${stop.reason}`);
        expect(stop.message).toContain(`${i === 1 ? '1 node' : `${i} nodes`} on 0.2.0`);
        if (fault === 'gate-hangs') expect(c.now - start).toBeGreaterThanOrEqual(GATE_DEADLINE_MS);
        expect(bad.length).toBe(want.bad ? 1 : 0);
        if (want.bad) expect(stop.markBad).toEqual({ digest: N1.digest, version: '0.2.0', node: failing, reason: stop.reason });
        for (const name of ORDER.slice(0, i)) expect(c.nodes[name]).toMatchObject({ active: 'B', booted: 'B', running: N1 });
        for (const name of ORDER.slice(i + 1)) expect(c.nodes[name]).toEqual(newNode());
        c.settle(failing);
        expect(c.nodes[failing]).toMatchObject({ active: 'A', booted: 'A', running: N, try: '' });
        // --rollback now: only the nodes on N+1, last wave first.
        const rb = planRollback(waves, c.view(), N1);
        expect(rb.ok && rb.steps.map((s) => `${s.node} ${s.from}→${s.to}`)).toEqual(ORDER.slice(0, i).reverse().map((n) => `${n} B→A`));

        // The rerun. A rolled-back build is refused before any node is touched; a fixed one completes.
        const fixed = new Cluster();
        fixed.nodes = c.nodes;
        fixed.now = c.now;
        if (want.bad) {
          expect(fixed.run(N1, bad)).toEqual({ kind: 'refuse', message: expect.stringMatching(new RegExp(`^build 0\\.2\\.0 rolled back on ${failing} \\(slot B .*\\): it is not applied again; build a fixed N\\+1`)) });
          expect(fixed.trace).toEqual(['refuse']);
        } else {
          // Not the build's fault: the same build may be applied again; the nodes on it are skipped.
          const same = new Cluster();
          same.nodes = structuredClone(c.nodes);
          expect(same.run(N1, bad)).toMatchObject({ kind: 'done' });
          expect(same.trace.filter((t) => t.startsWith('write')).map((t) => t.split(' ')[1])).toEqual(ORDER.slice(i));
        }
        expect(fixed.run(N1fixed, bad)).toMatchObject({ kind: 'done', message: '3 nodes on 0.2.1: cp-1, w-1, master' });
        for (const [k, name] of ORDER.entries()) {
          const n = fixed.nodes[name]!;
          // Nodes that were on N+1 (slot B) now run the fixed build from slot A; the others from B.
          expect(n).toMatchObject({ running: N1fixed, active: k < i ? 'A' : 'B', booted: k < i ? 'A' : 'B' });
          expect(n.slots[n.active]).toBe(N1fixed.digest);
        }
      });
});

describe('nextApplyAction: a wave of two nodes (maxUnavailable 2)', () => {
  // One replica of a role always stays up: three workers make a wave of two and a wave of one.
  const nodes: UpgradeNode[] = [...lab3, ...['w-2', 'w-3'].map((name): UpgradeNode => ({ name, role: 'worker', domain: 'laptop', hub: false, etcd: false }))];
  const p = planWaves({ strategy: 'rolling', maxUnavailable: 2, failureDomains: ['laptop'], nodes, health: { observed: true, unhealthy: [] } });
  if (!p.ok) throw new Error(p.message);
  it('the workers share a wave', () => {
    expect(p.waves.map((w) => w.nodes)).toEqual([['cp-1'], ['w-1', 'w-2'], ['w-3'], ['master']]);
  });

  it('while w-1 waits for its gate, w-2 is written and rebooted; w-1 then times out: stop at w-1 with w-2 on N+1', () => {
    const c = new Cluster([{ node: 'w-1', fault: 'gate-hangs' }], p.waves);
    const stop = c.run(N1, []);
    expect(c.trace).toEqual(['write cp-1 B', 'reboot cp-1 B', 'converge cp-1 B', 'write w-1 B', 'reboot w-1 B', 'write w-2 B', 'reboot w-2 B', 'converge w-2 B', 'wait w-1 B', 'stop w-1']);
    expect(stop).toMatchObject({ kind: 'stop', node: 'w-1', wave: 2, upgraded: ['cp-1', 'w-2'], inProgress: [], untouched: ['w-3', 'master'] });
  });

  it('w-2 rolls back while w-1 still waits: the stop names w-2 and leaves w-1 in progress, to its own gate', () => {
    const c = new Cluster([{ node: 'w-1', fault: 'gate-hangs' }, { node: 'w-2', fault: 'never-boots' }], p.waves);
    const bad: RolledBackBuild[] = [];
    const stop = c.run(N1, bad);
    expect(stop).toMatchObject({ kind: 'stop', node: 'w-2', upgraded: ['cp-1'], inProgress: ['w-1'], untouched: ['w-3', 'master'], markBad: { node: 'w-2' } });
    if (stop.kind === 'stop') expect(stop.message.split('\n')[1]).toBe('1 node on 0.2.0 (cp-1), 1 still in progress, their own gates decide (w-1), 2 untouched (w-3, master)');
    expect(bad).toHaveLength(1);
  });
});

describe('nextApplyAction: refusals and waiting', () => {
  const node = (o: Partial<ApplyNode> = {}): ApplyNode => ({ status: 'booted=A\nactive=A\ntry=\ntries=0\nfailed=\n', running: N, ...o });
  const all = (o: Partial<ApplyNode> = {}): Record<string, ApplyNode> => Object.fromEntries(ORDER.map((n) => [n, node(o)]));

  it('the journal\'s steps: a failed write carries its error, a reboot its time', () => {
    expect(ApplyStepSchema.safeParse({ kind: 'write', slot: 'B', ok: false }).success).toBe(false);
    expect(ApplyStepSchema.safeParse({ kind: 'reboot', slot: 'C', at: 1 }).success).toBe(false);
    expect(ApplyStepSchema.parse({ kind: 'reboot', slot: 'A', at: 5 })).toEqual({ kind: 'reboot', slot: 'A', at: 5 });
    expect(ApplyStepSchema.safeParse({ kind: 'converge', slot: 'B', ok: false }).success).toBe(false);
    expect(ApplyStepSchema.parse({ kind: 'converge', slot: 'B', ok: false, error: 'x' })).toEqual({ kind: 'converge', slot: 'B', ok: false, error: 'x' });
  });

  it('refuses surge waves (not built), replace waves without the permission to destroy, and nodes it has no observation of', () => {
    const surge = planWaves({ strategy: 'surge', maxUnavailable: 1, failureDomains: ['laptop'], nodes: lab3, health: { observed: true, unhealthy: [] } });
    if (!surge.ok) throw new Error(surge.message);
    expect(nextApplyAction({ waves: surge.waves, target: N1, nodes: all(), bad: [], now: 0 })).toEqual({ kind: 'refuse', message: 'wave 1 starts a replacement node before it retires the old one (strategy surge, the spec\'s kubernetes.ha.upgradeStrategy): kubedos upgrade does not do surge upgrades yet; set kubernetes.ha.upgradeStrategy: replace (nodes replaced one at a time) or rolling (A/B slot switches); nothing was touched' });
    // lab-3 with its hub as the etcd member (cp-1 is not one): cp-1 and w-1 are replaced, the hub slot-switches.
    const replace = planWaves({ strategy: 'replace', maxUnavailable: 1, failureDomains: ['laptop'], nodes: lab3.map((n) => ({ ...n, etcd: n.hub })), health: { observed: true, unhealthy: [] } });
    if (!replace.ok) throw new Error(replace.message);
    expect(nextApplyAction({ waves: replace.waves, target: N1, nodes: all(), bad: [], now: 0 })).toEqual({ kind: 'refuse', message: '2 waves replace 2 nodes (cp-1, w-1; strategy replace, the spec\'s kubernetes.ha.upgradeStrategy): replacing a node destroys its VM, and destroying was not allowed: set stages.drill.allowDestroy: true in the spec or run kubedos upgrade --allow-destroy (or upgrade with kubernetes.ha.upgradeStrategy: rolling); nothing was touched' });
    expect(nextApplyAction({ waves: replace.waves, target: N1, nodes: all(), bad: [], now: 0, allowDestroy: true })).toEqual({ kind: 'replace', node: 'cp-1', wave: 1, phase: 'fence', build: N1 });
    expect(nextApplyAction({ waves, target: N1, nodes: { 'cp-1': node() }, bad: [], now: 0 })).toEqual({ kind: 'refuse', message: 'no observation of 2 nodes: w-1, master' });
  });

  it('after the reboot it waits for the gate until the deadline, naming a failing check; a node still trying a slot from an earlier run stops a new run', () => {
    const tried = 'booted=B\nactive=A\ntry=B\ntries=2\nfailed=\n';
    const nodes = { ...all(), 'cp-1': node({ status: tried, step: { kind: 'reboot', slot: 'B', at: 1000 }, metrics: 'kubedos_boot_slot{slot="B"} 1\nkubedos_boot_success 0\nkubedos_health_gate_check{check="planes"} 0\n' }) };
    expect(nextApplyAction({ waves, target: N1, nodes, bad: [], now: 2000 })).toEqual({ kind: 'wait', node: 'cp-1', wave: 1, slot: 'B', until: 1000 + GATE_DEADLINE_MS, why: 'the node runs slot B, its gate has not passed (failing: planes)' });
    expect(nextApplyAction({ waves, target: N1, nodes, bad: [], now: 1000 + GATE_DEADLINE_MS })).toMatchObject({ kind: 'stop', node: 'cp-1', reason: expect.stringMatching(/no gate pass within 300 s/) });
    // A slow boot: it first answered on B 240 s after its reboot: its gate gets GATE_AFTER_ANSWER_MS from then, past the reboot's deadline.
    const slow = { ...all(), 'cp-1': node({ status: tried, step: { kind: 'reboot', slot: 'B', at: 1000 }, answeredAt: 241_000 }) };
    expect(gateWaitUntil({ rebootAt: 1000, answeredAt: 241_000 })).toBe(241_000 + GATE_AFTER_ANSWER_MS);
    expect(GATE_AFTER_ANSWER_MS).toBe(300_000);
    expect(nextApplyAction({ waves, target: N1, nodes: slow, bad: [], now: 1000 + GATE_DEADLINE_MS })).toMatchObject({ kind: 'wait', node: 'cp-1', until: 241_000 + GATE_AFTER_ANSWER_MS });
    expect(nextApplyAction({ waves, target: N1, nodes: slow, bad: [], now: 241_000 + GATE_AFTER_ANSWER_MS })).toMatchObject({ kind: 'stop', node: 'cp-1', reason: expect.stringMatching(/^no gate pass within 540 s of the reboot \(300 s after it answered on slot B\): the node runs slot B/) });
    // Answered early: the reboot's deadline stays the bound.
    expect(gateWaitUntil({ rebootAt: 1000, answeredAt: 2000 }, 600_000)).toBe(601_000);
    // Silent: from the reboot, or from its last answer since (a gate that gave up reboots it again).
    expect(answerWaitUntil({ rebootAt: 1000 })).toBe(1000 + GATE_DEADLINE_MS);
    expect(answerWaitUntil({ rebootAt: 1000, lastAnswerAt: 200_000 })).toBe(200_000 + GATE_DEADLINE_MS);
    // The clock both loops keep: each answer moves lastAnswerAt; answeredAt is the first answer on the slot tried, kept.
    const heard = heardFrom(heardFrom(heardFrom({ rebootAt: 1000 }, 90_000, false), 200_000, true), 260_000, true);
    expect(heard).toEqual({ rebootAt: 1000, lastAnswerAt: 260_000, answeredAt: 200_000 });
    expect(gateWaitUntil(heard)).toBe(200_000 + GATE_AFTER_ANSWER_MS);
    expect(answerWaitUntil(heard)).toBe(260_000 + GATE_DEADLINE_MS);
    const earlier = { ...all(), 'cp-1': node({ status: tried }) };
    expect(nextApplyAction({ waves, target: N1, nodes: earlier, bad: [], now: 0 })).toMatchObject({ kind: 'stop', node: 'cp-1', reason: expect.stringMatching(/runs slot B, which is being tried and not yet marked good/) });
    const unreadable = { ...all(), 'cp-1': node({ status: 'kubedos-boot: no boot environment at /boot/efi/EFI/debian/kubedos.env' }) };
    expect(nextApplyAction({ waves, target: N1, nodes: unreadable, bad: [], now: 0 })).toMatchObject({ kind: 'stop', node: 'cp-1', reason: expect.stringMatching(/kubedos-boot status is unreadable/) });
  });
});

describe('nextApplyAction where Kubernetes runs: drain before the reboot, uncordon after the gate', () => {
  it('a good N+1: write, drain, reboot, gate, uncordon, node after node; no node left cordoned', () => {
    const c = new Cluster();
    c.kubernetes = true;
    expect(c.run(N1, [])).toMatchObject({ kind: 'done', nodes: ORDER });
    expect(c.trace).toEqual(ORDER.flatMap((n) => [`write ${n} B`, `drain ${n} B`, `reboot ${n} B`, `converge ${n} B`, `uncordon ${n} B`]).concat('done'));
    expect(c.cordoned.size).toBe(0);
    for (const n of Object.values(c.nodes)) expect(n).toMatchObject({ active: 'B', running: N1 });
  });

  it('Kubernetes off: no drain or uncordon action at all', () => {
    const c = new Cluster();
    c.run(N1, []);
    expect(c.trace.filter((t) => /^(drain|uncordon)/.test(t))).toEqual([]);
  });

  it('a drain that fails on w-1 stops before its reboot: w-1 never rebooted, still on slot A, the hub untouched', () => {
    const c = new Cluster([{ node: 'w-1', fault: 'drain-fails' }]);
    c.kubernetes = true;
    const stop = c.run(N1, []);
    expect(stop).toMatchObject({ kind: 'stop', node: 'w-1', fellBackTo: 'A', reason: 'draining it before its reboot failed: kubectl drain: timed out waiting for the condition; it keeps booting slot A', upgraded: ['cp-1'], untouched: ['master'] });
    expect(stop).not.toHaveProperty('markBad');
    expect(c.trace).toEqual(['write cp-1 B', 'drain cp-1 B', 'reboot cp-1 B', 'converge cp-1 B', 'uncordon cp-1 B', 'write w-1 B', 'drain w-1 B', 'stop w-1']);
    expect(c.nodes['w-1']).toMatchObject({ active: 'A', booted: 'A', try: '', running: N });
  });

  it('a node that fails its gate: the stop says to uncordon it (it runs its previous slot again); one whose gate hangs stays cordoned', () => {
    const failed = new Cluster([{ node: 'w-1', fault: 'gate-fails' }]);
    failed.kubernetes = true;
    expect(failed.run(N1, [])).toMatchObject({ kind: 'stop', node: 'w-1', fellBackTo: 'A', cordoned: 'uncordon', markBad: { node: 'w-1' } });
    expect(failed.trace.slice(-3)).toEqual(['drain w-1 B', 'reboot w-1 B', 'stop w-1']);
    const hangs = new Cluster([{ node: 'w-1', fault: 'gate-hangs' }]);
    hangs.kubernetes = true;
    expect(hangs.run(N1, [])).toMatchObject({ kind: 'stop', node: 'w-1', cordoned: 'leave' });
    const off = new Cluster([{ node: 'w-1', fault: 'gate-fails' }]);
    expect(off.run(N1, [])).not.toHaveProperty('cordoned');
  });
});

describe('nextApplyAction: the converge of each node on N+1 after its gate', () => {
  it('a converge that fails on w-1 stops there: w-1 stays on slot B (its gate passed), nothing marked bad, the hub untouched; the rerun converges w-1 without writing it again', () => {
    const c = new Cluster([{ node: 'w-1', fault: 'converge-fails' }]);
    const bad: RolledBackBuild[] = [];
    const stop = c.run(N1, bad);
    expect(c.trace).toEqual(['write cp-1 B', 'reboot cp-1 B', 'converge cp-1 B', 'write w-1 B', 'reboot w-1 B', 'converge w-1 B', 'stop w-1']);
    expect(stop).toMatchObject({ kind: 'stop', node: 'w-1', wave: 2, upgraded: ['cp-1'], inProgress: [], untouched: ['master'] });
    if (stop.kind !== 'stop') throw new Error('not a stop');
    expect(stop.reason).toBe('slot B passed its gate, but converging the node on 0.2.0 failed: kubedos_etcd: the member did not join within 120 s; the node stays on slot B (0.2.0) without the files the converge renders (etcd\'s configuration, Prometheus\'s, the plane-bound units): rerun `kubedos upgrade SPEC` to converge it again (its slot is not written again), or converge it with `kubedos deploy SPEC`, or go back with `kubedos upgrade SPEC --rollback`');
    expect(stop).not.toHaveProperty('fellBackTo');
    expect(stop).not.toHaveProperty('markBad');
    expect(stop).not.toHaveProperty('cordoned');
    expect(bad).toEqual([]);
    expect(c.nodes['w-1']).toMatchObject({ active: 'B', booted: 'B', running: N1 });
    expect(c.nodes['w-1']!.converged).toBeUndefined();
    expect(c.nodes.master).toEqual(newNode());

    const rerun = new Cluster();
    rerun.nodes = c.nodes;
    expect(rerun.run(N1, bad)).toMatchObject({ kind: 'done', nodes: ORDER });
    expect(rerun.trace).toEqual(['converge w-1 B', 'write master B', 'reboot master B', 'converge master B', 'done']);
    for (const n of Object.values(rerun.nodes)) expect(n.converged).toEqual(N1);
  });

  it('where Kubernetes runs the node whose converge failed stays cordoned; the rerun converges it, then uncordons it', () => {
    const c = new Cluster([{ node: 'cp-1', fault: 'converge-fails' }]);
    c.kubernetes = true;
    expect(c.run(N1, [])).toMatchObject({ kind: 'stop', node: 'cp-1', cordoned: 'until-converged', upgraded: [], untouched: ['w-1', 'master'] });
    expect(c.trace).toEqual(['write cp-1 B', 'drain cp-1 B', 'reboot cp-1 B', 'converge cp-1 B', 'stop cp-1']);
    expect([...c.cordoned]).toEqual(['cp-1']);
    const rerun = new Cluster();
    rerun.kubernetes = true;
    rerun.nodes = c.nodes;
    rerun.cordoned = c.cordoned;
    expect(rerun.run(N1, [])).toMatchObject({ kind: 'done' });
    expect(rerun.trace.slice(0, 3)).toEqual(['converge cp-1 B', 'uncordon cp-1 B', 'write w-1 B']);
    expect(rerun.cordoned.size).toBe(0);
  });

  it('a node on N+1 that was never converged (an earlier run stopped before it): converged, not written; one converged on an older build is written', () => {
    const on = (slot: Slot, running: BuildRef, converged?: BuildRef): ApplyNode => ({ status: `booted=${slot}\nactive=${slot}\ntry=\ntries=0\nfailed=\n`, running, ...(converged ? { converged } : {}) });
    const nodes = { 'cp-1': on('B', N1, N1), 'w-1': on('B', N1), master: on('A', N) };
    expect(nextApplyAction({ waves, target: N1, nodes, bad: [], now: 0 })).toEqual({ kind: 'converge', node: 'w-1', wave: 2, slot: 'B' });
    expect(nextApplyAction({ waves, target: N1fixed, nodes: { ...nodes, 'cp-1': on('B', N1, N1) }, bad: [], now: 0 })).toEqual({ kind: 'write', node: 'cp-1', wave: 1, slot: 'A' });
    expect(nextApplyAction({ waves, target: N1, nodes: { ...nodes, 'w-1': on('B', N1, N1), master: on('B', N1, N1) }, bad: [], now: 0 })).toMatchObject({ kind: 'done' });
  });
});
