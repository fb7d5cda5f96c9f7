// One pass lists everything: schema errors do not hide the invariants. The invariants run on
// whatever parsed — rejected fields patched, or a whole section left out — and only the checks
// that need what is missing are skipped. Every diagnostic comes back in line order.
import { describe, expect, it } from 'vitest';
import { parseSpec } from './parse';
import { fiveMistakesSpec } from '../testing/specs';

function edit(text: string, ...pairs: [string, string][]): string {
  for (const [a, b] of pairs) {
    if (!text.includes(a)) throw new Error(`not in the spec: ${a}`);
    text = text.replace(a, b);
  }
  return text;
}
const lineOf = (text: string, needle: string): number => text.slice(0, text.indexOf(needle)).split('\n').length;
const FIVE_MISTAKES = fiveMistakesSpec();

describe('one pass over a spec lists every mistake', () => {
  it('a bad Proxmox tag does not hide no master, overlapping wg1/wg2, control-plane count and even etcd', () => {
    const r = parseSpec(FIVE_MISTAKES);
    expect(r.spec).toBeUndefined();
    const errors = r.diagnostics.filter((d) => d.severity === 'error');
    expect(errors.map((d) => d.code)).toEqual([
      'schema.invalid-format',
      'invariant.no-master',
      'invariant.plane-overlap',
      'invariant.control-plane-count',
      'invariant.etcd-count',
    ]);
    expect(errors[0]).toMatchObject({ path: 'spec.substrate.proxmox.tags[0]', line: lineOf(FIVE_MISTAKES, 'Bad Tag!') });
    expect(errors[2]).toMatchObject({ path: 'spec.networking.planes.wg2.cidr' });
  });

  it('with a required section missing, the checks of the other sections still run', () => {
    // No networking section at all: the LAN, plane and policy checks need it and are skipped;
    // the node and Kubernetes checks do not, and still report.
    const lines = FIVE_MISTAKES.split('\n');
    const start = lines.findIndex((l) => l === '  networking:');
    const end = lines.findIndex((l, i) => i > start && /^ {2}[a-z]/.test(l));
    const text = [...lines.slice(0, start), ...lines.slice(end)].join('\n');
    const r = parseSpec(text);
    const codes = r.diagnostics.filter((d) => d.severity === 'error').map((d) => d.code);
    expect(codes).toContain('schema.missing-field');
    expect(r.diagnostics.find((d) => d.code === 'schema.missing-field')?.path).toBe('spec.networking');
    expect(codes).toEqual(expect.arrayContaining(['schema.invalid-format', 'invariant.no-master', 'invariant.control-plane-count', 'invariant.etcd-count']));
    expect(codes).not.toContain('invariant.plane-overlap');
  });

  it('a field no placeholder fits leaves its section out, not the whole spec', () => {
    // An inventory whose VMID range is a string: the nodes section does not parse, so the node
    // checks are skipped — the plane overlap in networking is still reported.
    const text = edit(FIVE_MISTAKES, ['vmidRange: { start: 2000, end: 2099 }', 'vmidRange: "2000-2099"']);
    const codes = parseSpec(text).diagnostics.map((d) => d.code);
    expect(codes).toContain('schema.wrong-type');
    expect(codes).toContain('invariant.plane-overlap');
    expect(codes).not.toContain('invariant.no-master');
  });

  it('returns every diagnostic in line order', () => {
    const ds = parseSpec(FIVE_MISTAKES).diagnostics;
    const positions = ds.map((d) => [d.line, d.column] as const);
    expect(positions).toEqual([...positions].sort((a, b) => a[0] - b[0] || a[1] - b[1]));
  });
});
