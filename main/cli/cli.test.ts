// The CLI as a user runs it: a real process, real files, exit codes and output.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeTempDirs, tempDir } from '../testing/temp-dir';
import { TEMPLATES } from '../../common/spec/templates/index';
import { fiveMistakesSpec, templateWithSources, toYaml } from '../../common/testing/specs';

const bin = join(process.cwd(), 'bin/kubedos.mjs');
let dir: string;
const kubedos = (...args: string[]) => {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const noStackTrace = (text: string) => expect(text).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/);

afterAll(removeTempDirs);
beforeAll(() => {
  dir = tempDir('kubedos-cli-');
});

describe('kubedos CLI', () => {
  it('init + validate + plan the reference topology', () => {
    expect(kubedos('init', '--template', 'reference-16', 'r.yaml').code).toBe(0);
    expect(readFileSync(join(dir, 'r.yaml'), 'utf8')).toBe(TEMPLATES['reference-16'].text);
    // As shipped it enables Kubernetes, Cilium, Grafana, Loki, Salt and ZFS with no source for them.
    const refused = kubedos('validate', 'r.yaml');
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/r\.yaml:\d+:\d+: error: kubernetes is enabled but no declared source provides packages kubeadm, kubelet, kubectl and images kube-apiserver/);
    expect(refused.err).toMatch(/error: salt is enabled but no declared source provides packages salt-master, salt-minion: .* or set orchestration\.salt\.enabled: false/);
    expect(refused.err).toContain('r.yaml: 7 errors');
    writeFileSync(join(dir, 'r.yaml'), toYaml(templateWithSources('reference-16')));
    const v = kubedos('validate', 'r.yaml');
    expect(v.code).toBe(0);
    expect(v.out).toContain('valid (16 nodes');
    const p = kubedos('plan', 'r.yaml');
    expect(p.code).toBe(0);
    const rows = p.out.split('\n').filter((l) => /^\S+\s+(master|prometheus|grafana|storage|etcd|control-plane|worker|lb)\s/.test(l));
    expect(rows).toHaveLength(16);
    expect(p.out).toContain('16 nodes');
  });

  it('refuses to overwrite without --force and rejects an unknown template', () => {
    writeFileSync(join(dir, 'x.yaml'), 'keep me');
    expect(kubedos('init', '--template', 'lab-3', 'x.yaml').code).toBe(1);
    expect(readFileSync(join(dir, 'x.yaml'), 'utf8')).toBe('keep me');
    const r = kubedos('init', '--template', 'lab-99', 'y.yaml');
    expect(r.code).toBe(2);
    expect(r.err).toContain('unknown template "lab-99"');
  });

  it('validate prints file:line:col: severity: message, one per mistake, and exits 1', () => {
    let t = TEMPLATES['reference-16'].text;
    t = t.replace('        memoryMiB: 2048\n', '        memoryMB: 2048\n');
    t = t.replace('vmid: 2011', 'vmid: 2010');
    t = t.replace('name: etcd-3\n        role: etcd', 'name: etcd-3\n        role: worker');
    t = t.replace('cidr: 10.102.0.0/24', 'cidr: 10.101.0.0/23');
    writeFileSync(join(dir, 'bad.yaml'), t);
    const r = kubedos('validate', 'bad.yaml');
    expect(r.code).toBe(1);
    const lines = r.err.split('\n').filter((l) => l.startsWith('bad.yaml:'));
    expect(lines).toHaveLength(5); // 4 diagnostics + the summary line
    for (const l of lines.slice(0, 4)) expect(l).toMatch(/^bad\.yaml:\d+:\d+: error: .+/);
    expect(r.err).toContain('bad.yaml: 4 errors');
    const p = kubedos('plan', 'bad.yaml');
    expect(p.code).toBe(1);
    expect(p.out).toBe('');
  });

  it('plan --json is canonical and --against shows the diff', () => {
    kubedos('init', '--template', 'lab-3', 'l.yaml', '--force');
    expect(kubedos('plan', 'l.yaml', '--out', 'before.json').code).toBe(0);
    writeFileSync(join(dir, 'l2.yaml'), readFileSync(join(dir, 'l.yaml'), 'utf8').replace('memoryMiB: 1536', 'memoryMiB: 3072'));
    const d = kubedos('plan', 'l2.yaml', '--against', 'before.json');
    expect(d.code).toBe(0);
    expect(d.out).toMatch(/update\s+w-1\s+memory 1536 -> 3072 \(in place/);
    expect(d.out).toContain('create 0, update 1, replace 0, keep 2, destroy 0');
    writeFileSync(join(dir, 'notplan.json'), '{"kind":"Plan"}');
    const bad = kubedos('plan', 'l.yaml', '--against', 'notplan.json');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('is not a kubedos plan');
  });

  describe('bad input: clear error, non-zero exit, no stack trace, no hang', () => {
    const cases: [string, Buffer | string, RegExp][] = [
      ['malformed YAML', 'apiVersion: [oops\n', /error: /],
      ['wrong types', TEMPLATES['lab-3'].text.replace('cpu: 2', 'cpu: [2]'), /expected number, got a list/],
      ['YAML bomb', ['a: &a [x,x,x,x,x,x,x,x,x]', 'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]', 'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]', 'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]', 'e: [*d,*d,*d,*d,*d,*d,*d,*d,*d]'].join('\n'), /aliases expand too much/],
      ['non-UTF-8', Buffer.from([0x6b, 0x69, 0x6e, 0x64, 0x3a, 0x20, 0xfe, 0xff, 0x0a]), /not valid UTF-8/],
      ['deep nesting', '['.repeat(50_000), /nests deeper/],
    ];
    it.each(cases)('%s', (_name, content, expected) => {
      writeFileSync(join(dir, 'in.yaml'), content);
      const r = kubedos('validate', 'in.yaml');
      expect(r.code).toBe(1);
      expect(r.err).toMatch(expected);
      noStackTrace(r.err);
    });
    it('a file over 5 MiB is refused before it is read', () => {
      writeFileSync(join(dir, 'huge.yaml'), Buffer.alloc(6 * 1024 * 1024, 0x61));
      const r = kubedos('validate', 'huge.yaml');
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/over the 5 MiB limit/);
    });
    it('a missing file says how to create one', () => {
      const r = kubedos('validate', 'nope.yaml');
      expect(r.code).toBe(1);
      expect(r.err).toContain('kubedos init --template');
      noStackTrace(r.err);
    });
    it('bad usage exits 2 with the usage line', () => {
      const r = kubedos('validate');
      expect(r.code).toBe(2);
      expect(r.err).toContain('usage: kubedos validate');
      expect(kubedos('frobnicate').code).toBe(2);
      expect(kubedos('plan', 'r.yaml', '--bogus').code).toBe(2);
    });
  });

  it('validate lists a schema error and four invariant errors in one run, on stderr, in line order', () => {
    writeFileSync(join(dir, 'five.yaml'), fiveMistakesSpec());
    const v = kubedos('validate', 'five.yaml');
    expect(v.code).toBe(1);
    const lines = v.err.split('\n').filter((l) => l.includes(': error: '));
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(/Proxmox tags .*"Bad Tag!"/);
    expect(lines[1]).toContain('no node has role master');
    expect(lines[2]).toContain('wg2 10.101.0.0/24 overlaps wg1');
    expect(lines[3]).toContain('controlPlaneReplicas is 3 but the inventory has 2');
    expect(lines[4]).toContain('etcd is external with 2 members');
    const lineNumbers = lines.map((l) => Number(/^five\.yaml:(\d+):/.exec(l)?.[1]));
    expect(lineNumbers).toEqual([...lineNumbers].sort((a, b) => a - b));
    expect(v.err).toContain('five.yaml: 5 errors');
    noStackTrace(v.err);
  });

  it('every command has --help', () => {
    for (const c of ['init', 'validate', 'plan', 'doctor', 'schema']) {
      const r = kubedos(c, '--help');
      expect(r.code, c).toBe(0);
      expect(r.out).toContain(`usage: kubedos ${c}`);
    }
  });

  it('doctor lists tools with their package and purpose', () => {
    const r = kubedos('doctor', '--json');
    const report = JSON.parse(r.out);
    expect(report.tools.find((t: { tool: string }) => t.tool === 'xorriso')).toMatchObject({ package: 'xorriso', purpose: expect.any(String) });
    expect(r.code).toBe(report.missingPackages.length ? 1 : 0);
    const missing = spawnSync(process.execPath, [bin, 'doctor'], { cwd: dir, encoding: 'utf8', env: { ...process.env, PATH: '/nonexistent' } });
    expect(missing.status).toBe(1);
    expect(missing.stdout).toMatch(/sudo apt-get install .*wireguard-tools/);
  });
});
