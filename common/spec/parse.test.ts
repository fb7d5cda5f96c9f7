import { describe, expect, it } from 'vitest';
import { parseSpec, MAX_SPEC_BYTES } from './parse';
import { TEMPLATE_NAMES, TEMPLATES } from './templates/index';

function lineOf(text: string, needle: string, nth = 0): number {
  let idx = -1;
  for (let i = 0; i <= nth; i++) idx = text.indexOf(needle, idx + 1);
  if (idx < 0) throw new Error(`needle not found: ${needle}`);
  return text.slice(0, idx).split('\n').length;
}

describe('parseSpec', () => {
  it.each(TEMPLATE_NAMES)('template %s validates with zero diagnostics', (name) => {
    const r = parseSpec(TEMPLATES[name].text);
    expect(r.diagnostics).toEqual([]);
    expect(r.spec?.apiVersion).toBe('kubedos.ca/v1alpha1');
  });

  it('reports one diagnostic per mistake, each on its own line, for typo + duplicate VMID + even etcd + overlapping planes', () => {
    let t = TEMPLATES['reference-16'].text;
    t = t.replace('        memoryMiB: 2048\n', '        memoryMB: 2048\n');
    t = t.replace('vmid: 2011', 'vmid: 2010');
    t = t.replace('name: etcd-3\n        role: etcd', 'name: etcd-3\n        role: worker');
    t = t.replace('cidr: 10.102.0.0/24', 'cidr: 10.101.0.0/23');
    const r = parseSpec(t);
    expect(r.spec).toBeUndefined();
    const errors = r.diagnostics.filter((d) => d.severity === 'error');
    expect(errors.map((d) => d.code).sort()).toEqual(['invariant.duplicate-vmid', 'invariant.etcd-count', 'invariant.plane-overlap', 'schema.unknown-field'].sort());
    const byCode = Object.fromEntries(errors.map((d) => [d.code, d]));
    expect(byCode['schema.unknown-field']!.line).toBe(lineOf(t, 'memoryMB'));
    expect(byCode['schema.unknown-field']!.message).toContain('did you mean "memoryMiB"');
    expect(byCode['invariant.duplicate-vmid']!.line).toBe(lineOf(t, 'vmid: 2010', 1));
    expect(byCode['invariant.plane-overlap']!.line).toBe(lineOf(t, 'cidr: 10.101.0.0/23'));
    expect(byCode['invariant.etcd-count']!.line).toBe(lineOf(t, 'etcd: external'));
  });

  it('points a wrong type at its value with what was expected', () => {
    const t = TEMPLATES['lab-3'].text.replace('cpu: 2', 'cpu: two');
    const r = parseSpec(t);
    expect(r.diagnostics).toHaveLength(1);
    expect(r.diagnostics[0]).toMatchObject({ code: 'schema.wrong-type', path: 'spec.nodes.inventory[1].cpu', line: lineOf(t, 'cpu: two'), column: 14 });
    expect(r.diagnostics[0]!.message).toMatch(/expected number, got "two"/);
  });

  it('lists the allowed values of an enum', () => {
    const t = TEMPLATES['lab-3'].text.replace('role: worker', 'role: wrker');
    const r = parseSpec(t);
    expect(r.diagnostics[0]!.message).toContain('"worker"');
    expect(r.diagnostics[0]!.line).toBe(lineOf(t, 'role: wrker'));
  });

  it('rejects a Proxmox tag with a colon and says how to write it', () => {
    const t = TEMPLATES['reference-16'].text.replace('        - reference\n', '        - artifact:0.1.0\n');
    const r = parseSpec(t);
    expect(r.diagnostics).toHaveLength(1);
    expect(r.diagnostics[0]!.message).toContain('artifact-0.1.0');
  });

  describe('bad input never throws and never hangs', () => {
    it('malformed YAML', () => {
      const r = parseSpec('apiVersion: [unclosed\nkind: Cluster\n');
      expect(r.spec).toBeUndefined();
      expect(r.diagnostics[0]!.code).toMatch(/^yaml\./);
      expect(r.diagnostics[0]!.line).toBeGreaterThanOrEqual(1);
    });
    it('duplicate keys', () => {
      const r = parseSpec(`${TEMPLATES['lab-3'].text}\nkind: Cluster\n`);
      expect(r.diagnostics.some((d) => d.code === 'yaml.duplicate_key')).toBe(true);
    });
    it('huge input (> 5 MiB)', () => {
      const r = parseSpec(`# ${'x'.repeat(MAX_SPEC_BYTES)}`);
      expect(r.diagnostics[0]!.code).toBe('input.too-large');
      const rb = parseSpec(new Uint8Array(MAX_SPEC_BYTES + 1));
      expect(rb.diagnostics[0]!.code).toBe('input.too-large');
    });
    it('alias bomb (billion laughs)', () => {
      const rows = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
      for (let i = 1; i < 9; i++) {
        const prev = String.fromCharCode(96 + i);
        const cur = String.fromCharCode(97 + i);
        rows.push(`${cur}: &${cur} [${Array(9).fill(`*${prev}`).join(',')}]`);
      }
      const started = Date.now();
      const r = parseSpec(rows.join('\n'));
      expect(Date.now() - started).toBeLessThan(5000);
      expect(r.diagnostics[0]!.code).toBe('yaml.alias-bomb');
    });
    it('deep nesting', () => {
      const r = parseSpec(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
      expect(r.diagnostics[0]!.code).toBe('yaml.too-deep');
    });
    it('non-UTF-8 bytes point at the offending byte', () => {
      const bytes = new Uint8Array([...new TextEncoder().encode('apiVersion: x\nkind: '), 0xc3, 0x28, 0x0a]);
      const r = parseSpec(bytes);
      expect(r.diagnostics[0]).toMatchObject({ code: 'input.not-utf8', line: 2, column: 7 });
    });
    it('binary content', () => {
      expect(parseSpec('a: b\u0000').diagnostics[0]!.code).toBe('input.binary');
    });
    it('empty document', () => {
      expect(parseSpec('').diagnostics[0]!.code).toBe('spec.empty');
    });
    it('a scalar or list instead of a mapping', () => {
      expect(parseSpec('- 1\n- 2\n').diagnostics[0]!.code).toBe('schema.wrong-type');
    });
  });
});

describe('parseSpec: one YAML mistake, one error', () => {
  const lines = TEMPLATES['lab-3'].text.split('\n');
  const withTab = (lineNo: number, tabs = '\t'): string => lines.map((l, i) => (i === lineNo - 1 ? l.replace(/^ {2}/, tabs) : l)).join('\n');
  const at = (needle: string): number => lines.findIndex((l) => l === needle) + 1;

  it('a tab in the indentation is one error at its line, with the fix, not a cascade', () => {
    // "  substrate:" with a tab: the parser alone reports 8 errors down to the end of the file.
    const line = at('  substrate:');
    const r = parseSpec(withTab(line));
    expect(r.spec).toBeUndefined();
    expect(r.diagnostics).toHaveLength(1);
    expect(r.diagnostics[0]).toMatchObject({ code: 'yaml.tab-as-indent', severity: 'error', line, column: 1, message: `tabs are not allowed for indentation in YAML; replace the tab at line ${line} with spaces` });
  });

  it('two tabs on a line and tabs on two lines: one error per line', () => {
    const a = at('  substrate:');
    const b = at('  networking:');
    const text = withTab(a, '\t\t')
      .split('\n')
      .map((l, i) => (i === b - 1 ? l.replace(/^ {2}/, '\t') : l))
      .join('\n');
    const r = parseSpec(text);
    expect(r.diagnostics.map((d) => [d.line, d.message])).toEqual([
      [a, `tabs are not allowed for indentation in YAML; replace the 2 tabs at line ${a} with spaces`],
      [b, `tabs are not allowed for indentation in YAML; replace the tab at line ${b} with spaces`],
    ]);
  });

  it('other syntax errors: at most one per line', () => {
    // A value indented one column too deep: the parser reports two errors on the same line.
    const mem = lines.findIndex((l) => l.trim() === 'memoryMiB: 1024');
    const text = lines.map((l, i) => (i === mem ? ` ${l}` : l)).join('\n');
    const r = parseSpec(text);
    const perLine = new Map<number, number>();
    for (const d of r.diagnostics) perLine.set(d.line, (perLine.get(d.line) ?? 0) + 1);
    expect(r.diagnostics.length).toBeGreaterThan(0);
    expect([...perLine.values()].every((n) => n === 1)).toBe(true);
  });
});
