import { describe, expect, it } from 'vitest';
import { plural } from './plural';
import { closest, didYouMean, editDistance } from './suggest';

describe('editDistance (optimal string alignment)', () => {
  it('counts inserts, deletes, substitutions, and a swap of neighbours as one edit', () => {
    expect(editDistance('', '')).toBe(0);
    expect(editDistance('target', 'target')).toBe(0);
    expect(editDistance('targt', 'target')).toBe(1);
    expect(editDistance('depoly', 'deploy')).toBe(1); // plain Levenshtein says 2
    expect(editDistance('lab3', 'lab-3')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('ca', 'abc')).toBe(3); // OSA, not unrestricted Damerau (2)
  });
  it('is symmetric', () => {
    for (const [a, b] of [['plan', 'pnal'], ['validate', 'valdiate'], ['x', 'provision']]) expect(editDistance(a!, b!)).toBe(editDistance(b!, a!));
  });
});

describe('closest', () => {
  const commands = ['init', 'validate', 'plan', 'provision', 'deploy', 'status'];
  it('suggests within a third of the word (at least 2 edits), case-insensitively', () => {
    expect(closest('depoly', commands)).toBe('deploy');
    expect(closest('VALIDTE', commands)).toBe('validate');
    expect(closest('stat', commands)).toBe('status');
    expect(closest('frobnicate', commands)).toBeUndefined();
  });
  it('takes a unique prefix as an abbreviation', () => {
    expect(closest('prov', commands)).toBe('provision');
    expect(closest('p', commands)).toBeUndefined();
  });
  it('formats a hint', () => {
    expect(didYouMean('lab3', ['reference-16', 'lab-3', 'solo-1'])).toBe('; did you mean lab-3?');
    expect(didYouMean('zzz', ['lab-3'])).toBe('');
  });
});

describe('plural', () => {
  it('says 1 node, 0 nodes, 3 entries', () => {
    expect(plural(1, 'node')).toBe('1 node');
    expect(plural(0, 'node')).toBe('0 nodes');
    expect(plural(3, 'entry', 'entries')).toBe('3 entries');
  });
});
