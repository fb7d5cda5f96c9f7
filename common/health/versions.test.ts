import { describe, expect, it } from 'vitest';
import type { LiveNodeHealth } from './now';
import { nodeVersionLines, slotText } from './versions';

const node = (name: string, version?: string, slot = 'a'): Pick<LiveNodeHealth, 'name' | 'artifact'> => ({
  name,
  artifact: version ? { read: true, version, buildDigest: 'd'.repeat(64), slot, ageSeconds: 3 } : { read: false, why: 'node exporter did not answer' },
});

describe('the version lines of the topology node boxes', () => {
  it('one version everywhere: nobody behind, not mixed', () => {
    expect(nodeVersionLines([node('master', '2026.12.2', 'b'), node('cp-1', '2026.12.2', 'b')])).toEqual({
      master: { version: '2026.12.2', slot: 'b', behind: false, mixed: false, newest: '2026.12.2' },
      'cp-1': { version: '2026.12.2', slot: 'b', behind: false, mixed: false, newest: '2026.12.2' },
    });
  });

  it('mid-upgrade: the nodes on an older version are behind the newest (semver order, not string order)', () => {
    const l = nodeVersionLines([node('master', '2026.9.1'), node('cp-1', '2026.12.2', 'b'), node('w-1', '2026.12.2-rc.1'), node('w-2')]);
    expect(l.master).toMatchObject({ behind: true, mixed: true, newest: '2026.12.2' });
    expect(l['w-1']).toMatchObject({ behind: true });
    expect(l['cp-1']).toMatchObject({ behind: false, mixed: true });
    expect(l['w-2']).toBeUndefined();
  });

  it('a version that cannot be ordered is shown but never judged behind', () => {
    const l = nodeVersionLines([node('master', 'dev-build'), node('cp-1', '0.2.0')]);
    expect(l.master).toMatchObject({ version: 'dev-build', behind: false, mixed: true, newest: '0.2.0' });
    expect(l['cp-1']).toMatchObject({ behind: false });
  });

  it('slot words', () => {
    expect([slotText('a'), slotText('b'), slotText('single'), slotText('unknown')]).toEqual(['slot a', 'slot b', 'one root', 'slot ?']);
  });
});
