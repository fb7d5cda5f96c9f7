// A deployed cluster's nodes behind their guest agents, in memory, for the fence's tests and the
// replace-based upgrade's (main/drills/fence.test.ts, main/upgrade/replace-ops.test.ts): the hub's
// revoke and revocation list, etcdctl against a membership (health, list, remove, add), the files
// written on the master, and every command in order ("node: argv"). Test helper only.
import { parse, stringify } from 'yaml';
import { plan } from '../../common/plan/index';
import type { Plan } from '../../common/plan/schema';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import type { RunResult } from '../exec/runner';
import { CommandError } from '../exec/runner';
import { etcdClientUrl, etcdMembers, etcdPeerUrl } from '../stages/converge';
import { HUB_BIN, REVOKED_PATH } from './fence';
import type { NodeShell } from './shell';

/** lab-3 with cp-2 and cp-3 (VMIDs 3003, 3004): three etcd members, so the quorum rule lets one go. */
export function lab5Plan(): Plan {
  const doc = parse(TEMPLATES['lab-3'].text) as { spec: { nodes: { inventory: Record<string, unknown>[] } } };
  const cp1 = doc.spec.nodes.inventory.find((n) => n.name === 'cp-1')!;
  doc.spec.nodes.inventory.push({ ...cp1, name: 'cp-2', vmid: 3003 }, { ...cp1, name: 'cp-3', vmid: 3004 });
  return plan(parseSpec(stringify(doc)).spec!);
}

export interface FakeMember {
  id: string;
  name: string;
  peerUrl: string;
  clientUrl: string;
  started: boolean;
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

const res = (exitCode: number, stdout: string, stderr = ''): RunResult => ({ command: [], exitCode, signal: null, stdout, stderr, durationMs: 1 });

/** The plan's etcd members all started and healthy; no node revoked; `hubJson: false`: an older hub that prints no JSON on revoke. */
export function fakeFenceCluster(p: Plan, o: { hubJson?: boolean; revoked?: string[] } = {}): FakeFenceCluster {
  const hub = p.nodes.find((n) => n.hub)!.name;
  const members = new Map<string, FakeMember>();
  for (const [i, n] of etcdMembers(p).entries()) members.set(`a${i + 1}`, { id: `a${i + 1}`, name: n.name, peerUrl: etcdPeerUrl(n.planes.wg3.address), clientUrl: etcdClientUrl(n.planes.wg3.address), started: true });
  const unhealthy = new Set<string>();
  let revoked = [...(o.revoked ?? [])];
  const files = new Map<string, string>();
  const log: string[] = [];
  let nextId = 0xd0;
  const etcdctl = (argv: readonly string[]): RunResult => {
    const endpoints = (argv.find((a) => a.startsWith('--endpoints=')) ?? '').slice('--endpoints='.length).split(',');
    const cmd = argv.slice(argv.findIndex((a, i) => i > 0 && !a.startsWith('--')));
    const sub = `${cmd[0]} ${cmd[1]}`;
    if (sub === 'endpoint health') {
      const rows = endpoints.map((e) => {
        const m = [...members.values()].find((x) => x.clientUrl === e);
        return m && m.started && !unhealthy.has(m.name) ? { endpoint: e, health: true } : { endpoint: e, health: false, error: 'context deadline exceeded' };
      });
      return res(rows.every((r) => r.health) ? 0 : 1, JSON.stringify(rows));
    }
    if (sub === 'member list') return res(0, JSON.stringify({ members: [...members.values()].map((m) => ({ ID: m.id, ...(m.started ? { name: m.name, clientURLs: [m.clientUrl] } : {}), peerURLs: [m.peerUrl] })) }));
    if (sub === 'member remove') return members.delete(cmd[2]!) ? res(0, `Member ${cmd[2]} removed from cluster\n`) : res(1, '', 'Error: etcdserver: member not found');
    if (sub === 'member add') {
      const url = cmd.find((a) => a.startsWith('--peer-urls='))!.slice('--peer-urls='.length);
      const n = etcdMembers(p).find((x) => etcdPeerUrl(x.planes.wg3.address) === url)!;
      const id = (nextId++).toString(16);
      members.set(id, { id, name: cmd[2]!, peerUrl: url, clientUrl: etcdClientUrl(n.planes.wg3.address), started: false });
      return res(0, `Member ${id} added to cluster\n`);
    }
    return res(127, '', `unexpected etcdctl ${cmd.join(' ')}`);
  };
  const shell: NodeShell = {
    async exec(node, argv, so) {
      log.push(`${node}: ${argv[0] === 'etcdctl' ? `etcdctl ${argv.filter((a) => !a.startsWith('--')).slice(1).join(' ')}` : argv.join(' ')}`);
      let r: RunResult;
      if (argv[0] === 'etcdctl') r = etcdctl(argv);
      else if (node === hub && argv[0] === HUB_BIN && argv[1] === 'revoke') {
        revoked.push(argv[2]!);
        r = res(0, o.hubJson === false ? 'revoked\n' : JSON.stringify({ revoked: argv[2], removed: ['wg1', 'wg2', 'wg3'].map((w) => `${argv[2]}/${w}`) }));
      } else if (node === hub && argv[0] === '/bin/sh' && argv[4] === REVOKED_PATH && argv[2]!.startsWith('cat')) r = res(0, JSON.stringify({ cluster: p.cluster.name, revoked: revoked.map((x) => ({ node: x, at: 1, reason: 'test' })) }));
      else if (node === hub && argv[0] === '/bin/sh' && argv[4] === REVOKED_PATH) {
        revoked = (JSON.parse(String(so?.input)) as { revoked: { node: string }[] }).revoked.map((x) => x.node);
        r = res(0, '');
      } else if (node === hub && argv[0] === '/bin/sh' && argv[2] === 'cat "$1" 2>/dev/null || true') r = res(0, files.get(argv[4]!) ?? '');
      else if (node === hub && argv[0] === '/bin/sh' && argv[2]!.includes('mkdir -p')) {
        files.set(argv[4]!, String(so?.input));
        r = res(0, '');
      } else r = res(127, '', `unexpected ${argv.join(' ')}`);
      if (!so?.anyExit && r.exitCode !== 0) throw new CommandError({ message: `${node}: ${argv.join(' ')} exited ${r.exitCode}`, command: [...argv], exitCode: r.exitCode, stderrTail: r.stderr, reason: 'exit' });
      return { ...r, command: [...argv] };
    },
  };
  return { shell, log, members, unhealthy, revoked: () => revoked, files };
}
