import { describe, expect, it } from 'vitest';
import { parseSpec, TEMPLATE_NAMES, TEMPLATES } from '../spec/index';
import { plan } from '../plan/index';
import { EVENT_CHANNELS, REQUEST_CHANNELS, ipcChannel, isRequestChannel } from './channels';
import { ContractError, decodeEnvelope, encodeError, PayloadError } from './errors';
import { EVENTS } from './events';
import { REQUESTS } from './requests';
import { parseEvent, parseRequest, parseResult } from './validate';
import { ClientFrame, ServerFrame } from './wire';

describe('contract maps', () => {
  it('has a request and a result schema for every request channel and a schema for every event', () => {
    expect(Object.keys(REQUESTS).sort()).toEqual([...REQUEST_CHANNELS].sort());
    expect(Object.keys(EVENTS).sort()).toEqual([...EVENT_CHANNELS].sort());
    expect(ipcChannel('spec.parse')).toBe('kubedos:spec.parse');
    expect(isRequestChannel('constructor')).toBe(false);
    expect(isRequestChannel('__proto__')).toBe(false);
  });
  it('accepts what parseSpec and plan produce for every template as results', () => {
    for (const name of TEMPLATE_NAMES) {
      const text = TEMPLATES[name].text;
      const parsed = parseSpec(text);
      expect(() => parseResult('spec.parse', parsed), name).not.toThrow();
      expect(() => parseResult('plan.compute', { diagnostics: parsed.diagnostics, plan: plan(parsed.spec!) }), name).not.toThrow();
    }
  });
  it('rejects malformed requests with the path of the problem', () => {
    const cases: [Parameters<typeof parseRequest>[0], unknown, string][] = [
      ['spec.parse', { text: 1 }, 'text'],
      ['spec.parse', { text: 'x'.repeat(5 * 1024 * 1024 + 1) }, 'text'],
      ['spec.open', { path: 'a\u0000b.yaml' }, 'path'],
      ['pipeline.run', { pipeline: 'deploy', text: '' }, 'pipeline'],
      ['pipeline.cancel', {}, 'runId'],
      ['app.info', { extra: 1 }, '(payload)'],
      ['deploy.checkTarget', { target: { kind: 'proxmox', host: '-oProxyCommand=x' } }, 'target.host'],
      ['deploy.checkTarget', { target: { kind: 'qemu-local' }, probeAccel: 'yes' }, 'probeAccel'],
      ['deploy.acceptHostKey', { target: { kind: 'proxmox', host: 'pve' }, fingerprint: 'SHA256:short' }, 'fingerprint'],
      ['deploy.review', { target: { kind: 'lxc' }, text: '' }, 'target.kind'],
      ['deploy.run', { target: { kind: 'qemu-local' }, text: '' }, 'allowDestroy'],
    ];
    for (const [channel, payload, path] of cases) {
      try {
        parseRequest(channel, payload);
        expect.unreachable(`${channel} accepted ${JSON.stringify(payload).slice(0, 60)}`);
      } catch (err) {
        expect(err).toBeInstanceOf(PayloadError);
        expect((err as PayloadError).issues[0]?.path).toBe(path);
      }
    }
    expect(() => parseRequest('nope' as never, {})).toThrow(/unknown channel/);
  });
  it('rejects malformed events', () => {
    expect(() => parseEvent('pipeline.events', [])).toThrow(PayloadError);
    expect(() => parseEvent('pipeline.events', [{ type: 'log', runId: 'r', seq: 0, time: 't', stage: 's', stream: 'nope', line: '' }])).toThrow(/stream/);
    expect(() => parseEvent('app.command', { command: 'rm -rf' })).toThrow(PayloadError);
    expect(parseEvent('app.command', { command: 'view.wiring' })).toEqual({ command: 'view.wiring' });
  });
  it('round-trips errors as {error} and rebuilds them with message, code, hint and issues', () => {
    const original = Object.assign(new Error('cannot read x.yaml'), { name: 'SpecAccessError', code: 'spec.access-denied', hint: 'save inside the workspace' });
    const wire = JSON.parse(JSON.stringify(encodeError(original)));
    try {
      decodeEnvelope(wire);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ContractError);
      expect(err).toMatchObject({ name: 'SpecAccessError', message: 'cannot read x.yaml', code: 'spec.access-denied', hint: 'save inside the workspace' });
    }
    expect(encodeError('plain string').error.message).toBe('plain string');
    expect(decodeEnvelope({ result: 3 })).toBe(3);
    expect(() => decodeEnvelope({ result: 1, error: { name: 'x', message: 'y' } })).toThrow(/malformed reply/);
    expect(() => decodeEnvelope('nonsense')).toThrow(/malformed reply/);
  });
  it('describes the WebSocket frames', () => {
    expect(ClientFrame.safeParse({ kind: 'request', id: 1, channel: 'app.info', payload: {} }).success).toBe(true);
    expect(ClientFrame.safeParse({ kind: 'request', id: -1, channel: 'app.info', payload: {} }).success).toBe(false);
    expect(ClientFrame.safeParse({ kind: 'request', id: 1, channel: 'app.info', payload: {}, extra: 1 }).success).toBe(false);
    expect(ServerFrame.safeParse({ kind: 'reply', id: 1, error: { name: 'E', message: 'm' } }).success).toBe(true);
    expect(ServerFrame.safeParse({ kind: 'event', channel: 'pipeline.events', payload: [] }).success).toBe(true);
  });
});
