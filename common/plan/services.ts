// What each role serves, and on which plane. The firewall opens exactly these on non-plane
// interfaces; inside a plane, peers are trusted (seed 001: rules that trust the planes).
import type { ClusterSpec, NodeRole } from '../spec/schema';
import type { ServiceBinding } from './schema';

export function roleServices(spec: ClusterSpec, role: NodeRole, hostsObservability: boolean): ServiceBinding[] {
  const s = spec.spec;
  const k = s.kubernetes;
  const obs = (k.observability.plane as ServiceBinding['on']) ?? 'wg2';
  const out: ServiceBinding[] = [
    { name: 'ssh', on: 'wg1', ports: ['22/tcp'], why: 'administration only over the control plane' },
    { name: 'node-exporter', on: obs, ports: ['9100/tcp'], why: 'host metrics for prometheus' },
  ];
  switch (role) {
    case 'master':
      out.push({ name: 'enrollment', on: 'lan', ports: [`${s.security.enrollment.port}/tcp`], why: 'enrollment window (open only while enrolling)' });
      if (s.orchestration.salt.enabled) out.push({ name: 'salt-master', on: 'wg1', ports: ['4505-4506/tcp'], why: 'salt publish/return' });
      break;
    case 'etcd':
      if (etcdHostRole(spec) === 'etcd') out.push({ name: 'etcd', on: 'wg3', ports: ['2379-2380/tcp'], why: 'external etcd client and peer traffic' });
      break;
    case 'control-plane':
      if (k.enabled) {
        out.push({ name: 'kube-apiserver', on: 'wg3', ports: ['6443/tcp'], why: 'Kubernetes API behind the lb VIP' });
        out.push({ name: 'kubelet', on: 'wg3', ports: ['10250/tcp'], why: 'kubelet API' });
        out.push({ name: 'control-plane', on: 'wg3', ports: ['10257/tcp', '10259/tcp'], why: 'controller-manager and scheduler health' });
      }
      if (etcdHostRole(spec) === 'control-plane') out.push({ name: 'etcd', on: 'wg3', ports: ['2379-2380/tcp'], why: 'stacked etcd' });
      if (k.enabled && k.cni.name === 'cilium') out.push({ name: 'cilium', on: 'wg3', ports: ['4240/tcp', '4244/tcp'], why: 'cilium health and hubble' });
      break;
    case 'worker':
      if (k.enabled) {
        out.push({ name: 'kubelet', on: 'wg3', ports: ['10250/tcp'], why: 'kubelet API' });
        if (k.cni.name === 'cilium') out.push({ name: 'cilium', on: 'wg3', ports: ['4240/tcp', '4244/tcp'], why: 'cilium health and hubble' });
      }
      break;
    case 'lb':
      if (k.enabled) {
        out.push({ name: 'haproxy', on: 'lan', ports: ['6443/tcp'], why: 'Kubernetes API on the VIP' });
        out.push({ name: 'keepalived', on: 'lan', ports: ['vrrp'], why: 'VRRP for the API VIP' });
      }
      break;
    case 'prometheus':
      break;
    case 'grafana':
      if (k.observability.grafana) out.push({ name: 'grafana', on: obs, ports: ['3000/tcp'], why: 'dashboards' });
      if (k.observability.loki) out.push({ name: 'loki', on: obs, ports: ['3100/tcp'], why: 'log ingestion' });
      break;
    case 'storage':
      if (s.storage.ceph.enabled && s.storage.ceph.plane) {
        out.push({ name: 'ceph', on: s.storage.ceph.plane as ServiceBinding['on'], ports: ['3300/tcp', '6789/tcp', '6800-7300/tcp'], why: 'ceph monitors and OSDs' });
      }
      break;
  }
  if (hostsObservability && k.observability.prometheus) out.push({ name: 'prometheus', on: obs, ports: ['9090/tcp'], why: 'metrics' });
  return out;
}

/** Prometheus runs on the prometheus node, or on the master when there is none. */
export function observabilityHost(spec: ClusterSpec): string | undefined {
  const inv = spec.spec.nodes.inventory;
  return (inv.find((n) => n.role === 'prometheus') ?? inv.find((n) => n.role === 'master'))?.name;
}

/** The role whose nodes are etcd members: independent of kubernetes.enabled (etcd is Debian's). */
export function etcdHostRole(spec: ClusterSpec): 'etcd' | 'control-plane' {
  return spec.spec.kubernetes.ha.etcd === 'external' ? 'etcd' : 'control-plane';
}
