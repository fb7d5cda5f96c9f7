import { describe, expect, it } from 'vitest';
import { parseSpec } from '../spec/index';
import type { MaintenanceWindow } from '../spec/schema';
import { templateObject, toYaml } from '../testing/specs';
import { artifactPolicyOf, channelCheck, readArtifactPolicy, spanText, steppingStone, upgradePolicyOf, windowAt, windowClosedStop, windowText } from './policy';

const at = (iso: string): number => Date.parse(iso);
const w = (days: MaintenanceWindow['days'], start: string, durationMinutes: number, timezone?: string): MaintenanceWindow => ({ days, start, durationMinutes, ...(timezone ? { timezone } : {}) });

describe('windowAt', () => {
  it('no window: always open', () => {
    expect(windowAt(at('2026-12-05T12:00:00Z'), [])).toEqual({ open: true, always: true });
  });

  it('a window crossing midnight and the end of the week (Saturday 22:00 UTC for 4 h)', () => {
    const sat = [w(['sat'], '22:00', 240)];
    // 2026-12-05 is a Saturday.
    expect(windowAt(at('2026-12-05T21:59:00Z'), sat)).toEqual({ open: false, next: at('2026-12-05T22:00:00Z'), closedAt: at('2026-11-29T02:00:00Z') });
    expect(windowAt(at('2026-12-05T22:00:00Z'), sat)).toEqual({ open: true, always: false, until: at('2026-12-06T02:00:00Z') });
    expect(windowAt(at('2026-12-06T01:59:59Z'), sat)).toEqual({ open: true, always: false, until: at('2026-12-06T02:00:00Z') });
    // Sunday 02:00: closed (the end is not in the window), the next opening a week later.
    expect(windowAt(at('2026-12-06T02:00:00Z'), sat)).toEqual({ open: false, next: at('2026-12-12T22:00:00Z'), closedAt: at('2026-12-06T02:00:00Z') });
  });

  it('weekday windows: from Friday after the window to Monday across the weekend', () => {
    const weekdays = [w(['mon', 'tue', 'wed', 'thu', 'fri'], '02:00', 60)];
    expect(windowAt(at('2026-12-04T03:30:00Z'), weekdays)).toEqual({ open: false, next: at('2026-12-07T02:00:00Z'), closedAt: at('2026-12-04T03:00:00Z') });
    expect(windowAt(at('2026-12-07T02:30:00Z'), weekdays)).toEqual({ open: true, always: false, until: at('2026-12-07T03:00:00Z') });
  });

  it('windows that touch or overlap are one; a gap keeps them apart; no gap at all is always open', () => {
    const touching = [w(['mon'], '01:00', 90), w(['mon'], '02:30', 60)];
    expect(windowAt(at('2026-12-07T01:10:00Z'), touching)).toEqual({ open: true, always: false, until: at('2026-12-07T03:30:00Z') });
    const gap = [w(['mon'], '01:00', 89), w(['mon'], '02:30', 60)];
    expect(windowAt(at('2026-12-07T01:10:00Z'), gap)).toEqual({ open: true, always: false, until: at('2026-12-07T02:29:00Z') });
    expect(windowAt(at('2026-12-07T02:29:30Z'), gap)).toMatchObject({ open: false, next: at('2026-12-07T02:30:00Z') });
    expect(windowAt(at('2026-12-07T01:10:00Z'), [w(['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'], '00:00', 1440)])).toEqual({ open: true, always: true });
    // Six days of 24 h: open until the gap, not "always".
    expect(windowAt(at('2026-12-07T01:10:00Z'), [w(['sun', 'mon', 'tue', 'wed', 'thu', 'fri'], '00:00', 1440)])).toEqual({ open: true, always: false, until: at('2026-12-12T00:00:00Z') });
  });

  it('a time zone: the days and start are its wall clock (America/New_York, Saturday 23:00 EST is Sunday 04:00 UTC)', () => {
    const ny = [w(['sat'], '23:00', 120, 'America/New_York')];
    expect(windowAt(at('2026-12-06T03:59:00Z'), ny)).toMatchObject({ open: false, next: at('2026-12-06T04:00:00Z') });
    expect(windowAt(at('2026-12-06T05:00:00Z'), ny)).toEqual({ open: true, always: false, until: at('2026-12-06T06:00:00Z') });
  });

  it('daylight saving (Europe/Paris): the skipped hour opens that much later, the repeated hour at its first occurrence', () => {
    const paris = [w(['sun'], '02:30', 60, 'Europe/Paris')];
    // A winter Sunday: 02:30 CET = 01:30 UTC.
    expect(windowAt(at('2026-03-22T00:00:00Z'), paris)).toMatchObject({ open: false, next: at('2026-03-22T01:30:00Z') });
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST, 02:30 does not exist: it opens at 03:30 CEST (01:30 UTC), for 60 min.
    expect(windowAt(at('2026-03-29T00:00:00Z'), paris)).toMatchObject({ open: false, next: at('2026-03-29T01:30:00Z') });
    expect(windowAt(at('2026-03-29T02:00:00Z'), paris)).toEqual({ open: true, always: false, until: at('2026-03-29T02:30:00Z') });
    // A summer Sunday: 02:30 CEST = 00:30 UTC.
    expect(windowAt(at('2026-04-04T12:00:00Z'), paris)).toMatchObject({ open: false, next: at('2026-04-05T00:30:00Z') });
    // 2026-10-25: 03:00 CEST falls back to 02:00 CET, 02:30 happens twice: the first (00:30 UTC), 60 min of elapsed time.
    expect(windowAt(at('2026-10-25T00:00:00Z'), paris)).toMatchObject({ open: false, next: at('2026-10-25T00:30:00Z') });
    expect(windowAt(at('2026-10-25T01:00:00Z'), paris)).toEqual({ open: true, always: false, until: at('2026-10-25T01:30:00Z') });
  });

  it('says it in words: until (same day: the time only), in how long', () => {
    const now = at('2026-12-05T02:48:00Z');
    expect(windowText(now, windowAt(now, [w(['sat'], '02:00', 120)]))).toBe('open until 04:00 UTC (1 h 12 min)');
    expect(windowText(now, windowAt(now, [w(['fri'], '23:00', 360)]))).toBe('open until 05:00 UTC (2 h 12 min)');
    expect(windowText(now, windowAt(now, [w(['sun'], '01:00', 60)]))).toBe('closed: the next window opens 2026-12-06 01:00 UTC (in 22 h 12 min)');
    expect(windowText(at('2026-12-05T23:00:00Z'), windowAt(at('2026-12-05T23:00:00Z'), [w(['sat'], '22:00', 240)]))).toBe('open until 2026-12-06 02:00 UTC (3 h)');
    expect(windowText(now, windowAt(now, []))).toBe('no maintenance window set: any time');
    expect([spanText(30_000), spanText(60_000), spanText(3 * 86_400_000 + 4 * 3_600_000 + 59_000)]).toEqual(['less than a minute', '1 min', '3 d 4 h']);
    const closed = windowAt(at('2026-12-05T04:10:00Z'), [w(['sat'], '02:00', 120)]);
    if (closed.open) throw new Error('expected closed');
    expect(windowClosedStop(at('2026-12-05T04:10:00Z'), closed, { version: '0.2.0', onTarget: ['cp-1'], untouched: ['w-1', 'master'] })).toBe(
      'the maintenance window closed at 2026-12-05 04:00 UTC: 1 node on 0.2.0 (cp-1), 2 untouched (w-1, master); rerun in the next window (opens 2026-12-12 02:00 UTC, in 6 d 21 h), or with --outside-window',
    );
  });
});

describe('channelCheck', () => {
  it('takes builds of the channel followed or a more stable one; --channel for this run', () => {
    expect(channelCheck('stable', 'stable')).toEqual({ ok: true, follows: 'stable', overridden: false });
    expect(channelCheck('stable', 'candidate')).toEqual({ ok: false, follows: 'stable' });
    expect(channelCheck('stable', 'edge')).toEqual({ ok: false, follows: 'stable' });
    expect(channelCheck('stable', 'candidate', 'candidate')).toEqual({ ok: true, follows: 'candidate', overridden: true });
    expect(channelCheck('edge', 'stable')).toEqual({ ok: true, follows: 'edge', overridden: false });
    expect(channelCheck('candidate', 'edge')).toEqual({ ok: false, follows: 'candidate' });
    expect(channelCheck('edge', 'candidate', 'stable')).toEqual({ ok: false, follows: 'stable' });
    expect(channelCheck('edge', 'edge', 'edge')).toEqual({ ok: true, follows: 'edge', overridden: false });
  });
});

describe('steppingStone', () => {
  it('refuses a cluster below the build\'s stepping stone, by Semantic Versioning order', () => {
    expect(steppingStone('0.1.0', { version: '0.3.0' })).toEqual({ ok: true });
    expect(steppingStone('0.1.9', { version: '0.3.0', requiresAtLeast: '0.2.0' })).toEqual({ ok: false, requiresAtLeast: '0.2.0' });
    expect(steppingStone('0.2.0-rc.1', { version: '0.3.0', requiresAtLeast: '0.2.0' })).toEqual({ ok: false, requiresAtLeast: '0.2.0' });
    expect(steppingStone('0.2.0', { version: '0.3.0', requiresAtLeast: '0.2.0' })).toEqual({ ok: true, requiresAtLeast: '0.2.0' });
    expect(steppingStone('0.2.10', { version: '0.3.0', requiresAtLeast: '0.2.9' })).toEqual({ ok: true, requiresAtLeast: '0.2.9' });
  });
});

describe('the policy in the spec and in a build manifest', () => {
  const specWith = (upgrades: unknown) => {
    const obj = templateObject('lab-3');
    obj.spec.upgrades = upgrades;
    return parseSpec(toYaml(obj));
  };

  it('spec.upgrades: channel, windows (validated), stepping stone; absent fields keep no default in the parsed spec', () => {
    const ok = specWith({ diskLayout: 'ab', channel: 'candidate', requiresAtLeast: '0.0.9', maintenanceWindows: [{ days: ['sat', 'sun'], start: '22:30', durationMinutes: 240, timezone: 'Europe/Paris' }] });
    if (!ok.spec) throw new Error(ok.diagnostics.map((d) => d.message).join('; '));
    expect(upgradePolicyOf(ok.spec)).toEqual({ channel: 'candidate', requiresAtLeast: '0.0.9', maintenanceWindows: [{ days: ['sat', 'sun'], start: '22:30', durationMinutes: 240, timezone: 'Europe/Paris' }] });
    // The plan hashes the parsed spec: an upgrades block without the new fields parses as before.
    expect(specWith({ diskLayout: 'ab' }).spec!.spec.upgrades).toEqual({ diskLayout: 'ab' });
    expect(upgradePolicyOf(specWith({ diskLayout: 'ab' }).spec!)).toEqual({ channel: 'stable', maintenanceWindows: [] });
    // What a build of the spec records in its signed manifest (main/build/index.ts): channel and stepping stone, never the windows.
    expect(artifactPolicyOf(ok.spec)).toEqual({ channel: 'candidate', requiresAtLeast: '0.0.9' });
    expect(artifactPolicyOf(specWith(undefined).spec!)).toEqual({ channel: 'stable' });
    const bad = (u: unknown): string => specWith(u).diagnostics.map((d) => d.message).join('; ');
    expect(bad({ channel: 'stabel' })).toMatch(/stable|candidate|edge/);
    expect(bad({ maintenanceWindows: [{ days: ['sat'], start: '24:00', durationMinutes: 60 }] })).toMatch(/HH:MM/);
    expect(bad({ maintenanceWindows: [{ days: ['sat', 'sat'], start: '02:00', durationMinutes: 60 }] })).toMatch(/each day at most once/);
    expect(bad({ maintenanceWindows: [{ days: [], start: '02:00', durationMinutes: 60 }] })).not.toBe('');
    expect(bad({ maintenanceWindows: [{ days: ['sat'], start: '02:00', durationMinutes: 1441 }] })).not.toBe('');
    expect(bad({ maintenanceWindows: [{ days: ['sat'], start: '02:00', durationMinutes: 60, timezone: 'Mars/Olympus' }] })).toMatch(/IANA time zone/);
    expect(bad({ requiresAtLeast: 'two' })).toMatch(/semantic version/);
  });

  it('a manifest without "upgrade" (built before the gates) is channel stable with no stepping stone; a bad one is named', () => {
    expect(readArtifactPolicy({ artifactVersion: '0.1.0' })).toEqual({ ok: true, policy: { channel: 'stable' } });
    expect(readArtifactPolicy({ upgrade: { channel: 'edge', requiresAtLeast: '0.2.0' } })).toEqual({ ok: true, policy: { channel: 'edge', requiresAtLeast: '0.2.0' } });
    expect(readArtifactPolicy({ upgrade: { channel: 'nightly' } })).toMatchObject({ ok: false, message: expect.stringMatching(/^manifest\.json "upgrade" is not an upgrade policy this foundry reads \(channel: .*\): channel one of stable, candidate, edge/) });
    expect(readArtifactPolicy({ upgrade: { channel: 'stable', requiresAtLeast: 'soon' } })).toMatchObject({ ok: false, message: expect.stringMatching(/requiresAtLeast.*not an artifact version/) });
  });
});

describe('the stepping stone invariant', () => {
  it('a stepping stone not older than the build itself is an error on spec.upgrades.requiresAtLeast', () => {
    const obj = templateObject('lab-3');
    obj.metadata.artifactVersion = '0.3.0';
    obj.spec.upgrades = { requiresAtLeast: '0.3.0' };
    const r = parseSpec(toYaml(obj));
    expect(r.spec).toBeUndefined();
    expect(r.diagnostics).toMatchObject([{ code: 'invariant.stepping-stone-not-older', severity: 'error', path: 'spec.upgrades.requiresAtLeast', message: expect.stringMatching(/^upgrades\.requiresAtLeast is 0\.3\.0, not older than this build's metadata\.artifactVersion 0\.3\.0/) }]);
    obj.spec.upgrades = { requiresAtLeast: '0.2.0' };
    expect(parseSpec(toYaml(obj)).spec?.spec.upgrades?.requiresAtLeast).toBe('0.2.0');
  });
});
