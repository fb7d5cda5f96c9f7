import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { PreloadBridge } from '../common/contract/api';
import { REQUEST_CHANNELS } from '../common/contract/channels';

const exposed: Record<string, unknown> = {};
const invoked: [string, unknown][] = [];
const listeners = new Map<string, (event: unknown, payload: unknown) => void>();

vi.mock('electron', () => ({
  contextBridge: { exposeInMainWorld: (key: string, api: unknown) => void (exposed[key] = api) },
  ipcRenderer: {
    invoke: async (channel: string, payload: unknown) => {
      invoked.push([channel, payload]);
      return { ok: true };
    },
    on: (channel: string, fn: (event: unknown, payload: unknown) => void) => void listeners.set(channel, fn),
    removeListener: (channel: string) => void listeners.delete(channel),
  },
}));

let bridge: PreloadBridge;
beforeAll(async () => {
  await import('./index');
  bridge = exposed.kubedos as PreloadBridge;
});

describe('preload: window.kubedos gated by the contract', () => {
  it('forwards every request channel of the contract, namespaced, and nothing else', async () => {
    for (const c of REQUEST_CHANNELS) await bridge.invoke(c, { x: 1 });
    expect(invoked.map(([c]) => c)).toEqual(REQUEST_CHANNELS.map((c) => `kubedos:${c}`));
    await expect(bridge.invoke('shell.openExternal', {})).rejects.toThrow(/not a request channel of the contract/);
    await expect(bridge.invoke('kubedos:app.info', {})).rejects.toThrow(/not a request channel/);
    expect(invoked).toHaveLength(REQUEST_CHANNELS.length);
  });

  it('subscribes to contract events only, hands over the payload without the event object, and unsubscribes', () => {
    const got: unknown[] = [];
    const off = bridge.on('pipeline.events', (p) => got.push(p));
    listeners.get('kubedos:pipeline.events')!({ sender: 'secret' }, [{ type: 'done' }]);
    expect(got).toEqual([[{ type: 'done' }]]);
    off();
    expect(listeners.has('kubedos:pipeline.events')).toBe(false);
    expect(() => bridge.on('app.quit', () => undefined)).toThrow(/not an event channel of the contract/);
  });
});
