// Stage "converge": the master converges the cluster from its own baked payload
// (/usr/lib/kubedos/ansible, inventory from the plan) over wg1; the workbench only prepares
// trust and triggers and watches, through the guest agent:
//  - a converge SSH key made on the master (never leaves it), authorized for the operator
//    account on every node; the nodes' host keys (read through the agent at first boot) pinned
//    in the master's known_hosts for their wg1 addresses — strict host key checking stays on;
//  - etcd members get server/peer certificates from the cluster CA (keys written 0600);
//  - Salt's discovery gate when the spec enables Salt and the master has it;
//  - `ansible-playbook site.yml` for the roles whose packages the darksite carries (baseline,
//    backplanes, etcd, lb, observability), its log streamed live, its PLAY RECAP parsed: a
//    failed task stops the stage with the node, the task and the error.
// Remediates drift: a rerun runs the playbook again and must report changed=0.
// convergeNodes: the same for a few nodes outside a deploy run (`kubedos upgrade`, once a node's
// gate passed on N+1: its new slot keeps only what the node learned).
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { hubOf } from '../../common/plan/index';
import type { Plan } from '../../common/plan/index';
import type { StageDefinition, StageContext } from '../pipeline/runner';
import { StageError } from '../pipeline/runner';
import { issueEtcdCert } from '../trust/index';
import type { ClusterSpec } from '../../common/spec/index';
import type { NodeFacts } from '../node-facts';
import type { DeployContext, DeployOutputs } from './context';
import { BackplanesOutput, ConvergeOutput, deployStage, FirstbootOutput } from './context';
import type { GuestCall, PlanNode } from './guest';
import { ansibleLogLine, convergeTimings, timingsLine } from './converge-timings';
import { eachNode, guestReadMaybe, guestRun, guestWrite, tail } from './guest';
import { sleep } from '../pipeline/sleep';
import { lastSuccesses, readJournal } from '../pipeline/journal';
import type { PipelineEvent } from '../../common/pipeline/events';
import type { SubstrateDriver } from '../substrate/driver';
import { nodeDeployJournal, WORKSPACE_LAYOUT } from '../workspace';
import { clusterTrust } from './trust';
import { saltDiscoveryGateCommand } from '../converge/salt-gate';
import type { NodeProbe } from './converge-state';
import { convergeInputs, fingerprintCommand, KNOWN_HOSTS, nodesToConverge, readConvergeState, writeConvergeState } from './converge-state';
import { plural } from '../../common/text/plural';
import { firstFew } from '../../common/text/first-few';
import { canonicalJson } from '../../common/canonical';
import { CONVERGE_RECORD_ON_HUB, CONVERGE_RECORD_ON_NODE, ConvergeRecordOnHub, renderConvergeRecordOnNode, HEALTH_WATCH_CONFIG_PATH, healthWatchConfig, renderHealthWatchConfig } from '../../common/drills/watcher';
import type { HealthWatchConfig } from '../../common/drills/watcher';

export const ANSIBLE_DIR = '/usr/lib/kubedos/ansible';
export const INVENTORY = '/etc/kubedos/ansible/inventory.yml';
export const DEPLOY_VARS = '/etc/kubedos/ansible/deploy-vars.yml';
export { KNOWN_HOSTS };
export const CONVERGE_KEY = '/root/.ssh/kubedos_converge';
/** The hub's etcd client certificate (its health watcher reads etcd with it; etcd requires client certificates). */
export const ETCD_CLIENT_PKI = '/etc/kubedos/pki/etcd-client';
/** Where etcd members keep their certificates from the cluster CA (converge writes them). */
export const ETCD_PKI = '/etc/kubedos/pki/etcd';

/** Pure: a member's etcd client URL from its wg3 address (a `/prefix` dropped). */
export function etcdClientUrl(wg3: string): string {
  return `https://${wg3.replace(/\/\d+$/, '')}:2379`;
}

/** Pure: a member's etcd peer URL from its wg3 address (the etcd role's ETCD_INITIAL_ADVERTISE_PEER_URLS). */
export function etcdPeerUrl(wg3: string): string {
  return `https://${wg3.replace(/\/\d+$/, '')}:2380`;
}

/**
 * Pure: the engine's one etcdctl argv, run on an etcd member with its material under ETCD_PKI (the
 * cluster CA; the member's peer certificate as client certificate: etcd requires one) against
 * `endpoints` (wg3 addresses), then the timeouts given, then the command
 * (e.g. `['endpoint', 'health']`).
 */
export function etcdctlArgv(endpoints: readonly string[], command: readonly string[], timeouts: { dial?: string; command?: string } = {}): string[] {
  return [
    'etcdctl',
    `--endpoints=${endpoints.map(etcdClientUrl).join(',')}`,
    `--cacert=${ETCD_PKI}/ca.crt`,
    `--cert=${ETCD_PKI}/peer.crt`,
    `--key=${ETCD_PKI}/peer.key`,
    ...(timeouts.dial ? [`--dial-timeout=${timeouts.dial}`] : []),
    ...(timeouts.command ? [`--command-timeout=${timeouts.command}`] : []),
    ...command,
  ];
}

/** Tags whose packages Debian carries (so the darksite has them); the rest is the workload stage. */
export const CONVERGE_TAGS = ['baseline', 'backplanes', 'etcd', 'lb', 'observability'] as const;

export interface RecapRow {
  ok: number;
  changed: number;
  unreachable: number;
  failed: number;
  skipped: number;
  rescued: number;
  ignored: number;
}

/** Pure: the PLAY RECAP of ansible-playbook output (log-file prefixes tolerated). */
export function parsePlayRecap(text: string): Record<string, RecapRow> {
  const out: Record<string, RecapRow> = {};
  const i = text.lastIndexOf('PLAY RECAP');
  if (i < 0) return out;
  for (const line of text.slice(i).split('\n').slice(1)) {
    const m = /(?:^|\|\s*)(\S+)\s+:\s+((?:\w+=\d+\s*)+)$/.exec(line.trim());
    if (!m) continue;
    const row: RecapRow = { ok: 0, changed: 0, unreachable: 0, failed: 0, skipped: 0, rescued: 0, ignored: 0 };
    for (const kv of m[2]!.trim().split(/\s+/)) {
      const [k, v] = kv.split('=');
      if (k && k in row) row[k as keyof RecapRow] = Number(v);
    }
    out[m[1]!] = row;
  }
  return out;
}

/** Pure: the first failed task per host ("TASK [...]" then "fatal: [host]: FAILED! => …"). */
export function failedTasks(text: string): { host: string; task: string; message: string; unreachable?: true }[] {
  const out: { host: string; task: string; message: string; unreachable?: true }[] = [];
  let task = '';
  for (const raw of text.split('\n')) {
    const line = raw.replace(/^.*? \| /, '');
    const t = /^TASK \[(.+?)\]/.exec(line);
    if (t) task = t[1]!;
    const f = /^fatal: \[([^\]]+)\]: (FAILED!|UNREACHABLE!) => (.*)$/.exec(line);
    if (f && !out.some((o) => o.host === f[1])) {
      let message = f[3]!;
      try {
        const j = JSON.parse(message) as { msg?: string; stderr?: string };
        message = [j.msg, j.stderr].filter(Boolean).join(': ') || message;
      } catch {
        /* not JSON */
      }
      out.push({ host: f[1]!, task, message: message.slice(0, 2000), ...(f[2] === 'UNREACHABLE!' ? { unreachable: true as const } : {}) });
    }
  }
  return out;
}

export function etcdMembers(plan: Plan): PlanNode[] {
  const inv = parseYaml(plan.ansibleInventory) as { all?: { children?: Record<string, { hosts?: Record<string, unknown> }> } };
  const names = Object.keys(inv.all?.children?.etcd_members?.hosts ?? {});
  return plan.nodes.filter((n) => names.includes(n.name));
}

/**
 * Pure: the hosts to converge once more when the only trouble was SSH reaching them (a starved node
 * that missed its banner exchange, a connection dropped under load): every failure is UNREACHABLE,
 * no task failed. Empty when anything really failed (that is reported, not retried).
 */
export function unreachableOnly(recap: Record<string, RecapRow>, failures: readonly { host: string; unreachable?: true }[]): string[] {
  if (Object.values(recap).some((x) => x.failed > 0) || failures.some((f) => !f.unreachable)) return [];
  return [...new Set([...failures.map((f) => f.host), ...Object.entries(recap).flatMap(([h, x]) => (x.unreachable > 0 ? [h] : []))])].sort();
}

/** Pure: the extra vars the deploy gives the master's ansible-playbook. */
export function deployVars(): string {
  return [
    '# Written by the Kube\'d\'OS deploy (converge stage): how the master reaches the nodes over wg1.',
    `ansible_ssh_private_key_file: ${CONVERGE_KEY}`,
    `ansible_ssh_common_args: "-o UserKnownHostsFile=${KNOWN_HOSTS} -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null"`,
    '',
  ].join('\n');
}

/** `only`: the nodes whose authorized_keys are checked (default every node); the hub's known_hosts always lists every node. */
async function prepareSsh(spec: ClusterSpec, facts: Readonly<Record<string, NodeFacts>>, s: StageContext, plan: Plan, hubG: GuestCall, only?: readonly string[]): Promise<number> {
  let changes = 0;
  const driver = hubG.driver;
  let pub = (await guestReadMaybe(hubG, `${CONVERGE_KEY}.pub`))?.toString('utf8').trim();
  if (!pub) {
    await guestRun(hubG, ['install', '-d', '-m', '0700', '/root/.ssh']);
    await guestRun(hubG, ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `kubedos-converge@${hubG.node.name}`, '-f', CONVERGE_KEY], { what: 'make the converge key' });
    pub = (await guestRun(hubG, ['cat', `${CONVERGE_KEY}.pub`])).stdout.trim();
    s.log(`${hubG.node.name}: converge key made (${pub.split(' ')[1]?.slice(0, 16)}…)`, { node: hubG.node.name });
    changes++;
  }
  const keyLine = pub.split(' ').slice(0, 2).join(' ');
  const user = spec.spec.security.ssh.allowUsers[0] ?? 'ops';
  await eachNode(s, only ? plan.nodes.filter((n) => only.includes(n.name)) : plan.nodes, async (n) => {
    const g: GuestCall = { driver, node: n, signal: s.signal };
    const path = `/home/${user}/.ssh/authorized_keys`;
    const have = (await guestReadMaybe(g, path))?.toString('utf8') ?? '';
    if (have.split('\n').some((l) => l.split(' ').slice(0, 2).join(' ') === keyLine)) return;
    await guestWrite(g, path, `${have.trimEnd()}${have.trim() ? '\n' : ''}${pub}\n`, 0o600);
    await guestRun(g, ['chown', `${user}:${user}`, path]);
    s.log(`${n.name}: converge key of ${hubG.node.name} authorized for ${user}`, { node: n.name });
    changes++;
  });
  const known = plan.nodes.map((n) => {
    const k = facts[n.name]?.sshHostKey;
    if (!k) throw new StageError(`internal: no SSH host key of ${n.name} (read by the firstboot stage)`, { node: n.name, hint: 'rerun the deploy' });
    return `${n.planes.wg1.address.replace(/\/32$/, '')} ${k}`;
  });
  const files: [string, string, number][] = [
    [KNOWN_HOSTS, `${known.join('\n')}\n`, 0o644],
    [DEPLOY_VARS, deployVars(), 0o644],
    [INVENTORY, plan.ansibleInventory, 0o644],
  ];
  for (const [path, content, mode] of files) {
    const have = (await guestReadMaybe(hubG, path))?.toString('utf8');
    if (have === content) continue;
    await guestWrite(hubG, path, content, mode);
    changes++;
  }
  return changes;
}

/** `only`: the members whose certificates are checked (default every member). */
async function prepareEtcd(ctx: Pick<DeployContext, 'workspace' | 'env'>, s: StageContext, plan: Plan, driver: GuestCall['driver'], only?: readonly string[]): Promise<number> {
  const members = etcdMembers(plan).filter((n) => !only || only.includes(n.name));
  if (!members.length) return 0;
  const trust = await clusterTrust(ctx.workspace, plan, ctx.env);
  const chain = trust.intermediate.certPem + trust.root.certPem;
  let changes = 0;
  await eachNode(s, members, async (n) => {
    const g: GuestCall = { driver, node: n, signal: s.signal };
    const have = (await guestReadMaybe(g, `${ETCD_PKI}/ca.crt`))?.toString('utf8');
    const hasAll = have === chain && (await guestReadMaybe(g, `${ETCD_PKI}/server.crt`)) && (await guestReadMaybe(g, `${ETCD_PKI}/peer.key`));
    if (hasAll) return;
    const address = n.planes.wg3.address.replace(/\/32$/, '');
    const now = new Date();
    const server = await issueEtcdCert(trust.intermediate, { cluster: plan.cluster.name, node: n.name, kind: 'server', address, now });
    const peer = await issueEtcdCert(trust.intermediate, { cluster: plan.cluster.name, node: n.name, kind: 'peer', address, now });
    await guestWrite(g, `${ETCD_PKI}/server.key`, server.keyPem, 0o600);
    await guestWrite(g, `${ETCD_PKI}/peer.key`, peer.keyPem, 0o600);
    await guestWrite(g, `${ETCD_PKI}/server.crt`, server.certPem, 0o644);
    await guestWrite(g, `${ETCD_PKI}/peer.crt`, peer.certPem, 0o644);
    await guestWrite(g, `${ETCD_PKI}/ca.crt`, chain, 0o644);
    s.log(`${n.name}: etcd server/peer certificates for ${address} from the cluster CA`, { node: n.name });
    changes++;
  });
  // The hub's health watcher (kubedos-health-watch) reads etcd as a client.
  const hub = hubOf(plan);
  const hubG: GuestCall = { driver, node: hub, signal: s.signal };
  if ((await guestReadMaybe(hubG, `${ETCD_CLIENT_PKI}/ca.crt`))?.toString('utf8') !== chain || !(await guestReadMaybe(hubG, `${ETCD_CLIENT_PKI}/client.key`))) {
    const client = await issueEtcdCert(trust.intermediate, { cluster: plan.cluster.name, node: hub.name, kind: 'client', address: hub.planes.wg3.address.replace(/\/32$/, ''), now: new Date() });
    await guestWrite(hubG, `${ETCD_CLIENT_PKI}/client.key`, client.keyPem, 0o600);
    await guestWrite(hubG, `${ETCD_CLIENT_PKI}/client.crt`, client.certPem, 0o644);
    await guestWrite(hubG, `${ETCD_CLIENT_PKI}/ca.crt`, chain, 0o644);
    s.log(`${hub.name}: etcd client certificate for the health watcher from the cluster CA`, { node: hub.name });
    changes++;
  }
  return changes;
}

/**
 * The hub's health-watcher configuration as the image carries it (/etc/kubedos/health-watch.json,
 * baked into the master's payload by the build, kept current by converge): the pure config from
 * common/drills/watcher.ts with the on-node paths converge uses — the converge key and known hosts
 * over wg1, the fingerprint script it compares, the etcd client certificate it issues to the hub.
 */
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

/** The watcher's configuration on the hub as the spec says now (a selfHealing change needs no new image); restarts it when it changed. */
async function syncHealthWatch(spec: ClusterSpec, plan: Plan, hubG: GuestCall, s: StageContext): Promise<number> {
  const content = hubHealthWatchConfigText(spec, plan);
  if ((await guestReadMaybe(hubG, HEALTH_WATCH_CONFIG_PATH))?.toString('utf8') === content) return 0;
  await guestWrite(hubG, HEALTH_WATCH_CONFIG_PATH, content, 0o644);
  await guestRun(hubG, ['systemctl', 'try-restart', 'kubedos-health-watch.service'], { okCodes: [0, 1, 5], what: 'restart the health watcher' });
  s.log(`${hubG.node.name}: health watcher configuration updated from the spec (${HEALTH_WATCH_CONFIG_PATH})`, { node: hubG.node.name });
  return 1;
}

/** Leaves the fingerprints of the last converge on the hub, where its health watcher compares them. */
async function recordOnHub(hubG: GuestCall, runId: string, nodes: Record<string, string>): Promise<void> {
  const content = `${canonicalJson(ConvergeRecordOnHub.parse({ runId, nodes }), 2)}\n`;
  if ((await guestReadMaybe(hubG, CONVERGE_RECORD_ON_HUB))?.toString('utf8') === content) return;
  await guestWrite(hubG, CONVERGE_RECORD_ON_HUB, content, 0o600);
}

/**
 * Leaves each node its own fingerprint of the last converge, where kubedos-node-metrics reads it for
 * the node exporter (kubedos_converge_info). Best effort: a node that cannot be written is logged,
 * the converge itself is not failed for a metric.
 */
export async function recordOnNodes(s: Pick<StageContext, 'signal' | 'log'>, driver: GuestCall['driver'], plan: Pick<Plan, 'nodes'>, runId: string, nodes: Record<string, string>): Promise<void> {
  await Promise.all(
    plan.nodes.map(async (node) => {
      const fingerprint = nodes[node.name];
      if (fingerprint === undefined) return;
      const g: GuestCall = { driver, node, signal: s.signal };
      const content = renderConvergeRecordOnNode({ runId, node: node.name, fingerprint });
      try {
        if ((await guestReadMaybe(g, CONVERGE_RECORD_ON_NODE))?.toString('utf8') === content) return;
        await guestWrite(g, CONVERGE_RECORD_ON_NODE, content, 0o644);
      } catch (err) {
        s.log(`${node.name}: converge record for the node metrics not written (${(err as Error).message.split('\n')[0]})`, { node: node.name, stream: 'warn' });
      }
    }),
  );
}

/**
 * After a later stage changed what the converge fingerprint covers on `nodes` on purpose (the
 * workload's container runtime: /etc/containerd, the containerd unit), their recorded fingerprints
 * are taken again — in the workspace, on the hub (the health watcher's drift check) and on the
 * nodes — so the next deploy's converge and the watcher do not read that change as drift. Without
 * a record nothing is written (the next converge runs every node anyway); a node whose probe fails
 * is dropped from the record, so it converges next time.
 */
export async function refreshConvergeRecord(workspace: string, s: Pick<StageContext, 'signal' | 'log'>, driver: GuestCall['driver'], plan: Plan, nodes: readonly string[]): Promise<void> {
  const { state } = readConvergeState(workspace);
  if (!state) return;
  const targets = plan.nodes.filter((n) => nodes.includes(n.name) && state.nodes[n.name] !== undefined);
  if (!targets.length) return;
  const fps = { ...state.nodes };
  for (const p of await Promise.all(targets.map((n) => probeNode({ driver, node: n, signal: s.signal })))) {
    if ('fingerprint' in p) fps[p.node] = p.fingerprint;
    else {
      delete fps[p.node];
      s.log(`${p.node}: fingerprint after the workload not taken (${p.error}); it converges again next run`, { node: p.node, stream: 'warn' });
    }
  }
  writeConvergeState(workspace, { ...state, nodes: fps });
  await recordOnHub({ driver, node: hubOf(plan), signal: s.signal }, state.runId, fps);
  await recordOnNodes(s, driver, plan, state.runId, fps);
}

/** `ansible-playbook -i INVENTORY` run from the baked content directory with its config (no shell). */
export function playbookCommand(extraEnv: readonly string[] = []): string[] {
  return ['env', '-C', ANSIBLE_DIR, `ANSIBLE_CONFIG=${ANSIBLE_DIR}/ansible.cfg`, 'ANSIBLE_NOCOLOR=1', ...extraEnv, 'ansible-playbook', '-i', INVENTORY];
}

/** Runs ansible-playbook on the master through the agent, streaming its log file meanwhile. */
export async function runPlaybook(s: StageContext, hubG: GuestCall, o: { tags: readonly string[]; logName: string; extraArgs?: readonly string[]; timeoutS?: number }): Promise<{ exitCode: number; stdout: string; stderr: string; log?: string }> {
  const logPath = `/var/log/kubedos/${o.logName}.log`;
  await guestRun(hubG, ['install', '-d', '-m', '0750', '/var/log/kubedos']);
  await guestRun(hubG, ['rm', '-f', logPath]);
  const argv = [
    ...playbookCommand([`ANSIBLE_LOG_PATH=${logPath}`, 'ANSIBLE_TASK_TIMEOUT=900']),
    '-e',
    `@${DEPLOY_VARS}`,
    ...(o.tags.length ? ['--tags', o.tags.join(',')] : []),
    ...(o.extraArgs ?? []),
    'site.yml',
  ];
  s.log(`${hubG.node.name}$ ${argv.join(' ')}`, { node: hubG.node.name });
  let done = false;
  let shown = 0;
  /** The log's complete lines not streamed yet, streamed (ansible's stamp prefix taken off). */
  const show = (text: string): void => {
    const complete = text.split('\n').slice(0, -1);
    for (const l of complete.slice(shown)) {
      const line = ansibleLogLine(l)?.text ?? l;
      if (line.trim()) s.log(line, { node: hubG.node.name, stream: /^fatal:|FAILED!|UNREACHABLE!/.test(line) ? 'stderr' : 'stdout' });
    }
    shown = Math.max(shown, complete.length);
  };
  // The follower's wait ends with the run (or the stage's abort), not 4 s later.
  const ended = new AbortController();
  const wait = hubG.signal ? AbortSignal.any([hubG.signal, ended.signal]) : ended.signal;
  const follow = (async () => {
    while (!done) {
      await sleep(4000, wait).catch(() => undefined);
      if (done) break;
      const buf = await guestReadMaybe(hubG, logPath);
      if (buf) show(buf.toString('utf8'));
    }
  })();
  let r: { exitCode: number; stdout: string; stderr: string };
  try {
    r = await guestRun(hubG, argv, { okCodes: [0, 1, 2, 3, 4, 5, 8, 99, 250], timeoutS: o.timeoutS ?? 3600, what: 'ansible-playbook' });
  } finally {
    done = true;
    ended.abort();
    await follow;
  }
  // Once more after the end: the lines written since the last look (the PLAY RECAP), and the whole
  // log for the timings. A log that cannot be read now costs only those.
  const log = (await guestReadMaybe(hubG, logPath).catch(() => undefined))?.toString('utf8');
  if (log === undefined) return r;
  show(log);
  // Where the run's time went (converge-timings.ts), one line in the run log.
  const t = convergeTimings(log);
  if (t) s.log(`${timingsLine(t)} (per task: ${logPath} on ${hubG.node.name})`, { node: hubG.node.name });
  return { ...r, log };
}

/** One command through the guest agent; any failure is reported, never taken as "unchanged". */
async function probeNode(g: GuestCall): Promise<NodeProbe> {
  try {
    const r = await guestRun(g, fingerprintCommand(), { timeoutS: 120, what: 'converge fingerprint' });
    const fp = r.stdout.trim();
    return /^[0-9a-f]{64}$/.test(fp) ? { node: g.node.name, fingerprint: fp } : { node: g.node.name, error: `unexpected output ${JSON.stringify(fp.slice(0, 80))}` };
  } catch (err) {
    return { node: g.node.name, error: (err as Error).message.split('\n')[0]!.slice(0, 200) };
  }
}

/** Pure: the hash of what converge depends on (plan, baked payload, tags, Salt), from the outputs. */
function inputsOf(spec: ClusterSpec, planJsonText: string, build: DeployOutputs['build']): string {
  return convergeInputs({
    planJson: planJsonText,
    payload: build.outputs.filter((o) => o.kind === 'payload').map((o) => ({ path: o.path, sha256: o.sha256 })),
    tags: CONVERGE_TAGS,
    salt: spec.spec.orchestration.salt.enabled,
  });
}

/**
 * ansible-playbook with the converge tags for `targets` (`limit`: ['--limit', …] or none), once more
 * for the hosts only SSH did not reach; each target's state set from the PLAY RECAP. Throws a
 * StageError naming the first failed node, its task and the log on the hub.
 */
async function playConverge(s: StageContext, hubG: GuestCall, targets: readonly PlanNode[], limit: readonly string[], logName: string, hint: (log: string) => string): Promise<Record<string, RecapRow>> {
  // The run whose result is judged below: the first, or the retry of the hosts SSH did not reach.
  let ran = { limit, logName };
  let r = await runPlaybook(s, hubG, { tags: CONVERGE_TAGS, logName: ran.logName, extraArgs: limit });
  let recap = parsePlayRecap(r.stdout);
  let failures = failedTasks(r.stdout);
  const again = unreachableOnly(recap, failures);
  if (again.length) {
    // Only SSH trouble: those hosts once more (Ansible is idempotent; the others are done).
    s.log(`${firstFew(again)}: SSH did not reach ${again.length === 1 ? 'it' : 'them'} during converge (${failures[0]?.message.split('\n')[0] ?? 'unreachable'}); converging ${again.length === 1 ? 'it' : 'them'} once more`, { stream: 'warn' });
    ran = { limit: ['--limit', again.join(',')], logName: `${logName}-again` };
    const retry = await runPlaybook(s, hubG, { tags: CONVERGE_TAGS, logName: ran.logName, extraArgs: ran.limit });
    const recap2 = parsePlayRecap(retry.stdout);
    recap = { ...recap, ...recap2 };
    for (const h of again) if (recap[h] && !recap2[h]) delete recap[h];
    failures = failedTasks(retry.stdout);
    r = retry;
  }
  for (const n of targets) {
    const row = recap[n.name];
    const f = failures.find((x) => x.host === n.name);
    if (f || !row || row.failed || row.unreachable) s.node(n.name, 'failed', f ? `${f.task}: ${f.message.split('\n')[0]}` : row ? 'failed' : 'not in the PLAY RECAP');
    else s.node(n.name, 'ok', `ok=${row.ok} changed=${row.changed}`);
  }
  if (r.exitCode !== 0 || failures.length || Object.values(recap).some((x) => x.failed || x.unreachable) || targets.some((n) => !recap[n.name])) {
    const f = failures[0];
    throw new StageError(f ? `${f.host}: converge task "${f.task}" failed: ${f.message.split('\n')[0]}` : `ansible-playbook exited ${r.exitCode} on ${hubG.node.name}`, {
      ...(f ? { node: f.host } : { node: hubG.node.name }),
      command: ['ansible-playbook', '--tags', CONVERGE_TAGS.join(','), ...ran.limit, 'site.yml'],
      exitCode: r.exitCode,
      stderrTail: tail(f ? f.message : r.stderr || r.stdout, 25),
      hint: hint(`/var/log/kubedos/${ran.logName}.log`),
    });
  }
  return recap;
}

export function convergeStage(ctx: DeployContext): StageDefinition {
  return deployStage({
    name: 'converge',
    description: 'The master runs the Salt discovery gate (when Salt is on), then ansible-playbook from its baked payload over wg1',
    needs: ['enroll'],
    reads: ['validate', 'plan', 'build', 'firstboot', 'enroll'],
    rerun: 'remediates-drift',
    // The converge inputs (plan, baked payload, tags), the host keys converge pins, the hub pin.
    // What the converge SSH key and authorized_keys look like on the nodes is not fingerprinted:
    // a hand edit there is repaired by --force.
    inputs: ({ validate, plan, build, firstboot, enroll }) => ({
      converge: inputsOf(validate.spec, plan.json, build),
      ansible: validate.spec.spec.orchestration.ansible.enabled,
      hostKeys: Object.fromEntries(Object.entries(firstboot.nodes).map(([n, f]) => [n, f.sshHostKey ?? null])),
      hubPin: enroll.hubPin,
    }),
    output: ConvergeOutput,
    // One fingerprint per node, against the record of the last converge (converge-state.ts).
    async probe(p, { validate, plan, build }) {
      if (!validate.spec.spec.orchestration.ansible.enabled) return { moved: false, note: 'Ansible is disabled in the spec' };
      const { driver } = ctx.substrate(validate.spec, plan.plan);
      const record = readConvergeState(ctx.workspace);
      const inputs = inputsOf(validate.spec, plan.json, build);
      const probes = !record.state || record.state.inputs !== inputs ? [] : await Promise.all(plan.plan.nodes.map((n) => probeNode({ driver, node: n, signal: p.signal })));
      const decision = nodesToConverge({ nodes: plan.plan.nodes.map((n) => n.name), inputs, ...(record.state ? { state: record.state } : {}), ...(record.reason ? { stateReason: record.reason } : {}), force: false, probes });
      if (decision.run.length) return { moved: true, reason: decision.run.slice(0, 3).map((r) => `${r.node}: ${r.why}`).join('; ') };
      return { moved: false, note: `every node's fingerprint and the converge inputs match the last converge (run ${record.state!.runId.slice(0, 8)}): Ansible not run (--force runs it)` };
    },
    async run(s, { validate, plan: planned, build, firstboot }) {
      const plan = planned.plan;
      const spec = validate.spec;
      const { driver } = ctx.substrate(spec, plan);
      const hub = hubOf(plan);
      const hubG: GuestCall = { driver, node: hub, signal: s.signal };
      if (!spec.spec.orchestration.ansible.enabled) {
        s.log('orchestration.ansible.enabled is false: nothing to converge');
        s.changed(0);
        return { summary: { stage: 'converge', changes: 0, notes: ['ansible disabled in the spec'] } };
      }
      let changes = await prepareSsh(spec, firstboot.nodes, s, plan, hubG);
      changes += await prepareEtcd(ctx, s, plan, driver);
      changes += await syncHealthWatch(spec, plan, hubG, s);
      const notes: string[] = [];
      if (spec.spec.orchestration.salt.enabled) {
        const salt = await guestRun(hubG, ['salt-run', '--version'], { okCodes: [0, 127, 1, 2], what: 'salt-run --version' }).catch(() => undefined);
        if (salt && salt.exitCode === 0) {
          await guestRun(hubG, saltDiscoveryGateCommand(), { timeoutS: 900, what: 'Salt discovery gate', hint: 'see /var/log/salt/master on the master' });
          notes.push('Salt discovery gate passed');
        } else {
          // Never a green converge for a Salt the spec asked for and nothing runs.
          throw new StageError(`${hub.name}: the spec enables Salt but salt-run is not installed (Salt is NOT running; discovery gate not run)`, {
            node: hub.name,
            hint: 'declare Salt under spec.sources (docs/sources/salt.yaml), rebuild the artifact on a foundry that reaches it, or set orchestration.salt.enabled: false; then rerun the deploy',
          });
        }
      }
      // Which nodes need Ansible: the inputs' hash and one fingerprint probe per node against the
      // record of the last converge (converge-state.ts).
      const inputs = inputsOf(spec, planned.json, build);
      const record = readConvergeState(ctx.workspace);
      const probeAll = (): Promise<NodeProbe[]> => Promise.all(plan.nodes.map((n) => probeNode({ driver, node: n, signal: s.signal })));
      const probes = ctx.force || !record.state || record.state.inputs !== inputs ? [] : await probeAll();
      const decision = nodesToConverge({ nodes: plan.nodes.map((n) => n.name), inputs, ...(record.state ? { state: record.state } : {}), ...(record.reason ? { stateReason: record.reason } : {}), force: Boolean(ctx.force), probes });
      for (const n of decision.skip) s.node(n, 'ok', 'unchanged: fingerprint matches the last converge');
      if (!decision.run.length) {
        s.log(`converged: every node's fingerprint and the converge inputs match the last converge (run ${record.state!.runId.slice(0, 8)}); Ansible not run (--force runs it)`);
        notes.push(`Ansible not run: ${plural(decision.skip.length, 'node')} unchanged since run ${record.state!.runId.slice(0, 8)}`);
        await recordOnHub(hubG, record.state!.runId, record.state!.nodes);
        await recordOnNodes(s, driver, plan, record.state!.runId, record.state!.nodes);
        s.changed(changes);
        return { summary: { stage: 'converge', changes, notes } };
      }
      for (const r of decision.run) s.log(`${r.node}: converging: ${r.why}`, { node: r.node });
      const targets = plan.nodes.filter((n) => decision.run.some((r) => r.node === n.name));
      for (const n of targets) s.node(n.name, 'running', 'converging');
      const limit = decision.skip.length ? ['--limit', targets.map((n) => n.name).join(',')] : [];
      const recap = await playConverge(s, hubG, targets, limit, `converge-${s.runId.slice(0, 8)}`, (log) => `fix the cause, then rerun the deploy: it resumes at converge (full log on ${hub.name}: ${log})`);
      const changed = Object.values(recap).reduce((a, x) => a + x.changed, 0);
      changes += changed;
      for (const [host, row] of Object.entries(recap).sort()) notes.push(`${host}: ok=${row.ok} changed=${row.changed} failed=${row.failed} unreachable=${row.unreachable}`);
      s.log(`converged: ${Object.entries(recap).sort().map(([h, x]) => `${h} changed=${x.changed}`).join(', ')}${decision.skip.length ? `; unchanged and not run: ${decision.skip.join(', ')}` : ''}`);
      // Record what converged looks like now, for the next run's probe (a node whose probe fails
      // is left out: it converges next time).
      const after = await probeAll();
      const fps = Object.fromEntries(after.flatMap((p) => ('fingerprint' in p ? [[p.node, p.fingerprint] as const] : [])));
      for (const p of after) if ('error' in p) s.log(`${p.node}: fingerprint after converge not taken (${p.error}); it converges again next run`, { node: p.node, stream: 'warn' });
      writeConvergeState(ctx.workspace, { inputs, runId: s.runId, nodes: fps });
      await recordOnHub(hubG, s.runId, fps);
      await recordOnNodes(s, driver, plan, s.runId, fps);
      s.changed(changes);
      return { summary: { stage: 'converge', changes, notes } };
    },
  });
}

export interface ConvergeNodesRequest {
  spec: ClusterSpec;
  plan: Plan;
  driver: SubstrateDriver;
  /** The cluster's workspace (its journal's first-boot record, the trust, the converge record). */
  workspace: string;
  env: NodeJS.ProcessEnv;
  nodes: readonly string[];
  signal?: AbortSignal;
  log?: (line: string) => void;
}

/**
 * A journal's last first-boot success, read once: none (no success with an output), one whose
 * output does not parse (its run and the first schema issue), or its node facts and when it was recorded.
 */
export type FirstbootRecord = { kind: 'none' } | { kind: 'invalid'; runId: string; issue: string } | { kind: 'ok'; runId: string; data: DeployOutputs['firstboot']; at: string };

export function readFirstboot(journal: string): FirstbootRecord {
  return firstbootIn(readJournal(journal));
}

/** readFirstboot of a journal's events already read. */
function firstbootIn(events: readonly PipelineEvent[]): FirstbootRecord {
  const record = lastSuccesses(events).get('firstboot');
  if (!record?.output) return { kind: 'none' };
  const facts = FirstbootOutput.safeParse(record.output);
  if (!facts.success) return { kind: 'invalid', runId: record.runId, issue: facts.error.issues[0]?.message ?? 'invalid' };
  const at = events.find((e) => e.type === 'stage' && e.runId === record.runId && e.stage === 'firstboot' && e.state === 'success')?.time ?? '';
  return { kind: 'ok', runId: record.runId, data: facts.data, at };
}

/**
 * The cluster's first-boot facts `facts` with those of each of `nodes` whose plan slot a scoped
 * deploy run created since (a replace-based upgrade's new VM: a new host key) taken from that run's
 * journal (nodeDeployJournal) when it is newer. Changes and returns `facts`.
 */
export function withReplacedNodes<F extends { data: DeployOutputs['firstboot']; at: string }>(workspace: string, facts: F, nodes: readonly string[]): F {
  for (const [node, r] of Object.entries(replacedSince(workspace, facts.at, nodes))) facts.data.nodes[node] = r.facts;
  return facts;
}

/** A node whose plan slot a scoped deploy run created again: that run's first-boot facts, and its plane keys when a planes stage recorded them since. */
export interface ReplacedNode {
  facts: NodeFacts;
  wgPublicKeys?: { wg1: string; wg2: string; wg3: string };
  /** The journal they were read from (nodeDeployJournal). */
  journal: string;
}

/**
 * Each of `nodes` whose plan slot a scoped deploy run created after `since` (an ISO time: the
 * cluster journal's first-boot record; a replace-based upgrade's new VM, or its --rollback's, has
 * a new host key and new plane keys): its facts from that run's journal (nodeDeployJournal). The
 * plane keys are the last planes record at or after that first boot (made at first boot, read by
 * the planes stage); none when no planes stage succeeded since.
 */
export function replacedSince(workspace: string, since: string, nodes: readonly string[]): Record<string, ReplacedNode> {
  const out: Record<string, ReplacedNode> = {};
  for (const node of nodes) {
    const journal = join(workspace, nodeDeployJournal(node));
    const events = readJournal(journal);
    const own = firstbootIn(events);
    const facts = own.kind === 'ok' ? own.data.nodes[node] : undefined;
    if (own.kind !== 'ok' || !facts || !(own.at > since)) continue;
    const planes = events
      .filter((e) => e.type === 'stage' && e.stage === 'backplanes' && e.state === 'success' && e.time >= own.at)
      .at(-1);
    const keys = planes?.type === 'stage' ? BackplanesOutput.safeParse(planes.output).data?.wgPublicKeys[node] : undefined;
    out[node] = { facts, ...(keys ? { wgPublicKeys: keys } : {}), journal };
  }
  return out;
}

/**
 * The nodes' first-boot facts (their SSH host keys) for a converge outside a deploy run: the
 * cluster journal's last first-boot record, with `nodes` replaced since taken from their own runs
 * (withReplacedNodes). Throws when the cluster has none.
 */
export function firstbootFacts(workspace: string, nodes: readonly string[]): { data: DeployOutputs['firstboot']; at: string } {
  const journal = join(workspace, WORKSPACE_LAYOUT.journal);
  const facts = readFirstboot(journal);
  if (facts.kind !== 'ok') throw new Error(`no usable first-boot record in ${journal} (the nodes' SSH host keys the hub pins for converge): rerun the deploy (kubedos deploy SPEC), then the upgrade`);
  return withReplacedNodes(workspace, facts, nodes);
}

/**
 * Converges `nodes` outside a deploy run, as the converge stage does (the hub's baked payload, the
 * same tags, trust preparation and PLAY RECAP judgement, `--limit` to these nodes): what
 * `kubedos upgrade` runs for a node whose gate passed on N+1 (its new slot keeps only what the node
 * learned; what the roles render is the slot's own). Not a deploy run: no journal entry and no
 * seal, so the sealed bundle the upgrade reads as N stays N's, and no deploy lock (the upgrade's
 * loop is the only writer of these nodes meanwhile). The Salt discovery gate is not run (minion
 * discovery is the deploy's). The playbook is the hub's: until the hub itself is upgraded (the last
 * wave) that is N's roles on an N+1 node. Converging the hub authorizes its converge key on every
 * node: the key lives in /root of the hub's slot, so N+1's slot makes a new one. The converged
 * nodes' fingerprints are taken again (refreshConvergeRecord) so the hub's watcher and the next
 * deploy do not read the converge as drift. Throws with the node, the task and the log on the hub.
 */
export async function convergeNodes(o: ConvergeNodesRequest): Promise<{ changes: number }> {
  const log = (line: string): void => o.log?.(line);
  if (!o.spec.spec.orchestration.ansible.enabled) {
    log('orchestration.ansible.enabled is false: nothing to converge');
    return { changes: 0 };
  }
  const targets = o.plan.nodes.filter((n) => o.nodes.includes(n.name));
  const unknown = o.nodes.filter((n) => !targets.some((t) => t.name === n));
  if (unknown.length) throw new Error(`no node ${firstFew(unknown)} in the plan of ${o.plan.cluster.name}`);
  const facts = firstbootFacts(o.workspace, o.nodes);
  const signal = o.signal ?? new AbortController().signal;
  const s: StageContext = {
    runId: `upgrade-${o.nodes.join('-')}`,
    stage: 'converge',
    signal,
    allowDestroy: false,
    attempt: 0,
    log: (line) => log(line),
    progress: () => undefined,
    node: (node, state, message) => {
      if (state === 'failed') log(`${node}: ${message ?? 'failed'}`);
    },
    checkpoint: (_key, effect) => effect(),
    changed: () => undefined,
  };
  const hub = hubOf(o.plan);
  const hubG: GuestCall = { driver: o.driver, node: hub, signal };
  try {
    let changes = await prepareSsh(o.spec, facts.data.nodes, s, o.plan, hubG, o.nodes.includes(hub.name) ? undefined : o.nodes);
    changes += await prepareEtcd({ workspace: o.workspace, env: o.env }, s, o.plan, o.driver, o.nodes);
    const recap = await playConverge(s, hubG, targets, ['--limit', targets.map((n) => n.name).join(',')], `converge-upgrade-${targets.map((n) => n.name).join('-')}`, (path) => `full log on ${hub.name}: ${path}`);
    changes += Object.values(recap).reduce((a, x) => a + x.changed, 0);
    log(`converged: ${Object.entries(recap).sort().map(([h, x]) => `${h} changed=${x.changed}`).join(', ')}`);
    await refreshConvergeRecord(o.workspace, s, o.driver, o.plan, o.nodes);
    return { changes };
  } catch (err) {
    if (err instanceof StageError) throw new Error(`${err.message}${err.detail.hint ? `; ${err.detail.hint}` : ''}`, { cause: err });
    throw err;
  }
}
