import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { templateObject, templateWithSources, testSources, toYaml } from '../testing/specs';
import { completenessGaps, enabledFeatures, imageName } from './completeness';
import { parseSpec } from './parse';
import { Sources } from './schema';
import { TEMPLATES } from './templates/index';

const strict = (text: string) => parseSpec(text, { completeness: true });

describe('completeness preflight', () => {
  it('refuses reference-16 without sources, naming each missing feature, the names and the fix', () => {
    const r = strict(TEMPLATES['reference-16'].text);
    expect(r.spec).toBeUndefined();
    const byCode = new Map(r.diagnostics.filter((d) => d.severity === 'error').map((d) => [d.code, d]));
    expect([...byCode.keys()].sort()).toEqual(['completeness.cilium', 'completeness.grafana', 'completeness.hubble', 'completeness.kubernetes', 'completeness.loki', 'completeness.salt', 'completeness.zfs']);
    const k = byCode.get('completeness.kubernetes')!;
    expect(k.message).toMatch(/^kubernetes is enabled but no declared source provides packages kubeadm, kubelet, kubectl and images kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy and 2 more: declare them under spec\.sources \(a pinned definition is in docs\/sources\/kubernetes\.yaml; it needs a foundry that is online\), or set kubernetes\.enabled: false$/);
    expect(k.path).toBe('spec.kubernetes.enabled');
    // Anchored on the flag's line in the YAML text.
    expect(TEMPLATES['reference-16'].text.split('\n')[k.line - 1]).toMatch(/enabled: true/);
    expect(byCode.get('completeness.salt')!.message).toMatch(/packages salt-master, salt-minion: .* or set orchestration\.salt\.enabled: false/);
    expect(byCode.get('completeness.zfs')!.message).toMatch(/packages zfsutils-linux, zfs-dkms: .*docs\/sources\/zfs\.yaml/);
  });
  it('is not run unless asked (status, stop and destroy read any spec)', () => {
    expect(parseSpec(TEMPLATES['reference-16'].text).spec).toBeDefined();
  });
  it('accepts the templates meant for machines without upstream access as they are', () => {
    for (const name of ['lab-3', 'solo-1'] as const) {
      const r = strict(TEMPLATES[name].text);
      expect(r.diagnostics.filter((d) => d.severity === 'error'), name).toEqual([]);
      expect(enabledFeatures(r.spec!).flatMap((f) => f.upstreamPackages.concat(f.images)), name).toEqual([]);
    }
  });
  it('accepts reference-16 once sources provide every package and image', () => {
    const r = strict(toYaml(templateWithSources('reference-16')));
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  });
  it('names only what is still missing when a source lacks one package and one image', () => {
    const spec = templateWithSources('reference-16');
    spec.spec.sources.apt[0].packages = spec.spec.sources.apt[0].packages.filter((p: string) => p !== 'kubelet');
    spec.spec.sources.images = spec.spec.sources.images.filter((i: { name: string }) => i.name !== 'hubble-relay');
    const gaps = completenessGaps(parseSpec(toYaml(spec)).spec!);
    expect(gaps.map((g) => [g.feature.feature, g.packages, g.images])).toEqual([
      ['kubernetes', ['kubelet'], []],
      ['hubble', [], ['hubble-relay']],
    ]);
  });
  it('follows the spec: hubble off needs no relay image, external etcd needs no etcd image', () => {
    const spec = templateObject('reference-16');
    spec.spec.kubernetes.cni.hubble = false;
    spec.spec.kubernetes.ha.etcd = 'external';
    const names = enabledFeatures(parseSpec(toYaml(spec)).spec!).flatMap((f) => f.images);
    expect(names).not.toContain('hubble-relay');
    expect(names).not.toContain('etcd');
    expect(names).toContain('kube-apiserver');
  });
  it('matches images by the last segment of the reference, without tag', () => {
    expect(imageName('cilium-registry.invalid/cilium/operator-generic:v1.15.6')).toBe('operator-generic');
    expect(imageName('127.0.0.1:5000/a/b/pause')).toBe('pause');
  });
  it('refuses a malformed source by field: short fingerprint, digest with a tag, file hash', () => {
    const spec = templateObject('lab-3');
    spec.spec.sources = testSources();
    spec.spec.sources.apt[0].signedBy = 'ABCD1234';
    spec.spec.sources.images[0].reference = '127.0.0.1:5000/x/y@sha256:00';
    spec.spec.sources.files = [{ name: 'chart', url: 'http://127.0.0.1:9/c.tgz', sha256: 'xyz' }];
    const paths = parseSpec(toYaml(spec)).diagnostics.filter((d) => d.severity === 'error').map((d) => d.path);
    expect(paths).toEqual(expect.arrayContaining(['spec.sources.apt[0].signedBy', 'spec.sources.images[0].reference', 'spec.sources.files[0].sha256']));
  });
  it('takes installOn as a list of node roles (the build installs the source\'s packages there), refusing an unknown role or an empty list', () => {
    const spec = templateObject('lab-3');
    spec.spec.sources = testSources();
    spec.spec.sources.apt[0].installOn = ['master', 'control-plane', 'worker'];
    expect(parseSpec(toYaml(spec)).spec?.spec.sources.apt[0]?.installOn).toEqual(['master', 'control-plane', 'worker']);
    delete spec.spec.sources.apt[0].installOn;
    expect(parseSpec(toYaml(spec)).spec?.spec.sources.apt[0]).not.toHaveProperty('installOn');
    for (const bad of [['everywhere'], []]) {
      spec.spec.sources.apt[0].installOn = bad;
      expect(parseSpec(toYaml(spec)).diagnostics.filter((d) => d.severity === 'error').map((d) => d.path), JSON.stringify(bad)).toContain(bad.length ? 'spec.sources.apt[0].installOn[0]' : 'spec.sources.apt[0].installOn');
    }
  });
});

describe('reference source definitions (docs/sources)', () => {
  const dir = join(__dirname, '../../docs/sources');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();
  it('together provide everything reference-16 enables, once the image digests are pinned', () => {
    expect(files).toEqual(['cilium.yaml', 'grafana.yaml', 'kubernetes.yaml', 'salt.yaml', 'zfs.yaml']);
    const merged = { apt: [] as unknown[], images: [] as unknown[], files: [] as unknown[] };
    for (const f of files) {
      const text = readFileSync(join(dir, f), 'utf8');
      const part = parse(text.replace(/DIGEST-TO-PIN/g, `sha256:${'a'.repeat(64)}`)) as Partial<typeof merged>;
      expect(Sources.safeParse(part).success, f).toBe(true);
      for (const k of ['apt', 'images', 'files'] as const) merged[k].push(...(part[k] ?? []));
    }
    const spec = templateObject('reference-16');
    spec.spec.sources = merged;
    const r = parseSpec(toYaml(spec), { completeness: true });
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  });
  it('are refused as shipped until the image digests are pinned (nothing unpinned slips through)', () => {
    const part = parse(readFileSync(join(dir, 'cilium.yaml'), 'utf8'));
    expect(Sources.safeParse(part).success).toBe(false);
  });
});
