import { describe, expect, it } from 'vitest';
import type { ClusterHealthNow } from './now';
import type { PollOutcome, PollTimers } from './poll';
import { createPoller, HEALTH_POLL_MAX_BACKOFF_S, nextReadDelayS, readFailure } from './poll';

/** A hand-driven clock: timers fire only when the test advances time. */
function fakeTimers(): PollTimers & { advance: (ms: number) => Promise<void>; pending: () => number } {
  let now = 1_000_000;
  let id = 0;
  const due = new Map<number, { at: number; fn: () => void }>();
  const flush = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return {
    now: () => now,
    set: (fn, ms) => {
      due.set(++id, { at: now + ms, fn });
      return id;
    },
    clear: (h) => void due.delete(h as number),
    pending: () => due.size,
    advance: async (ms) => {
      const end = now + ms;
      for (;;) {
        await flush();
        const next = [...due.entries()].sort((a, b) => a[1].at - b[1].at)[0];
        if (!next || next[1].at > end) break;
        now = next[1].at;
        due.delete(next[0]);
        next[1].fn();
      }
      now = end;
      await flush();
    },
  };
}

/** A read whose answers the test releases one by one. */
function manualRead() {
  const waiting: ((v: string) => void)[] = [];
  return {
    read: () => new Promise<string>((resolve) => waiting.push(resolve)),
    answer: (v: string) => waiting.shift()?.(v),
    waiting: () => waiting.length,
  };
}

describe('health poller', () => {
  it('reads at once, then every interval after the last read ended; never two reads in flight', async () => {
    const t = fakeTimers();
    const r = manualRead();
    const got: PollOutcome<string>[] = [];
    const p = createPoller({ read: r.read, failed: (v) => v === 'bad', intervalS: 15, timers: t, onOutcome: (o) => got.push(o) });
    expect(p.snapshot()).toMatchObject({ inFlight: true, reads: 1 });
    expect(p.readNow()).toBe(false); // one in flight at most
    await t.advance(60_000); // a hub that takes a minute to answer: no second read meanwhile
    expect([p.snapshot().reads, r.waiting()]).toEqual([1, 1]);
    r.answer('ok');
    await t.advance(0);
    expect(got).toEqual([{ ok: true, value: 'ok' }]);
    expect(p.snapshot().nextAt).toBe(t.now() + 15_000);
    await t.advance(14_999);
    expect(p.snapshot().reads).toBe(1);
    await t.advance(1);
    expect(p.snapshot().reads).toBe(2);
    p.stop();
  });

  it('backs off while reads fail (the hub does not answer), and returns to the interval after a good read', async () => {
    const t = fakeTimers();
    const r = manualRead();
    const waits: number[] = [];
    const p = createPoller({ read: r.read, failed: (v) => v === 'bad', intervalS: 15, timers: t, onOutcome: () => undefined, onChange: (s) => s.nextAt !== undefined && waits.push((s.nextAt - t.now()) / 1000) });
    for (const v of ['bad', 'bad', 'bad', 'ok']) {
      r.answer(v);
      await t.advance(0);
      await t.advance((p.snapshot().nextAt ?? t.now()) - t.now());
    }
    expect(waits).toEqual([30, 60, 120, 15]);
    expect(nextReadDelayS(15, 10)).toBe(HEALTH_POLL_MAX_BACKOFF_S);
    expect(nextReadDelayS(300, 3)).toBe(300); // an interval longer than the cap is kept
    p.stop();
  });

  it('a rejected read is a failed read, reported as an error', async () => {
    const t = fakeTimers();
    const got: PollOutcome<string>[] = [];
    const p = createPoller({ read: () => Promise.reject(new Error('engine gone')), failed: () => false, intervalS: 5, timers: t, onOutcome: (o) => got.push(o) });
    await t.advance(0);
    expect(got).toEqual([{ ok: false, error: new Error('engine gone') }]);
    expect(p.snapshot()).toMatchObject({ failures: 1, nextAt: t.now() + 10_000 });
    p.stop();
  });

  it('no reads while paused or hidden; Refresh reads anyway; resume and showing again read when due', async () => {
    const t = fakeTimers();
    let reads = 0;
    const p = createPoller({ read: async () => `r${++reads}`, failed: () => false, intervalS: 15, timers: t, onOutcome: () => undefined });
    await t.advance(0);
    expect(reads).toBe(1);
    p.pause();
    expect(t.pending()).toBe(0);
    await t.advance(120_000);
    expect(reads).toBe(1);
    expect(p.readNow()).toBe(true); // Refresh while paused
    await t.advance(120_000);
    expect(reads).toBe(2);
    p.resume(); // the last read is 120 s old: read at once
    await t.advance(0);
    expect(reads).toBe(3);
    p.setHidden(true);
    await t.advance(60_000);
    expect(reads).toBe(3);
    p.setHidden(false);
    await t.advance(0);
    expect(reads).toBe(4);
    p.setHidden(true);
    p.setHidden(false); // shown again before the next read is due: waits for it
    await t.advance(14_000);
    expect(reads).toBe(4);
    await t.advance(1_000);
    expect(reads).toBe(5);
    p.stop();
    await t.advance(60_000);
    expect([reads, t.pending()]).toEqual([5, 0]);
  });

  it('a start paused or hidden does not read', async () => {
    const t = fakeTimers();
    let reads = 0;
    createPoller({ read: async () => ++reads, failed: () => false, intervalS: 15, timers: t, onOutcome: () => undefined, hidden: true });
    await t.advance(60_000);
    expect(reads).toBe(0);
  });

  it('readFailure: the hub did not answer or a stale report may pass (keep the last picture); the journal answers for sure', () => {
    const h = (unavailable?: ClusterHealthNow['unavailable']): ClusterHealthNow => ({ cluster: 'c', hub: 'h', readAt: 0, nodes: [], counts: { healthy: 0, degraded: 0, unreachable: 0, unknown: 0 }, ...(unavailable ? { unavailable } : {}) });
    expect(readFailure(h())).toBeUndefined();
    expect(readFailure(h({ code: 'unreadable', message: 'no answer' }))).toEqual({ code: 'unreadable', message: 'no answer' });
    expect(readFailure(h({ code: 'stale', message: 'stale since' }))?.code).toBe('stale');
    expect(readFailure(h({ code: 'not-running', message: 'stopped' }))).toBeUndefined();
    expect(readFailure(h({ code: 'never-deployed', message: 'never' }))).toBeUndefined();
  });
});
