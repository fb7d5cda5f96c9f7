// A deployed cluster's nodes behind their guest agents, in memory, written once for the fence's
// tests, the replace-based upgrade's and the deployed-cluster drill target's (main/drills/fence.test.ts,
// main/upgrade/replace-ops.test.ts, main/drills/cluster-target.test.ts): etcd's membership answering
// etcdctl as etcd does (fakeEtcd), the hub's side (fakeHub: wg show, revoke, the revocation list,
// the files written on the master), and both behind a NodeShell that logs every command in order
// ("node: argv": fakeFenceCluster). Test helper only.
import { parse, stringify } from 'yaml';
import { plan } from '../../common/plan/index';
import type { Plan } from '../../common/plan/schema';
import type { ClusterSpec } from '../../common/spec/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import type { RunResult } from '../exec/runner';
import { CommandError } from '../exec/runner';
import { etcdClientUrl, etcdMembers, etcdPeerUrl } from '../stages/converge';
import type { GuestExecResult } from '../substrate/driver';
import { HUB_BIN, REVOKED_PATH } from './fence';
import type { NodeShell } from './shell';

/** lab-3 with cp-2 and cp-3 (VMIDs 3003, 3004): three etcd members, so the quorum rule lets one go. */
export function lab5Spec(): ClusterSpec {
  const doc = parse(TEMPLATES['lab-3'].text) as { spec: { nodes: { inventory: Record<string, unknown>[] } } };
  const cp1 = doc.spec.nodes.inventory.find((n) => n.name === 'cp-1')!;
  doc.spec.nodes.inventory.push({ ...cp1, name: 'cp-2', vmid: 3003 }, { ...cp1, name: 'cp-3', vmid: 3004 });
  return parseSpec(stringify(doc)).spec!;
}

/** lab5Spec's plan. */
export function lab5Plan(): Plan {
  return plan(lab5Spec());
}

export interface FakeMember {
  id: string;
  name: string;
  peerUrl: string;
  clientUrl: string;
  started: boolean;
}

/** A command's answer, as a guest agent gives it. */
export const answer = (exitCode: number, stdout: string, stderr = ''): GuestExecResult => ({ exitCode, stdout, stderr });

export interface FakeEtcd {
  /** By member id: the plan's members are a1, a2, … (started); added ones d0, d1, … (not started). */
  members: Map<string, FakeMember>;
  /** The keys put (one store: every member replicates it). */
  kv: Map<string, string>;
  /** etcdctl `argv` run on `node`. */
  etcdctl(node: string, argv: readonly string[]): GuestExecResult;
}

/**
 * etcd's membership for the plan's etcd members, answering etcdctl as etcd does: endpoint health
 * is a linearizable read (no member healthy without a quorum of serving members); member list is
 * served from the asked member's own view (no quorum; asked of one endpoint alone, that member must
 * serve); member remove and add need quorum, an add
 * of a peer URL already listed is refused, and the first `addRefusals` adds are refused with
 * "unhealthy cluster" (etcd's strict reconfiguration check right after a removal); put, get
 * (serializable: from the one endpoint asked) and del on the key store. A member serves when it
 * was started and `serving` says so (default: always). `removeFails`: every member remove exits 1
 * with that stderr. `log`: one line per membership change and key operation.
 */
export function fakeEtcd(p: Plan, o: { serving?: (m: FakeMember) => boolean; log?: (line: string) => void; removeFails?: string; addRefusals?: number } = {}): FakeEtcd {
  const etcdNodes = etcdMembers(p);
  const members = new Map<string, FakeMember>();
  for (const [i, n] of etcdNodes.entries()) members.set(`a${i + 1}`, { id: `a${i + 1}`, name: n.name, peerUrl: etcdPeerUrl(n.planes.wg3.address), clientUrl: etcdClientUrl(n.planes.wg3.address), started: true });
  const kv = new Map<string, string>();
  const log = o.log ?? (() => undefined);
  let addRefusals = o.addRefusals ?? 0;
  let nextId = 0xd0;
  const serving = (m: FakeMember) => m.started && (o.serving?.(m) ?? true);
  const quorate = () => [...members.values()].filter(serving).length >= Math.floor(members.size / 2) + 1;
  const noQuorum = () => answer(1, '', '{"level":"warn","msg":"retrying of unary invoker failed"}\nError: context deadline exceeded');
  function etcdctl(node: string, argv: readonly string[]): GuestExecResult {
    const endpoints = (argv.find((a) => a.startsWith('--endpoints=')) ?? '').slice('--endpoints='.length).split(',');
    const cmd = argv.slice(argv.findIndex((a, i) => i > 0 && !a.startsWith('--')));
    const sub = `${cmd[0]} ${cmd[1]}`;
    if (sub === 'endpoint health') {
      const rows = endpoints.map((e) => {
        const m = [...members.values()].find((x) => x.clientUrl === e);
        return m && serving(m) && quorate() ? { endpoint: e, health: true } : { endpoint: e, health: false, error: 'context deadline exceeded' };
      });
      return answer(rows.every((r) => r.health) ? 0 : 1, JSON.stringify(rows));
    }
    if (sub === 'member list') {
      // Served from the asked member's own view: asked of one endpoint alone, that member must serve.
      const asked = [...members.values()].find((x) => x.clientUrl === endpoints[0]);
      if (endpoints.length === 1 && !(asked && serving(asked))) return answer(1, '', '{"level":"warn","msg":"retrying of unary invoker failed"}\nError: context deadline exceeded');
      return answer(0, JSON.stringify({ members: [...members.values()].map((m) => ({ ID: m.id, ...(m.started ? { name: m.name, clientURLs: [m.clientUrl] } : {}), peerURLs: [m.peerUrl] })) }));
    }
    if (sub === 'member remove') {
      log(`member remove ${cmd[2]} on ${node}`);
      if (o.removeFails) return answer(1, '', o.removeFails);
      if (!quorate()) return noQuorum();
      if (!members.delete(cmd[2]!)) return answer(1, '', 'Error: etcdserver: member not found');
      return answer(0, `Member ${cmd[2]} removed from cluster\n`);
    }
    if (sub === 'member add') {
      log(`member add ${cmd[2]} on ${node}`);
      if (!quorate()) return noQuorum();
      if (addRefusals-- > 0) return answer(1, '', '{"level":"warn","msg":"retrying of unary invoker failed"}\nError: etcdserver: unhealthy cluster');
      const url = cmd.find((a) => a.startsWith('--peer-urls='))!.slice('--peer-urls='.length);
      if ([...members.values()].some((m) => m.peerUrl === url)) return answer(1, '', 'Error: etcdserver: Peer URLs already exists');
      const n = etcdNodes.find((x) => etcdPeerUrl(x.planes.wg3.address) === url)!;
      const id = (nextId++).toString(16);
      members.set(id, { id, name: cmd[2]!, peerUrl: url, clientUrl: etcdClientUrl(n.planes.wg3.address), started: false });
      return answer(0, `Member ${id} added to cluster\n\nETCD_NAME="${cmd[2]}"\nETCD_INITIAL_CLUSTER_STATE="existing"\n`);
    }
    if (cmd[0] === 'put') {
      log(`put ${cmd[1]} on ${node}`);
      kv.set(cmd[1]!, cmd[2]!);
      return answer(0, 'OK\n');
    }
    if (cmd[0] === 'get') {
      const m = [...members.values()].find((x) => x.clientUrl === endpoints[0]);
      log(`get ${cmd[1]} from ${m?.name ?? '?'}${endpoints.length === 1 ? ' alone' : ''}`);
      if (!m || !serving(m)) return answer(1, '', 'Error: context deadline exceeded');
      return answer(0, `${kv.get(cmd[1]!) ?? ''}\n`);
    }
    if (cmd[0] === 'del') {
      log(`del ${cmd[1]}`);
      kv.delete(cmd[1]!);
      return answer(0, '1\n');
    }
    return answer(127, '', `unexpected etcdctl ${cmd.join(' ')}`);
  }
  return { members, kv, etcdctl };
}

export interface FakeHub {
  /** The nodes the hub has wg1 peers for. */
  peers: Set<string>;
  /** The nodes on the revocation list. */
  revoked: () => string[];
  /** Files written on the hub (path → content). */
  files: Map<string, string>;
  /** The hub's answer to `argv`; undefined: not a hub command. */
  answer(argv: readonly string[], input: string | Uint8Array | undefined): GuestExecResult | undefined;
}

/** A wg public key of the right shape for a node. */
const wgKey = (name: string) => `${name.padEnd(43, 'A').slice(0, 43)}=`;

/**
 * The hub's side of a cluster: `wg show wg1` with a fresh handshake for every peer it still has,
 * `kubedos-enroll-hub revoke` (the peer dropped; the peers it removed as JSON, nothing by an older
 * hub: `hubJson: false`), no drill cut in nft, the revocation list read and written, files read and
 * written. Starts with every node but the hub as a peer and `revoked` on the list. `log`:
 * `revoke NODE` and `write PATH on HUB`.
 */
export function fakeHub(p: Plan, o: { hubJson?: boolean; revoked?: string[]; log?: (line: string) => void } = {}): FakeHub {
  const hub = p.nodes.find((n) => n.hub)!.name;
  const peers = new Set(p.nodes.filter((n) => !n.hub).map((n) => n.name));
  let revoked = [...(o.revoked ?? [])];
  const files = new Map<string, string>();
  const log = o.log ?? (() => undefined);
  return {
    peers,
    revoked: () => revoked,
    files,
    answer(argv, input) {
      const now = Math.floor(Date.now() / 1000);
      if (argv[0] === 'wg' && argv[3] === 'latest-handshakes') return answer(0, [...peers].map((x) => `${wgKey(x)}\t${now}`).join('\n'));
      if (argv[0] === 'wg' && argv[3] === 'allowed-ips') return answer(0, [...peers].map((x) => `${wgKey(x)}\t${p.nodes.find((y) => y.name === x)!.planes.wg1.address}`).join('\n'));
      if (argv[0] === HUB_BIN && argv[1] === 'revoke') {
        log(`revoke ${argv[2]}`);
        revoked.push(argv[2]!);
        peers.delete(argv[2]!);
        return answer(0, o.hubJson === false ? 'revoked\n' : JSON.stringify({ revoked: argv[2], removed: ['wg1', 'wg2', 'wg3'].map((w) => `${argv[2]}/${w}`) }));
      }
      if (argv[0] === 'nft') return answer(1, '', 'Error: No such file or directory');
      if (argv[0] !== '/bin/sh') return undefined;
      if (argv[4] === REVOKED_PATH && argv[2]!.startsWith('cat')) return answer(0, JSON.stringify({ cluster: p.cluster.name, revoked: revoked.map((x) => ({ node: x, at: 1, reason: 'test' })) }));
      if (argv[4] === REVOKED_PATH) {
        revoked = (JSON.parse(String(input)) as { revoked: { node: string }[] }).revoked.map((x) => x.node);
        return answer(0, '');
      }
      if (argv[2] === 'cat "$1" 2>/dev/null || true') return answer(0, files.get(argv[4]!) ?? '');
      if (argv[2]!.includes('mkdir -p')) {
        log(`write ${argv[4]} on ${hub}`);
        files.set(argv[4]!, String(input));
        return answer(0, '');
      }
      return undefined;
    },
  };
}

export interface FakeFenceCluster {
  shell: NodeShell;
  /** Every command run, in order: "node: argv joined by spaces". */
  log: string[];
  members: Map<string, FakeMember>;
  /** Nodes whose etcd endpoint answers unhealthy. */
  unhealthy: Set<string>;
  revoked: () => string[];
  /** Files written on the master (path → content). */
  files: Map<string, string>;
}

/** The plan's etcd members all started and healthy; no node revoked but `revoked`; `hubJson: false`: an older hub that prints no JSON on revoke; `removeFails`: etcdctl member remove's stderr, exit 1. */
export function fakeFenceCluster(p: Plan, o: { hubJson?: boolean; revoked?: string[]; removeFails?: string } = {}): FakeFenceCluster {
  const hubName = p.nodes.find((n) => n.hub)!.name;
  const unhealthy = new Set<string>();
  const etcd = fakeEtcd(p, { serving: (m) => !unhealthy.has(m.name), ...(o.removeFails ? { removeFails: o.removeFails } : {}) });
  const hub = fakeHub(p, o);
  const log: string[] = [];
  const shell: NodeShell = {
    async exec(node, argv, so) {
      log.push(`${node}: ${argv[0] === 'etcdctl' ? `etcdctl ${argv.filter((a) => !a.startsWith('--')).slice(1).join(' ')}` : argv.join(' ')}`);
      const a = (argv[0] === 'etcdctl' ? etcd.etcdctl(node, argv) : node === hubName ? hub.answer(argv, so?.input) : undefined) ?? answer(127, '', `unexpected ${argv.join(' ')}`);
      const r: RunResult = { ...a, command: [...argv], signal: null, durationMs: 1 };
      if (!so?.anyExit && r.exitCode !== 0) throw new CommandError({ message: `${node}: ${argv.join(' ')} exited ${r.exitCode}`, command: [...argv], exitCode: r.exitCode, stderrTail: r.stderr, reason: 'exit' });
      return r;
    },
  };
  return { shell, log, members: etcd.members, unhealthy, revoked: hub.revoked, files: hub.files };
}
