// The wiring check written once over a NodeShell (main/wiring/shell-target.ts) — the code that
// `kubedos wiring check SPEC` runs on a deployed cluster through the guest agents — run here on
// the namespace lab's own shell: it must give the same verdict for every flow as the lab's
// direct target, stop its background listeners, and read the hub's handshake ages.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWiringChecks } from '../../main/wiring/check';
import { wiringChecks } from '../../main/wiring/matrix';
import { bringUp, makeTrust } from '../../main/lab/backplane';
import type { EnrollmentWindow } from '../../main/lab/backplane';
import { Lab, NODE_PAYLOAD_DIR } from '../../main/lab/harness';
import { labShell } from '../../main/drills/lab-target';
import { labWiringTarget } from '../../main/wiring/lab-target';
import { hubHandshakeAges, NODE_PROBE, planeAddressesOf, PROBE_RUN_DIR, shellWiringTarget } from '../../main/wiring/shell-target';
import { lab3Plan } from './specs';

describe('wiring check over a NodeShell (lab-3 in namespaces)', () => {
  let lab: Lab;
  let window: EnrollmentWindow | undefined;
  const started = Date.now();

  beforeAll(async () => {
    lab = await Lab.create(lab3Plan(), { sshd: false, log: (l) => console.log(l) });
    window = await bringUp(lab, await makeTrust(lab), 120);
  }, 60_000);
  afterAll(() => {
    window?.process.kill('SIGTERM');
    lab?.destroy();
    console.log(`wiring over NodeShell suite: ${Math.round((Date.now() - started) / 1000)} s`);
  });

  it('gives the same verdict per flow as the lab target, and leaves no listener behind', async () => {
    expect(`${NODE_PAYLOAD_DIR}/kubedos-probe`).toBe(NODE_PROBE);
    const checks = wiringChecks(lab.plan, { denyPairs: 'ring' });
    const nodes = [...lab.nodes.keys()];
    const shell = labShell(lab);
    const viaShell = await runWiringChecks(shellWiringTarget(shell, { runId: `h17w-${process.pid}`, addressesOf: planeAddressesOf(lab.plan) }), nodes, checks);
    for (const n of nodes) {
      const left = await lab.try(n, ['/bin/sh', '-c', `ls -A ${PROBE_RUN_DIR} 2>/dev/null; pgrep -f 'kubedos-prob[e] serve' || true`]);
      expect(left.stdout.trim(), `${n}: listeners or files left`).toBe('');
    }
    const direct = await runWiringChecks(labWiringTarget(lab), nodes, checks);
    const verdicts = (r: typeof direct) => r.results.map((x) => `${x.from.address}->${x.to.address}:${x.port} ${x.observed === 'open' ? 'open' : 'closed'} ${x.ok}`);
    expect(viaShell.results.filter((r) => !r.ok)).toEqual([]);
    expect(verdicts(viaShell)).toEqual(verdicts(direct));
    expect(viaShell.results.length).toBeGreaterThan(50);
    expect(viaShell.counters.after.default_deny_inter_plane ?? 0).toBeGreaterThan(viaShell.counters.before.default_deny_inter_plane ?? 0);
  }, 120_000);

  it('a service already holding a declared port on one plane address (as etcd does on wg3) answers for the probe, silent as a TLS listener is until the client speaks; every flow still as planned', async () => {
    const checks = wiringChecks(lab.plan, { denyPairs: 'ring' });
    const declared = checks.find((c) => c.kind === 'declared' && !lab.node(c.to.node).plan.hub);
    expect(declared).toBeDefined();
    const { to, port } = declared!;
    const service = lab.spawnDaemon(to.node, ['/usr/bin/python3', '-c', [
      'import socket, sys',
      's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
      `s.bind((${JSON.stringify(to.address)}, ${port})); s.listen(16)`,
      'print("up", flush=True)',
      // Silent like etcd's TLS port: it waits for the client hello and never writes first.
      'held = []',
      'while True:',
      '    c, _ = s.accept(); held.append(c)',
    ].join('\n')], `h17w-service-${port}`);
    try {
      await new Promise<void>((res, rej) => {
        const t = setTimeout(() => rej(new Error('the stand-in service did not start')), 10_000);
        service.stdout?.on('data', (b: Buffer) => b.toString().includes('up') && (clearTimeout(t), res()));
      });
      const r = await runWiringChecks(shellWiringTarget(labShell(lab), { runId: `h17w-busy-${process.pid}`, addressesOf: planeAddressesOf(lab.plan) }), [...lab.nodes.keys()], checks);
      expect(r.results.filter((x) => !x.ok)).toEqual([]);
      expect(r.results.find((x) => x.to.address === to.address && x.port === port && x.from.address === declared!.from.address)?.observed).toBe('open');
    } finally {
      service.kill('SIGKILL');
    }
  }, 60_000);

  it('reads a recent handshake of every spoke on every plane from the hub', async () => {
    const ages = await hubHandshakeAges(labShell(lab), lab.plan);
    expect(ages.map((a) => `${a.node}/${a.plane}`)).toEqual(lab.spokes.map((n) => n.name).sort().flatMap((n) => ['wg1', 'wg2', 'wg3'].map((p) => `${n}/${p}`)));
    for (const a of ages) {
      expect(a.ageSeconds, `${a.node}/${a.plane}`).not.toBeNull();
      expect(a.ageSeconds ?? 1e9).toBeLessThan(300);
    }
  });

  it('says which node and what failed when the probe cannot listen', async () => {
    const spoke = lab.spokes[0]?.name ?? '';
    const t = shellWiringTarget(labShell(lab), { runId: 'h17w-missing', probe: '/nonexistent/kubedos-probe' });
    await expect(t.serve(spoke, [7070])).rejects.toThrow(new RegExp(`^${spoke}: starting probe listeners on ports 7070 .*the probe exited`));
  });
});
