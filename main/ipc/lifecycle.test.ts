// The lifecycle requests through the shared dispatch path: malformed payloads rejected, a destroy
// without allowDestroy refused, the preview of a cluster never deployed, a stop of one refused
// with what to do, and a destroy of a qemu-local cluster whose VMs are gone already (only its
// workspace left): the workspace goes, the trust material is exported first, events stream.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DestroyPreview, LifecycleOutcome } from '../../common/contract/index';
import { decodeEnvelope } from '../../common/contract/index';
import type { PipelineEvent } from '../../common/pipeline/events';
import { TEMPLATES } from '../../common/spec/index';
import { dispatch } from './dispatch';
import { createWorkbench } from './workbench';

const dir = mkdtempSync(join(tmpdir(), 'kubedos-lifecycle-ipc-'));
const engine = join(dir, 'engine');
mkdirSync(join(dir, 'specs'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const LAB3 = TEMPLATES['lab-3'].text;
const events: PipelineEvent[] = [];
const wb = createWorkbench({
  transport: 'websocket',
  workspace: join(dir, 'specs'),
  emit: (channel, payload) => {
    if (channel === 'pipeline.events') events.push(...(payload as PipelineEvent[]));
  },
  home: dir,
  env: { KUBEDOS_WORKSPACE: engine, PATH: process.env.PATH },
});
const call = async <T>(channel: string, payload: unknown): Promise<T> => decodeEnvelope(await dispatch(wb.handlers, channel, payload)) as T;
const qemu = { kind: 'qemu-local' } as const;

describe('lifecycle requests', () => {
  it('rejects malformed payloads', async () => {
    for (const [channel, payload] of [
      ['lifecycle.preview', { target: qemu }],
      ['lifecycle.run', { action: 'reboot', target: qemu, text: LAB3 }],
      ['lifecycle.run', { action: 'destroy', target: qemu, text: LAB3, allowDestroy: 'yes' }],
      ['lifecycle.run', { action: 'stop', target: { kind: 'proxmox', host: '-oProxyCommand=x' }, text: LAB3 }],
    ] as const) {
      const env = await dispatch(wb.handlers, channel, payload);
      expect('error' in env && env.error.code, `${channel} ${JSON.stringify(payload)}`).toBe('contract.invalid-payload');
    }
  });

  it('refuses a destroy without allowDestroy; a never-deployed cluster is said to be one', async () => {
    await expect(call('lifecycle.run', { action: 'destroy', target: qemu, text: LAB3 })).rejects.toMatchObject({ code: 'lifecycle.destroy-refused' });
    const p = await call<DestroyPreview>('lifecycle.preview', { target: qemu, text: LAB3 });
    expect(p).toMatchObject({ cluster: 'lab-3', target: 'qemu-local', reachable: true, neverDeployed: true, vms: [] });
    const stop = await call<LifecycleOutcome>('lifecycle.run', { action: 'stop', target: qemu, text: LAB3 });
    expect(stop.ok).toBe(false);
    expect(stop.error?.message).toMatch(/lab-3 was never deployed here/);
  });

  it('destroys what is left of a cluster (its workspace), exporting the trust material first; the run streams events', async () => {
    const ws = join(engine, 'clusters/lab-3');
    mkdirSync(join(ws, 'trust'), { recursive: true });
    writeFileSync(join(ws, 'trust/root-ca.crt'), 'CERT');
    const p = await call<DestroyPreview>('lifecycle.preview', { target: qemu, text: LAB3 });
    expect(p).toMatchObject({ neverDeployed: false, paths: [ws], exportTo: join(engine, 'recovery/lab-3') });
    const o = await call<LifecycleOutcome>('lifecycle.run', { action: 'destroy', target: qemu, text: LAB3, allowDestroy: true });
    expect(o).toMatchObject({ ok: true, action: 'destroy', cluster: 'lab-3' });
    expect(existsSync(ws)).toBe(false);
    expect(readdirSync(join(engine, 'recovery/lab-3')).some((f) => f.startsWith('exported-'))).toBe(true);
    expect(events.some((e) => e.type === 'run' && e.pipeline === 'destroy' && e.runId === o.runId)).toBe(true);
    expect(events.some((e) => e.type === 'done' && e.runId === o.runId)).toBe(true);
  });
});
