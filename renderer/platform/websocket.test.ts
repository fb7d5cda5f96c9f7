import { describe, expect, it } from 'vitest';
import { connectWebSocket } from './websocket';
import type { SocketLike } from './websocket';

/** A socket that records what the client sends and lets the test play the server. */
function fakeSocket() {
  const listeners: Record<string, ((ev: { data?: unknown }) => void)[]> = {};
  const sent: string[] = [];
  const socket: SocketLike & { emit(type: string, data?: unknown): void; sent: string[] } = {
    readyState: 0,
    sent,
    send: (d) => sent.push(d),
    close: () => socket.emit('close'),
    addEventListener: (type, l) => (listeners[type] ??= []).push(l),
    emit(type, data) {
      if (type === 'open') socket.readyState = 1;
      if (type === 'close') socket.readyState = 3;
      for (const l of listeners[type] ?? []) l({ data });
    },
  };
  return socket;
}

describe('renderer WebSocket transport', () => {
  it('sends contract frames and validates replies', async () => {
    const ws = fakeSocket();
    const connecting = connectWebSocket('ws://x', () => ws);
    ws.emit('open');
    const api = await connecting;
    const reply = api.invoke('spec.templates', {});
    const frame = JSON.parse(ws.sent[0]!);
    expect(frame).toEqual({ kind: 'request', id: 1, channel: 'spec.templates', payload: {} });
    ws.emit('message', JSON.stringify({ kind: 'reply', id: 1, result: [{ name: 'lab-3', description: 'd' }] }));
    await expect(reply).resolves.toEqual([{ name: 'lab-3', description: 'd' }]);
  });
  it('rejects a reply that does not match the result schema, and rebuilds error replies', async () => {
    const ws = fakeSocket();
    const connecting = connectWebSocket('ws://x', () => ws);
    ws.emit('open');
    const api = await connecting;
    const bad = api.invoke('spec.templates', {});
    ws.emit('message', JSON.stringify({ kind: 'reply', id: 1, result: [{ name: 42 }] }));
    await expect(bad).rejects.toThrow(/invalid spec.templates result/);
    const failed = api.invoke('spec.open', { path: '/etc/passwd' });
    ws.emit('message', JSON.stringify({ kind: 'reply', id: 2, error: { name: 'SpecAccessError', message: 'outside the workspace', hint: 'save inside' } }));
    await expect(failed).rejects.toMatchObject({ name: 'SpecAccessError', message: 'outside the workspace', hint: 'save inside' });
  });
  it('drops malformed frames and events without breaking later replies', async () => {
    const ws = fakeSocket();
    const connecting = connectWebSocket('ws://x', () => ws);
    ws.emit('open');
    const api = await connecting;
    const got: unknown[] = [];
    api.on('pipeline.events', (e) => got.push(e));
    ws.emit('message', 'not json');
    ws.emit('message', JSON.stringify({ kind: 'event', channel: 'pipeline.events', payload: [{ type: 'nonsense' }] }));
    ws.emit('message', JSON.stringify({ kind: 'event', channel: 'unknown', payload: {} }));
    expect(got).toEqual([]);
    const reply = api.invoke('pipeline.cancel', { runId: 'r' });
    ws.emit('message', JSON.stringify({ kind: 'reply', id: 1, result: { cancelled: false } }));
    await expect(reply).resolves.toEqual({ cancelled: false });
  });
  it('fails pending requests when the connection closes', async () => {
    const ws = fakeSocket();
    const connecting = connectWebSocket('ws://x', () => ws);
    ws.emit('open');
    const api = await connecting;
    const pending = api.invoke('app.info', {});
    ws.emit('close');
    await expect(pending).rejects.toThrow(/closed/);
    await expect(api.invoke('app.info', {})).rejects.toThrow(/not connected/);
  });
});
