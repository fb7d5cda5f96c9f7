// Opt-in (npm run test:converge, 4 min): CI's deploy lab converges baseline, backplanes, etcd and
// observability on real VMs; the lb role and a three-member etcd are checked only here.
// Converge for real in the namespace lab: six nodes with their planes up and enrolled through
// the real backplane payload; the master runs payload/ansible (site.yml) over wg1 from its own
// copy, as it does on a real cluster. The roles whose packages Debian carries converge and their
// services are then started from exactly the files the roles wrote: etcd on wg3 (3 members,
// stacked on the control planes), node exporters and Prometheus on wg2, HAProxy + keepalived
// holding the API VIP on the lb node. A second run must report changed=0 everywhere.
// The lab has no init system, so the roles are told not to manage services (that is the only
// difference from a real node) and the test starts the daemons itself.
// An etcd member lost with its data then rejoins through the drill engine's own membership steps
// (main/drills/etcd-member.ts, as kill-etcd-member on a deployed cluster runs them): removed,
// added again, recorded for the etcd role on the master, that node alone converged and its etcd
// started from what the role wrote; then every node converges again with changed=0.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { plan } from '../../common/plan/index';
import type { Plan } from '../../common/plan/index';
import { parseSpec } from '../../common/spec/index';
import { templateObject, toYaml } from '../../common/testing/specs';
import { parseRecap } from '../lab/ansible';
import { bringUp, makeTrust } from '../../main/lab/backplane';
import type { EnrollmentWindow } from '../../main/lab/backplane';
import { Lab } from '../../main/lab/harness';
import { payloadDir } from '../../main/paths';
import { sha256Hex } from '../../common/canonical';
import { CONVERGE_RECORD_ON_NODE, renderConvergeRecordOnNode } from '../../common/drills/watcher';
import { fingerprintCommand } from '../../main/stages/converge-state';
import type { ChildProcess } from 'node:child_process';
import type { EtcdAccess } from '../../main/drills/etcd-member';
import { addEtcdMember, ETCD_DATA_DIR, etcdMemberVarsPath, listMembers, putKey, readBackFrom, recordEtcdMember, removeEtcdMember } from '../../main/drills/etcd-member';
import { labShell } from '../../main/drills/lab-target';

const ANSIBLE_DIR = '/usr/lib/kubedos/ansible';
const LAB_VARS = {
  kubedos_baseline_manage_sysctl: false, // kernel.* sysctls are global: never touch the host kernel from a namespace
  kubedos_baseline_manage_service: false,
  kubedos_baseline_lock_root: false,
  kubedos_baseline_audit: false, // audit rules are kernel-global like sysctls, and the host has no auditd: never from a namespace
  kubedos_etcd_tls: false, // TLS for etcd is covered with real certificates by the VM deploy
  kubedos_etcd_manage_service: false,
  kubedos_lb_manage_service: false,
  kubedos_prometheus_manage_service: false,
  kubedos_node_exporter_manage_service: false,
  kubedos_wireguard_manage_service: false, // no systemd to re-read the plane-bound services' drop-ins
};
const TAGS = 'baseline,backplanes,etcd,lb,observability';

function convergeSpec(): Plan {
  const s = templateObject('lab-3');
  const inv = s.spec.nodes.inventory;
  const cp = inv.find((n: any) => n.name === 'cp-1');
  inv.push({ ...cp, name: 'cp-2', vmid: 3003, cpu: 1, memoryMiB: 1024 }, { ...cp, name: 'cp-3', vmid: 3004, cpu: 1, memoryMiB: 1024 });
  inv.push({ ...cp, name: 'lb-1', role: 'lb', vmid: 3005, cpu: 1, memoryMiB: 512 });
  s.spec.kubernetes.ha.controlPlaneReplicas = 3;
  s.metadata.name = 'converge-6';
  const r = parseSpec(toYaml(s));
  if (!r.spec) throw new Error(`test spec invalid: ${JSON.stringify(r.diagnostics)}`);
  return plan(r.spec);
}

const recap = (stdout: string) => new Map(Object.entries(parseRecap(stdout)));
// Task results per host (one `ok:`/`changed:` line per task and per loop item; skipped ones not
// counted): what a converge costs a node, as each is a module start there (seconds under TCG).
// The run's cost is printed with the timing profile, so a role change that adds steps shows.
function taskResults(stdout: string): Record<string, number> {
  const n: Record<string, number> = {};
  for (const m of stdout.matchAll(/^(?:ok|changed): \[([^\]]+)\]/gm)) n[m[1]!] = (n[m[1]!] ?? 0) + 1;
  return Object.fromEntries(Object.entries(n).sort(([a], [b]) => a.localeCompare(b)));
}
const costSummary = (label: string, stdout: string, seconds: number) =>
  `${label}: ${seconds.toFixed(0)} s; task results per host ${JSON.stringify(taskResults(stdout))}\n${stdout.slice(stdout.lastIndexOf('PLAY RECAP')).trim()}`;

describe('converge in the namespace lab (payload/ansible, run by the master over wg1)', () => {
  let lab: Lab;
  let window: EnrollmentWindow | undefined;
  const p = convergeSpec();
  const wg = (node: string, plane: 'wg1' | 'wg2' | 'wg3') => p.nodes.find((n) => n.name === node)!.planes[plane].address.replace('/32', '');

  beforeAll(async () => {
    lab = await Lab.create(p, { sshd: true });
    window = await bringUp(lab, await makeTrust(lab));
    // Everyone is enrolled; close the window rather than leave it open during converge.
    window.process.kill();
    const master = lab.hub.name;
    // No DNS in the lab: a resolver that refuses at once (the host's would time out from inside a
    // namespace and stall every SSH login and fact lookup), and every node in /etc/hosts.
    const hosts = ['127.0.0.1 localhost', ...p.nodes.map((n) => `${wg(n.name, 'wg1')} ${n.name} ${n.fqdn}`)].join('\n');
    for (const n of p.nodes) {
      await lab.writeFile(n.name, '/etc/resolv.conf', 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
      await lab.writeFile(n.name, '/etc/hosts', `${hosts}\n`);
    }
    // What the image installs on every node (install-payload.sh): its payload manifest, whose
    // artifactVersion and payloadSha256 kubedos-node-metrics reports.
    for (const n of p.nodes) {
      const manifest = { apiVersion: 'kubedos.ca/v1alpha1', kind: 'Payload', cluster: p.cluster.name, artifactVersion: p.cluster.artifactVersion, role: n.role, payloadSha256: sha256Hex(`lab payload of ${n.role}`) };
      await lab.exec(n.name, ['/bin/mkdir', '-p', '/etc/kubedos']);
      await lab.writeFile(n.name, '/etc/kubedos/payload.json', `${JSON.stringify(manifest, null, 2)}\n`);
    }
    // The master converges from its own baked copy of the payload.
    await lab.exec(master, ['/bin/mkdir', '-p', '/usr/lib/kubedos', '/etc/kubedos/ansible', '/root/.ssh']);
    await lab.copyIn(master, join(payloadDir(), 'ansible'), ANSIBLE_DIR);
    await lab.writeFile(master, '/etc/kubedos/ansible/inventory.yml', p.ansibleInventory);
    await lab.writeFile(master, '/etc/kubedos/ansible/lab-vars.yml', stringify({ ...LAB_VARS, ansible_user: 'root', ansible_ssh_private_key_file: '/root/.ssh/id_ed25519' }));
    const { readFileSync } = await import('node:fs');
    await lab.writeFile(master, '/root/.ssh/id_ed25519', readFileSync(lab.sshKey), 0o600);
    // Strict host keys stay on: learn them once over wg1, like a first-use prompt accepted in advance.
    const scan = await lab.exec(master, ['/usr/bin/ssh-keyscan', '-T', '5', '-t', 'ed25519', ...p.nodes.map((n) => wg(n.name, 'wg1'))]);
    await lab.writeFile(master, '/root/.ssh/known_hosts', scan.stdout);
  });

  afterAll(() => {
    window?.process.kill();
    lab?.destroy();
  });

  // Lab-only SSH settings: no connection sharing and piped transfers. With ControlMaster and sftp,
  // runs on this heavily shared 2-core host occasionally stalled (see e2e/lab/fixtures/ansible).
  const LAB_ENV = [
    `ANSIBLE_CONFIG=${ANSIBLE_DIR}/ansible.cfg`,
    'ANSIBLE_NOCOLOR=1',
    'ANSIBLE_TASK_TIMEOUT=120',
    'ANSIBLE_SSH_TRANSFER_METHOD=piped',
    'ANSIBLE_SSH_ARGS=-o ControlMaster=no -o PasswordAuthentication=no -o ConnectTimeout=15 -o ServerAliveInterval=5 -o ServerAliveCountMax=6',
    'ANSIBLE_LOG_PATH=/var/log/kubedos-converge.log',
  ];
  const converge = async (limit?: string) => {
    try {
      return await lab.exec(lab.hub.name, ['/usr/bin/env', ...LAB_ENV, '/bin/sh', '-c', `cd ${ANSIBLE_DIR} && exec ansible-playbook -i /etc/kubedos/ansible/inventory.yml -e @/etc/kubedos/ansible/lab-vars.yml --tags ${TAGS}${limit ? ` --limit ${limit}` : ''} site.yml`], {
        timeoutMs: 420_000,
        okExitCodes: [0, 2, 4],
      });
    } catch (err) {
      const log = await lab.readFile(lab.hub.name, '/var/log/kubedos-converge.log').catch(() => '(no log)');
      throw new Error(`${(err as Error).message}\n--- ansible log tail ---\n${log.split('\n').slice(-40).join('\n')}`, { cause: err });
    }
  };

  it('converges every node with no failure, then a second run changes nothing', async () => {
    let t0 = Date.now();
    const first = await converge();
    console.log(costSummary('first converge', first.stdout, (Date.now() - t0) / 1000));
    const r1 = recap(first.stdout);
    expect([...r1.keys()].sort(), first.stdout.slice(-3000)).toEqual(['localhost', ...p.nodes.map((n) => n.name)].sort());
    for (const [host, r] of r1) expect({ host, failed: r.failed, unreachable: r.unreachable }, first.stdout.slice(-4000)).toEqual({ host, failed: 0, unreachable: 0 });
    expect([...r1.values()].reduce((a, r) => a + r.changed, 0)).toBeGreaterThan(0);
    // The plays of roles no node has (grafana, storage here) skip without Ansible's warning: the
    // inventory declares their groups empty (common/plan/plan.ts).
    expect(first.stdout).toMatch(/^PLAY \[Grafana/m);
    expect(first.stdout + first.stderr).not.toMatch(/Could not match supplied host pattern/);
    // Task results (module starts, seconds each under TCG) of a first converge, the worker's being
    // the rebuild drill's reintegration: a role change that adds or removes steps changes these
    // on purpose, with payload/ansible/README.md's numbers. Measured 2026-12-04.
    const cost = taskResults(first.stdout);
    expect({ worker: cost['w-1'], controlPlane: cost['cp-1'], master: cost['master'], lb: cost['lb-1'] }).toEqual({ worker: 14, controlPlane: 17, master: 18, lb: 17 });

    t0 = Date.now();
    const second = await converge();
    console.log(costSummary('second converge', second.stdout, (Date.now() - t0) / 1000));
    const r2 = recap(second.stdout);
    for (const [host, r] of r2) expect({ host, changed: r.changed, failed: r.failed }, second.stdout.slice(-4000)).toEqual({ host, changed: 0, failed: 0 });
  }, 900_000);

  const etcdProcs = new Map<string, ChildProcess>();
  const startEtcd = (m: string, gen = 1) => etcdProcs.set(m, lab.spawnDaemon(m, ['/bin/sh', '-c', 'set -a && . /etc/default/etcd && exec etcd'], `etcd-${m}-${gen}`));

  it('etcd members started from the rendered config form a healthy 3-member cluster on wg3', async () => {
    const members = ['cp-1', 'cp-2', 'cp-3'];
    for (const m of members) {
      const env = await lab.readFile(m, '/etc/default/etcd');
      expect(env).toContain(`ETCD_LISTEN_PEER_URLS="http://${wg(m, 'wg3')}:2380"`);
      // A fresh cluster bootstraps: nothing recorded for the role, so every member says "new".
      expect(env).toContain('ETCD_INITIAL_CLUSTER_STATE="new"');
      startEtcd(m);
    }
    const endpoints = members.map((m) => `http://${wg(m, 'wg3')}:2379`).join(',');
    let health = '';
    for (let i = 0; i < 60; i++) {
      const r = await lab.try('cp-1', ['/usr/bin/etcdctl', `--endpoints=${endpoints}`, 'endpoint', 'health']);
      health = r.stdout + r.stderr;
      if (r.exitCode === 0 && (health.match(/is healthy/g) ?? []).length === 3) break;
      await new Promise((res) => setTimeout(res, 500));
    }
    expect((health.match(/is healthy/g) ?? []).length, health).toBe(3);
    await lab.exec('cp-2', ['/usr/bin/etcdctl', `--endpoints=http://${wg('cp-2', 'wg3')}:2379`, 'put', 'kubedos/converged', 'yes']);
    const got = await lab.exec('cp-3', ['/usr/bin/etcdctl', `--endpoints=http://${wg('cp-3', 'wg3')}:2379`, 'get', '--print-value-only', 'kubedos/converged']);
    expect(got.stdout.trim()).toBe('yes');
  }, 120_000);

  it('a member lost with its data rejoins: removed and added again by the engine\'s steps, its node alone converged, started from the role\'s files; 3 healthy, the key from before read through it, then changed=0 everywhere', async () => {
    const members = ['cp-1', 'cp-2', 'cp-3'];
    const sh = labShell(lab);
    const peer = (m: string) => `http://${wg(m, 'wg3')}:2380`;
    // The engine's etcdctl shape, without TLS (the lab's etcd speaks plain HTTP on wg3).
    const etcdctl = (only: readonly string[]) => (args: readonly string[]) => ['/usr/bin/etcdctl', `--endpoints=${only.map((m) => `http://${wg(m, 'wg3')}:2379`).join(',')}`, '--dial-timeout=2s', '--command-timeout=4s', ...args];
    const a: EtcdAccess = { sh, from: 'cp-1', etcdctl: etcdctl(members) };
    await putKey(a, 'kubedos/drill/cp-3', 'written before the fault');
    const [cp1, cp2] = [etcdProcs.get('cp-1')!, etcdProcs.get('cp-2')!];

    // The fault: cp-3's etcd killed, its data lost.
    const cp3 = etcdProcs.get('cp-3')!;
    const gone = new Promise((res) => cp3.once('close', res));
    cp3.kill('SIGKILL');
    await gone;
    await lab.exec('cp-3', ['/bin/rm', '-rf', ETCD_DATA_DIR]);
    const oldId = (await listMembers(a)).find((m) => m.name === 'cp-3')!.id;

    // Fence and replace, as the drill does: remove (quorum kept), add once, record for the role.
    const removed = await removeEtcdMember(a, 'cp-3', peer('cp-3'));
    expect(removed.detail).toBe(`etcd member ${oldId} (cp-3) removed on cp-1; 2 of 2 members healthy`);
    const added = await addEtcdMember(a, 'cp-3', peer('cp-3'));
    expect(added).toMatchObject({ added: true, detail: `etcd member ${added.id} (cp-3, ${peer('cp-3')}) added on cp-1` });
    // A resumed repair finds it listed and does not add it twice.
    expect(await addEtcdMember(a, 'cp-3', peer('cp-3'))).toMatchObject({ id: added.id, added: false });
    expect((await listMembers(a)).filter((m) => m.peerUrls.includes(peer('cp-3')))).toHaveLength(1);
    expect(await recordEtcdMember(sh, lab.hub.name, 'cp-3', added.id)).toBe(true);
    expect(await lab.readFile(lab.hub.name, etcdMemberVarsPath('cp-3'))).toContain(`kubedos_etcd_member_id: "${added.id}"`);

    // Reintegrate: converge cp-3 only, then its etcd from the files the role wrote.
    let t0 = Date.now();
    const one = await converge('cp-3');
    console.log(costSummary('converge of cp-3 after its member was added again', one.stdout, (Date.now() - t0) / 1000));
    const r1 = recap(one.stdout);
    expect([...r1.keys()].filter((h) => h !== 'localhost')).toEqual(['cp-3']);
    expect(r1.get('cp-3')).toMatchObject({ failed: 0, unreachable: 0 });
    expect(r1.get('cp-3')!.changed).toBeGreaterThan(0);
    const env = await lab.readFile('cp-3', '/etc/default/etcd');
    expect(env).toContain('ETCD_INITIAL_CLUSTER_STATE="existing"');
    expect(env).toContain(`ETCD_INITIAL_CLUSTER="${members.map((m) => `${m}=${peer(m)}`).join(',')}"`);
    // The data directory was emptied once for this member id (the marker beside it names it).
    expect((await lab.exec('cp-3', ['/bin/ls', '/var/lib/etcd'])).stdout.split('\n')).toContain(`kubedos.member-${added.id}`);
    startEtcd('cp-3', 2);
    let health = '';
    for (let i = 0; i < 60; i++) {
      const r = await lab.try('cp-1', etcdctl(members)(['endpoint', 'health']));
      health = r.stdout + r.stderr;
      if (r.exitCode === 0 && (health.match(/is healthy/g) ?? []).length === 3) break;
      await new Promise((res) => setTimeout(res, 500));
    }
    expect((health.match(/is healthy/g) ?? []).length, `${health}\n${(etcdProcs.get('cp-3') as unknown as { output: () => string }).output().slice(-1500)}`).toBe(3);
    const now = await listMembers(a);
    expect(now.map((m) => m.name)).toEqual(members);
    expect(now.find((m) => m.name === 'cp-3')!.id).toBe(added.id);
    // The key from before the fault, read from cp-3's own member alone (serializable: its own store).
    await readBackFrom({ sh, from: 'cp-3', etcdctl: etcdctl(['cp-3']) }, 'kubedos/drill/cp-3', 'written before the fault');
    // The other members were never restarted.
    for (const p0 of [cp1, cp2]) expect({ exitCode: p0.exitCode, signalCode: p0.signalCode }).toEqual({ exitCode: null, signalCode: null });

    // A converge of every node afterwards changes nothing (the role's file for cp-3 stays "existing").
    t0 = Date.now();
    const again = await converge();
    console.log(costSummary('converge of every node after the rejoin', again.stdout, (Date.now() - t0) / 1000));
    const r2 = recap(again.stdout);
    expect([...r2.keys()].sort()).toEqual(['localhost', ...p.nodes.map((n) => n.name)].sort());
    for (const [host, r] of r2) expect({ host, changed: r.changed, failed: r.failed }, again.stdout.slice(-4000)).toEqual({ host, changed: 0, failed: 0 });
    expect(await lab.readFile('cp-1', '/etc/default/etcd')).toContain('ETCD_INITIAL_CLUSTER_STATE="new"');
    expect(etcdProcs.get('cp-3')!.exitCode).toBeNull();
  }, 900_000);

  it('Prometheus on the master scrapes every node exporter over wg2', async () => {
    for (const n of p.nodes) lab.spawnDaemon(n.name, ['/bin/sh', '-c', '. /etc/default/prometheus-node-exporter && exec prometheus-node-exporter $ARGS'], `node-exporter-${n.name}`);
    const master = lab.hub.name;
    const promCfg = await lab.readFile(master, '/etc/prometheus/prometheus.yml');
    for (const n of p.nodes) expect(promCfg).toContain(`${wg(n.name, 'wg2')}:9100`);
    lab.spawnDaemon(master, ['/bin/sh', '-c', '. /etc/default/prometheus && exec prometheus --config.file=/etc/prometheus/prometheus.yml --storage.tsdb.path=/tmp/prometheus $ARGS'], 'prometheus');
    const url = `http://${wg(master, 'wg2')}:9090/api/v1/targets`;
    const probe = `import json,sys,urllib.request\nd=json.load(urllib.request.urlopen(sys.argv[1],timeout=5))\nprint(json.dumps(sorted((t['labels'].get('node',''),t['health']) for t in d['data']['activeTargets'] if t['labels']['job']=='node')))`;
    let targets: [string, string][] = [];
    for (let i = 0; i < 90; i++) {
      const r = await lab.try(master, ['/usr/bin/python3', '-c', probe, url]);
      if (r.exitCode === 0) {
        targets = JSON.parse(r.stdout);
        if (targets.length === p.nodes.length && targets.every(([, h]) => h === 'up')) break;
      }
      await new Promise((res) => setTimeout(res, 1000));
    }
    expect(targets).toEqual(p.nodes.map((n) => [n.name, 'up']).sort());
  }, 180_000);

  it("every node's kubedos-node-metrics (installed by the role) reaches Prometheus through its node exporter", async () => {
    const master = lab.hub.name;
    const t0 = Date.now();
    // What the converge stage leaves on each node after a converge: its fingerprint, taken by the same command.
    for (const n of p.nodes) {
      const [, flag, script] = fingerprintCommand();
      const fp = (await lab.exec(n.name, ['/bin/sh', flag!, script!])).stdout.trim();
      await lab.exec(n.name, ['/bin/mkdir', '-p', CONVERGE_RECORD_ON_NODE.replace(/\/[^/]+$/, '')]);
      await lab.writeFile(n.name, CONVERGE_RECORD_ON_NODE, renderConvergeRecordOnNode({ runId: 'lab-converge', node: n.name, fingerprint: fp }));
    }
    // The lab has no systemd: run once what kubedos-node-metrics.timer runs every 30 s.
    for (const n of p.nodes) {
      expect(await lab.readFile(n.name, '/etc/systemd/system/kubedos-node-metrics.timer')).toContain('OnUnitActiveSec=30s');
      await lab.exec(n.name, ['/usr/local/sbin/kubedos-node-metrics']);
      expect(await lab.readFile(n.name, '/var/lib/prometheus/node-exporter/kubedos-node.prom')).toMatch(/^kubedos_artifact_info\{/m);
    }
    const query = `import json,sys,urllib.parse,urllib.request\nu=sys.argv[1]+'?'+urllib.parse.urlencode({'query':sys.argv[2]})\nd=json.load(urllib.request.urlopen(u,timeout=5))\nprint(json.dumps(sorted([r['metric'] for r in d['data']['result']], key=lambda m: (m.get('node',''), m.get('plane','')))))`;
    const api = `http://${wg(master, 'wg2')}:9090/api/v1/query`;
    const ask = async (q: string): Promise<Record<string, string>[]> => {
      const r = await lab.try(master, ['/usr/bin/python3', '-c', query, api, q]);
      return r.exitCode === 0 ? JSON.parse(r.stdout) : [];
    };
    let info: Record<string, string>[] = [];
    for (let i = 0; i < 60 && info.length < p.nodes.length; i++) {
      info = await ask('kubedos_artifact_info');
      if (info.length < p.nodes.length) await new Promise((res) => setTimeout(res, 1000));
    }
    expect(info.map((m) => [m.node, m.version, m.slot, m.role])).toEqual(p.nodes.map((n) => [n.name, p.cluster.artifactVersion, 'single', n.role]).sort());
    for (const m of info) expect(m.build_digest).toMatch(/^[0-9a-f]{64}$/);
    const converge = await ask('kubedos_converge_info');
    expect(converge.map((m) => [m.node, m.run_id])).toEqual(p.nodes.map((n) => [n.name, 'lab-converge']).sort());
    // Every node has a handshake on wg1 with its hub (the hub: with every spoke), scraped as an age.
    const ages = await ask('kubedos_wireguard_handshake_age_seconds{plane="wg1"}');
    expect([...new Set(ages.map((m) => m.node))].sort()).toEqual(p.nodes.map((n) => n.name).sort());
    expect(ages.filter((m) => m.node === master)).toHaveLength(p.nodes.length - 1);
    const up = await ask('kubedos_wireguard_up == 1');
    expect(up).toHaveLength(p.nodes.length * 3);
    console.log(`node metrics: ${p.nodes.length} nodes written and scraped in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }, 180_000);

  it('keepalived on the lb node takes the API VIP on lan0 and HAProxy listens on it', async () => {
    lab.spawnDaemon('lb-1', ['/usr/sbin/haproxy', '-db', '-f', '/etc/haproxy/haproxy.cfg'], 'haproxy');
    lab.spawnDaemon('lb-1', ['/usr/sbin/keepalived', '--dont-fork', '--log-console', '--use-file', '/etc/keepalived/keepalived.conf', '--pid', '/run/keepalived.pid', '--vrrp_pid', '/run/keepalived-vrrp.pid'], 'keepalived');
    let addrs = '';
    for (let i = 0; i < 40; i++) {
      addrs = (await lab.exec('lb-1', ['/sbin/ip', '-4', 'addr', 'show', 'dev', 'lan0'])).stdout;
      if (addrs.includes(`${p.lan.apiVip}/`)) break;
      await new Promise((res) => setTimeout(res, 500));
    }
    expect(addrs).toContain(`inet ${p.lan.apiVip}/32`);
    const listening = (await lab.exec('lb-1', ['/usr/bin/ss', '-ltnH'])).stdout;
    expect(listening).toContain(`${p.lan.apiVip}:6443`);
  }, 60_000);
});
