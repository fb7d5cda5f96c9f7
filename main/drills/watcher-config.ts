// The hub's health-watcher configuration as the image carries it (/etc/kubedos/health-watch.json,
// baked into the master's payload by the build): the pure config from common/drills/watcher.ts
// with the on-node paths the deploy uses — the converge key and known hosts the converge stage
// puts on the hub, the fingerprint script converge compares, and the etcd client certificate the
// converge stage issues to the hub.
import type { Plan } from '../../common/plan/index';
import type { ClusterSpec } from '../../common/spec/schema';
import { healthWatchConfig, renderHealthWatchConfig } from '../../common/drills/watcher';
import type { HealthWatchConfig } from '../../common/drills/watcher';
import { fingerprintCommand } from '../stages/converge-state';
import { CONVERGE_KEY, ETCD_CLIENT_PKI, KNOWN_HOSTS } from '../stages/converge';

export function hubHealthWatchConfig(spec: ClusterSpec, plan: Plan): HealthWatchConfig {
  const script = fingerprintCommand()[2];
  if (script === undefined) throw new Error('internal: the converge fingerprint command has no script');
  return healthWatchConfig(spec, plan, {
    etcdTls: { cacert: `${ETCD_CLIENT_PKI}/ca.crt`, cert: `${ETCD_CLIENT_PKI}/client.crt`, key: `${ETCD_CLIENT_PKI}/client.key` },
    ...(spec.spec.orchestration.ansible.enabled ? { converge: { script, user: spec.spec.security.ssh.allowUsers[0] ?? 'ops', key: CONVERGE_KEY, knownHosts: KNOWN_HOSTS } } : {}),
  });
}

export function hubHealthWatchConfigText(spec: ClusterSpec, plan: Plan): string {
  return renderHealthWatchConfig(hubHealthWatchConfig(spec, plan));
}
