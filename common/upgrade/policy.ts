// The upgrade policy gates (issue 18; docs/upgrades.md, "Channels, maintenance windows and stepping
// stones"): which release channel a cluster follows, when it may be upgraded, and from which version
// a build may be installed. Pure: the time is always passed in (epoch milliseconds), never read
// here; time zones through Intl, which Node and browsers both have.
import { z } from 'zod';
import type { ClusterSpec, MaintenanceWindow } from '../spec/schema';
import { UPGRADE_CHANNELS, UpgradeChannel, WEEKDAYS } from '../spec/schema';
import { firstFew } from '../text/first-few';
import { plural } from '../text/plural';
import { compareArtifactVersions } from './version';

export const DEFAULT_CHANNEL: UpgradeChannel = 'stable';

/** The spec's upgrade policy with its defaults (the schema leaves them out: schema.ts says why). */
export interface UpgradePolicy {
  channel: UpgradeChannel;
  /** Empty: any time. */
  maintenanceWindows: readonly MaintenanceWindow[];
  requiresAtLeast?: string;
}

export function upgradePolicyOf(spec: ClusterSpec): UpgradePolicy {
  const u = spec.spec.upgrades;
  return { channel: u?.channel ?? DEFAULT_CHANNEL, maintenanceWindows: u?.maintenanceWindows ?? [], ...(u?.requiresAtLeast ? { requiresAtLeast: u.requiresAtLeast } : {}) };
}

/** What a build's signed manifest records of its spec's policy (manifest.json "upgrade"). */
export const ArtifactUpgradePolicy = z.strictObject({
  channel: UpgradeChannel,
  requiresAtLeast: z.string().optional(),
});
export type ArtifactUpgradePolicy = z.infer<typeof ArtifactUpgradePolicy>;

/** The manifest's record for a build of `spec` (main/build writes it into manifest.json). */
export function artifactPolicyOf(spec: ClusterSpec): ArtifactUpgradePolicy {
  const p = upgradePolicyOf(spec);
  return { channel: p.channel, ...(p.requiresAtLeast ? { requiresAtLeast: p.requiresAtLeast } : {}) };
}

/** Reads manifest.json's "upgrade" field: absent (a build from before the gates) means channel
 * stable and no stepping stone; anything else that is not the schema is an error naming it. */
export function readArtifactPolicy(manifest: unknown): { ok: true; policy: ArtifactUpgradePolicy } | { ok: false; message: string } {
  const raw = typeof manifest === 'object' && manifest !== null ? (manifest as Record<string, unknown>).upgrade : undefined;
  if (raw === undefined) return { ok: true, policy: { channel: DEFAULT_CHANNEL } };
  const r = ArtifactUpgradePolicy.safeParse(raw);
  if (!r.success) return { ok: false, message: `manifest.json "upgrade" is not an upgrade policy this foundry reads (${r.error.issues.map((i) => `${i.path.join('.') || 'upgrade'}: ${i.message}`).join('; ')}): channel one of ${UPGRADE_CHANNELS.join(', ')}, requiresAtLeast a version` };
  if (r.data.requiresAtLeast !== undefined) {
    try {
      compareArtifactVersions(r.data.requiresAtLeast, '0.0.0');
    } catch (err) {
      return { ok: false, message: `manifest.json "upgrade.requiresAtLeast": ${(err as Error).message}` };
    }
  }
  return { ok: true, policy: r.data };
}

// ---------------------------------------------------------------- channels

const RANK: Record<UpgradeChannel, number> = { stable: 0, candidate: 1, edge: 2 };

export type ChannelCheck = { ok: true; follows: UpgradeChannel; overridden: boolean } | { ok: false; follows: UpgradeChannel };

/** A cluster following `clusterChannel` (or `override`, `--channel`, for this run) takes builds of
 * that channel or a more stable one: edge takes candidate and stable builds, stable only stable. */
export function channelCheck(clusterChannel: UpgradeChannel, artifactChannel: UpgradeChannel, override?: UpgradeChannel): ChannelCheck {
  const follows = override ?? clusterChannel;
  if (RANK[artifactChannel] > RANK[follows]) return { ok: false, follows };
  return { ok: true, follows, overridden: override !== undefined && override !== clusterChannel };
}

// ---------------------------------------------------------------- stepping stones

export type SteppingStone = { ok: true; requiresAtLeast?: string } | { ok: false; requiresAtLeast: string };

/** A cluster on `fromVersion` may install `artifact` only when it runs at least its stepping stone. */
export function steppingStone(fromVersion: string, artifact: { version: string; requiresAtLeast?: string }): SteppingStone {
  const req = artifact.requiresAtLeast;
  if (req === undefined) return { ok: true };
  return compareArtifactVersions(fromVersion, req) < 0 ? { ok: false, requiresAtLeast: req } : { ok: true, requiresAtLeast: req };
}

// ---------------------------------------------------------------- maintenance windows

export type WindowState =
  /** No window, or windows that leave no gap. */
  | { open: true; always: true }
  | { open: true; always: false; until: number }
  /** `closedAt`: when the last window before now closed. */
  | { open: false; next: number; closedAt?: number };

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The wall clock of `timeZone` at instant `t`, as if that wall clock were UTC (ms). */
function wallClock(t: number, timeZone: string): number {
  const p: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(new Date(t))) if (part.type !== 'literal') p[part.type] = Number(part.value);
  return Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!) + (t - Math.floor(t / 1000) * 1000);
}

/** The instant the wall clock of `timeZone` shows `wall` (a wall time written as UTC ms). A time the
 * zone skips (spring forward) is moved on by the gap; a repeated one (fall back) is its first. */
function instantOf(wall: number, timeZone: string): number {
  const before = wall - (wallClock(wall - DAY, timeZone) - (wall - DAY));
  const after = wall - (wallClock(wall + DAY, timeZone) - (wall + DAY));
  const valid = [before, after].filter((t) => wallClock(t, timeZone) === wall);
  return valid.length ? Math.min(...valid) : before;
}

/** Every opening of `w` whose local date is within [from, to] days of `now`'s local date. */
function openings(now: number, w: MaintenanceWindow, from: number, to: number): [number, number][] {
  const zone = w.timezone ?? 'UTC';
  const today = wallClock(now, zone);
  const midnight = today - (((today % DAY) + DAY) % DAY);
  const [hh, mm] = w.start.split(':').map(Number) as [number, number];
  const out: [number, number][] = [];
  for (let k = from; k <= to; k++) {
    const day = midnight + k * DAY;
    if (!w.days.includes(WEEKDAYS[new Date(day).getUTCDay()]!)) continue;
    const start = instantOf(day + hh * 60 * MINUTE + mm * MINUTE, zone);
    out.push([start, start + w.durationMinutes * MINUTE]);
  }
  return out;
}

/** Whether `now` (epoch ms) is inside one of `windows`: open until when, or closed with the next
 * opening. Windows that overlap or touch count as one. No window: always open. */
export function windowAt(now: number, windows: readonly MaintenanceWindow[]): WindowState {
  if (!windows.length) return { open: true, always: true };
  // Eight days back (the last closing of a weekly window) to ten ahead (its next opening is at most
  // 7 days and a zone's offset away).
  const spans = windows.flatMap((w) => openings(now, w, -8, 10)).sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [s, e] of spans) {
    const last = merged.at(-1);
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else merged.push([s, e]);
  }
  const inside = merged.find(([s, e]) => s <= now && now < e);
  // Open for more than 8 days on end: a weekly schedule without a gap.
  if (inside) return inside[1] - now > 8 * DAY ? { open: true, always: true } : { open: true, always: false, until: inside[1] };
  const next = merged.find(([s]) => s > now)![0];
  const closed = merged.filter(([, e]) => e <= now).at(-1);
  return { open: false, next, ...(closed ? { closedAt: closed[1] } : {}) };
}

// ---------------------------------------------------------------- words

/** "2026-12-06 04:00 UTC" (to the minute). */
export function utcMinute(t: number): string {
  return `${new Date(t).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** "3 d 4 h", "1 h 12 min", "12 min", "less than a minute". */
export function spanText(ms: number): string {
  const min = Math.floor(ms / MINUTE);
  if (min < 1) return 'less than a minute';
  const d = Math.floor(min / 1440);
  const h = Math.floor((min % 1440) / 60);
  const m = min % 60;
  if (d) return h ? `${d} d ${h} h` : `${d} d`;
  if (h) return m ? `${h} h ${m} min` : `${h} h`;
  return `${m} min`;
}

/** The preflight's line: "window: open until 04:00 UTC (1 h 12 min)", "… closed: the next opens …". */
export function windowText(now: number, state: WindowState): string {
  if (state.open && state.always) return 'no maintenance window set: any time';
  if (state.open) {
    const sameDay = new Date(state.until).toISOString().slice(0, 10) === new Date(now).toISOString().slice(0, 10);
    return `open until ${sameDay ? utcMinute(state.until).slice(11) : utcMinute(state.until)} (${spanText(state.until - now)})`;
  }
  return `closed: the next window opens ${utcMinute(state.next)} (in ${spanText(state.next - now)})`;
}

/** The apply loop's stop when the window closed before a node's first action. */
export function windowClosedStop(now: number, state: Extract<WindowState, { open: false }>, o: { version: string; onTarget: readonly string[]; untouched: readonly string[] }): string {
  const list = (names: readonly string[]): string => (names.length ? ` (${firstFew(names)})` : '');
  return `the maintenance window closed at ${utcMinute(state.closedAt ?? now)}: ${plural(o.onTarget.length, 'node')} on ${o.version}${list(o.onTarget)}, ${o.untouched.length} untouched${list(o.untouched)}; rerun in the next window (opens ${utcMinute(state.next)}, in ${spanText(state.next - now)}), or with --outside-window`;
}
