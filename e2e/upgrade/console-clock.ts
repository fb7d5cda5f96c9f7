// A clock for serial consoles (VM tests only). QEMU's console log has no times; this samples, once
// a second, how long each watched log is and how much host CPU each VM's QEMU process has used, so
// a boot's phases (firmware, GRUB, kernel, agent, gate) can be put on the wall clock afterwards and
// a slow phase told apart from a starved VM.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';

export interface ClockSample {
  at: number;
  /** Bytes of each watched console log. */
  bytes: Record<string, number>;
  /** Host CPU seconds each VM's QEMU has used so far (utime + stime). */
  cpuS: Record<string, number>;
  /** The same per QEMU thread (QEMU names them: "CPU 0/TCG", "IO io-scsi0", the main loop "qemu-system-x86"), per VM. */
  threadS?: Record<string, Record<string, number>>;
}

export interface Watched {
  name: string;
  serialLog: string;
  pidFile: string;
}

const TICKS = 100; // USER_HZ on Linux

/** utime + stime of a /proc stat line, in seconds, and its comm. */
function statCpu(stat: string): { comm: string; s: number } {
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), s: (Number(f[11]) + Number(f[12])) / TICKS };
}

function cpuSeconds(pidFile: string): { total: number; threads: Record<string, number> } {
  try {
    const pid = readFileSync(pidFile, 'utf8').trim();
    const threads: Record<string, number> = {};
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const t = statCpu(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
        threads[t.comm] = (threads[t.comm] ?? 0) + t.s;
      } catch {
        /* a thread that ended */
      }
    }
    return { total: statCpu(readFileSync(`/proc/${pid}/stat`, 'utf8')).s, threads };
  } catch {
    return { total: NaN, threads: {} };
  }
}

export function startConsoleClock(watched: readonly Watched[], everyMs = 1000): { stop: () => ClockSample[] } {
  const samples: ClockSample[] = [];
  const take = (): void => {
    const bytes: Record<string, number> = {};
    const cpuS: Record<string, number> = {};
    const threadS: Record<string, Record<string, number>> = {};
    for (const w of watched) {
      bytes[w.name] = existsSync(w.serialLog) ? statSync(w.serialLog).size : 0;
      const c = cpuSeconds(w.pidFile);
      cpuS[w.name] = c.total;
      threadS[w.name] = c.threads;
    }
    samples.push({ at: Date.now(), bytes, cpuS, threadS });
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

/** When the log of `name` first held `offset` bytes (the first sample at or past it). */
function timeOfOffset(samples: readonly ClockSample[], name: string, offset: number): number | undefined {
  return samples.find((s) => (s.bytes[name] ?? 0) >= offset)?.at;
}

/**
 * Each marker's occurrences in `text` (the log of `name` from byte `from`), on the wall clock, in
 * seconds since `t0`, with the host CPU share each VM had over the step before it.
 */
export function consoleTimeline(samples: readonly ClockSample[], name: string, from: number, text: string, markers: Record<string, RegExp>, t0: number): string[] {
  const hits: { label: string; offset: number }[] = [];
  for (const [label, re] of Object.entries(markers)) {
    const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`);
    for (const m of text.matchAll(g)) hits.push({ label, offset: from + (m.index ?? 0) + m[0].length });
  }
  hits.sort((a, b) => a.offset - b.offset);
  const out: string[] = [];
  let prevAt = t0;
  for (const h of hits) {
    const at = timeOfOffset(samples, name, h.offset);
    if (at === undefined) continue;
    out.push(`${((at - t0) / 1000).toFixed(0).padStart(4)} s  ${h.label}  (host CPU over the last step: ${cpuShares(samples, prevAt, at)}; ${name}'s busiest threads: ${threadShares(samples, name, prevAt, at)})`);
    prevAt = at;
  }
  return out;
}

/** The first sample at or after `from` and the last at or before `to`, when they span some time. */
function span(samples: readonly ClockSample[], from: number, to: number): { a: ClockSample; b: ClockSample; secs: number } | undefined {
  const a = samples.find((s) => s.at >= from);
  const b = samples.findLast((s) => s.at <= to);
  return a && b && b.at > a.at ? { a, b, secs: (b.at - a.at) / 1000 } : undefined;
}

/** CPU seconds over a span as a share of one host core; a count that went back means QEMU was started again (a power cycle). */
function share(before: number, after: number, secs: number): string {
  return after < before ? 'restarted' : `${Math.round((100 * (after - before)) / secs)}%`;
}

/** Each VM's share of one host core between two times, from the samples. */
function cpuShares(samples: readonly ClockSample[], from: number, to: number): string {
  const w = span(samples, from, to);
  if (!w) return 'n/a';
  return Object.keys(w.a.cpuS)
    .map((n) => `${n} ${share(w.a.cpuS[n] ?? NaN, w.b.cpuS[n] ?? NaN, w.secs)}`)
    .join(', ');
}

/** The two busiest QEMU threads of one VM between two times, each as a share of one host core. */
function threadShares(samples: readonly ClockSample[], name: string, from: number, to: number): string {
  const w = span(samples, from, to);
  const before = w?.a.threadS?.[name];
  const after = w?.b.threadS?.[name];
  if (!w || !before || !after) return 'n/a';
  if ((w.b.cpuS[name] ?? 0) < (w.a.cpuS[name] ?? 0)) return 'restarted';
  return Object.entries(after)
    .map(([comm, s]) => ({ comm, pct: Math.round((100 * (s - (before[comm] ?? 0))) / w.secs) }))
    .sort((x, y) => y.pct - x.pct || x.comm.localeCompare(y.comm))
    .slice(0, 2)
    .map((t) => `${t.comm} ${t.pct}%`)
    .join(', ');
}

export function writeClock(path: string, samples: readonly ClockSample[]): void {
  writeFileSync(path, `${samples.map((s) => JSON.stringify(s)).join('\n')}\n`);
}
