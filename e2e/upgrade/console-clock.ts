// A clock for serial consoles (VM tests only). QEMU's console log has no times; this samples, once
// a second, how long each watched log is and how much host CPU each VM's QEMU process has used, so
// a boot's phases (firmware, GRUB, kernel, agent, gate) can be put on the wall clock afterwards and
// a slow phase told apart from a starved VM.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';

export interface ClockSample {
  at: number;
  /** Bytes of each watched console log. */
  bytes: Record<string, number>;
  /** Host CPU seconds each VM's QEMU has used so far (utime + stime). */
  cpuS: Record<string, number>;
}

export interface Watched {
  name: string;
  serialLog: string;
  pidFile: string;
}

const TICKS = 100; // USER_HZ on Linux

function cpuSeconds(pidFile: string): number {
  try {
    const pid = readFileSync(pidFile, 'utf8').trim();
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICKS;
  } catch {
    return NaN;
  }
}

export function startConsoleClock(watched: readonly Watched[], everyMs = 1000): { stop: () => ClockSample[] } {
  const samples: ClockSample[] = [];
  const take = (): void => {
    const bytes: Record<string, number> = {};
    const cpuS: Record<string, number> = {};
    for (const w of watched) {
      bytes[w.name] = existsSync(w.serialLog) ? statSync(w.serialLog).size : 0;
      cpuS[w.name] = cpuSeconds(w.pidFile);
    }
    samples.push({ at: Date.now(), bytes, cpuS });
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
    out.push(`${((at - t0) / 1000).toFixed(0).padStart(4)} s  ${h.label}  (host CPU over the last step: ${cpuShares(samples, prevAt, at)})`);
    prevAt = at;
  }
  return out;
}

/** Each VM's share of one host core between two times, from the samples. */
function cpuShares(samples: readonly ClockSample[], from: number, to: number): string {
  const a = samples.find((s) => s.at >= from);
  const b = [...samples].reverse().find((s) => s.at <= to);
  if (!a || !b || b.at <= a.at) return 'n/a';
  return Object.keys(a.cpuS)
    .map((n) => `${n} ${Math.round((100 * ((b.cpuS[n] ?? NaN) - (a.cpuS[n] ?? NaN))) / ((b.at - a.at) / 1000))}%`)
    .join(', ');
}

export function writeClock(path: string, samples: readonly ClockSample[]): void {
  writeFileSync(path, `${samples.map((s) => JSON.stringify(s)).join('\n')}\n`);
}
