// kubedos trust list and the trust inventory judges each certificate against security.keyRotation: leaf certificates
// are due kubeCertDays after issue, with a warning 7 days before; CAs only by expiry.
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSpec, TEMPLATES } from '../../../common/spec/index';
import type { CliIo } from '../command';
import { trustCommand } from './trust';
import { createClusterIntermediate, createRootCa, issueHubTlsCert, issueNodeIdentity } from '../../trust/ca';
import { judgeCertificate, judgeWireguardKeys, recordWireguardKeys, trustInventory, WIREGUARD_KEYS_FILE } from '../../trust/inventory';
import { recordTrustReport, revocationsPath, workspaceRevocations } from '../../trust/service';

const spec = parseSpec(TEMPLATES['lab-3'].text).spec!; // kubeCertDays 90
const DAY = 86_400_000;
const issued = new Date('2026-01-01T00:00:00Z');
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('trust inventory', async () => {
  const root = await createRootCa({ name: 'lab-3', now: issued });
  const inter = await createClusterIntermediate(root, { cluster: 'lab-3', now: issued });
  const hub = await issueHubTlsCert(inter, { cluster: 'lab-3', hub: 'master', lanAddress: '10.110.0.16', now: issued });
  const node = await issueNodeIdentity(inter, { cluster: 'lab-3', node: 'w-1', role: 'worker', now: issued });

  it('judges leaves by kubeCertDays and CAs by expiry only', () => {
    expect(spec.spec.security.keyRotation.kubeCertDays).toBe(90);
    const at = (d: number): Date => new Date(issued.getTime() + d * DAY);
    expect(judgeCertificate('node-w-1.crt', node.certPem, 90, at(10)).status).toBe('ok');
    expect(judgeCertificate('node-w-1.crt', node.certPem, 90, at(84)).status).toBe('rotate-soon');
    expect(judgeCertificate('node-w-1.crt', node.certPem, 90, at(91))).toMatchObject({ status: 'rotation-due', rotateBy: at(90).toISOString() });
    expect(judgeCertificate('node-w-1.crt', node.certPem, 90, at(400)).status).toBe('expired');
    // The hub's TLS certificate lives 30 days: it expires before kubeCertDays comes.
    expect(judgeCertificate('hub.crt', hub.certPem, 90, at(25)).status).toBe('expires-soon');
    expect(judgeCertificate('cluster-ca.crt', inter.certPem, 90, at(200))).toMatchObject({ status: 'ok', kind: 'cluster-ca' });
    expect(judgeCertificate('cluster-ca.crt', inter.certPem, 90, at(200)).rotateBy).toBeUndefined();
  });

  it('kubedos trust list: a table, warnings on stderr, exit 1 when something is overdue', async () => {
    const ws = mkdtempSync(join(tmpdir(), 'h17-trust-'));
    dirs.push(ws);
    const trust = join(ws, 'clusters', 'lab-3', 'trust');
    mkdirSync(trust, { recursive: true });
    writeFileSync(join(trust, 'root-ca.crt'), root.certPem);
    writeFileSync(join(trust, 'cluster-ca.crt'), inter.certPem);
    writeFileSync(join(trust, 'hub.crt'), hub.certPem);
    writeFileSync(join(trust, 'revoked.json'), JSON.stringify({ cluster: 'lab-3', revoked: [{ node: 'w-2', at: 1, reason: 'stolen disk' }] }));
    writeFileSync(join(ws, 'lab-3.yaml'), TEMPLATES['lab-3'].text);
    const out: string[] = [];
    const err: string[] = [];
    const io: CliIo = { out: (t) => out.push(t), err: (t) => err.push(t), cwd: ws, env: { KUBEDOS_WORKSPACE: ws }, signal: new AbortController().signal, isTty: false };
    // Today is long after 2026-01-01 + 30 days: the hub certificate has expired.
    const code = await trustCommand.run(['list', 'lab-3.yaml'], io);
    expect(out.join('\n')).toMatch(/hub\.crt .* expired/);
    expect(out.join('\n')).toContain('revoked: w-2 (stolen disk)');
    expect(err.join('\n')).toMatch(/warning: hub\.crt .* expired on 2026-01-31/);
    expect(code).toBe(1);
    const inv = trustInventory(join(ws, 'clusters', 'lab-3'), spec, new Date(issued.getTime() + 2 * DAY));
    expect(inv.identities.map((i) => [i.file, i.status])).toEqual([
      ['cluster-ca.crt', 'ok'],
      ['hub.crt', 'ok'],
      ['root-ca.crt', 'ok'],
    ]);
    expect(inv.warnings).toEqual([]);
    await expect(trustCommand.run(['lsit', 'lab-3.yaml'], io)).rejects.toThrow(/unknown action "lsit"; did you mean list\?/);
    expect(out.join('\n')).toMatch(/SERIAL/);
  });

  it('kubedos trust revoke/rotate/window: refuses bad input with one line, and refuses a cluster that was never deployed before contacting anything', async () => {
    const ws = mkdtempSync(join(tmpdir(), 'h17-trust-'));
    dirs.push(ws);
    const trust = join(ws, 'clusters', 'lab-3', 'trust');
    mkdirSync(trust, { recursive: true });
    writeFileSync(join(trust, 'revoked.json'), JSON.stringify({ cluster: 'lab-3', revoked: [{ node: 'cp-1', at: 1, reason: 'stolen disk' }] }));
    writeFileSync(join(ws, 'lab-3.yaml'), TEMPLATES['lab-3'].text);
    const run = async (...argv: string[]): Promise<{ code: number; out: string; err: string }> => {
      const out: string[] = [];
      const err: string[] = [];
      const io: CliIo = { out: (t) => out.push(t), err: (t) => err.push(t), cwd: ws, env: { KUBEDOS_WORKSPACE: ws }, signal: new AbortController().signal, isTty: false };
      const code = await trustCommand.run(argv, io);
      return { code, out: out.join('\n'), err: err.join('\n') };
    };
    const unknown = await run('revoke', 'lab-3.yaml', 'w-2');
    expect(unknown).toMatchObject({ code: 1, out: '' });
    expect(unknown.err).toBe('kubedos trust: there is no node "w-2" in lab-3; did you mean w-1? (nodes: master, cp-1, w-1); nothing was changed');
    expect((await run('revoke', 'lab-3.yaml', 'master')).err).toMatch(/^kubedos trust: cannot revoke master: it is the hub .*nothing was changed$/);
    expect((await run('rotate', 'lab-3.yaml', '--node', 'cp-1')).err).toMatch(/cannot rotate the keys of cp-1: it is revoked, and a revoked node is replaced, not re-keyed/);
    expect((await run('rotate', 'lab-3.yaml', '--node', 'master')).err).toMatch(/master is the hub: rotate its keys with --hub/);
    const noCluster = await run('window', 'lab-3.yaml', 'open');
    expect(noCluster.code).toBe(1);
    expect(noCluster.err).toMatch(/^kubedos trust: refused: lab-3 has no deploy in its journal .*then run the trust operation; nothing was changed$/);
    // Usage mistakes are one line each (exit 2 through UsageError).
    await expect(run('rotate', 'lab-3.yaml')).rejects.toThrow(/say which keys: --hub or --node NODE/);
    await expect(run('rotate', 'lab-3.yaml', '--hub', '--node', 'w-1')).rejects.toThrow(/--hub or --node NODE \(one of them\)/);
    await expect(run('window', 'lab-3.yaml', 'opne')).rejects.toThrow(/"opne" is not open or close; did you mean open\?/);
    await expect(run('window', 'lab-3.yaml', 'open', '--minutes', '0')).rejects.toThrow(/--minutes 0: a whole number of minutes from 1 to 1440/);
    await expect(run('window', 'lab-3.yaml', 'close', '--minutes', '5')).rejects.toThrow(/--minutes goes with open/);
    await expect(run('revoke', 'lab-3.yaml')).rejects.toThrow(/missing the NODE to revoke/);
    await expect(run('list', 'lab-3.yaml', '--lab')).rejects.toThrow(/--lab does not go with trust list/);
    await expect(run('revkoe', 'lab-3.yaml')).rejects.toThrow(/unknown action "revkoe"; did you mean revoke\?/);
  });
});

describe('WireGuard key ages (security.keyRotation.wireguardDays)', () => {
  it('records when keys were first seen, keeps that time while they stay, restarts it when they change, and judges the age', async () => {
    const ws = mkdtempSync(join(tmpdir(), 'h17-trust-'));
    dirs.push(ws);
    const cws = join(ws, 'clusters', 'lab-3');
    const k = (x: string) => ({ wg1: `${x}1`, wg2: `${x}2`, wg3: `${x}3` });
    const t0 = new Date('2026-01-01T00:00:00Z');
    expect(recordWireguardKeys(cws, 'lab-3', { 'w-1': k('a'), master: k('m') }, t0)).toEqual(['master', 'w-1']);
    expect(statSync(join(cws, 'trust', WIREGUARD_KEYS_FILE)).mode & 0o077).toBe(0);
    const t1 = new Date(t0.getTime() + 40 * DAY);
    expect(recordWireguardKeys(cws, 'lab-3', { 'w-1': k('b'), master: k('m') }, t1)).toEqual(['w-1']);
    // lab-3: wireguardDays 30. master's keys are 41 days old (due), w-1's new.
    expect(spec.spec.security.keyRotation.wireguardDays).toBe(30);
    const inv = trustInventory(cws, spec, new Date(t1.getTime() + DAY));
    expect(inv.wireguard).toEqual([
      { node: 'master', since: t0.toISOString(), ageDays: 41, rotateBy: new Date(t0.getTime() + 30 * DAY).toISOString(), status: 'rotation-due' },
      { node: 'w-1', since: t1.toISOString(), ageDays: 1, rotateBy: new Date(t1.getTime() + 30 * DAY).toISOString(), status: 'ok' },
    ]);
    expect(inv.warnings).toEqual(['WireGuard keys of master (41 days old) were due for rotation on 2026-01-31 (security.keyRotation.wireguardDays): rotate them (kubedos trust rotate)']);
    expect(judgeWireguardKeys('w-1', t1.toISOString(), 30, new Date(t1.getTime() + 25 * DAY)).status).toBe('rotate-soon');
    expect(judgeWireguardKeys('w-1', t1.toISOString(), 30, new Date(t1.getTime() + 20 * DAY)).status).toBe('ok');
  });
});

describe('recordTrustReport', () => {
  it('keeps a revocation made on the cluster in the workspace, private; a lab run changes nothing', async () => {
    const ws = mkdtempSync(join(tmpdir(), 'h17-trust-'));
    dirs.push(ws);
    const report = { op: 'revoke' as const, cluster: 'lab-3', node: 'w-1', changed: [], unchanged: [], durationMs: 1 };
    recordTrustReport(ws, { ...report, target: 'lab' }, 'x', 10);
    expect(existsSync(revocationsPath(ws))).toBe(false);
    recordTrustReport(ws, { ...report, target: 'cluster' }, 'stolen disk', 10);
    recordTrustReport(ws, { ...report, target: 'cluster' }, 'again', 20);
    expect(workspaceRevocations(ws, 'lab-3')).toEqual({ cluster: 'lab-3', revoked: [{ node: 'w-1', at: 10, reason: 'stolen disk' }] });
    expect(statSync(revocationsPath(ws)).mode & 0o077).toBe(0);
  });
});
