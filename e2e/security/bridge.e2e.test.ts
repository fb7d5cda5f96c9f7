// Attack suite, issue 16 item 9: the `kubedos serve` bridge token and the number of pipelines
// one client can start.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bridge } from '../../main/ipc/ws-bridge';
import { startBridge } from '../../main/ipc/ws-bridge';
import type { StageDefinition } from '../../main/pipeline/runner';
import { connectBridge, openPrintedUrl } from './bridge-client';

/** A stage that runs until its run is cancelled (so runs pile up while the attack goes on). */
const waitStage: StageDefinition = {
  name: 'wait',
  description: 'waits until cancelled',
  needs: [],
  rerun: 'safe-rerun',
  run: (ctx) => new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('cancelled')), { once: true })),
};

describe('security: the kubedos serve bridge', () => {
  let root: string;
  let renderer: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'kubedos-sec-bridge-'));
    renderer = join(root, 'renderer');
    mkdirSync(renderer);
    writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>t</title>');
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('item 9: the printed token works once, leaves the URL, and is no key to the socket afterwards', async () => {
    const bridge: Bridge = await startBridge({ rendererDir: renderer, workspace: join(root, 'ws') });
    try {
      const first = await fetch(bridge.url, { redirect: 'manual' });
      // Exchanged for a session cookie, redirected to the page without the token.
      expect(first.status).toBe(303);
      expect(first.headers.get('location')).not.toContain('token');
      expect(first.headers.get('set-cookie')).toMatch(/HttpOnly/);
      expect(first.headers.get('set-cookie')).toMatch(/SameSite=Strict/);
      // Someone who finds the URL later (history, shell scrollback, a screenshot) gets nothing.
      expect((await fetch(bridge.url, { redirect: 'manual' })).status).toBe(401);
      await expect(connectBridge(bridge.url, undefined)).rejects.toThrow(/HTTP 401/);
    } finally {
      await bridge.close();
    }
  });

  it('item 9: one client cannot start thousands of pipelines (2,000 concurrent pipeline.run)', async () => {
    const bridge: Bridge = await startBridge({ rendererDir: renderer, workspace: join(root, 'ws'), pipelines: { plan: () => [waitStage] } });
    try {
      const client = await connectBridge(bridge.url, await openPrintedUrl(bridge.url));
      const replies = await Promise.all(Array.from({ length: 2000 }, () => client.request('pipeline.run', { pipeline: 'plan', text: 'x: 1\n' })));
      const accepted = replies.filter((r) => r.result !== undefined).length;
      const busy = replies.filter((r) => r.error && /at most \d+ at once/.test(r.error.message)).length;
      expect(accepted).toBeGreaterThan(0);
      expect(accepted).toBeLessThanOrEqual(16);
      expect(accepted + busy).toBe(2000);
      client.close();
    } finally {
      await bridge.close();
    }
  });
});
