import { describe, expect, it } from 'vitest';
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import { expectedVerdict, listenPorts, samplePorts, wiringChecks } from './matrix';

const p = plan(parseSpec(TEMPLATES['lab-3'].text).spec!);

describe('wiring matrix', () => {
  it('judges flows by the declared policy, including ranges and the reverse direction', () => {
    const f = p.policy.flows;
    expect(expectedVerdict(f, 'wg1', 'wg3', 6443).expect).toBe('allow');
    expect(expectedVerdict(f, 'wg1', 'wg3', 2380).expect).toBe('allow');
    expect(expectedVerdict(f, 'wg1', 'wg3', 2381).expect).toBe('deny');
    expect(expectedVerdict(f, 'wg3', 'wg1', 6443)).toEqual({ expect: 'deny', why: 'only wg1->wg3 is declared (reverse direction)' });
    expect(expectedVerdict(f, 'wg1', 'wg2', 9100).expect).toBe('deny');
    expect(expectedVerdict(f, 'wg2', 'wg2', 1).expect).toBe('allow');
    expect(samplePorts(f)).toEqual([2379, 2380, 6443, 8080, 9100]);
  });

  it('covers every ordered node pair on every plane, deterministically', () => {
    const a = wiringChecks(p);
    expect(a).toEqual(wiringChecks(p));
    expect(a.filter((c) => c.kind === 'same-plane')).toHaveLength(3 * 2 * 3);
    expect(a.filter((c) => c.kind === 'declared')).toHaveLength(6 * 4);
    expect(a.filter((c) => c.kind === 'undeclared')).toHaveLength(6 * (6 * 5 - 4));
    expect(listenPorts(a).get('master')).toEqual([2379, 2380, 6443, 7070, 8080, 9100]);
    const ring = wiringChecks(p, { denyPairs: 'ring' });
    expect(ring.filter((c) => c.kind === 'declared')).toHaveLength(24);
    expect(ring.filter((c) => c.kind === 'undeclared').length).toBeLessThanOrEqual(a.filter((c) => c.kind === 'undeclared').length);
  });
});
