import { describe, expect, it } from 'vitest';
import { ansibleLogLine, convergeTimings, timingsLine } from './converge-timings';

const at = (t: string, text: string): string => `2026-12-06 ${t} p=4711 u=root n=ansible | ${text}`;

// As ansible-playbook writes ANSIBLE_LOG_PATH on the master: stamped lines, continuation lines unstamped.
const LOG = [
  at('16:40:00,000', 'PLAY [Baseline hardening] ******************************'),
  at('16:40:00,500', 'TASK [kubedos_baseline : SSH daemon hardening drop-in] *****'),
  at('16:40:09,000', 'changed: [cp-1]'),
  at('16:40:10,500', 'TASK [kubedos_baseline : Auditd runs] ***'),
  at('16:41:40,500', 'changed: [cp-1]'),
  at('16:41:40,500', 'RUNNING HANDLER [kubedos_baseline : Reload sshd] ***'),
  at('16:41:44,000', 'changed: [cp-1]'),
  at('16:41:45,000', 'PLAY [Etcd on wg3] ***'),
  at('16:41:45,200', 'TASK [kubedos_etcd : Etcd runs] ***'),
  at('16:44:45,200', 'fatal: [cp-1]: FAILED! => {"msg": "first line'),
  'a continuation line without a stamp',
  at('16:44:45,200', 'PLAY RECAP *********************************************'),
  at('16:44:45,300', 'cp-1 : ok=3 changed=3 unreachable=0 failed=1'),
].join('\n');

describe('converge timings from ansible\'s own log', () => {
  it('one log line: its stamp (UTC ms) and its text, the text kept whole (a " | " inside it too); an unstamped line is not one', () => {
    expect(ansibleLogLine(at('16:40:09,250', 'changed: [cp-1] => (item=a | b)'))).toEqual({ at: Date.UTC(2026, 11, 6, 16, 40, 9, 250), text: 'changed: [cp-1] => (item=a | b)' });
    expect(ansibleLogLine('a continuation line without a stamp')).toBeUndefined();
    expect(ansibleLogLine('p=1 u=root n=ansible | no date before it')).toBeUndefined();
  });

  it('each task from its line to the next marker; the last ends at PLAY RECAP; the total from the first PLAY', () => {
    const t = convergeTimings(LOG)!;
    expect(t.complete).toBe(true);
    expect(t.totalMs).toBe(285_200);
    expect(t.tasks).toEqual([
      { name: 'kubedos_baseline : SSH daemon hardening drop-in', kind: 'task', play: 'Baseline hardening', ms: 10_000 },
      { name: 'kubedos_baseline : Auditd runs', kind: 'task', play: 'Baseline hardening', ms: 90_000 },
      { name: 'kubedos_baseline : Reload sshd', kind: 'handler', play: 'Baseline hardening', ms: 4500 },
      { name: 'kubedos_etcd : Etcd runs', kind: 'task', play: 'Etcd on wg3', ms: 180_000 },
    ]);
    expect(timingsLine(t, 2)).toBe('time in ansible 4m45s: 4 tasks, median 50.0 s each; the 2 slowest (95% of it): kubedos_etcd : Etcd runs 3m00s, kubedos_baseline : Auditd runs 1m30s');
  });

  it('a log cut short (no PLAY RECAP): the open task runs to the last stamped line, and the line says so', () => {
    const cut = LOG.split('\n').slice(0, 10).join('\n');
    const t = convergeTimings(cut)!;
    expect(t.complete).toBe(false);
    expect(t.tasks.at(-1)).toEqual({ name: 'kubedos_etcd : Etcd runs', kind: 'task', play: 'Etcd on wg3', ms: 180_000 });
    expect(timingsLine(t, 1)).toMatch(/^time in ansible 4m45s \(its log ends before PLAY RECAP\): 4 tasks, median 50\.0 s each; the slowest \(63% of it\): kubedos_etcd : Etcd runs 3m00s$/);
  });

  it('nothing to say without a stamped PLAY line (an empty log, the stdout callback\'s unstamped text)', () => {
    expect(convergeTimings('')).toBeUndefined();
    expect(convergeTimings('PLAY [Baseline hardening] ***\nTASK [x : y] ***\nPLAY RECAP ***')).toBeUndefined();
    const noTask = convergeTimings([at('10:00:00,000', 'PLAY [Validate] ***'), at('10:00:01,000', 'skipping: no hosts matched'), at('10:00:02,000', 'PLAY RECAP ***')].join('\n'))!;
    expect(timingsLine(noTask)).toBe('ansible ran 2.0 s and reached no task');
  });

  it('a handler is named as one; equal times sort by name (stable output)', () => {
    const t = convergeTimings([at('10:00:00,000', 'PLAY [p] ***'), at('10:00:00,000', 'TASK [b] ***'), at('10:00:01,000', 'RUNNING HANDLER [a] ***'), at('10:00:02,000', 'PLAY RECAP ***')].join('\n'))!;
    expect(timingsLine(t)).toBe('time in ansible 2.0 s: 2 tasks, median 1.0 s each; the 2 slowest (100% of it): handler a 1.0 s, b 1.0 s');
  });
});
