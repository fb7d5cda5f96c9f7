// The lab as a WiringTarget: probes run inside the namespace nodes with the payload's
// kubedos-probe, counters come from `nft -j list counters` in each node.
import type { ChildProcess } from 'node:child_process';
import type { Observed, WiringTarget } from '../../main/wiring/check';
import { bin } from './backplane';
import type { Lab } from './harness';

export function labWiringTarget(lab: Lab): WiringTarget {
  return {
    async serve(node, ports) {
      const child: ChildProcess = lab.spawnDaemon(node, ['/usr/bin/python3', bin('kubedos-probe'), 'serve', '--ports', ports.join(','), '--seconds', '300'], `probe-${Date.now()}`);
      await new Promise<void>((resolve, reject) => {
        let buf = '';
        const timer = setTimeout(() => reject(new Error(`probe listeners on ${node} did not start`)), 10_000);
        child.stdout?.on('data', (b: Buffer) => {
          buf += b.toString();
          if (buf.includes('ready')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.on('close', (code) => {
          clearTimeout(timer);
          reject(new Error(`probe listeners on ${node} exited (${code}): ports ${ports.join(',')} busy?`));
        });
      });
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
      if (r.exitCode !== 0) return {};
      const out: Record<string, number> = {};
      for (const item of (JSON.parse(r.stdout) as { nftables: { counter?: { name: string; packets: number } }[] }).nftables) {
        if (item.counter) out[item.counter.name] = item.counter.packets;
      }
      return out;
    },
  };
}
