// Pure: where a converge's time went, from ansible-playbook's own log (ANSIBLE_LOG_PATH, each line
// stamped by ansible's logger on the master). Under the linear strategy a task ends when its last
// host is done, so a task's time is from its TASK (or RUNNING HANDLER) line to the next marker; the
// last one ends at PLAY RECAP. Nothing here is hashed: it is what the run log says afterwards.

import { fmtMs } from '../../common/text/duration';

export interface TaskTiming {
  /** As ansible names it: "role : task name" (or the play's own task name). */
  name: string;
  kind: 'task' | 'handler';
  play: string;
  ms: number;
}

export interface ConvergeTimings {
  /** From the first PLAY line to PLAY RECAP (or the log's last stamped line when the run ended without one). */
  totalMs: number;
  tasks: TaskTiming[];
  /** false: the log ends without PLAY RECAP (the run was cut short; its last task's time is up to the last line). */
  complete: boolean;
}

// "2026-12-06 16:40:01,123 p=1234 u=root n=ansible | TASK [role : name] ****"
const STAMPED = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d),(\d{3}) p=\d+ u=\S+ n=\S+ \| (.*)$/;

/**
 * Pure: one line of ansible's log (ANSIBLE_LOG_PATH) split into its stamp (ms since epoch, the
 * master's clock read as UTC) and its text; undefined for a line without the stamp (the further
 * lines of a multi-line message).
 */
export function ansibleLogLine(line: string): { at: number; text: string } | undefined {
  const m = STAMPED.exec(line);
  if (!m) return undefined;
  return { at: Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, +m[7]!), text: m[8]! };
}
const MARKER = /^(PLAY|TASK|RUNNING HANDLER) \[(.*)\] \**$/;

/** Pure: each task's time in an ansible log; undefined when the log has no stamped PLAY line. */
export function convergeTimings(log: string): ConvergeTimings | undefined {
  const tasks: TaskTiming[] = [];
  let first: number | undefined;
  let last: number | undefined;
  let open: { name: string; kind: TaskTiming['kind']; play: string; at: number } | undefined;
  let play = '';
  let complete = false;
  for (const line of log.split('\n')) {
    const stamped = ansibleLogLine(line);
    if (!stamped) continue;
    const { at } = stamped;
    const text = stamped.text.trimEnd();
    last = at;
    const recap = /^PLAY RECAP \**$/.test(text);
    const mk = MARKER.exec(text);
    if (!recap && !mk) continue;
    if (open) tasks.push({ name: open.name, kind: open.kind, play: open.play, ms: Math.max(0, at - open.at) });
    open = undefined;
    if (recap) {
      complete = true;
      break;
    }
    if (mk![1] === 'PLAY') {
      first ??= at;
      play = mk![2]!;
    } else if (first !== undefined) open = { name: mk![2]!, kind: mk![1] === 'TASK' ? 'task' : 'handler', play, at };
  }
  if (first === undefined || last === undefined) return undefined;
  if (open) tasks.push({ name: open.name, kind: open.kind, play: open.play, ms: Math.max(0, last - open.at) });
  return { totalMs: Math.max(0, last - first), tasks, complete };
}

/** Pure: one line for the run log: the time in ansible, the tasks' median, the slowest `n` with their share. */
export function timingsLine(t: ConvergeTimings, n = 5): string {
  if (!t.tasks.length) return `ansible ran ${fmtMs(t.totalMs)} and reached no task${t.complete ? '' : ' (its log ends before PLAY RECAP)'}`;
  const sorted = [...t.tasks].sort((a, b) => b.ms - a.ms || a.name.localeCompare(b.name));
  const ms = t.tasks.map((x) => x.ms).sort((a, b) => a - b);
  const median = ms.length % 2 ? ms[(ms.length - 1) / 2]! : (ms[ms.length / 2 - 1]! + ms[ms.length / 2]!) / 2;
  const top = sorted.slice(0, n);
  const share = t.totalMs > 0 ? Math.round((100 * top.reduce((a, x) => a + x.ms, 0)) / t.totalMs) : 0;
  const what = `${t.tasks.length} task${t.tasks.length === 1 ? '' : 's'}`;
  return `time in ansible ${fmtMs(t.totalMs)}${t.complete ? '' : ' (its log ends before PLAY RECAP)'}: ${what}, median ${fmtMs(median)} each; ${top.length === 1 ? 'the slowest' : `the ${top.length} slowest`} (${share}% of it): ${top.map((x) => `${x.kind === 'handler' ? 'handler ' : ''}${x.name} ${fmtMs(x.ms)}`).join(', ')}`;
}
