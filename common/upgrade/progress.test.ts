// The live run's fold (common/upgrade/progress.ts): the apply loop's events → what each node does
// now, the Pipeline view's headline, the slot write's words shared with the CLI.
import { describe, expect, it } from 'vitest';
import type { ApplyEvent } from './progress';
import { endLive, foldLive, liveHeadline, liveStepText, slotWriteDetail, startLive, UpgradeLive } from './progress';
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
    const rb = foldLive(startLive({ pid: 1, kind: 'rollback', target: N1, waves: lab3Waves(), at: 0 }), { node: 'master', step: 'rollback', slot: 'A', detail: 'wave 1: one try of slot A (the previous build), then reboot' }, 1);
    expect(liveHeadline(rb)).toBe('Rolling back from 0.1.1 — master rolling back to slot A');
  });

  it('a slot write in words, as the CLI prints it', () => {
    expect(slotWriteDetail({ bytes: 16 * MiB, total: 16 * MiB, rate: 3.25 * MiB, via: 'a virtio-serial port' })).toBe('16 of 16 MiB through a virtio-serial port, 3.3 MiB/s');
  });
});
