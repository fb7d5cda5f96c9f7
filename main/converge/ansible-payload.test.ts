// The Ansible content in payload/ansible, checked with the real tools: syntax, ansible-lint
// (production profile, offline), the inventory the plan renders, and the conventions every
// role must follow (role-prefixed variables, a declared rerun class).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { templateObject, templateWithSources, toYaml } from '../../common/testing/specs';
import { run } from '../exec/runner';

afterAll(removeTempDirs);

const dir = join(process.cwd(), 'payload/ansible');
const env = { ANSIBLE_CONFIG: join(dir, 'ansible.cfg'), ANSIBLE_NOCOLOR: '1', ANSIBLE_LOCAL_TEMP: tempDir('kubedos-ansible-') };
const roles = readdirSync(join(dir, 'roles')).sort();

function inventoryFor(text: string): string {
  const r = parseSpec(text);
  if (!r.spec) throw new Error(JSON.stringify(r.diagnostics));
  const file = join(tempDir('kubedos-inv-'), 'inventory.yml');
  writeFileSync(file, plan(r.spec).ansibleInventory);
  return file;
}

describe('payload/ansible', () => {
  it('passes ansible-playbook --syntax-check against the inventory of every template', async () => {
    for (const name of ['reference-16', 'lab-3'] as const) {
      const inv = inventoryFor(TEMPLATES[name].text);
      const r = await run(['ansible-playbook', '--syntax-check', '-i', inv, 'site.yml'], { cwd: dir, env, timeoutMs: 120_000 });
      expect(r.stdout).toContain('playbook: site.yml');
      // Every converge prints what ansible-core says: no option of ours it has deprecated (ansible.cfg).
      expect(r.stderr, r.stderr).not.toMatch(/DEPRECATION WARNING/);
    }
  }, 240_000);

  it('passes ansible-lint with the production profile (offline)', async () => {
    const r = await run(['ansible-lint', '--offline', '--profile', 'production', '--nocolor'], { cwd: dir, env, timeoutMs: 300_000, okExitCodes: [0, 2] });
    if (r.exitCode !== 0) throw new Error(`ansible-lint failed:\n${r.stdout}\n${r.stderr}`);
    expect(`${r.stdout}\n${r.stderr}`).toMatch(/Passed with production profile: 0 failure/);
  }, 320_000);

  it('validates a plan-rendered inventory and refuses a broken one before touching any host', async () => {
    const good = inventoryFor(TEMPLATES['reference-16'].text);
    const ok = await run(['ansible-playbook', '-i', good, 'playbooks/00-validate.yml'], { cwd: dir, env, timeoutMs: 120_000 });
    expect(ok.stdout).toMatch(/localhost\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0/);

    const broken = parse(readFileSync(good, 'utf8'));
    delete broken.all.children.role_worker.hosts['w-2'].kubedos_wg3;
    broken.all.children.role_etcd.hosts['etcd-4'] = { ...broken.all.children.role_etcd.hosts['etcd-3'], ansible_host: '10.101.0.99', kubedos_wg1: '10.101.0.99', kubedos_wg2: '10.102.0.99', kubedos_wg3: '10.103.0.99' };
    const badFile = join(tempDir('kubedos-inv-'), 'bad.yml');
    writeFileSync(badFile, toYaml(broken));
    const failed = await run(['ansible-playbook', '-i', badFile, 'playbooks/00-validate.yml'], { cwd: dir, env, timeoutMs: 120_000, okExitCodes: [2] });
    expect(failed.stdout).toMatch(/w-2 has no kubedos_wg3: render the inventory from the plan/);
    expect(failed.stdout).toMatch(/localhost\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=1/);
  }, 240_000);

  it('flags an even etcd membership in the inventory', async () => {
    const spec = templateObject('reference-16');
    spec.spec.nodes.inventory.push({ ...spec.spec.nodes.inventory[6], name: 'etcd-4', vmid: 2030 });
    // The spec itself is invalid (even etcd); render its inventory anyway, bypassing validation.
    const r = parseSpec(toYaml(spec));
    expect(r.spec).toBeUndefined();
    spec.spec.nodes.inventory.pop();
    const inv = inventoryFor(toYaml(spec));
    const parsed = parse(readFileSync(inv, 'utf8'));
    parsed.all.children.role_etcd.hosts['etcd-4'] = { ...parsed.all.children.role_etcd.hosts['etcd-3'], ansible_host: '10.101.0.98', kubedos_wg1: '10.101.0.98', kubedos_wg2: '10.102.0.98', kubedos_wg3: '10.103.0.98' };
    parsed.all.children.etcd_members.hosts['etcd-4'] = {};
    writeFileSync(inv, toYaml(parsed));
    const failed = await run(['ansible-playbook', '-i', inv, 'playbooks/00-validate.yml'], { cwd: dir, env, timeoutMs: 120_000, okExitCodes: [2] });
    expect(failed.stdout).toMatch(/needs an odd member count in group etcd_members/);
  }, 240_000);

  it('the hardening baseline renders an auditd rule set, and auditd is in every image', async () => {
    const tmp = tempDir('kubedos-audit-');
    const out = join(tmp, '50-kubedos.rules');
    const play = [{ name: 'render', hosts: 'localhost', connection: 'local', gather_facts: false, vars_files: [join(dir, 'roles/kubedos_baseline/defaults/main.yml')], tasks: [{ name: 'Rules', 'ansible.builtin.template': { src: join(dir, 'roles/kubedos_baseline/templates/audit-kubedos.rules.j2'), dest: out, mode: '0640' } }] }];
    writeFileSync(join(tmp, 'render.yml'), toYaml(play));
    const r = await run(['ansible-playbook', '-i', 'localhost,', join(tmp, 'render.yml')], { cwd: dir, env, timeoutMs: 120_000 });
    expect(r.exitCode).toBe(0);
    const rules = readFileSync(out, 'utf8').split('\n');
    expect(rules).toEqual(expect.arrayContaining(['-w /etc/shadow -p wa -k identity', '-w /etc/ssh/sshd_config.d -p wa -k sshd', '-a always,exit -F arch=b64 -S init_module,finit_module,delete_module -k modules']));
    // Not immutable: a converge must be able to reload its own rules.
    expect(rules).not.toContain('-e 2');
    const base = readFileSync(join(process.cwd(), 'payload/packages/base.list'), 'utf8').split('\n');
    expect(base).toContain('auditd');
  }, 150_000);

  it('the zfs role takes its pools from the plan when storage.zfs is enabled (reference-16: storage node, data disk)', () => {
    const inv = parse(readFileSync(inventoryFor(toYaml(templateWithSources('reference-16'))), 'utf8'));
    expect(inv.all.children.role_storage.hosts.storage.kubedos_zfs_pools).toEqual([{ name: 'fast-zfs', disks: ['/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_drive-scsi1'] }]);
    const lab = parse(readFileSync(inventoryFor(TEMPLATES['lab-3'].text), 'utf8'));
    expect(JSON.stringify(lab)).not.toContain('kubedos_zfs_pools');
  });

  it.each(roles)('role %s declares its rerun class and prefixes its variables', (role) => {
    const defaults = parse(readFileSync(join(dir, 'roles', role, 'defaults/main.yml'), 'utf8')) as Record<string, unknown>;
    expect(['safe-rerun', 'remediates-drift', 'destructive']).toContain(defaults[`${role}_rerun_class`]);
    const shared = new Set(['kubedos_allow_destroy']);
    for (const key of Object.keys(defaults)) if (!shared.has(key)) expect(key.startsWith(`${role}_`), `${role}: ${key}`).toBe(true);
    expect(readdirSync(join(dir, 'roles', role))).toEqual(expect.arrayContaining(['defaults', 'meta', 'tasks']));
  });
});
