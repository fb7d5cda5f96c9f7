import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { plan } from '../../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../../common/spec/index';
import { loadPayloadSources } from './load';
import { renderPayload, renderTemplate, rolesOf } from './render';
import { detectThresholds } from '../../../common/drills/health';
import { hubHealthWatchConfigText } from '../../stages/converge';

const repo = join(__dirname, '../../..');
const spec = parseSpec(TEMPLATES['lab-3'].text).spec!;
const p = plan(spec);
const sources = loadPayloadSources(join(repo, 'payload'));
const input = {
  plan: p,
  sources,
  sshAllowUsers: ['ops'],
  opsAuthorizedKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2i7DDbcM+UcS6tNG0kU3y4uuJ4n2xoxL7uVtdMF5Ej ops@lab-3',
  repoKeyring: new Uint8Array([1, 2, 3]),
  packages: ['openssh-server', 'nftables', 'wireguard-tools'],
  mirror: { host: '10.0.2.100', directory: '/darksite' },
  poweroff: true,
};
const text = (files: { path: string; data: Uint8Array }[], path: string): string => new TextDecoder().decode(files.find((f) => f.path === path)!.data);

describe('payload render', () => {
  it('is deterministic: same plan and sources give the same bytes', () => {
    const a = renderPayload({ ...input, role: 'worker' });
    const b = renderPayload({ ...input, role: 'worker' });
    expect(a.files.map((f) => [f.path, Buffer.from(f.data).toString('hex')])).toEqual(b.files.map((f) => [f.path, Buffer.from(f.data).toString('hex')]));
    expect(a.files.map((f) => f.path)).toEqual([...a.files.map((f) => f.path)].sort());
  });

  it('carries every node of the role as node.json from nodeConfig, and no node of another role', () => {
    const r = renderPayload({ ...input, role: 'control-plane' });
    expect(r.nodes).toEqual(['cp-1']);
    const cfg = JSON.parse(text(r.files, 'nodes/cp-1.json'));
    expect(cfg.kind).toBe('NodeConfig');
    expect(cfg.node.name).toBe('cp-1');
    expect(cfg.node.lan.mac).toBe(p.nodes.find((n) => n.name === 'cp-1')!.lan.mac);
    expect(r.files.some((f) => f.path === 'nodes/w-1.json')).toBe(false);
  });

  it('renders an unattended preseed: darksite mirror only, key-only operator, no root password, late_command payload', () => {
    const r = renderPayload({ ...input, role: 'master' });
    const ps = r.preseed;
    expect(ps).not.toMatch(/\{\{/);
    expect(ps).toMatch(/^d-i mirror\/http\/hostname string 10\.0\.2\.100$/m);
    expect(ps).toMatch(/^d-i mirror\/http\/directory string \/darksite$/m);
    expect(ps).toMatch(/^d-i passwd\/root-login boolean false$/m);
    expect(ps).toMatch(/^d-i passwd\/username string ops$/m);
    expect(ps).toMatch(/^d-i passwd\/user-password-crypted password !$/m);
    expect(ps).toMatch(/^d-i apt-setup\/services-select multiselect$/m);
    expect(ps).toMatch(/^d-i preseed\/late_command string sh \/kubedos-payload\/install-payload\.sh/m);
    expect(ps).toMatch(/KUBEDOS-PRESEED-READ cluster=lab-3 role=master/);
    expect(ps).toMatch(/^d-i pkgsel\/include string nftables openssh-server wireguard-tools$/m);
    expect(ps).toMatch(/^d-i debian-installer\/exit\/poweroff boolean true$/m);
    expect(text(r.files, 'ops.authorized_keys')).toBe(`${input.opsAuthorizedKey}\n`);
  });

  it('uses the role recipe: control planes get a separate etcd filesystem, workers the atomic recipe', () => {
    expect(renderPayload({ ...input, role: 'control-plane' }).preseed).toMatch(/mountpoint\{ \/var\/lib\/etcd \}/);
    expect(renderPayload({ ...input, role: 'worker' }).preseed).toMatch(/choose_recipe select atomic/);
  });

  it('refuses a role the plan has none of, and unknown placeholders', () => {
    expect(() => renderPayload({ ...input, role: 'lb' })).toThrow(/no lb node/);
    expect(() => renderTemplate('x {{NOPE}}', {}, 't')).toThrow(/unknown placeholder \{\{NOPE\}\}/);
    expect(() => renderTemplate('x {{A}}', { A: 'a\nd-i evil' }, 't')).toThrow(/newline/);
  });

  it('lists the plan roles sorted', () => {
    expect(rolesOf(p)).toEqual(['control-plane', 'master', 'worker']);
  });

  it('ships the first-boot scripts executable and the units', () => {
    const r = renderPayload({ ...input, role: 'worker' });
    const fb = r.files.find((f) => f.path === 'firstboot/kubedos-firstboot.sh')!;
    expect(fb.mode).toBe(0o755);
    expect(r.files.some((f) => f.path === 'firstboot/kubedos-firstboot.service')).toBe(true);
    expect(readFileSync(join(repo, 'payload/firstboot/kubedos-firstboot.service'), 'utf8')).toMatch(/ConditionPathExists=!\/var\/lib\/kubedos\/firstboot-complete/);
  });

  it('bakes the health watcher\'s configuration into the hub\'s payload only, with its program and unit', () => {
    const cfg = hubHealthWatchConfigText(spec, p);
    const hubRole = p.nodes.find((n) => n.hub)!.role;
    const hub = renderPayload({ ...input, role: hubRole, healthWatch: cfg });
    expect(text(hub.files, 'health-watch.json')).toBe(cfg);
    expect(JSON.parse(cfg).thresholds).toEqual(detectThresholds(spec.spec.selfHealing));
    expect(hub.files.find((f) => f.path === 'backplane/kubedos-health-watch')?.mode).toBe(0o755);
    expect(hub.files.find((f) => f.path === 'backplane/kubedos-health-watch.service')?.mode).toBe(0o644);
    const worker = renderPayload({ ...input, role: 'worker', healthWatch: cfg });
    expect(worker.files.some((f) => f.path === 'health-watch.json')).toBe(false);
    const install = readFileSync(join(repo, 'payload/firstboot/install-payload.sh'), 'utf8');
    expect(install).toContain('if [ -f "$SRC/health-watch.json" ]; then');
    expect(install).toContain('multi-user.target.wants/kubedos-health-watch.service');
  });
});
