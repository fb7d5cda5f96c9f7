import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../exec/runner';
import { generateHmacKey, issueEnrollmentToken, verifyEnrollmentToken } from './token';

const NOW = 1_800_000_000;
const key = Buffer.alloc(32, 7);
const expect0 = { cluster: 'lab-3', node: 'cp-1', role: 'control-plane', now: NOW };
const HUB = resolve(import.meta.dirname, '../../payload/backplane/kubedos-enroll-hub');

/** Runs the hub's own verify_token (python3) on a token; returns "ok" or "<code>: <message>". */
async function pythonVerify(token: string, k: Uint8Array, e: typeof expect0 & { clock?: number }): Promise<string> {
  const script = [
    'import importlib.machinery, importlib.util, json, sys',
    `loader = importlib.machinery.SourceFileLoader("hub", ${JSON.stringify(HUB)})`,
    'spec = importlib.util.spec_from_loader("hub", loader); hub = importlib.util.module_from_spec(spec); loader.exec_module(hub)',
    'a = json.loads(sys.stdin.read())',
    'try:',
    '    hub.verify_token(bytes.fromhex(a["key"]), a["token"], a["cluster"], a["node"], a["role"], a["now"], a.get("clock"))',
    '    print("ok")',
    'except hub.Refused as exc:',
    '    print("%s: %s" % (exc.code, exc))',
  ].join('\n');
  const r = await run(['python3', '-c', script], { input: JSON.stringify({ key: Buffer.from(k).toString('hex'), token, ...e }) });
  return r.stdout.trim();
}

describe('enrollment tokens', () => {
  it('verifies a node-bound token in TypeScript and in the hub\'s python3 code', async () => {
    const t = issueEnrollmentToken(key, { cluster: 'lab-3', node: 'cp-1', ttlSeconds: 600, now: NOW });
    expect(t).toMatch(/^kdt1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const v = verifyEnrollmentToken(key, t, expect0);
    expect(v.ok).toBe(true);
    expect(await pythonVerify(t, key, expect0)).toBe('ok');
  });

  it('refuses a token made with another key (forged) on both sides', async () => {
    const t = issueEnrollmentToken(generateHmacKey(), { cluster: 'lab-3', node: 'cp-1', ttlSeconds: 600, now: NOW });
    expect(verifyEnrollmentToken(key, t, expect0)).toMatchObject({ ok: false, reason: expect.stringMatching(/forged/) });
    expect(await pythonVerify(t, key, expect0)).toMatch(/^forged:/);
  });

  it('refuses a token whose payload was altered after signing', async () => {
    const t = issueEnrollmentToken(key, { cluster: 'lab-3', node: 'w-1', ttlSeconds: 600, now: NOW });
    const [p, body, mac] = t.split('.');
    const altered = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body ?? '', 'base64url').toString()), node: 'cp-1' })).toString('base64url');
    const forged = `${p}.${altered}.${mac}`;
    expect(verifyEnrollmentToken(key, forged, expect0).ok).toBe(false);
    expect(await pythonVerify(forged, key, expect0)).toMatch(/^forged:/);
  });

  it('refuses an expired token and names the clock skew when the node reports its clock', async () => {
    const t = issueEnrollmentToken(key, { cluster: 'lab-3', node: 'cp-1', ttlSeconds: 60, now: NOW - 3600 });
    expect(verifyEnrollmentToken(key, t, expect0)).toMatchObject({ ok: false, reason: expect.stringMatching(/expired/) });
    const msg = await pythonVerify(t, key, { ...expect0, clock: NOW - 7200 });
    expect(msg).toMatch(/^expired: token expired at .* the node's clock is -7200 s off/);
  });

  it('binds to cluster, node or role', async () => {
    const other = issueEnrollmentToken(key, { cluster: 'other', node: 'cp-1', ttlSeconds: 600, now: NOW });
    expect(await pythonVerify(other, key, expect0)).toMatch(/^wrong-cluster:/);
    const forW1 = issueEnrollmentToken(key, { cluster: 'lab-3', node: 'w-1', ttlSeconds: 600, now: NOW });
    expect(verifyEnrollmentToken(key, forW1, expect0)).toMatchObject({ ok: false });
    expect(await pythonVerify(forW1, key, expect0)).toMatch(/^wrong-node:/);
    const workers = issueEnrollmentToken(key, { cluster: 'lab-3', role: 'worker', ttlSeconds: 600, now: NOW });
    expect(await pythonVerify(workers, key, expect0)).toMatch(/^wrong-role:/);
    expect(await pythonVerify(workers, key, { ...expect0, node: 'w-1', role: 'worker' })).toBe('ok');
  });

  it('refuses short keys and tokens bound to both or neither of node and role', () => {
    expect(() => issueEnrollmentToken(Buffer.alloc(16), { cluster: 'c', node: 'n', ttlSeconds: 1, now: NOW })).toThrow(/at least 32/);
    expect(() => issueEnrollmentToken(key, { cluster: 'c', node: 'n', role: 'worker', ttlSeconds: 1, now: NOW })).toThrow(/exactly one/);
    expect(() => issueEnrollmentToken(key, { cluster: 'c', ttlSeconds: 1, now: NOW })).toThrow(/exactly one/);
  });
});
