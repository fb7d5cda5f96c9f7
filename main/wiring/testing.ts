// A deployed lab-3 as its guest agents answer the wiring check (unit tests of the service and its
// workbench binding): listeners "start", connect-many answers by the plan's policy (one flow can be
// flipped), counters count, the hub reports handshakes (w-1 never on wg3).
import { plan } from '../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import type { GuestExecResult, SubstrateDriver } from '../substrate/driver';
import { wiringChecks } from './matrix';

export const lab3Spec = parseSpec(TEMPLATES['lab-3'].text).spec!;
export const lab3 = plan(lab3Spec);
export const FAKE_NOW = 1_800_000_000;

export function fakeCluster(o: { flip?: string; failConnectOn?: string } = {}) {
  const byVmid = new Map(lab3.nodes.map((n) => [n.vmid, n]));
  const expected = new Map(wiringChecks(lab3).map((c) => [`${c.from.address}>${c.to.address}:${c.port}`, c.expect]));
  const calls: { node: string; argv: string[] }[] = [];
  let counted = 0;
  const ok = (stdout: string): GuestExecResult => ({ exitCode: 0, stdout, stderr: '' });
  const key = (n: string, plane: string) => `KEY-${n}-${plane}=`;
  const driver = {
    target: 'qemu-local',
    async close() {},
    async guestExec(vmid: number, argv: readonly string[], x: { input?: string | Uint8Array } = {}): Promise<GuestExecResult> {
      const n = byVmid.get(vmid)!;
      calls.push({ node: n.name, argv: [...argv] });
      if (argv[0] === '/bin/sh' && argv[3] === 'kubedos-probe-serve') return ok('ready\n');
      if (argv[0] === '/bin/sh' && argv[3] === 'kubedos-probe-stop') return ok('');
      if (argv[1] === '/usr/lib/kubedos/backplane/kubedos-probe' && argv[2] === 'connect-many') {
        if (o.failConnectOn === n.name) return { exitCode: 1, stdout: '', stderr: 'Traceback (most recent call last):\nOSError: [Errno 24] Too many open files' };
        const list = JSON.parse(String(x.input)) as { from: string; to: string; port: number }[];
        counted += list.length;
        return ok(JSON.stringify(list.map((c) => {
          const k = `${c.from}>${c.to}:${c.port}`;
          const allow = (expected.get(k) === 'allow') !== (k === o.flip);
          return { ...c, result: allow ? 'open' : 'timeout' };
        })));
      }
      if (argv[0] === 'nft') return ok(JSON.stringify({ nftables: [{ metainfo: {} }, { counter: { name: 'default_deny_inter_plane', packets: counted } }] }));
      if (argv[0] === 'date') return ok(`${FAKE_NOW}\n`);
      if (argv[0] === 'wg' && n.hub) {
        const plane = argv[2] as 'wg1' | 'wg2' | 'wg3';
        const spokes = lab3.nodes.filter((y) => !y.hub);
        if (argv[3] === 'latest-handshakes') return ok(spokes.map((y) => `${key(y.name, plane)}\t${y.name === 'w-1' && plane === 'wg3' ? 0 : FAKE_NOW - 42}`).join('\n'));
        if (argv[3] === 'allowed-ips') return ok(spokes.map((y) => `${key(y.name, plane)}\t${y.planes[plane].address}`).join('\n'));
      }
      return { exitCode: 127, stdout: '', stderr: `unexpected ${argv.join(' ')}` };
    },
  } as unknown as SubstrateDriver;
  return { driver, calls };
}

