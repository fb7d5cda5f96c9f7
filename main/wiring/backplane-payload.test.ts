// Static checks of the on-node payload this area owns (the lab tests run it for real):
// every python script compiles with Debian's python3 and answers --help without touching the
// system; the Salt discovery-gate states render (Jinja2 with stub salt/pillar/grains) to YAML
// of the expected shape — there is no Salt master here to apply them.
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { connect, createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import { run } from '../exec/runner';
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { loadPayloadSources } from '../build/payload/load';
import { renderPayload, rolesOf } from '../build/payload/render';
import { NODE_PROBE } from './shell-target';

const BACKPLANE = resolve(import.meta.dirname, '../../payload/backplane');
const SALT = resolve(import.meta.dirname, '../../payload/salt');
const SCRIPTS = ['kubedos-planes', 'kubedos-enroll-hub', 'kubedos-enroll-agent', 'kubedos-probe'];

afterAll(removeTempDirs);

describe('backplane payload', () => {
  it('ships the documented entry points, all compiling under python3 and answering --help', async () => {
    const files = readdirSync(BACKPLANE);
    for (const s of [...SCRIPTS, 'kubedos_backplane.py', 'README.md']) expect(files).toContain(s);
    await run(['python3', '-m', 'py_compile', ...[...SCRIPTS, 'kubedos_backplane.py'].map((s) => `${BACKPLANE}/${s}`)], { env: { PYTHONPYCACHEPREFIX: tempDir('kubedos-pycache-') } });
    for (const s of SCRIPTS) {
      const r = await run(['python3', `${BACKPLANE}/${s}`, '--help'], { env: { PYTHONDONTWRITEBYTECODE: '1' } });
      expect(r.stdout).toMatch(/usage:/);
    }
  });

  it('renders the Salt discovery gate to well-formed states for the roster in pillar', async () => {
    const script = [
      'import json, sys, jinja2, yaml',
      `env = jinja2.Environment(loader=jinja2.FileSystemLoader(${JSON.stringify(SALT)}))`,
      'env.filters["json"] = json.dumps',
      'pillar = {"kubedos": {"cluster": "lab-3", "roster": {"cp-1": {"role": "control-plane"}, "w-1": {"role": "worker"}}}}',
      'def pget(key, default=None):',
      '    cur = pillar',
      '    for k in key.split(":"):',
      '        if not isinstance(cur, dict) or k not in cur: return default',
      '        cur = cur[k]',
      '    return cur',
      'ctx = {"salt": {"pillar.get": pget}, "grains": {"id": "cp-1"}, "pillar": pillar}',
      'out = {}',
      'for name in ["top.sls", "kubedos/discovery/init.sls", "kubedos/discovery/clean.sls", "orch/discovery-gate.sls"]:',
      '    out[name] = yaml.safe_load(env.get_template(name).render(**ctx))',
      'print(json.dumps(out))',
    ].join('\n');
    const r = await run(['python3', '-c', script]);
    const states = JSON.parse(r.stdout) as Record<string, Record<string, Record<string, unknown[]>>>;
    expect(Object.keys(states['kubedos/discovery/init.sls'] ?? {})).toEqual(
      expect.arrayContaining(['kubedos-discovery-state-dir', 'kubedos-discovery-grains', 'kubedos-discovery-mine', 'kubedos-discovery-marker']),
    );
    const gate = states['orch/discovery-gate.sls'] ?? {};
    expect(Object.keys(gate)).toEqual(['kubedos-gate-all-minions-answer', 'kubedos-gate-apply-discovery', 'kubedos-gate-wg1-keys-published', 'kubedos-gate-wg2-keys-published', 'kubedos-gate-wg3-keys-published']);
    expect(JSON.stringify(gate['kubedos-gate-all-minions-answer'])).toContain('"tgt":"cp-1,w-1"');
    expect(Object.keys(states['kubedos/discovery/clean.sls'] ?? {})).toHaveLength(3);
  });

  it('ships kubedos-probe in every role\'s payload, installed where the wiring check runs it', () => {
    const p = plan(parseSpec(TEMPLATES['lab-3'].text).spec!);
    const sources = loadPayloadSources(resolve(import.meta.dirname, '../../payload'));
    const base = { plan: p, sources, sshAllowUsers: ['ops'], opsAuthorizedKey: 'ssh-ed25519 AAAA test', repoKeyring: new Uint8Array([1]), packages: [], mirror: { host: '10.0.2.100', directory: '/darksite' }, poweroff: true };
    const roles = rolesOf(p);
    expect(roles.length).toBeGreaterThan(1);
    for (const role of roles) {
      const f = renderPayload({ ...base, role }).files.find((x) => x.path === 'backplane/kubedos-probe');
      expect(f?.mode, role).toBe(0o755);
    }
    // install-payload.sh puts payload/backplane/* under /usr/lib/kubedos/backplane on every node.
    const install = readFileSync(resolve(import.meta.dirname, '../../payload/firstboot/install-payload.sh'), 'utf8');
    expect(install).toContain('LIB="$ROOT/usr/lib/kubedos"');
    expect(install).toContain('cp -R "$SRC"/backplane/. "$LIB/backplane/"');
    expect(NODE_PROBE).toBe('/usr/lib/kubedos/backplane/kubedos-probe');
  });

  it('kubedos-probe serve leaves a port a service holds on one address to it and serves the other addresses', async () => {
    const busy = createServer((c) => c.end('service\n'));
    await new Promise<void>((res) => busy.listen(0, '127.0.0.1', () => res()));
    const port = (busy.address() as AddressInfo).port;
    const probe = spawn('python3', [`${BACKPLANE}/kubedos-probe`, 'serve', '--ports', String(port), '--seconds', '20', '--addresses', '127.0.0.1,127.0.0.2'], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', PYTHONDONTWRITEBYTECODE: '1' } });
    try {
      let out = '';
      await new Promise<void>((res, rej) => {
        const t = setTimeout(() => rej(new Error(`probe not ready: ${out}`)), 10_000);
        probe.stdout.on('data', (b: Buffer) => {
          out += b.toString();
          if (out.includes('ready')) {
            clearTimeout(t);
            res();
          }
        });
        probe.on('close', (code) => rej(new Error(`probe exited ${code}: ${out}`)));
      });
      expect(out).toBe(`busy 127.0.0.1:${port}\nready\n`);
      const banner = (host: string) =>
        new Promise<string>((res, rej) => {
          const s = connect({ host, port }, () => undefined);
          let got = '';
          s.on('data', (b) => (got += b.toString()));
          s.on('end', () => res(got.trim()));
          s.on('error', rej);
        });
      expect(await banner('127.0.0.1')).toBe('service');
      expect(await banner('127.0.0.2')).toMatch(new RegExp(`^kubedos-probe \\S+ ${port}$`));
    } finally {
      probe.kill('SIGKILL');
      busy.close();
    }
  });
  it('kubedos-probe connect: a completed handshake is "open" even when the service never speaks (etcd\'s TLS listener); refused and silence are told apart', async () => {
    // A listener that accepts and stays silent, as etcd's TLS port does until the client hello.
    const silent = createServer(() => undefined);
    await new Promise<void>((res) => silent.listen(0, '127.0.0.1', () => res()));
    const speaking = createServer((c) => c.end('kubedos-probe test 1\n'));
    await new Promise<void>((res) => speaking.listen(0, '127.0.0.1', () => res()));
    const closed = createServer();
    await new Promise<void>((res) => closed.listen(0, '127.0.0.1', () => res()));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((res) => closed.close(() => res()));
    try {
      const checks = [silent, speaking].map((srv) => ({ from: '127.0.0.1', to: '127.0.0.1', port: (srv.address() as AddressInfo).port, timeout: 2 }));
      checks.push({ from: '127.0.0.1', to: '127.0.0.1', port: closedPort, timeout: 2 });
      const r = await run(['python3', `${BACKPLANE}/kubedos-probe`, 'connect-many'], { input: JSON.stringify(checks), env: { PYTHONDONTWRITEBYTECODE: '1' } });
      const out = JSON.parse(r.stdout) as { result: string; banner?: string }[];
      expect(out.map((o) => o.result)).toEqual(['open', 'open', 'refused']);
      expect(out[0]?.banner).toBe('');
      expect(out[1]?.banner).toBe('kubedos-probe test 1');
    } finally {
      silent.close();
      speaking.close();
    }
  });
});
