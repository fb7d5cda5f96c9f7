// The apply plan (common/upgrade/apply.ts) driving three nodes whose boot counter and gate are the
// REAL node scripts: each node is a GRUB environment block (grub-editenv) and a kernel command
// line; `write` runs `kubedos-boot try SLOT` (the last step of kubedos-slot-write, whose write is
// tested on a loop device in slot-write.test.ts), `reboot` runs boot-select.cfg through the GRUB
// simulator and then kubedos-health-gate with its checks stubbed on PATH. lab-3 (rolling): a good
// N+1, then an N+1 whose w-1 fails its gate, then the fixed N+1.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BuildRef, Slot } from '../../common/upgrade/agent';
import type { ApplyAction, ApplyNode, ApplyStep, RolledBackBuild } from '../../common/upgrade/apply';
import { nextApplyAction, planRollback } from '../../common/upgrade/apply';
import { buildRef as build, lab3Waves } from '../../common/upgrade/testing';
import { grubBootSelect, simNodeDir } from './testing';
import { UPGRADE_BOOT_TRIES } from './slot-image';

const UPGRADE = join(import.meta.dirname, '../../payload/upgrade');
const root = mkdtempSync(join(tmpdir(), 'kd-h18a-apply-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const N = build('0.1.0');
const waves = lab3Waves();

interface Node {
  dir: string;
  env: string;
  cmdline: string;
  /** What each slot holds (the foundry's record of what it wrote). */
  slots: Record<Slot, BuildRef>;
  metrics?: string;
  step?: ApplyStep;
  /** The build the foundry converged the node on after its gate (the upgrade record). */
  converged?: BuildRef;
}

function newNode(name: string): Node {
  return { ...simNodeDir(root, name), slots: { A: N, B: N } };
}

const envOf = (n: Node): NodeJS.ProcessEnv => ({ PATH: `${join(n.dir, 'bin')}:${process.env.PATH}`, KUBEDOS_GRUBENV: n.env, KUBEDOS_CMDLINE: n.cmdline, KUBEDOS_UPGRADE_CONF: join(n.dir, 'conf'), KUBEDOS_METRICS_DIR: join(n.dir, 'textfile'), KUBEDOS_DATA: join(n.dir, 'data') });
const status = (n: Node): string => execFileSync(join(UPGRADE, 'kubedos-boot'), ['status'], { encoding: 'utf8', env: envOf(n) });
/** The build this node's active slot holds (what its agent would report), from its status. */
const running = (n: Node, st = status(n)): BuildRef => n.slots[/^active=(.*)$/m.exec(st)![1]! as Slot];

/** A boot: GRUB picks the slot; the node's gate runs when the kernel comes up (a build whose kernel never does: GRUB again). */
function bootAndGate(n: Node, neverBoots: (b: BuildRef) => boolean, breaksUnit: (b: BuildRef) => string | undefined): void {
  for (let i = 0; i < 5; i++) {
    const slot = grubBootSelect(n.env, join(UPGRADE, 'boot-select.cfg')) as Slot;
    writeFileSync(n.cmdline, `BOOT_IMAGE=/vmlinuz root=LABEL=kubedos-root-${slot} rw kubedos.slot=${slot}\n`);
    if (neverBoots(n.slots[slot])) continue;
    writeFileSync(join(n.dir, 'failing-units'), `${breaksUnit(n.slots[slot]) ?? ''}\n`);
    const before = existsSync(join(n.dir, 'reboots')) ? readFileSync(join(n.dir, 'reboots'), 'utf8') : '';
    const g = spawnSync(join(UPGRADE, 'kubedos-health-gate'), ['--timeout', '0', '--interval', '0.2'], { encoding: 'utf8', env: envOf(n), timeout: 30_000 });
    expect(g.stdout).toMatch(/^gate: (pass|fail)/m);
    const prom = readFileSync(join(n.dir, 'textfile/kubedos.prom'), 'utf8');
    if (n.step && 'slot' in n.step && slot === n.step.slot) n.metrics = prom; // the foundry scrapes the tried slot's gate over wg2
    const after = existsSync(join(n.dir, 'reboots')) ? readFileSync(join(n.dir, 'reboots'), 'utf8') : '';
    if (after === before) return; // no reboot asked: the node stays up
  }
}

function runUpgrade(nodes: Record<string, Node>, target: BuildRef, bad: RolledBackBuild[], faults: { neverBoots?: string; breaks?: string } = {}): { end: ApplyAction; trace: string[] } {
  for (const n of Object.values(nodes)) {
    delete n.step;
    delete n.metrics;
  }
  const trace: string[] = [];
  let now = 1_000;
  for (let i = 0; i < 30; i++) {
    const view: Record<string, ApplyNode> = Object.fromEntries(Object.entries(nodes).map(([k, n]) => [k, n, status(n)] as const).map(([k, n, st]) => [k, { status: st, running: running(n, st), ...(n.metrics ? { metrics: n.metrics } : {}), ...(n.step ? { step: n.step } : {}), ...(n.converged ? { converged: n.converged } : {}) }]));
    const a = nextApplyAction({ waves, target, nodes: view, bad, now });
    trace.push(a.kind === 'done' || a.kind === 'refuse' ? a.kind : `${a.kind} ${a.node}${'slot' in a ? ` ${a.slot}` : ''}`);
    if (a.kind === 'done' || a.kind === 'refuse' || a.kind === 'stop') {
      if (a.kind === 'stop' && a.markBad) bad.push(a.markBad);
      return { end: a, trace };
    }
    const n = nodes[a.node]!;
    now += 1_000;
    if (a.kind === 'write') {
      // kubedos-slot-write's write and read-back (tested on a loop device) end with this, with the engine's tries:
      n.slots[a.slot] = target;
      execFileSync(join(UPGRADE, 'kubedos-boot'), ['try', a.slot, String(UPGRADE_BOOT_TRIES)], { env: envOf(n) });
      n.step = { kind: 'write', slot: a.slot, ok: true };
    } else if (a.kind === 'reboot') {
      n.step = { kind: 'reboot', slot: a.slot, at: now };
      bootAndGate(
        n,
        (b) => b.digest === target.digest && faults.neverBoots === a.node,
        (b) => (b.digest === target.digest && faults.breaks === a.node ? 'kubelet' : undefined),
      );
    } else if (a.kind === 'converge') {
      expect(status(n)).toBe(`booted=${a.slot}\nactive=${a.slot}\ntry=\ntries=0\nfailed=\n`); // its gate passed: mark-good
      n.converged = target;
      n.step = { kind: 'converge', slot: a.slot, ok: true };
    } else if (a.kind === 'wait') {
      now = a.until;
    } else {
      throw new Error(`${a.kind}: Kubernetes is off here`);
    }
  }
  throw new Error(`no end: ${trace.join(', ')}`);
}

describe('the apply plan over the real boot counter and gate of three nodes (lab-3, rolling)', () => {
  it('N+1 whose w-1 fails its gate stops at w-1 (cp-1 stays on it, the hub untouched); the fixed N+1 completes; --rollback order', () => {
    const nodes = Object.fromEntries(['cp-1', 'w-1', 'master'].map((name) => [name, newNode(name)]));
    const N1 = build('0.2.0');
    const bad: RolledBackBuild[] = [];
    const first = runUpgrade(nodes, N1, bad, { breaks: 'w-1' });
    expect(first.trace).toEqual(['write cp-1 B', 'reboot cp-1 B', 'converge cp-1 B', 'write w-1 B', 'reboot w-1 B', 'stop w-1']);
    expect(first.end).toMatchObject({ kind: 'stop', node: 'w-1', fellBackTo: 'A', reason: 'slot B failed its health gate (services); the node fell back to slot A', upgraded: ['cp-1'], untouched: ['master'] });
    expect(status(nodes['cp-1']!)).toBe('booted=B\nactive=B\ntry=\ntries=0\nfailed=\n');
    expect(status(nodes['w-1']!)).toBe('booted=A\nactive=A\ntry=\ntries=0\nfailed=B\n');
    expect(status(nodes.master!)).toBe('booted=A\nactive=A\ntry=\ntries=\nfailed=\n');
    expect(bad.map((b) => b.node)).toEqual(['w-1']);

    expect(runUpgrade(nodes, N1, bad).end).toMatchObject({ kind: 'refuse', message: expect.stringMatching(/^build 0\.2\.0 rolled back on w-1/) });

    const fixed = build('0.2.1');
    const second = runUpgrade(nodes, fixed, bad);
    expect(second.trace).toEqual(['write cp-1 A', 'reboot cp-1 A', 'converge cp-1 A', 'write w-1 B', 'reboot w-1 B', 'converge w-1 B', 'write master B', 'reboot master B', 'converge master B', 'done']);
    expect(Object.values(nodes).map((n) => running(n).version)).toEqual(['0.2.1', '0.2.1', '0.2.1']);
    const rb = planRollback(waves, Object.fromEntries(Object.entries(nodes).map(([k, n]) => [k, { status: status(n), running: running(n) }])), fixed);
    expect(rb.ok && rb.steps.map((s) => `${s.node} ${s.argv.slice(1).join(' ')}`)).toEqual(['master try A 1', 'w-1 try A 1', 'cp-1 try B 1']);
  });

  it('N+1 whose kernel never comes up on cp-1: its try runs out, GRUB falls back, the upgrade stops at the first node', () => {
    const nodes = Object.fromEntries(['cp-1', 'w-1', 'master'].map((name) => [name, newNode(`never-${name}`)]));
    const { end, trace } = runUpgrade(nodes, build('0.2.0'), [], { neverBoots: 'cp-1' });
    expect(trace).toEqual(['write cp-1 B', 'reboot cp-1 B', 'stop cp-1']);
    expect(end).toMatchObject({ kind: 'stop', node: 'cp-1', fellBackTo: 'A', reason: expect.stringMatching(/^slot B ran out of boot tries/), upgraded: [], untouched: ['w-1', 'master'], markBad: { node: 'cp-1' } });
    expect(status(nodes['cp-1']!)).toBe('booted=A\nactive=A\ntry=\ntries=0\nfailed=B\n');
  });
});
