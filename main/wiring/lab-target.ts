// The lab as a WiringTarget, two ways:
// - labWiringTarget: probes run directly inside each namespace node (nsenter);
// - labWiringTargetViaMaster: everything goes through the master, over SSH on wg1, exactly as
//   `kubedos wiring check` reaches a deployed cluster: master -> ssh root@<node wg1> kubedos-probe.
// Counters come from `nft -j list counters` on each node.
import type { ChildProcess } from 'node:child_process';
import type { Observed, WiringTarget } from './check';
import { bin } from '../lab/backplane';
import type { Lab } from '../lab/harness';
import { parseCounters } from './shell-target';
import { NODE_PAYLOAD_DIR, OPERATOR_KEY } from '../lab/harness';

export function labWiringTarget(lab: Lab): WiringTarget {
  return {
    async serve(node, ports) {
      const child: ChildProcess = lab.spawnDaemon(node, ['/usr/bin/python3', bin('kubedos-probe'), 'serve', '--ports', ports.join(','), '--seconds', '300'], `probe-${Date.now()}`);
      await untilReady(child, 10_000, () => `probe listeners on ${node} did not start`, (code) => `probe listeners on ${node} exited (${code}): ports ${ports.join(',')} busy?`);
      return () => {
        if (child.pid && child.exitCode === null) child.kill('SIGKILL');
      };
    },
    async connectMany(node, checks) {
      const r = await lab.exec(node, ['/usr/bin/python3', bin('kubedos-probe'), 'connect-many'], { input: JSON.stringify(checks), timeoutMs: 120_000 });
      return (JSON.parse(r.stdout) as { result: Observed; error?: string }[]).map((x) => ({ result: x.result, ...(x.error ? { error: x.error } : {}) }));
    },
    async counters(node) {
      const r = await lab.try(node, ['nft', '-j', 'list', 'counters', 'table', 'inet', 'kubedos']);
      return r.exitCode === 0 ? parseCounters(r.stdout) : {};
    },
  };
}

/** Every probe and counter read goes from the master over SSH on wg1 (needs sshd in the nodes). */
export function labWiringTargetViaMaster(lab: Lab): WiringTarget {
  const master = lab.hub.name;
  const ssh = (node: string, tty = false): string[] => [
    'ssh', ...(tty ? ['-tt'] : []), '-i', OPERATOR_KEY, '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'ConnectTimeout=10',
    `root@${lab.node(node).plan.planes.wg1.address.replace('/32', '')}`,
  ];
  const probe = `/usr/bin/python3 ${NODE_PAYLOAD_DIR}/kubedos-probe`;
  return {
    async serve(node, ports) {
      // -tt: when the SSH client is killed, the remote probe loses its terminal and exits.
      const child: ChildProcess = lab.spawnDaemon(master, [...ssh(node, true), `${probe} serve --ports ${ports.join(',')} --seconds 300`], `probe-via-master-${node}-${Date.now()}`);
      await untilReady(
        child,
        20_000,
        (buf) => `probe listeners on ${node} (via ${master} over wg1) did not start: ${buf}`,
        (code, buf) => `ssh from ${master} to ${node} over wg1 exited (${code}) before the probe was ready: ${buf}`,
      );
      return () => {
        if (child.pid && child.exitCode === null) child.kill('SIGTERM');
      };
    },
    async connectMany(node, checks) {
      const r = await lab.exec(master, [...ssh(node), `${probe} connect-many`], { input: JSON.stringify(checks), timeoutMs: 120_000 });
      return (JSON.parse(r.stdout) as { result: Observed; error?: string }[]).map((x) => ({ result: x.result, ...(x.error ? { error: x.error } : {}) }));
    },
    async counters(node) {
      const r = await lab.try(master, [...ssh(node), 'nft -j list counters table inet kubedos']);
      return r.exitCode === 0 ? parseCounters(r.stdout) : {};
    },
  };
}

/** Resolves when the probe prints "ready"; rejects on timeout or when it exits first. */
function untilReady(child: ChildProcess, timeoutMs: number, onTimeout: (output: string) => string, onExit: (code: number | null, output: string) => string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(onTimeout(buf))), timeoutMs);
    child.stdout?.on('data', (b: Buffer) => {
      buf += b.toString();
      if (buf.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(onExit(code, buf)));
    });
  });
}
