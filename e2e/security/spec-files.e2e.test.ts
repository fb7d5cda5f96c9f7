// Attack suite, issue 16 items 4 and 5: what a browser tab driving `kubedos serve` (or a
// planted link in the spec folder) could read or write on this machine.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEnvelope } from '../../common/contract/index';
import { TEMPLATES } from '../../common/spec/index';
import { serveCommand } from '../../main/cli/commands/serve';
import { dispatch } from '../../main/ipc/dispatch';
import { createWorkbench } from '../../main/ipc/workbench';
import { connectBridge, openPrintedUrl } from './bridge-client';

describe('security: spec files over the bridge', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'kubedos-sec-spec-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('item 4: `kubedos serve SPEC` with the spec in $HOME opens that file only, not $HOME (.config, .github)', async () => {
    const home = join(root, 'home');
    mkdirSync(join(home, '.config/gh'), { recursive: true });
    writeFileSync(join(home, '.config/gh/hosts.yml'), 'github.com:\n  oauth_token: gho_secret_token_value\n');
    writeFileSync(join(home, 'cluster.yaml'), TEMPLATES['lab-3'].text);
    const renderer = join(root, 'renderer');
    mkdirSync(renderer);
    writeFileSync(join(renderer, 'index.html'), '<!doctype html><title>t</title>');
    const abort = new AbortController();
    const out: string[] = [];
    const io = { out: (t: string) => out.push(t), err: (t: string) => out.push(t), cwd: home, env: { KUBEDOS_WORKSPACE: join(root, 'kws') }, signal: abort.signal, isTty: false };
    const running = serveCommand.run(['--port', '0', '--renderer', renderer, 'cluster.yaml'], io);
    try {
      await expect.poll(() => out.find((l) => l.startsWith('kubedos workbench: '))).toBeDefined();
      const url = (out.find((l) => l.startsWith('kubedos workbench: ')) ?? '').slice('kubedos workbench: '.length);
      const client = await connectBridge(url, await openPrintedUrl(url));
      // The spec itself is open to the workbench…
      const spec = await client.request('spec.open', { path: join(home, 'cluster.yaml') });
      expect(spec.error).toBeUndefined();
      // …its folder is not.
      for (const path of ['.config/gh/hosts.yml', join(home, '.config/gh/hosts.yml'), 'hosts.yml']) {
        const r = await client.request('spec.open', { path });
        expect(r.error, path).toBeDefined();
        expect(JSON.stringify(r)).not.toContain('gho_secret_token_value');
      }
      for (const path of ['.config/gh/config.yml', '.github/workflows/x.yml', join(home, '.github/workflows/x.yml'), join(home, 'other.yaml')]) {
        const r = await client.request('spec.save', { path, text: 'on: push\n' });
        expect(r.error, path).toBeDefined();
      }
      expect(existsSync(join(home, '.github'))).toBe(false);
      expect(existsSync(join(home, '.config/gh/config.yml'))).toBe(false);
      client.close();
    } finally {
      abort.abort();
      await running;
    }
  });

  it('item 4: inside the workspace, subfolders and dot-folders are out of reach too', async () => {
    const ws = join(root, 'ws4');
    mkdirSync(join(ws, '.hidden'), { recursive: true });
    const wb = createWorkbench({ transport: 'websocket', workspace: ws, emit: () => undefined });
    for (const path of ['.hidden/a.yaml', 'sub/b.yaml', '.c.yaml']) {
      const env = await dispatch(wb.handlers, 'spec.save', { path, text: 'x: 1\n' });
      expect('error' in env, path).toBe(true);
    }
    expect(existsSync(join(ws, '.hidden/a.yaml')) || existsSync(join(ws, 'sub'))).toBe(false);
    await wb.dispose();
  });

  it('item 5: a link at the requested name is never followed on open', async () => {
    const ws = join(root, 'ws5');
    mkdirSync(ws);
    symlinkSync('/etc/passwd', join(ws, 'evil.yaml'));
    const wb = createWorkbench({ transport: 'websocket', workspace: ws, emit: () => undefined });
    const env = await dispatch(wb.handlers, 'spec.open', { path: 'evil.yaml' });
    expect(JSON.stringify(env)).not.toContain('root:');
    expect(() => decodeEnvelope(env)).toThrow(/link/);
    await wb.dispose();
  });

  it('item 5: the temp file of a save never writes through a planted link', async () => {
    const ws = join(root, 'ws5b');
    mkdirSync(ws);
    const victim = join(root, 'victim.txt');
    writeFileSync(victim, 'precious\n');
    // The attacker guesses the temp name (old code: NAME.<pid>.tmp) and plants a link there.
    symlinkSync(victim, join(ws, `lab.yaml.${process.pid}.tmp`));
    // And a link at the target name itself.
    symlinkSync(victim, join(ws, 'linked.yaml'));
    const wb = createWorkbench({ transport: 'websocket', workspace: ws, emit: () => undefined });
    await dispatch(wb.handlers, 'spec.save', { path: 'lab.yaml', text: 'overwritten: true\n' });
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    const linked = await dispatch(wb.handlers, 'spec.save', { path: 'linked.yaml', text: 'overwritten: true\n' });
    expect('error' in linked).toBe(true);
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    await wb.dispose();
  });
});
