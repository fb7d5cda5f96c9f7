// Completeness preflight (cross-layer): every feature the spec enables must have a provider for
// each package and image it needs. Debian's main archive (the darksite) provides some; everything
// else must come from a declared source (spec.sources). A spec that enables a feature nobody can
// provide is refused before anything is built, naming what is missing and the two ways out.
// Pure: reads the spec only.
import type { Diagnostic, PathSegment } from './diagnostic';
import { formatPath } from './diagnostic';
import type { Locator } from './parse';
import type { ClusterSpec, Sources } from './schema';

/** A feature the spec can enable and what it needs from outside Debian main. */
export interface FeatureNeeds {
  feature: string;
  /** The flag that enables it (where a refusal points). */
  enabledBy: PathSegment[];
  /** How to turn it off, in the spec's words. */
  disable: string;
  /** Debian package names that no Debian main archive carries. */
  upstreamPackages: readonly string[];
  /** Image names (the last path segment of a reference, without tag or digest). */
  images: readonly string[];
  /** Packages the darksite (Debian main) carries for this feature: listed in the summary only. */
  debianPackages: readonly string[];
  /** The reference source definitions that provide it (docs/sources/). */
  reference: string;
}

/** The features the spec enables, in a stable order, each with what it needs. */
export function enabledFeatures(spec: ClusterSpec): FeatureNeeds[] {
  const s = spec.spec;
  const k = s.kubernetes;
  const out: FeatureNeeds[] = [];
  if (k.enabled) {
    out.push({
      feature: 'kubernetes',
      enabledBy: ['spec', 'kubernetes', 'enabled'],
      disable: 'kubernetes.enabled: false',
      upstreamPackages: ['kubeadm', 'kubelet', 'kubectl'],
      images: ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy', 'coredns', 'pause', ...(k.ha.etcd === 'stacked' ? ['etcd'] : [])],
      debianPackages: ['containerd'],
      reference: 'docs/sources/kubernetes.yaml',
    });
    if (k.cni.name === 'cilium') {
      out.push({
        feature: 'cilium',
        enabledBy: ['spec', 'kubernetes', 'cni', 'name'],
        disable: 'kubernetes.enabled: false (Cilium is the only CNI)',
        upstreamPackages: [],
        images: ['cilium', 'operator-generic'],
        debianPackages: [],
        reference: 'docs/sources/cilium.yaml',
      });
      if (k.cni.hubble) {
        out.push({
          feature: 'hubble',
          enabledBy: ['spec', 'kubernetes', 'cni', 'hubble'],
          disable: 'kubernetes.cni.hubble: false',
          upstreamPackages: [],
          images: ['hubble-relay'],
          debianPackages: [],
          reference: 'docs/sources/cilium.yaml',
        });
      }
    }
  }
  if (k.observability.prometheus) {
    out.push({ feature: 'prometheus', enabledBy: ['spec', 'kubernetes', 'observability', 'prometheus'], disable: 'kubernetes.observability.prometheus: false', upstreamPackages: [], images: [], debianPackages: ['prometheus', 'prometheus-node-exporter'], reference: '' });
  }
  if (k.observability.grafana) {
    out.push({ feature: 'grafana', enabledBy: ['spec', 'kubernetes', 'observability', 'grafana'], disable: 'kubernetes.observability.grafana: false', upstreamPackages: ['grafana'], images: [], debianPackages: [], reference: 'docs/sources/grafana.yaml' });
  }
  if (k.observability.loki) {
    out.push({ feature: 'loki', enabledBy: ['spec', 'kubernetes', 'observability', 'loki'], disable: 'kubernetes.observability.loki: false', upstreamPackages: ['loki'], images: [], debianPackages: [], reference: 'docs/sources/grafana.yaml' });
  }
  if (s.orchestration.salt.enabled) {
    out.push({ feature: 'salt', enabledBy: ['spec', 'orchestration', 'salt', 'enabled'], disable: 'orchestration.salt.enabled: false', upstreamPackages: ['salt-master', 'salt-minion'], images: [], debianPackages: [], reference: 'docs/sources/salt.yaml' });
  }
  if (s.storage.zfs.enabled) {
    // OpenZFS is in Debian's contrib component, which the darksite (main only) does not carry.
    out.push({ feature: 'zfs', enabledBy: ['spec', 'storage', 'zfs', 'enabled'], disable: 'storage.zfs.enabled: false', upstreamPackages: ['zfsutils-linux', 'zfs-dkms'], images: [], debianPackages: ['dkms', 'linux-headers-amd64'], reference: 'docs/sources/zfs.yaml' });
  }
  return out;
}

/** The image name a reference names: its last path segment, without tag. */
export function imageName(reference: string): string {
  const last = reference.slice(reference.lastIndexOf('/') + 1);
  const colon = last.indexOf(':');
  return colon < 0 ? last : last.slice(0, colon);
}

/** What the declared sources provide, by package name and image name. */
export function providedBy(sources: Sources): { packages: Map<string, string>; images: Map<string, string> } {
  const packages = new Map<string, string>();
  const images = new Map<string, string>();
  for (const a of sources.apt) for (const p of a.packages) if (!packages.has(p)) packages.set(p, a.name);
  for (const i of sources.images) {
    const n = imageName(i.reference);
    if (!images.has(n)) images.set(n, i.name);
  }
  return { packages, images };
}

export interface FeatureGap {
  feature: FeatureNeeds;
  packages: string[];
  images: string[];
}

/** Pure: the enabled features that lack a provider, with the missing names. */
export function completenessGaps(spec: ClusterSpec): FeatureGap[] {
  const have = providedBy(spec.spec.sources);
  return enabledFeatures(spec)
    .map((feature) => ({
      feature,
      packages: feature.upstreamPackages.filter((p) => !have.packages.has(p)),
      images: feature.images.filter((i) => !have.images.has(i)),
    }))
    .filter((g) => g.packages.length > 0 || g.images.length > 0);
}

const FIRST = 4;
function names(list: readonly string[]): string {
  return list.length <= FIRST ? list.join(', ') : `${list.slice(0, FIRST).join(', ')} and ${list.length - FIRST} more`;
}

/** One line per gap: what is missing, and the fix (declare the source, or disable the feature). */
export function gapMessage(g: FeatureGap): string {
  const what = [g.packages.length ? `package${g.packages.length === 1 ? '' : 's'} ${names(g.packages)}` : '', g.images.length ? `image${g.images.length === 1 ? '' : 's'} ${names(g.images)}` : '']
    .filter(Boolean)
    .join(' and ');
  const declare = g.feature.reference ? `declare them under spec.sources (a pinned definition is in ${g.feature.reference}; it needs a foundry that is online)` : 'declare them under spec.sources';
  return `${g.feature.feature} is enabled but no declared source provides ${what}: ${declare}, or set ${g.feature.disable}`;
}

/** The preflight as diagnostics, anchored on each feature's enabling flag. */
export function checkCompleteness(spec: ClusterSpec, locate: Locator): Diagnostic[] {
  return completenessGaps(spec).map((g) => ({
    code: `completeness.${g.feature.feature}`,
    severity: 'error' as const,
    message: gapMessage(g),
    path: formatPath(g.feature.enabledBy),
    ...locate(g.feature.enabledBy, 'value'),
  }));
}
