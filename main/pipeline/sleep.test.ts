import { describe, expect, it } from 'vitest';
import { sleep } from './sleep';

describe('sleep', () => {
  it('waits, and rejects at once when aborted (before or during)', async () => {
    const t0 = performance.now();
    await sleep(30);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
    const c = new AbortController();
    const p = sleep(60_000, c.signal);
    setTimeout(() => c.abort(), 10);
    await expect(p).rejects.toThrow('cancelled');
    await expect(sleep(10, c.signal)).rejects.toThrow('cancelled');
  });

  it('leaves no abort listener behind once it resolved', async () => {
    const c = new AbortController();
    let added = 0;
    let removed = 0;
    const add = c.signal.addEventListener.bind(c.signal);
    const remove = c.signal.removeEventListener.bind(c.signal);
    c.signal.addEventListener = ((...a: Parameters<typeof add>) => (added++, add(...a))) as typeof add;
    c.signal.removeEventListener = ((...a: Parameters<typeof remove>) => (removed++, remove(...a))) as typeof remove;
    for (let i = 0; i < 3; i++) await sleep(1, c.signal);
    expect([added, removed]).toEqual([3, 3]);
  });
});
