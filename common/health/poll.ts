// Keeping the cluster's health now current: the one read loop behind the topology's live health
// (renderer/features/topology/LiveHealth.tsx) and `kubedos status --health --watch`. At most one
// read in flight; the next read is scheduled only when the last one has finished (never on a
// fixed clock, so reads cannot pile up behind a slow hub); a read that failed (the hub did not
// answer, the report is stale, the request itself failed) doubles the wait, up to
// HEALTH_POLL_MAX_BACKOFF_S; no read while paused or while the window is hidden. Pure: the timers
// and the clock are arguments.
import type { ClusterHealthNow } from './now';

/** The topology's and `status --watch`'s default: one read every 15 s. */
export const HEALTH_POLL_DEFAULT_S = 15;
/** The intervals the workbench offers. */
export const HEALTH_POLL_CHOICES_S = [5, 15, 30, 60] as const;
/** The longest wait between reads after failures (the interval doubles per failed read up to this). */
export const HEALTH_POLL_MAX_BACKOFF_S = 240;
/** The shortest interval `status --watch --interval` accepts. */
export const HEALTH_POLL_MIN_S = 2;

/**
 * Why a read gave no usable picture, when it was a failure that may pass (the hub did not answer,
 * the report is stale): the last good picture stays shown, marked stale. Undefined when the read
 * gave a picture, or when the journal answered for sure (never deployed here, stopped): nothing to keep then.
 */
export function readFailure(h: ClusterHealthNow): { code: 'unreadable' | 'stale'; message: string } | undefined {
  const u = h.unavailable;
  return u && (u.code === 'unreadable' || u.code === 'stale') ? { code: u.code, message: u.message } : undefined;
}

/** Seconds to wait before the next read after `failures` failed reads in a row. */
export function nextReadDelayS(intervalS: number, failures: number): number {
  if (failures <= 0) return intervalS;
  return Math.max(intervalS, Math.min(HEALTH_POLL_MAX_BACKOFF_S, intervalS * 2 ** Math.min(failures, 16)));
}

export interface PollTimers {
  set: (fn: () => void, ms: number) => unknown;
  clear: (handle: unknown) => void;
  /** Epoch milliseconds. */
  now: () => number;
}

export interface PollSnapshot {
  inFlight: boolean;
  paused: boolean;
  hidden: boolean;
  intervalS: number;
  /** Failed reads in a row (the back-off). */
  failures: number;
  /** Epoch ms of the next scheduled read (none while paused, hidden, in flight or stopped). */
  nextAt?: number;
  /** Reads started so far. */
  reads: number;
}

export type PollOutcome<T> = { ok: true; value: T } | { ok: false; error: Error };

export interface Poller {
  /** Reads now (unless a read is in flight: then nothing happens and false is returned), also when paused. */
  readNow: () => boolean;
  pause: () => void;
  /** Resumes; reads at once if the next read is due. */
  resume: () => void;
  /** The window or tab is hidden (no reads) or visible again (reads at once if due). */
  setHidden: (hidden: boolean) => void;
  setIntervalS: (s: number) => void;
  /** No more reads; a read in flight is ignored when it ends. */
  stop: () => void;
  snapshot: () => PollSnapshot;
}

/**
 * A read loop: `start` reads at once (unless paused or hidden). `failed` says whether a value is a
 * failed read (back-off); a rejected read is one too. `onChange` is called after each change of the snapshot.
 */
export function createPoller<T>(o: {
  read: () => Promise<T>;
  failed: (value: T) => boolean;
  intervalS: number;
  timers: PollTimers;
  onOutcome: (outcome: PollOutcome<T>, at: number) => void;
  onChange?: (s: PollSnapshot) => void;
  paused?: boolean;
  hidden?: boolean;
  start?: boolean;
}): Poller {
  const s = { inFlight: false, paused: o.paused ?? false, hidden: o.hidden ?? false, intervalS: o.intervalS, failures: 0, reads: 0, stopped: false };
  let handle: unknown;
  let nextAt: number | undefined;
  /** Epoch ms of the last finished read. */
  let lastEnd: number | undefined;
  const snapshot = (): PollSnapshot => ({ inFlight: s.inFlight, paused: s.paused, hidden: s.hidden, intervalS: s.intervalS, failures: s.failures, reads: s.reads, ...(nextAt !== undefined ? { nextAt } : {}) });
  const changed = (): void => o.onChange?.(snapshot());
  const unschedule = (): void => {
    if (handle !== undefined) o.timers.clear(handle);
    handle = undefined;
    nextAt = undefined;
  };
  const due = (): number => (lastEnd === undefined ? o.timers.now() : lastEnd + nextReadDelayS(s.intervalS, s.failures) * 1000);
  const schedule = (): void => {
    unschedule();
    if (s.stopped || s.paused || s.hidden || s.inFlight) return;
    const at = due();
    const wait = Math.max(0, at - o.timers.now());
    if (wait === 0) {
      readNow();
      return;
    }
    nextAt = at;
    handle = o.timers.set(() => {
      handle = undefined;
      nextAt = undefined;
      readNow();
    }, wait);
  };
  const finish = (outcome: PollOutcome<T>): void => {
    if (s.stopped) return;
    s.inFlight = false;
    lastEnd = o.timers.now();
    s.failures = !outcome.ok || o.failed(outcome.value) ? s.failures + 1 : 0;
    o.onOutcome(outcome, lastEnd);
    schedule();
    changed();
  };
  function readNow(): boolean {
    if (s.stopped || s.inFlight) return false;
    unschedule();
    s.inFlight = true;
    s.reads++;
    changed();
    let p: Promise<T>;
    try {
      p = o.read();
    } catch (err) {
      p = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    p.then(
      (value) => finish({ ok: true, value }),
      (err: unknown) => finish({ ok: false, error: err instanceof Error ? err : new Error(String(err)) }),
    );
    return true;
  }
  const poller: Poller = {
    readNow,
    pause: () => {
      s.paused = true;
      unschedule();
      changed();
    },
    resume: () => {
      s.paused = false;
      schedule();
      changed();
    },
    setHidden: (hidden) => {
      if (s.hidden === hidden) return;
      s.hidden = hidden;
      schedule();
      changed();
    },
    setIntervalS: (sec) => {
      s.intervalS = sec;
      schedule();
      changed();
    },
    stop: () => {
      s.stopped = true;
      unschedule();
    },
    snapshot,
  };
  if (o.start !== false) schedule();
  return poller;
}
