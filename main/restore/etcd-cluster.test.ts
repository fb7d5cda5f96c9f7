// The deployed cluster's etcd restore against an injected shell: a fake lab-3 whose members keep
// etcd's state (running, data directory, copies, markers) and answer etcdctl like etcd 3.4.
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../common/canonical';
import { plan as planOf } from '../../common/plan/index';
import type { Plan } from '../../common/plan/schema';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { CommandError } from '../exec/runner';
import type { RunResult } from '../exec/runner';
import { ETCD_PKI, etcdMembers } from '../stages/converge';
import { certFingerprint, createClusterIntermediate, createRootCa } from '../trust/ca';
import type { EtcdNodes } from './etcd-cluster';
import { ETCD_DATA_DIR, ETCD_RESTORE_DIR, ETCD_RESTORE_MARKER, ETCD_SNAPSHOT_COPY, EtcdRestoreError, restoreEtcdOnCluster } from './etcd-cluster';

const SNAPSHOT = Buffer.from('fake etcd snapshot bytes');
const SNAP_REVISION = 42;

interface Member {
  running: boolean;
  data: string; // what the data directory holds
  files: Map<string, string>;
  answers: boolean;
}

class FakeCluster implements EtcdNodes {
  readonly calls: { node: string; argv: string[] }[] = [];
  readonly members = new Map<string, Member>();
  /** Makes the next matching command fail once. */
  failOnce?: { node: string; match: (argv: readonly string[]) => boolean };
  constructor(
    readonly plan: Plan,
    chain: string,
  ) {
    for (const n of etcdMembers(plan)) this.members.set(n.name, { running: true, data: 'old', files: new Map([[`${ETCD_PKI}/ca.crt`, chain]]), answers: true });
  }

  private ok(argv: readonly string[], stdout = '', exitCode = 0, stderr = ''): RunResult {
    return { command: [...argv], exitCode, signal: null, stdout, stderr, durationMs: 1 };
  }

  async exec(node: string, argv: readonly string[], o?: { anyExit?: boolean }): Promise<RunResult> {
    this.calls.push({ node, argv: [...argv] });
    const m = this.members.get(node);
    if (!m) throw new Error(`not a member: ${node}`);
    if (!m.answers) throw new CommandError({ message: `${node}: ${argv[0]} could not run through the guest agent: agent not connected`, command: [...argv], exitCode: null, stderrTail: 'guest agent socket refused', reason: 'spawn' });
    if (this.failOnce?.node === node && this.failOnce.match(argv)) {
      this.failOnce = undefined;
      throw new CommandError({ message: `${node}: ${argv.join(' ')} exited 1`, command: [...argv], exitCode: 1, stderrTail: 'Error: simulated failure', reason: 'exit' });
    }
    const fail = (stderr: string): RunResult => {
      if (o?.anyExit) return this.ok(argv, '', 1, stderr);
      throw new CommandError({ message: `${node}: ${argv.join(' ')} exited 1`, command: [...argv], exitCode: 1, stderrTail: stderr, reason: 'exit' });
    };
    const [cmd] = argv;
    if (cmd === 'cat') return m.files.has(argv[1]!) ? this.ok(argv, m.files.get(argv[1]!)) : fail(`cat: ${argv[1]}: No such file or directory`);
    if (cmd === 'install') return this.ok(argv);
    if (cmd === 'rm') {
      if (argv[2] === ETCD_RESTORE_DIR) m.files.delete(ETCD_RESTORE_DIR);
      else m.files.delete(argv[2]!);
      return this.ok(argv);
    }
    if (cmd === 'systemctl') {
      if (argv[1] === 'stop') m.running = false;
      if (argv[1] === 'start') m.running = true;
      return this.ok(argv);
    }
    if (cmd === '/bin/sh') {
      // the swap: the fresh directory becomes the data directory
      if (!m.files.has(ETCD_RESTORE_DIR)) return fail('mv: cannot stat');
      m.data = m.files.get(ETCD_RESTORE_DIR)!;
      m.files.delete(ETCD_RESTORE_DIR);
      return this.ok(argv);
    }
    if (cmd === 'etcdctl' && argv[1] === 'snapshot' && argv[2] === 'status') return m.files.has(argv[3]!) ? this.ok(argv, JSON.stringify({ hash: 1, revision: SNAP_REVISION, totalKey: 3, totalSize: 100 })) : fail('no such file');
    if (cmd === 'etcdctl' && argv[1] === 'snapshot' && argv[2] === 'restore') {
      if (m.running) return fail('etcd is running on this data directory');
      if (m.files.get(argv[3]!) !== SNAPSHOT.toString()) return fail('snapshot missing');
      m.files.set(ETCD_RESTORE_DIR, 'snapshot');
      return this.ok(argv);
    }
    if (cmd === 'etcdctl') {
      const all = [...this.members.values()];
      const healthy = all.every((x) => x.running) && new Set(all.map((x) => x.data)).size === 1;
      const sub = argv.slice(argv.findIndex((a) => !a.startsWith('-') && a !== 'etcdctl'));
      if (sub[0] === 'endpoint' && sub[1] === 'health') return this.ok(argv, JSON.stringify(etcdMembers(this.plan).map((n) => ({ endpoint: `https://${n.planes.wg3.address.replace(/\/\d+$/, '')}:2379`, health: healthy, ...(healthy ? {} : { error: 'context deadline exceeded' }) }))), healthy ? 0 : 1);
      if (sub[0] === 'endpoint' && sub[1] === 'status') return this.ok(argv, JSON.stringify(all.map(() => ({ Endpoint: 'x', Status: { header: { revision: m.data === 'snapshot' ? SNAP_REVISION + 1 : 3 } } }))));
      if (sub[0] === 'get') return this.ok(argv, m.data === 'snapshot' && sub[1] === 'proof-key' ? 'value\n' : '');
    }
    return fail(`unexpected command ${argv.join(' ')}`);
  }

  async writeFile(node: string, path: string, data: Uint8Array | string, mode: number): Promise<void> {
    const m = this.members.get(node)!;
    if (!m.answers) throw new Error('agent not connected');
    expect(mode).toBe(0o600);
    m.files.set(path, Buffer.from(data).toString());
  }
}

let plan: Plan;
let chain: string;
let rootFp: string;
let clusterFp: string;
beforeAll(async () => {
  // reference-16: three etcd members (lab-3 has one), so the order across members is visible
  plan = planOf(parseSpec(TEMPLATES['reference-16'].text).spec!);
  const now = new Date('2026-01-01T00:00:00Z');
  const root = await createRootCa({ name: `${plan.cluster.name} root`, now });
  const inter = await createClusterIntermediate(root, { cluster: plan.cluster.name, now });
  chain = inter.certPem + root.certPem;
  rootFp = certFingerprint(root.certPem);
  clusterFp = certFingerprint(inter.certPem);
});

const opts = (c: FakeCluster, expectKey?: string) => ({ plan, nodes: c, snapshot: SNAPSHOT, rerun: 'kubedos restore B --target qemu-local', sleep: async () => undefined, healthTimeoutMs: 10_000, ...(expectKey ? { expectKey } : {}) });
const etcdMembersOf = (c: FakeCluster): Member[] => [...c.members.values()];
const index = (c: FakeCluster, pred: (x: { node: string; argv: string[] }) => boolean): number[] => c.calls.flatMap((x, i) => (pred(x) ? [i] : []));

describe('restoreEtcdOnCluster (deployed members through an injected shell)', () => {
  it('restores every member with its own name and peer URL, all stopped before any starts, and proves it', async () => {
    const c = new FakeCluster(plan, chain);
    const names = etcdMembers(plan).map((n) => n.name);
    expect(names).toHaveLength(3);
    const p = await restoreEtcdOnCluster(opts(c, 'proof-key'));
    const restores = c.calls.filter((x) => x.argv[0] === 'etcdctl' && x.argv[2] === 'restore');
    expect(restores.map((r) => r.node)).toEqual(names);
    const initial = etcdMembers(plan).map((n) => `${n.name}=https://${n.planes.wg3.address.replace(/\/\d+$/, '')}:2380`).join(',');
    for (const r of restores) {
      const n = etcdMembers(plan).find((x) => x.name === r.node)!;
      expect(r.argv).toEqual([
        'etcdctl',
        'snapshot',
        'restore',
        ETCD_SNAPSHOT_COPY,
        `--name=${n.name}`,
        `--initial-cluster=${initial}`,
        `--initial-advertise-peer-urls=https://${n.planes.wg3.address.replace(/\/\d+$/, '')}:2380`,
        `--initial-cluster-token=kubedos-${plan.cluster.name}`,
        `--data-dir=${ETCD_RESTORE_DIR}`,
      ]);
    }
    const stops = index(c, (x) => x.argv[0] === 'systemctl' && x.argv[1] === 'stop');
    const starts = index(c, (x) => x.argv[0] === 'systemctl' && x.argv[1] === 'start');
    expect(stops).toHaveLength(names.length);
    expect(starts).toHaveLength(names.length);
    expect(Math.max(...stops)).toBeLessThan(Math.min(...starts));
    expect(Math.max(...stops)).toBeLessThan(Math.min(...index(c, (x) => x.argv[2] === 'restore')));
    for (const s of starts) expect(c.calls[s]!.argv).toEqual(['systemctl', 'start', '--no-block', 'etcd']);
    // swapped in, copies removed, markers left, the identity proven
    for (const m of c.members.values()) {
      expect(m.data).toBe('snapshot');
      expect(m.files.has(ETCD_SNAPSHOT_COPY)).toBe(false);
      expect(JSON.parse(m.files.get(ETCD_RESTORE_MARKER)!)).toEqual({ snapshotSha256: sha256Hex(SNAPSHOT), snapshotRevision: SNAP_REVISION });
    }
    const swap = c.calls.find((x) => x.argv[0] === '/bin/sh')!;
    expect(swap.argv.slice(-3)).toEqual([ETCD_DATA_DIR, ETCD_RESTORE_DIR, `${ETCD_DATA_DIR}.before-restore`]);
    expect(p).toMatchObject({ members: names, snapshotRevision: SNAP_REVISION, revision: SNAP_REVISION + 1, rootCaFingerprint: rootFp, clusterCaFingerprint: clusterFp, expectKey: { key: 'proof-key', bytes: 5 }, alreadyRestored: false });
  });

  it('refuses when a member is missing, before stopping anything, naming it and what to run next', async () => {
    const c = new FakeCluster(plan, chain);
    const victim = etcdMembers(plan).at(-1)!.name;
    c.members.get(victim)!.answers = false;
    const err = (await restoreEtcdOnCluster(opts(c)).catch((e: unknown) => e)) as EtcdRestoreError;
    expect(err).toBeInstanceOf(EtcdRestoreError);
    expect(err.o).toMatchObject({ step: 'preflight', member: victim, nothingStopped: true });
    expect(err.lines[0]).toMatch(new RegExp(`refused \\(preflight on ${victim}\\): 1 of \\d+ etcd members not ready: ${victim} does not answer through its guest agent; etcd was not stopped anywhere`));
    expect(err.lines.at(-1)).toMatch(/^next: .*rerun: kubedos restore B --target qemu-local/);
    expect(c.calls.some((x) => x.argv[0] === 'systemctl')).toBe(false);
    expect([...c.members.values()].every((m) => m.running && m.data === 'old')).toBe(true);
    // a member without certificates (not converged) is refused the same way
    const d = new FakeCluster(plan, chain);
    d.members.get(victim)!.files.delete(`${ETCD_PKI}/ca.crt`);
    await expect(restoreEtcdOnCluster(opts(d))).rejects.toThrow(/has no etcd certificates/);
  });

  it('a failure mid-way names the member, command and stderr; the rerun finishes', async () => {
    const c = new FakeCluster(plan, chain);
    const second = etcdMembers(plan)[1] ?? etcdMembers(plan)[0]!;
    c.failOnce = { node: second.name, match: (a) => a[0] === 'etcdctl' && a[2] === 'restore' };
    const err = (await restoreEtcdOnCluster(opts(c)).catch((e: unknown) => e)) as EtcdRestoreError;
    expect(err).toBeInstanceOf(EtcdRestoreError);
    expect(err.o).toMatchObject({ step: 'restore', member: second.name, stderrTail: 'Error: simulated failure', nothingStopped: false });
    expect(err.lines.join('\n')).toMatch(/command: etcdctl snapshot restore/);
    // etcd stays stopped everywhere (nobody started on a half-restored cluster)
    expect([...c.members.values()].every((m) => !m.running)).toBe(true);
    const p = await restoreEtcdOnCluster(opts(c, 'proof-key'));
    expect(p.alreadyRestored).toBe(false);
    expect([...c.members.values()].every((m) => m.running && m.data === 'snapshot')).toBe(true);
    // and a rerun after the success changes nothing
    const before = c.calls.length;
    const again = await restoreEtcdOnCluster(opts(c, 'proof-key'));
    expect(again.alreadyRestored).toBe(true);
    expect(c.calls.slice(before).some((x) => x.argv[0] === 'systemctl')).toBe(false);
    // a rerun while the restored etcd is down refuses to restore over it (writes since would be lost)
    etcdMembersOf(c)[0]!.running = false;
    const down = c.calls.length;
    const refused = (await restoreEtcdOnCluster(opts(c)).catch((e: unknown) => e)) as EtcdRestoreError;
    expect(refused.o).toMatchObject({ step: 'health', nothingStopped: true });
    expect(refused.message).toMatch(/already restored from this snapshot, but etcd is not healthy now/);
    expect(refused.lines.at(-1)).toContain(`remove ${ETCD_RESTORE_MARKER}`);
    expect(c.calls.slice(down).some((x) => x.argv[0] === 'systemctl' || x.argv[2] === 'restore')).toBe(false);
  });

  it('refuses a plan without etcd members', async () => {
    const solo = planOf(parseSpec(TEMPLATES['solo-1'].text).spec!);
    const c = new FakeCluster(plan, chain);
    await expect(restoreEtcdOnCluster({ ...opts(c), plan: solo })).rejects.toThrow(/has no etcd members/);
    expect(c.calls).toHaveLength(0);
  });

  it('fails the proof when the expected key is not in the snapshot', async () => {
    const c = new FakeCluster(plan, chain);
    await expect(restoreEtcdOnCluster(opts(c, 'never-written'))).rejects.toThrow(/the key "never-written" is not in the restored etcd/);
  });
});
