import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NODE_ROLES } from '../spec/schema';
import type { NodeRole } from '../spec/schema';
import { quorumOf } from '../drills/health';
import type { UpgradeNode, Wave, WavePlanInput } from './waves';
import { actionWord, planWaves, renderWaves, tierOf, UPGRADE_STRATEGIES } from './waves';

const healthy = { observed: true, unhealthy: [] };
const node = (name: string, role: NodeRole, domain: string, o: Partial<UpgradeNode> = {}): UpgradeNode => ({ name, role, domain, hub: role === 'master', etcd: role === 'control-plane', ...o });

const lab3: UpgradeNode[] = [node('master', 'master', 'dc-a'), node('cp-1', 'control-plane', 'dc-a'), node('w-1', 'worker', 'dc-a')];

/** A 3-domain cluster: 3 control planes (stacked etcd), 2 lbs, 4 workers, a hub. */
const ha: UpgradeNode[] = [
  node('master', 'master', 'a'),
  node('cp-1', 'control-plane', 'a'),
  node('cp-2', 'control-plane', 'b'),
  node('cp-3', 'control-plane', 'c'),
  node('lb-1', 'lb', 'a'),
  node('lb-2', 'lb', 'b'),
  node('w-1', 'worker', 'a'),
  node('w-2', 'worker', 'a'),
  node('w-3', 'worker', 'b'),
  node('w-4', 'worker', 'c'),
];

const input = (nodes: UpgradeNode[], o: Partial<WavePlanInput> = {}): WavePlanInput => ({ strategy: 'rolling', maxUnavailable: 1, failureDomains: ['a', 'b', 'c', 'dc-a'], nodes, health: healthy, ...o });

const waves = (i: WavePlanInput): Wave[] => {
  const p = planWaves(i);
  if (!p.ok) throw new Error(`refused: ${p.message}`);
  return p.waves;
};

describe('planWaves', () => {
  it('lab-3: the control plane first, then the worker, the hub last, each alone', () => {
    const w = waves(input(lab3));
    expect(w.map((x) => x.nodes)).toEqual([['cp-1'], ['w-1'], ['master']]);
    expect(w.map((x) => x.tier)).toEqual(['control-plane', 'nodes', 'hub']);
    expect(w.every((x) => x.action === 'slot-switch')).toBe(true);
  });

  it('warns that a single etcd member cannot keep quorum, and that health was not observed', () => {
    const p = planWaves(input(lab3, { health: { observed: false, unhealthy: [] } }));
    expect(p.ok).toBe(true);
    if (!p.ok) return;
    expect(p.warnings.join('\n')).toMatch(/single member \(cp-1\)/);
    expect(p.warnings.join('\n')).toMatch(/live health was not observed/);
  });

  it('rolls domain by domain and never takes two of three etcd members down, even with maxUnavailable 5', () => {
    const w = waves(input(ha, { maxUnavailable: 5 }));
    for (const x of w) expect(x.etcdMembers).toBeLessThanOrEqual(1);
    expect(w.map((x) => `${x.tier}:${x.domain}:${x.nodes.join('+')}`)).toEqual([
      'control-plane:a:cp-1',
      'control-plane:b:cp-2',
      'control-plane:c:cp-3',
      'nodes:a:w-1+w-2+lb-1',
      'nodes:b:w-3+lb-2',
      'nodes:c:w-4',
      'hub:a:master',
    ]);
  });

  it('the strategy chooses the action of every wave; under replace the hub\'s wave is a slot switch (it keeps its identity)', () => {
    const w = waves(input(ha, { strategy: 'replace' }));
    expect(w.map((x) => `${x.nodes.join('+')}:${x.action}`)).toEqual(['cp-1:replace', 'cp-2:replace', 'cp-3:replace', 'w-1:replace', 'w-2:replace', 'lb-1:replace', 'w-3:replace', 'lb-2:replace', 'w-4:replace', 'master:slot-switch']);
    expect(w.map((x) => actionWord(x, 'replace')).at(-1)).toBe('slot switch (the hub keeps its identity)');
    expect(actionWord(w[0]!, 'replace')).toBe('replace');
    expect(waves(input(lab3, { strategy: 'surge' })).every((x) => x.action === 'surge-replace')).toBe(true);
    expect(waves(input(lab3, { strategy: 'rolling' })).map((x) => actionWord(x, 'rolling'))).toEqual(['slot switch', 'slot switch', 'slot switch']);
  });

  it('replace refuses a single etcd member that is not the hub (lab-3\'s cp-1): the drill\'s quorum rule, its data would go with its VM', () => {
    const p = planWaves(input(lab3, { strategy: 'replace' }));
    expect(p).toEqual({
      ok: false,
      code: 'quorum',
      message:
        "replacing cp-1 (strategy replace, the spec's kubernetes.ha.upgradeStrategy) takes its etcd member out and its data goes with its VM: taking cp-1's etcd member out would leave 0 of 1 members healthy; quorum needs 1 (cp-1 is the only member). Nothing was touched; run 3 or 5 etcd members, or upgrade this cluster with kubernetes.ha.upgradeStrategy: rolling (its members keep their data across a slot switch)",
    });
    // The same cluster rolls (a reboot keeps the member's data), and a hub that is the only member is slot-switched, not replaced.
    expect(planWaves(input(lab3)).ok).toBe(true);
    const hubMember = waves(input([node('master', 'master', 'a', { etcd: true }), node('w-1', 'worker', 'a')], { strategy: 'replace' }));
    expect(hubMember.map((x) => `${x.nodes.join('+')}:${x.action}`)).toEqual(['w-1:replace', 'master:slot-switch']);
  });

  it('refuses when rebooting any healthy etcd member would break quorum, naming the unhealthy one', () => {
    const p = planWaves(input(ha, { health: { observed: true, unhealthy: [{ node: 'cp-2', detail: 'etcd member unhealthy: connection refused' }] } }));
    expect(p).toMatchObject({ ok: false, code: 'quorum' });
    if (p.ok) return;
    expect(p.message).toMatch(/would break etcd quorum: 2 of 3 etcd members healthy \(unhealthy: cp-2: etcd member unhealthy: connection refused\), quorum is 2; rebooting any healthy member leaves 1/);
    expect(p.message).toMatch(/Nothing was touched/);
  });

  it('refuses when etcd has no quorum at all', () => {
    const p = planWaves(input(ha, { health: { observed: true, unhealthy: [{ node: 'cp-2', detail: 'x' }, { node: 'cp-3', detail: 'y' }] } }));
    expect(p).toMatchObject({ ok: false, code: 'quorum' });
    if (!p.ok) expect(p.message).toMatch(/^etcd has no quorum now: 1 of 3/);
  });

  it('refuses a cluster with an unhealthy node that etcd does not need, naming it', () => {
    const p = planWaves(input(ha, { health: { observed: true, unhealthy: [{ node: 'w-3', detail: 'wg1 handshake 400 s old' }] } }));
    expect(p).toMatchObject({ ok: false, code: 'unhealthy' });
    if (!p.ok) expect(p.message).toMatch(/1 node is unhealthy before the upgrade: w-3 \(wg1 handshake 400 s old\)/);
  });

  it('refuses an even two-member etcd: either reboot breaks quorum', () => {
    const p = planWaves(input([node('master', 'master', 'a'), node('cp-1', 'control-plane', 'a'), node('cp-2', 'control-plane', 'b')]));
    expect(p).toMatchObject({ ok: false, code: 'quorum' });
    if (!p.ok) expect(p.message).toMatch(/etcd has 2 members \(cp-1, cp-2\): quorum is 2/);
  });

  it('five etcd members tolerate two down per wave, never three', () => {
    const five = ['a', 'a', 'a', 'a', 'a'].map((d, i) => node(`cp-${i + 1}`, 'control-plane', d));
    const w = waves(input([node('master', 'master', 'a'), ...five], { maxUnavailable: 3 }));
    expect(w.filter((x) => x.tier === 'control-plane').map((x) => x.nodes.length)).toEqual([2, 2, 1]);
  });

  it('renders one line per wave', () => {
    expect(renderWaves(waves(input(lab3)))).toEqual([
      '  wave  1  control-plane dc-a         cp-1  (1 etcd member down)',
      '  wave  2  nodes         dc-a         w-1',
      '  wave  3  hub           dc-a         master',
    ]);
  });
});

// ---------------------------------------------------------------- properties

const DOMAINS = ['d0', 'd1', 'd2', 'd3'];
const arbCluster = fc
  .record({
    spokes: fc.array(fc.record({ role: fc.constantFrom(...NODE_ROLES.filter((r) => r !== 'master')), domain: fc.constantFrom(...DOMAINS) }), { minLength: 0, maxLength: 24 }),
    hubDomain: fc.constantFrom(...DOMAINS),
    external: fc.boolean(),
    maxUnavailable: fc.integer({ min: 1, max: 8 }),
    strategy: fc.constantFrom(...UPGRADE_STRATEGIES),
    seed: fc.integer(),
  })
  .map(({ spokes, hubDomain, external, maxUnavailable, strategy, seed }) => {
    const nodes: UpgradeNode[] = [
      { name: 'hub', role: 'master', domain: hubDomain, hub: true, etcd: false },
      ...spokes.map((s, i) => ({ name: `n${String(i).padStart(2, '0')}`, role: s.role, domain: s.domain, hub: false, etcd: external ? s.role === 'etcd' : s.role === 'control-plane' })),
    ];
    // The spec's invariants allow only an odd number of etcd members: the last of an even count is not one.
    const members = nodes.filter((n) => n.etcd);
    if (members.length % 2 === 0 && members.length) members[members.length - 1]!.etcd = false;
    return { input: { strategy, maxUnavailable, failureDomains: DOMAINS, nodes, health: healthy } as WavePlanInput, seed };
  });
/** A lone etcd member outside the hub cannot be replaced (its own property below); the rest plan. */
const loneReplacedMember = (i: WavePlanInput): boolean => i.strategy === 'replace' && i.nodes.filter((n) => n.etcd).length === 1 && i.nodes.some((n) => n.etcd && !n.hub);
const arbPlannable = arbCluster.filter(({ input: i }) => !loneReplacedMember(i));

describe('planWaves properties (fast-check)', () => {
  const params = { numRuns: 300, seed: 18 };

  it('every node is upgraded exactly once; waves are 1..maxUnavailable nodes of one domain and one tier', () => {
    fc.assert(
      fc.property(arbPlannable, ({ input: i }) => {
        const w = waves(i);
        const all = w.flatMap((x) => x.nodes).sort();
        expect(all).toEqual(i.nodes.map((n) => n.name).sort());
        const byName = new Map(i.nodes.map((n) => [n.name, n]));
        w.forEach((x, k) => {
          expect(x.index).toBe(k + 1);
          expect(x.nodes.length).toBeGreaterThanOrEqual(1);
          expect(x.nodes.length).toBeLessThanOrEqual(i.maxUnavailable);
          for (const n of x.nodes) {
            expect(byName.get(n)!.domain).toBe(x.domain);
            expect(tierOf(byName.get(n)!)).toBe(x.tier);
          }
        });
      }),
      params,
    );
  });

  it('the hub is alone in the last wave; control-plane waves come before the others', () => {
    fc.assert(
      fc.property(arbPlannable, ({ input: i }) => {
        const w = waves(i);
        expect(w[w.length - 1]!.nodes).toEqual(['hub']);
        const tiers = w.map((x) => ['control-plane', 'nodes', 'hub'].indexOf(x.tier));
        expect([...tiers].sort((a, b) => a - b)).toEqual(tiers);
        // domains in the spec's order inside a tier
        for (const t of [0, 1]) {
          const ds = w.filter((_, k) => tiers[k] === t).map((x) => DOMAINS.indexOf(x.domain));
          expect([...ds].sort((a, b) => a - b)).toEqual(ds);
        }
      }),
      params,
    );
  });

  it('the quorum guard: a wave never leaves fewer healthy etcd members than quorum (a single member excepted)', () => {
    fc.assert(
      fc.property(arbPlannable, ({ input: i }) => {
        const members = i.nodes.filter((n) => n.etcd).length;
        for (const x of waves(i)) {
          if (members > 1) expect(members - x.etcdMembers).toBeGreaterThanOrEqual(quorumOf(members));
          else expect(x.etcdMembers).toBeLessThanOrEqual(members);
        }
      }),
      params,
    );
  });

  it('of a role with several nodes, a wave never takes them all', () => {
    fc.assert(
      fc.property(arbPlannable, ({ input: i }) => {
        const count = new Map<string, number>();
        for (const n of i.nodes) count.set(n.role, (count.get(n.role) ?? 0) + 1);
        const roleOf = new Map(i.nodes.map((n) => [n.name, n.role]));
        for (const x of waves(i)) {
          const inWave = new Map<string, number>();
          for (const n of x.nodes) inWave.set(roleOf.get(n)!, (inWave.get(roleOf.get(n)!) ?? 0) + 1);
          for (const [r, k] of inWave) if (count.get(r)! > 1) expect(k).toBeLessThan(count.get(r)!);
        }
      }),
      params,
    );
  });

  it('deterministic: the inventory order does not change the waves', () => {
    fc.assert(
      fc.property(arbPlannable, ({ input: i, seed }) => {
        const shuffled = [...i.nodes].map((n, k) => ({ n, key: (Math.imul(k + 1, 2654435761) ^ seed) >>> 0 })).sort((a, b) => a.key - b.key).map((x) => x.n);
        expect(waves({ ...i, nodes: shuffled })).toEqual(waves(i));
      }),
      params,
    );
  });

  it('any unhealthy node refuses the plan (quorum or unhealthy), never a partial plan', () => {
    fc.assert(
      fc.property(arbPlannable, fc.nat(), ({ input: i }, pick) => {
        const victim = i.nodes[pick % i.nodes.length]!;
        const p = planWaves({ ...i, health: { observed: true, unhealthy: [{ node: victim.name, detail: 'down' }] } });
        expect(p.ok).toBe(false);
        if (!p.ok) expect(['quorum', 'unhealthy']).toContain(p.code);
      }),
      params,
    );
  });

  it('under replace: the hub slot-switches, every other node is replaced; a lone etcd member outside the hub refuses the whole plan', () => {
    fc.assert(
      fc.property(arbCluster, ({ input: i }) => {
        const p = planWaves({ ...i, strategy: 'replace' });
        if (loneReplacedMember({ ...i, strategy: 'replace' })) {
          expect(p).toMatchObject({ ok: false, code: 'quorum' });
          return;
        }
        expect(p.ok).toBe(true);
        if (!p.ok) return;
        for (const x of p.waves) expect(x.action).toBe(x.tier === 'hub' ? 'slot-switch' : 'replace');
      }),
      params,
    );
  });
});
