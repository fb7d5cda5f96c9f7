// What the lab tests check is gone after a stop or destroy: processes, by a path or name in
// their command line (read from /proc).
import { readdirSync, readFileSync } from 'node:fs';

/** Every process (but this one) whose command line mentions `needle`, as "PID: command". */
export function processesMentioning(needle: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(needle) && Number(pid) !== process.pid) out.push(`${pid}: ${cmd.slice(0, 200)}`);
    } catch {
      /* gone */
    }
  }
  return out;
}
