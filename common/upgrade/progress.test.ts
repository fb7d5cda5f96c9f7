// The live run's fold (common/upgrade/progress.ts): the apply loop's events → what each node does
// now, the Pipeline view's headline, the slot write's words shared with the CLI; and the record's
// reading (upgradeProgress) for nodes a `replace` wave replaced by new VMs.
import { describe, expect, it } from 'vitest';
import type { ApplyEvent } from './progress';
import type { UpgradeRecord } from './progress';
import { applyEventLine, endLive, foldLive, LIVE_LINES_KEPT, liveEndDetail, liveHeadline, liveLinesDroppedText, liveLineText, liveLineTime, liveStepText, REPLACE_STATES, replacementText, ROLLBACK_REASON, slotWriteDetail, startLive, UpgradeLive, UpgradeProgress, upgradeProgress } from './progress';
import { buildRef, lab3Waves } from './testing';

const N1 = buildRef('0.1.1');
const MiB = 1048576;

function fold(events: ApplyEvent[]): UpgradeLive {
  let live = startLive({ pid: 4242, kind: 'upgrade', target: N1, waves: lab3Waves(), at: 1_000 });
  events.forEach((e, i) => (live = foldLive(live, e, 2_000 + i)));
  return live;
}

describe('the live upgrade fold', () => {
  it('keeps per node the last step, the slot it acts on and the write progress; the headline names the wave', () => {
    const live = fold([
      { step: 'drain', detail: 'no Kubernetes (kubernetes.enabled is false): nothing to drain or uncordon' },
      { node: 'cp-1', step: 'write', slot: 'B', detail: 'wave 1: writing 0.1.1 into slot B' },
      { node: 'cp-1', step: 'write', slot: 'B', detail: 'slot B written and read back; the next boot tries it' },
      { node: 'cp-1', step: 'reboot', slot: 'B', detail: 'rebooting into slot B' },
      { node: 'cp-1', step: 'wait', detail: 'slot B booted: waiting for its gate' },
      { node: 'cp-1', step: 'converge', detail: 'converged on 0.1.1' },
      { node: 'w-1', step: 'write', slot: 'B', detail: 'wave 2: writing 0.1.1 into slot B' },
      { node: 'w-1', step: 'progress', slot: 'B', detail: '…', progress: { bytes: 1234 * MiB, total: 2048 * MiB, rate: 52 * MiB } },
    ]);
    expect(UpgradeLive.parse(live)).toEqual(live);
    expect(live).toMatchObject({ pid: 4242, kind: 'upgrade', target: N1, startedAt: 1_000, updatedAt: 2_007, current: 'w-1', waves: [['cp-1'], ['w-1'], ['master']] });
    expect(live.nodes['cp-1']).toEqual({ step: 'converge', detail: 'converged on 0.1.1', slot: 'B' });
    expect(live.nodes['master']).toBeUndefined();
    expect(liveStepText(live.nodes['cp-1']!)).toBe('converged');
    expect(liveHeadline(live)).toBe('Upgrading to 0.1.1 — wave 2 of 3: w-1 writing slot B, 1,234 of 2,048 MiB, 52.0 MiB/s');
  });

  it('each step in words: rebooting, waiting for its gate, converging; the slot kept from the write', () => {
    const base = [{ node: 'w-1', step: 'write', slot: 'B', detail: 'wave 2: writing 0.1.1 into slot B' }] as ApplyEvent[];
    const at = (e: ApplyEvent): string => liveHeadline(fold([...base, e]));
    expect(at({ node: 'w-1', step: 'reboot', slot: 'B', detail: 'rebooting into slot B' })).toBe('Upgrading to 0.1.1 — wave 2 of 3: w-1 rebooting into slot B');
    expect(at({ node: 'w-1', step: 'wait', detail: 'rebooting into slot B: not answering yet (ssh: refused)' })).toBe('Upgrading to 0.1.1 — wave 2 of 3: w-1 waiting for its gate');
    expect(at({ node: 'w-1', step: 'converge', detail: 'wave 2: slot B passed its gate: converging w-1 on 0.1.1' })).toBe('Upgrading to 0.1.1 — wave 2 of 3: w-1 converging');
    expect(fold([...base, { node: 'w-1', step: 'wait', detail: 'x' }]).nodes['w-1']?.slot).toBe('B');
  });

  it('the end: how the run ended, kept in the file; a rollback names no upgrade wave', () => {
    const stopped = endLive(fold([{ node: 'w-1', step: 'stop', detail: 'slot B failed its health gate (services)' }]), { kind: 'stop', node: 'w-1', message: 'upgrade to 0.1.1 stopped at w-1' }, 9_000);
    expect(stopped.end).toEqual({ kind: 'stop', node: 'w-1', message: 'upgrade to 0.1.1 stopped at w-1', at: 9_000 });
    expect(liveHeadline(stopped)).toBe('Upgrade to 0.1.1: stopped at w-1');
    // The end's detail without what the headline says; a message of another shape is kept whole.
    expect(liveEndDetail(endLive(stopped, { kind: 'stop', node: 'w-1', message: 'upgrade to 0.1.1 stopped at w-1 (wave 2): slot B failed its health gate (services)\nrerun to continue' }, 9))).toBe('slot B failed its health gate (services)');
    expect(liveEndDetail(endLive(stopped, { kind: 'stop', node: 'w-1', message: 'upgrade to 0.1.1 stopped before w-1: the maintenance window closed' }, 9))).toBe('the maintenance window closed');
    expect(liveEndDetail(endLive(stopped, { kind: 'refuse', message: 'rollback refused before any node was touched: no record' }, 9))).toBe('rollback refused before any node was touched: no record');
    expect(liveEndDetail(fold([{ node: 'w-1', step: 'write', slot: 'B', detail: 'wave 2: writing 0.1.1 into slot B' }]))).toBe('');
    const rb = foldLive(startLive({ pid: 1, kind: 'rollback', target: N1, waves: lab3Waves(), at: 0 }), { node: 'master', step: 'rollback', slot: 'A', detail: 'wave 1: one try of slot A (the previous build), then reboot' }, 1);
    expect(liveHeadline(rb)).toBe('Rolling back from 0.1.1 — master rolling back to slot A');
    expect(liveHeadline(endLive(rb, { kind: 'done', message: '3 nodes back on the previous build' }, 2))).toBe('Rollback from 0.1.1: done');
  });

  it("keeps the run's lines as the CLI prints them, with the loop's time and node; a write's progress only as its latest line", () => {
    const progress = (bytes: number): ApplyEvent => ({ node: 'w-1', step: 'progress', slot: 'B', detail: `${bytes} MiB`, progress: { bytes: bytes * MiB, total: 2048 * MiB, rate: 52 * MiB } });
    const live = fold([
      { step: 'drain', detail: 'no Kubernetes (kubernetes.enabled is false): nothing to drain or uncordon' },
      { node: 'cp-1', step: 'write', slot: 'B', detail: 'wave 1: writing 0.1.1 into slot B' },
      { node: 'cp-1', step: 'progress', slot: 'B', detail: '16 MiB', progress: { bytes: 16 * MiB, total: 16 * MiB, rate: MiB } },
      { node: 'cp-1', step: 'write', slot: 'B', detail: 'slot B written and read back; the next boot tries it' },
      { node: 'w-1', step: 'write', slot: 'B', detail: 'wave 2: writing 0.1.1 into slot B' },
      progress(1),
      progress(2),
      { node: 'master', step: 'wait', detail: 'between' },
      progress(3),
      progress(4),
    ]);
    expect(UpgradeLive.parse(live)).toEqual(live);
    expect(live.linesDropped).toBeUndefined();
    expect(live.lines).toEqual([
      { at: 2_000, step: 'drain', text: 'no Kubernetes (kubernetes.enabled is false): nothing to drain or uncordon' },
      { at: 2_001, node: 'cp-1', step: 'write', text: 'wave 1: writing 0.1.1 into slot B' },
      { at: 2_002, node: 'cp-1', step: 'progress', text: '16 MiB' },
      { at: 2_003, node: 'cp-1', step: 'write', text: 'slot B written and read back; the next boot tries it' },
      { at: 2_004, node: 'w-1', step: 'write', text: 'wave 2: writing 0.1.1 into slot B' },
      // w-1's progress: only the latest, moved to the end; another node's line between does not keep an older one
      // (a wave writing two nodes at once interleaves their progress). cp-1's write ended: its progress line stays.
      { at: 2_007, node: 'master', step: 'wait', text: 'between' },
      { at: 2_009, node: 'w-1', step: 'progress', text: '4 MiB' },
    ]);
    expect(live.lines!.map(liveLineText).slice(0, 2)).toEqual(['drain no Kubernetes (kubernetes.enabled is false): nothing to drain or uncordon', 'cp-1: write wave 1: writing 0.1.1 into slot B']);
    expect(applyEventLine({ node: 'cp-1', step: 'reboot', detail: 'rebooting into slot B' })).toBe('cp-1: reboot rebooting into slot B');
    expect(liveLineTime(live, live.lines![0]!)).toBe('+0:01');
    expect(liveLineTime({ startedAt: 0 }, { at: (2 * 3600 + 5 * 60 + 7) * 1000 })).toBe('+2:05:07');
    expect(liveLineTime({ startedAt: 0 }, { at: 61_999 })).toBe('+1:01');
  });

  it('the end is the last line (what its message says that no line said yet: once when a done event said it already)', () => {
    const stopped = endLive(fold([{ node: 'w-1', step: 'stop', detail: 'slot B failed its health gate (services)' }]), { kind: 'stop', node: 'w-1', message: 'upgrade to 0.1.1 stopped at w-1: slot B failed\n1 node upgraded' }, 9_000);
    expect(stopped.lines!.slice(-2)).toEqual([
      { at: 2_000, node: 'w-1', step: 'stop', text: 'slot B failed its health gate (services)' },
      { at: 9_000, node: 'w-1', step: 'end', text: 'upgrade to 0.1.1 stopped at w-1: slot B failed\n1 node upgraded' },
    ]);
    expect(liveLineText(stopped.lines!.at(-1)!)).toBe('w-1: upgrade to 0.1.1 stopped at w-1: slot B failed\n1 node upgraded');
    const done = endLive(fold([{ step: 'done', detail: '3 nodes upgraded' }]), { kind: 'done', message: '3 nodes upgraded' }, 9_000);
    expect(done.lines!.map((l) => l.step)).toEqual(['done']);
    // The recovery bundle's reseal after the done event: its line was its own event; the end adds only what was not said.
    const sealedLine = 'recovery bundle sealed again for 0.1.1 (was 0.1.0)';
    const sealed = endLive(fold([{ step: 'done', detail: '3 nodes upgraded' }, { step: 'seal', detail: sealedLine }]), { kind: 'done', message: `3 nodes upgraded\n${sealedLine}` }, 9_000);
    expect(sealed.lines!.map((l) => l.step)).toEqual(['done', 'seal']);
    expect(sealed.end?.message).toBe(`3 nodes upgraded\n${sealedLine}`);
    const noted = endLive(fold([{ step: 'done', detail: '3 nodes back on 0.1.0' }, { step: 'seal', detail: sealedLine }]), { kind: 'done', message: `3 nodes back on 0.1.0\n${sealedLine}\nnote: the workspace does not keep 0.1.0's signed build files` }, 9_000);
    expect(noted.lines!.at(-1)).toEqual({ at: 9_000, step: 'end', text: "note: the workspace does not keep 0.1.0's signed build files" });
    const cancelled = endLive(fold([]), { kind: 'cancelled', message: 'upgrade to 0.1.1 cancelled' }, 9_000);
    expect(cancelled.lines).toEqual([{ at: 9_000, step: 'end', text: 'upgrade to 0.1.1 cancelled' }]);
  });

  it(`keeps the last ${LIVE_LINES_KEPT} lines and counts the earlier ones`, () => {
    const events: ApplyEvent[] = Array.from({ length: LIVE_LINES_KEPT + 37 }, (_, i) => ({ node: `n-${i % 3}`, step: 'wait', detail: `poll ${i}` }));
    const live = fold(events);
    expect(live.lines).toHaveLength(LIVE_LINES_KEPT);
    expect(live.lines![0]!.text).toBe('poll 37');
    expect(live.lines!.at(-1)!.text).toBe(`poll ${LIVE_LINES_KEPT + 36}`);
    expect(live.linesDropped).toBe(37);
    expect(liveLinesDroppedText(live)).toBe('37 earlier lines not kept');
    expect(liveLinesDroppedText(fold([]))).toBe('');
    expect(UpgradeLive.parse(JSON.parse(JSON.stringify(live)))).toEqual(live);
  });

  it('a live file written before the lines still parses (none kept), and folding into it starts them', () => {
    const old = { pid: 7, kind: 'upgrade', target: N1, startedAt: 1, updatedAt: 2, waves: [['cp-1']], current: 'cp-1', nodes: { 'cp-1': { step: 'reboot', detail: 'rebooting into slot B', slot: 'B' } } };
    const parsed = UpgradeLive.parse(old);
    expect(parsed.lines).toBeUndefined();
    expect(foldLive(parsed, { node: 'cp-1', step: 'wait', detail: 'not answering yet (ssh: refused)' }, 3).lines).toEqual([{ at: 3, node: 'cp-1', step: 'wait', text: 'not answering yet (ssh: refused)' }]);
    expect(UpgradeLive.safeParse({ ...old, lines: [{ at: 1, step: 'nope', text: 'x' }] }).success).toBe(false);
  });

  it('a slot write in words, as the CLI prints it', () => {
    expect(slotWriteDetail({ bytes: 16 * MiB, total: 16 * MiB, rate: 3.25 * MiB, via: 'a virtio-serial port' })).toBe('16 of 16 MiB through a virtio-serial port, 3.3 MiB/s');
  });
});

describe('the record read for a replace-based upgrade', () => {
  const N = buildRef('0.1.0');
  const N2 = buildRef('0.1.2');
  const PLAN = ['master', 'cp-1', 'w-1'];
  const GATE = 'its replacement on 0.1.1 failed its health gate (services)';
  /** The states the view shows, per node: [node, state, replaced.state ?? '-']. */
  const rows = (record: UpgradeRecord): string[][] =>
    UpgradeProgress.parse(upgradeProgress('lab-3', PLAN, record))
      .nodes.map((n) => [n.node, n.state, n.replaced?.state ?? '-']);

  it('each step of a replacement with the target: replacing until done, then replaced (never "written"); its note in words', () => {
    const texts: string[] = [];
    for (const state of REPLACE_STATES) {
      // The slots the loop keeps: the old VM's until the new one is provisioned, then the build on both.
      const made = state !== 'destroying' && state !== 'provisioning';
      const record: UpgradeRecord = { target: N1, slots: { 'cp-1': { A: N1, B: N1 }, ...(made ? { 'w-1': { A: N1, B: N1 } } : {}) }, bad: [], replaced: { 'cp-1': { build: N1, state: 'done' }, 'w-1': { build: N1, state } } };
      const p = upgradeProgress('lab-3', PLAN, record);
      expect(rows(record), state).toEqual([
        ['master', 'not-written', '-'],
        ['cp-1', 'replaced', 'done'],
        ['w-1', state === 'done' ? 'replaced' : 'replacing', state],
      ]);
      expect(p.nodes[2]?.replaced, state).toEqual({ build: N1, state });
      expect(p.nodes[2]?.reason, state).toBeUndefined();
      texts.push(replacementText({ build: N1, state }));
    }
    expect(texts).toEqual([
      'its VM is being destroyed for a new one from 0.1.1',
      'its new VM is being created from 0.1.1',
      'its new VM runs 0.1.1; converging it next',
      'its new VM is converged; its health gate next',
      'its new VM passed its gate; uncordoning',
      'replaced by a new VM from 0.1.1',
    ]);
  });

  it('a node mid-replacement that the plan no longer names and the slots do not list is still shown', () => {
    const record: UpgradeRecord = { target: N1, slots: {}, bad: [], replaced: { 'cp-2': { build: N1, state: 'destroying' } } };
    expect(rows(record)).toEqual([
      ['master', 'not-written', '-'],
      ['cp-1', 'not-written', '-'],
      ['w-1', 'not-written', '-'],
      ['cp-2', 'replacing', 'destroying'],
    ]);
  });

  it("a replacement with another build (an earlier upgrade's) is not this upgrade's", () => {
    const record: UpgradeRecord = { target: N2, slots: { 'cp-1': { A: N1, B: N1 } }, bad: [], replaced: { 'cp-1': { build: N1, state: 'done' } } };
    expect(rows(record)).toEqual([
      ['master', 'not-written', '-'],
      ['cp-1', 'not-written', '-'],
      ['w-1', 'not-written', '-'],
    ]);
  });

  it("the target rolled back at a node whose replacement failed its gate: rolled-back wins, with the record's reason and the replacement", () => {
    const record: UpgradeRecord = {
      target: N1,
      slots: { 'cp-1': { A: N1, B: N1 }, 'w-1': { A: N1, B: N1 } },
      bad: [{ digest: N1.digest, version: '0.1.1', node: 'w-1', reason: GATE }],
      replaced: { 'cp-1': { build: N1, state: 'done' }, 'w-1': { build: N1, state: 'converged' } },
    };
    const p = upgradeProgress('lab-3', PLAN, record);
    expect(rows(record)).toEqual([
      ['master', 'not-written', '-'],
      ['cp-1', 'replaced', 'done'],
      ['w-1', 'rolled-back', 'converged'],
    ]);
    expect(p.nodes[2]?.reason).toBe(GATE);
  });

  it('--rollback replacing the nodes again from the build before: each rolled back, with how far its new replacement got', () => {
    for (const state of REPLACE_STATES) {
      const made = state !== 'destroying' && state !== 'provisioning';
      // cp-1 is back on N (a new VM); w-1 is replaced again now; the hub was slot-switched back.
      const record: UpgradeRecord = {
        target: N1,
        slots: { master: { A: N, B: N1 }, 'cp-1': { A: N, B: N }, 'w-1': made ? { A: N, B: N } : { A: N1, B: N1 } },
        bad: [{ digest: N1.digest, version: '0.1.1', node: 'w-1', reason: ROLLBACK_REASON }],
        replaced: { 'cp-1': { build: N, state: 'done' }, 'w-1': { build: N, state } },
      };
      const p = upgradeProgress('lab-3', PLAN, record);
      expect(rows(record), state).toEqual([
        ['master', 'rolled-back', '-'],
        ['cp-1', 'rolled-back', 'done'],
        ['w-1', 'rolled-back', state],
      ]);
      expect(p.nodes[1], state).toMatchObject({ reason: ROLLBACK_REASON, replaced: { build: N, state: 'done' } });
      expect(p.nodes[2]?.replaced, state).toEqual({ build: N, state });
    }
  });

  it("--rollback after a replacement failed its gate (the gate's reason recorded first): the nodes it replaced again are rolled back too", () => {
    const record: UpgradeRecord = {
      target: N1,
      slots: { 'cp-1': { A: N, B: N }, 'w-1': { A: N, B: N } },
      bad: [{ digest: N1.digest, version: '0.1.1', node: 'w-1', reason: GATE }],
      replaced: { 'cp-1': { build: N, state: 'done' }, 'w-1': { build: N, state: 'done' } },
    };
    expect(rows(record)).toEqual([
      ['master', 'not-written', '-'],
      ['cp-1', 'rolled-back', 'done'],
      ['w-1', 'rolled-back', 'done'],
    ]);
  });

  it('a replacement with another build left by an earlier upgrade, the node slot-written since: not counted as the rollback\'s', () => {
    const record: UpgradeRecord = {
      target: N2,
      slots: { 'cp-1': { A: N1, B: N2 } },
      bad: [{ digest: N2.digest, version: '0.1.2', node: 'cp-1', reason: ROLLBACK_REASON }],
      replaced: { 'cp-1': { build: N1, state: 'done' } },
    };
    const p = upgradeProgress('lab-3', PLAN, record);
    expect(rows(record)).toEqual([
      ['master', 'not-written', '-'],
      ['cp-1', 'rolled-back', '-'],
      ['w-1', 'not-written', '-'],
    ]);
    expect(p.nodes[1]?.targetSlot).toBe('B');
  });
});
