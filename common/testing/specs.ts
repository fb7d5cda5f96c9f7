// Spec builders for tests and benchmarks: start from a template, change what a test is about.
import { parse, stringify } from 'yaml';
import { TEMPLATES } from '../spec/templates/index';
import type { TemplateName } from '../spec/templates/index';
import { sha256Hex } from '../canonical';

export function templateObject(name: TemplateName): Record<string, any> {
  return parse(TEMPLATES[name].text) as Record<string, any>;
}

export function toYaml(value: unknown): string {
  return stringify(value, { lineWidth: 0 });
}

/**
 * A valid spec with `count` nodes (count >= 16): the reference roles plus workers, planes and
 * LAN sized to fit. Used by the 100/1000-node benchmark and scale tests.
 */
export function syntheticSpec(count: number): Record<string, any> {
  const spec = templateObject('reference-16');
  const base = spec.spec.nodes.inventory as Record<string, any>[];
  const template = base.find((n) => n.role === 'worker')!;
  const domains = ['rack-a', 'rack-b', 'rack-c'];
  for (let i = base.length; i < count; i++) {
    base.push({ ...structuredClone(template), name: `w-${i - 12}`, vmid: 2000 + i, domain: domains[i % 3] });
  }
  spec.metadata.name = `synthetic-${count}`;
  spec.spec.nodes.vmidRange = { start: 2000, end: 2000 + Math.max(99, count + 10) };
  // Planes need 2 + (count - 1) host offsets; a /21 holds 2046.
  spec.spec.networking.planes.wg1.cidr = '10.64.0.0/21';
  spec.spec.networking.planes.wg2.cidr = '10.72.0.0/21';
  spec.spec.networking.planes.wg3.cidr = '10.80.0.0/21';
  return spec;
}

/**
 * The reference spec with one schema error (a Proxmox tag with a space and "!") and four
 * invariant errors (no master, wg2 overlapping wg1, two control planes for
 * controlPlaneReplicas 3, two etcd members): one validation must report all five.
 */
export function fiveMistakesSpec(): string {
  let text = TEMPLATES['reference-16'].text;
  const edits: [string, string][] = [
    ['      tags:\n        - reference', '      tags:\n        - Bad Tag!'],
    ['      - name: master\n        role: master', '      - name: master\n        role: worker'],
    ['cidr: 10.102.0.0/24', 'cidr: 10.101.0.0/24'],
    ['      - name: cp-3\n        role: control-plane', '      - name: cp-3\n        role: worker'],
    ['      - name: etcd-3\n        role: etcd', '      - name: etcd-3\n        role: worker'],
  ];
  for (const [a, b] of edits) {
    if (!text.includes(a)) throw new Error(`reference-16 changed: ${a} not found`);
    text = text.replace(a, b);
  }
  return text;
}

/**
 * Stand-in sources that provide every package and image any feature needs (test values: a
 * loopback URL, a fingerprint and digests made up for tests). For specs that enable features and
 * must pass the completeness preflight.
 */
export function testSources(): Record<string, any> {
  const digest = (name: string) => `sha256:${sha256Hex(`test-image-${name}`)}`;
  const images = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy', 'coredns', 'pause', 'etcd', 'cilium', 'operator-generic', 'hubble-relay'];
  return {
    apt: [
      {
        name: 'test-upstream',
        url: 'http://127.0.0.1:9/upstream',
        suite: 'stable',
        components: ['main'],
        signedBy: '0123456789ABCDEF0123456789ABCDEF01234567',
        packages: ['kubeadm', 'kubelet', 'kubectl', 'grafana', 'loki', 'salt-master', 'salt-minion', 'zfsutils-linux', 'zfs-dkms'],
      },
    ],
    images: images.map((name) => ({ name, reference: `127.0.0.1:5000/test/${name}:v0`, digest: digest(name) })),
    files: [],
  };
}

/** The template with testSources() declared. */
export function templateWithSources(name: TemplateName): Record<string, any> {
  const spec = templateObject(name);
  spec.spec.sources = testSources();
  return spec;
}
