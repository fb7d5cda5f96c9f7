import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareArtifactVersions } from './version';

describe('compareArtifactVersions', () => {
  it('orders releases and pre-releases as Semantic Versioning does', () => {
    const ordered = ['0.1.0', '0.1.1', '0.2.0-alpha', '0.2.0-alpha.1', '0.2.0-alpha.beta', '0.2.0-beta.2', '0.2.0-beta.11', '0.2.0-rc.1', '0.2.0', '0.10.0', '1.0.0'];
    for (let i = 0; i < ordered.length; i++)
      for (let j = 0; j < ordered.length; j++) expect(compareArtifactVersions(ordered[i]!, ordered[j]!), `${ordered[i]} vs ${ordered[j]}`).toBe(Math.sign(i - j));
  });
  it('ignores build metadata and refuses what is not a version', () => {
    expect(compareArtifactVersions('0.2.0+abc', '0.2.0+def')).toBe(0);
    expect(() => compareArtifactVersions('0.2', '0.2.0')).toThrow(/not an artifact version: "0.2"/);
  });
  it('is antisymmetric on release versions (fast-check)', () => {
    const v = fc.tuple(fc.nat(20), fc.nat(20), fc.nat(20)).map((t) => t.join('.'));
    fc.assert(fc.property(v, v, (a, b) => compareArtifactVersions(a, b) === -compareArtifactVersions(b, a)), { seed: 18, numRuns: 200 });
  });
});
