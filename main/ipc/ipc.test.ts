import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { Envelope } from '../../common/contract/index';
import { decodeEnvelope, ContractError, ipcChannel, REQUEST_CHANNELS } from '../../common/contract/index';
import type { PipelineEvent } from '../../common/pipeline/events';
import { templateWithSources, toYaml } from '../../common/testing/specs';
import { TEMPLATES } from '../../common/spec/index';
import { StageError } from '../pipeline/runner';
import { dispatch } from './dispatch';
import type { InvokeEventLike, IpcMainLike } from './electron-ipc';
import { registerIpcHandlers, trustedSender } from './electron-ipc';
import { createWorkbench } from './workbench';
import type { Bridge } from './ws-bridge';
import { startBridge } from './ws-bridge';

const dir = mkdtempSync(join(tmpdir(), 'kubedos-ipc-'));
const workspace = join(dir, 'ws');
const renderer = join(dir, 'renderer');
mkdirSync(workspace);
mkdirSync(renderer);
writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>kubedos</title>');
writeFileSync(join(dir, 'secret.yaml'), 'outside: true\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const noEmit = (): void => {};

describe('dispatch (shared by both transports)', () => {
  const wb = createWorkbench({ transport: 'websocket', workspace, emit: noEmit });
  it('answers a valid request with {result}', async () => {
    const env = await dispatch(wb.handlers, 'spec.template', { name: 'lab-3' });
    expect(decodeEnvelope(env)).toEqual({ name: 'lab-3', text: TEMPLATES['lab-3'].text });
  });
  it('rejects an unknown channel, a wrong payload type and extra keys with {error}', async () => {
    for (const [channel, payload] of [
      ['fs.readFile', { path: '/etc/passwd' }],
      ['spec.parse', { text: 42 }],
      ['spec.parse', 'text'],
      ['spec.parse', { text: 'a: 1', extra: true }],
      ['pipeline.run', { pipeline: 'deploy', text: '' }],
      ['__proto__', {}],
    ] as const) {
      const env = await dispatch(wb.handlers, channel, payload);
      expect('error' in env, `${channel} ${JSON.stringify(payload)}`).toBe(true);
      expect(() => decodeEnvelope(env)).toThrow(ContractError);
    }
  });
  it('rebuilds the error with its code, hint and the zod issue path', async () => {
    const env = await dispatch(wb.handlers, 'spec.parse', { text: 42 });
    try {
      decodeEnvelope(env);
      expect.unreachable();
    } catch (err) {
      const e = err as ContractError;
      expect(e.name).toBe('PayloadError');
      expect(e.code).toBe('contract.invalid-payload');
      expect(e.issues?.[0]?.path).toBe('text');
    }
  });
  it('parses specs and computes plans through the contract', async () => {
    const parsed = decodeEnvelope(await dispatch(wb.handlers, 'spec.parse', { text: TEMPLATES['reference-16'].text })) as { diagnostics: unknown[]; spec?: unknown };
    expect(parsed.spec).toBeDefined();
    const planned = decodeEnvelope(await dispatch(wb.handlers, 'plan.compute', { text: TEMPLATES['reference-16'].text })) as { plan: { nodes: unknown[] } };
    expect(planned.plan.nodes).toHaveLength(16);
    const bad = decodeEnvelope(await dispatch(wb.handlers, 'plan.compute', { text: 'apiVersion: nope\n' })) as { plan?: unknown; diagnostics: unknown[] };
    expect(bad.plan).toBeUndefined();
    expect(bad.diagnostics.length).toBeGreaterThan(0);
  });
});

describe('spec files stay inside the workspace', () => {
  const wb = createWorkbench({ transport: 'websocket', workspace, specPath: join(dir, 'given.yaml'), emit: noEmit });
  it('saves and opens inside the workspace, relative or absolute', async () => {
    const saved = decodeEnvelope(await dispatch(wb.handlers, 'spec.save', { path: 'lab.yaml', text: 'x: 1\n' })) as { path: string };
    expect(saved.path).toBe(join(workspace, 'lab.yaml'));
    const opened = decodeEnvelope(await dispatch(wb.handlers, 'spec.open', { path: join(workspace, 'lab.yaml') })) as { text: string };
    expect(opened.text).toBe('x: 1\n');
    const list = decodeEnvelope(await dispatch(wb.handlers, 'spec.list', {})) as { path: string }[];
    expect(list.map((f) => f.path)).toEqual([join(dir, 'given.yaml'), join(workspace, 'lab.yaml')].sort());
  });
  it('refuses paths outside, traversal, symlinks out, non-YAML names, and has no dialog', async () => {
    symlinkSync(dir, join(workspace, 'link'));
    for (const path of [join(dir, 'secret.yaml'), '../secret.yaml', 'link/secret.yaml', '/etc/passwd', 'notes.txt']) {
      const env = await dispatch(wb.handlers, 'spec.open', { path });
      expect('error' in env, path).toBe(true);
    }
    const env = await dispatch(wb.handlers, 'spec.open', {});
    expect(() => decodeEnvelope(env)).toThrow(/no file dialog/);
  });
  it('allows the SPEC given on the command line', async () => {
    const saved = decodeEnvelope(await dispatch(wb.handlers, 'spec.save', { path: join(dir, 'given.yaml'), text: 'y: 2\n' })) as { path: string };
    expect(saved.path).toBe(join(dir, 'given.yaml'));
  });
});

describe('pipelines', () => {
  it('runs the plan pipeline, streams batched events and ends with done', async () => {
    const batches: PipelineEvent[][] = [];
    const wb = createWorkbench({ transport: 'websocket', workspace, emit: (channel, payload) => channel === 'pipeline.events' && batches.push(payload as PipelineEvent[]) });
    // Sources declared: the validate stage runs the completeness preflight.
    const started = decodeEnvelope(await dispatch(wb.handlers, 'pipeline.run', { pipeline: 'plan', text: toYaml(templateWithSources('reference-16')) })) as { runId: string; stages: string[] };
    expect(started.stages).toEqual(['validate', 'plan']);
    await expect.poll(() => batches.flat().some((e) => e.type === 'done'), { timeout: 10_000 }).toBe(true);
    const events = batches.flat();
    expect(events.every((e) => e.runId === started.runId)).toBe(true);
    expect(events.filter((e) => e.type === 'log' && e.stage === 'plan' && e.node).length).toBe(16);
    expect(batches.length).toBeLessThan(events.length);
  });
  it('cancels a running pipeline through its AbortSignal', async () => {
    const events: PipelineEvent[] = [];
    const wb = createWorkbench({
      transport: 'websocket',
      workspace,
      emit: (_c, payload) => events.push(...(payload as PipelineEvent[])),
      pipelines: {
        plan: () => [
          {
            name: 'slow',
            description: 'waits until aborted',
            needs: [],
            rerun: 'safe-rerun',
            run: (ctx) =>
              new Promise<void>((_resolve, reject) => {
                ctx.log('waiting');
                ctx.signal.addEventListener('abort', () => reject(new StageError('aborted')), { once: true });
              }),
          },
        ],
      },
    });
    const { runId } = decodeEnvelope(await dispatch(wb.handlers, 'pipeline.run', { pipeline: 'plan', text: 'x' })) as { runId: string };
    expect(decodeEnvelope(await dispatch(wb.handlers, 'pipeline.cancel', { runId }))).toEqual({ cancelled: true });
    await expect.poll(() => events.find((e) => e.type === 'stage' && e.stage === 'slow' && (e.state === 'aborted' || e.state === 'failed')), { timeout: 10_000 }).toBeTruthy();
    expect(decodeEnvelope(await dispatch(wb.handlers, 'pipeline.cancel', { runId: 'no-such-run' }))).toEqual({ cancelled: false });
  });
});

describe('Electron IPC registration (fake ipcMain)', () => {
  const registered = new Map<string, (event: InvokeEventLike, ...args: unknown[]) => Promise<Envelope> | Envelope>();
  const fakeIpcMain: IpcMainLike = {
    handle: (channel, listener) => {
      if (registered.has(channel)) throw new Error(`second handler for ${channel}`);
      registered.set(channel, listener);
    },
    removeHandler: (channel) => registered.delete(channel),
  };
  const wb = createWorkbench({ transport: 'electron', workspace, emit: noEmit });
  const unregister = registerIpcHandlers(fakeIpcMain, wb.handlers, trustedSender(() => 7));
  const ours: InvokeEventLike = { sender: { id: 7 }, senderFrame: { url: 'kubedos://app/index.html', parent: null } };
  const call = (channel: string, event: InvokeEventLike, ...args: unknown[]) => {
    const h = registered.get(ipcChannel(channel as 'spec.parse'));
    if (!h) throw new Error(`no handler for ${channel}`);
    return Promise.resolve(h(event, ...args));
  };

  it('registers exactly the contract channels, namespaced', () => {
    expect([...registered.keys()].sort()).toEqual(REQUEST_CHANNELS.map((c) => `kubedos:${c}`).sort());
  });
  it('answers our own window', async () => {
    expect(decodeEnvelope(await call('spec.templates', ours, {}))).toHaveLength(3);
  });
  it('refuses other windows, other origins, and missing frames', async () => {
    for (const ev of [
      { sender: { id: 8 }, senderFrame: { url: 'kubedos://app/index.html', parent: null } },
      { sender: { id: 7 }, senderFrame: { url: 'https://example.invalid/' } },
      { sender: { id: 7 }, senderFrame: { url: 'file:///etc/passwd' } },
      { sender: { id: 7 }, senderFrame: null },
    ]) {
      const env = await call('spec.templates', ev, {});
      expect(() => decodeEnvelope(env)).toThrow(/untrusted/);
    }
  });
  it('rejects malformed payloads and extra arguments without throwing', async () => {
    expect('error' in (await call('spec.parse', ours, { text: ['no'] }))).toBe(true);
    expect('error' in (await call('spec.parse', ours))).toBe(true);
    expect('error' in (await call('spec.parse', ours, { text: 'a: 1' }, 'extra'))).toBe(true);
    expect('error' in (await call('pipeline.cancel', ours, { runId: 5 }))).toBe(true);
  });
  it('unregisters every handler', () => {
    unregister();
    expect(registered.size).toBe(0);
  });
});

describe('WebSocket bridge', () => {
  let bridge: Bridge;
  let session = '';
  beforeAll(async () => {
    bridge = await startBridge({ rendererDir: renderer, workspace, token: 't'.repeat(43) });
    // Opening the printed URL exchanges its one-time token for a session cookie.
    const res = await fetch(bridge.url, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/');
    session = (res.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  });
  afterAll(() => bridge.close());
  const origin = () => `http://127.0.0.1:${bridge.port}`;
  const connect = (opts: { cookie?: string; origin?: string } = {}): Promise<WebSocket> =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${bridge.port}/bridge`, { origin: opts.origin ?? origin(), headers: { cookie: opts.cookie ?? session } });
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  const next = (ws: WebSocket): Promise<Record<string, unknown>> => new Promise((resolve) => ws.once('message', (d) => resolve(JSON.parse(d.toString()))));

  it('binds 127.0.0.1 only and serves the renderer with a CSP', async () => {
    expect(bridge.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=t+$/);
    const res = await fetch(`${origin()}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("worker-src 'self' blob:");
    expect(res.headers.get('content-security-policy')).not.toContain('unsafe-eval');
    expect((await fetch(`${origin()}/..%2f..%2fsecret.yaml`)).status).toBe(404);
    expect((await fetch(`${origin()}/%2e%2e/secret.yaml`)).status).toBe(404);
  });
  it('refuses a wrong session, a missing session, a reused token and a foreign origin', async () => {
    await expect(connect({ cookie: `kubedos_session_${bridge.port}=${'x'.repeat(43)}` })).rejects.toThrow('HTTP 401');
    await expect(connect({ cookie: '' })).rejects.toThrow('HTTP 401');
    expect((await fetch(bridge.url, { redirect: 'manual' })).status).toBe(401);
    await expect(connect({ origin: 'http://evil.invalid' })).rejects.toThrow('HTTP 403');
  });
  it('answers malformed frames with an error reply and keeps serving', async () => {
    const ws = await connect();
    for (const frame of ['not json', '[]', JSON.stringify({ kind: 'request', id: 1, channel: 'spec.parse' }), JSON.stringify({ kind: 'request', id: 2, channel: 'spec.parse', payload: { text: 1 } }), JSON.stringify({ kind: 'request', id: 3, channel: 'nope', payload: {} }), JSON.stringify({ kind: 'hello' })]) {
      const reply = next(ws);
      ws.send(frame);
      const r = await reply;
      expect(r.kind).toBe('reply');
      expect(r.error, frame).toBeDefined();
    }
    const reply = next(ws);
    ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect((await reply).error).toBeDefined();
    const ok = next(ws);
    ws.send(JSON.stringify({ kind: 'request', id: 9, channel: 'spec.templates', payload: {} }));
    const r = await ok;
    expect(r.id).toBe(9);
    expect(r.result).toHaveLength(3);
    ws.close();
  });
  it('streams pipeline events to the client', async () => {
    const ws = await connect();
    const events: PipelineEvent[] = [];
    ws.on('message', (d) => {
      const f = JSON.parse(d.toString());
      if (f.kind === 'event' && f.channel === 'pipeline.events') events.push(...f.payload);
    });
    ws.send(JSON.stringify({ kind: 'request', id: 1, channel: 'pipeline.run', payload: { pipeline: 'plan', text: TEMPLATES['lab-3'].text } }));
    await expect.poll(() => events.some((e) => e.type === 'done'), { timeout: 10_000 }).toBe(true);
    expect(events.some((e) => e.type === 'log' && e.stage === 'plan')).toBe(true);
    ws.close();
  });
});
