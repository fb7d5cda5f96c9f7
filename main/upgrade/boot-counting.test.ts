// The A/B boot counter of payload/upgrade/ tested without a VM: GRUB's own syntax checker on the
// grub.cfg files, and a simulator that runs boot-select.cfg (GRUB's side) through bash with
// load_env/save_env/set shims backed by the real grub-editenv on a real 1024-byte environment
// block, interleaved with the real kubedos-boot and kubedos-health-gate (the node's side).
// What it cannot prove: that the signed GRUB under Secure Boot runs save_env on the ESP (a VM
// test; docs/upgrades.md).
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderGateWindow } from '../../common/upgrade/gate-config';
import { gateFailedForGood } from '../../common/upgrade/observe';
import { slotWriteArgv } from './slot-image';
import { grubBootSelect } from './testing';

const dir = join(import.meta.dirname, '../../payload/upgrade');
let root: string;
let n = 0;

interface Node {
  env: string;
  cmdline: string;
}

function newNode(): Node {
  const d = join(root, `node-${n++}`);
  execFileSync('mkdir', ['-p', d]);
  const env = join(d, 'kubedos.env');
  execFileSync('grub-editenv', [env, 'create']);
  execFileSync('grub-editenv', [env, 'set', 'kubedos_active=A']);
  return { env, cmdline: join(d, 'cmdline') };
}

/** One boot: GRUB picks the slot (and may write the counter); the kernel gets kubedos.slot=. */
function boot(node: Node): string {
  const slot = grubBootSelect(node.env, join(dir, 'boot-select.cfg'));
  writeFileSync(node.cmdline, `BOOT_IMAGE=/vmlinuz root=LABEL=kubedos-root-${slot} ro panic=10 kubedos.slot=${slot}\n`);
  return slot;
}

function kubedosBoot(node: Node, ...args: string[]): { status: number; out: string } {
  const r = spawnSync(join(dir, 'kubedos-boot'), args, { encoding: 'utf8', env: { PATH: process.env.PATH, KUBEDOS_GRUBENV: node.env, KUBEDOS_CMDLINE: node.cmdline } });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

function state(node: Node): Record<string, string> {
  return Object.fromEntries(kubedosBoot(node, 'status').out.trim().split('\n').map((l) => l.split('=') as [string, string]));
}

// The tries the upgrade stages: what the engine's slot-write command asks for (slotWriteArgv), or
// kubedos-slot-write's own default when it asks for none. Issue 18: back on the previous slot in
// at most 2 boot attempts.
const stagedTries = ((): string => {
  const argv = slotWriteArgv('B', 'f'.repeat(64), 1 << 20);
  const i = argv.indexOf('--tries');
  return i >= 0 ? argv[i + 1]! : /^tries=(\d)$/m.exec(readFileSync(join(dir, 'kubedos-slot-write'), 'utf8'))![1]!;
})();

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'h18-boot-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('GRUB side: syntax', () => {
  it('grub-script-check accepts grub-ab.cfg and boot-select.cfg, and rejects a broken copy', () => {
    for (const f of ['grub-ab.cfg', 'boot-select.cfg']) execFileSync('grub-script-check', [join(dir, f)]);
    const broken = join(root, 'broken.cfg');
    writeFileSync(broken, readFileSync(join(dir, 'boot-select.cfg'), 'utf8').replace(/\nfi\n\s*$/, '\n'));
    expect(spawnSync('grub-script-check', [broken]).status).not.toBe(0);
  });
});

describe('node side: shell', () => {
  it('kubedos-boot, kubedos-health-gate, kubedos-slot-write and kubedos-persist pass shellcheck (severity style)', () => {
    expect(execFileSync('shellcheck', ['--severity=style', join(dir, 'kubedos-boot'), join(dir, 'kubedos-health-gate'), join(dir, 'kubedos-slot-write'), join(dir, 'kubedos-persist')], { encoding: 'utf8' })).toBe('');
  });
});

describe('boot counting, walked boot by boot', () => {
  it('a node with nothing to try boots its active slot and GRUB writes nothing', () => {
    const node = newNode();
    const before = readFileSync(node.env);
    expect([boot(node), boot(node)]).toEqual(['A', 'A']);
    expect(readFileSync(node.env).equals(before)).toBe(true);
  });

  it('N+1 that never passes its gate: three tries of B, then A for good, B recorded as failed, no loop', () => {
    const node = newNode();
    expect(kubedosBoot(node, 'try', 'B').status).toBe(0);
    expect([boot(node), boot(node), boot(node), boot(node), boot(node)]).toEqual(['B', 'B', 'B', 'A', 'A']);
    expect(state(node)).toMatchObject({ booted: 'A', active: 'A', try: '', tries: '0', failed: 'B' });
  });

  it('N+1 that passes its gate on the first boot becomes the active slot; A is the fallback from then on', () => {
    const node = newNode();
    kubedosBoot(node, 'try', 'B');
    expect(boot(node)).toBe('B');
    const good = kubedosBoot(node, 'mark-good');
    expect(good).toMatchObject({ status: 0, out: expect.stringMatching(/slot B is good/) });
    expect([boot(node), boot(node), boot(node), boot(node)]).toEqual(['B', 'B', 'B', 'B']);
    expect(state(node)).toMatchObject({ active: 'B', try: '', failed: '' });
    // The next upgrade writes A and tries it.
    expect(kubedosBoot(node, 'try', 'A', '1').status).toBe(0);
    expect([boot(node), boot(node)]).toEqual(['A', 'B']);
  });

  it('a gate that fails says so at once (mark-bad): back on the previous slot at the second boot', () => {
    const node = newNode();
    kubedosBoot(node, 'try', 'B');
    expect(boot(node)).toBe('B');
    expect(kubedosBoot(node, 'mark-bad')).toMatchObject({ status: 0, out: expect.stringMatching(/next boot falls back to slot A/) });
    expect(boot(node)).toBe('A');
    expect(state(node)).toMatchObject({ active: 'A', failed: 'B' });
  });

  it('one try (kubedos-boot try B 1): a kernel that never boots costs one boot, the second is A', () => {
    const node = newNode();
    kubedosBoot(node, 'try', 'B', '1');
    expect([boot(node), boot(node)]).toEqual(['B', 'A']);
  });


  it('the upgrade\'s tries: a kernel that never reaches the gate is back on the active slot within 2 boots', () => {
    const node = newNode();
    expect(kubedosBoot(node, 'try', 'B', stagedTries).status).toBe(0);
    const boots: string[] = [];
    while (boots.at(-1) !== 'A' && boots.length < 10) boots.push(boot(node)); // each B panics (panic=10): GRUB again
    expect(boots.length).toBeLessThanOrEqual(2);
    expect(boots).toEqual([...Array<string>(Number(stagedTries)).fill('B'), 'A']);
    expect(boot(node)).toBe('A');
    expect(state(node)).toMatchObject({ active: 'A', try: '', failed: 'B' });
  });

  it('the upgrade\'s tries: a gate that fails on the first boot of B is back on the active slot at the second', () => {
    const node = newNode();
    kubedosBoot(node, 'try', 'B', stagedTries);
    expect(boot(node)).toBe('B');
    expect(kubedosBoot(node, 'mark-bad').status).toBe(0);
    expect([boot(node), boot(node)]).toEqual(['A', 'A']);
    expect(state(node)).toMatchObject({ active: 'A', failed: 'B' });
  });

  it('power lost during the slot write: try is only set after the write, so the node boots A', () => {
    const node = newNode();
    // The agent writes slot B, syncs, and only then runs `kubedos-boot try B`; power fails before.
    expect(boot(node)).toBe('A');
    expect(state(node)).toMatchObject({ try: '', failed: '' });
  });

  it('refuses nonsense: a slot that is not A or B, four tries, trying the active slot, marks on the wrong slot', () => {
    const node = newNode();
    expect(kubedosBoot(node, 'try', 'C').out).toMatch(/SLOT must be A or B/);
    expect(kubedosBoot(node, 'try', 'B', '4').out).toMatch(/TRIES must be 1, 2 or 3/);
    expect(kubedosBoot(node, 'try', 'A').out).toMatch(/A is the active slot/);
    boot(node);
    expect(kubedosBoot(node, 'mark-bad')).toMatchObject({ status: 1, out: expect.stringMatching(/nothing to fall back from/) });
    expect(kubedosBoot(node, 'mark-good')).toMatchObject({ status: 0, out: expect.stringMatching(/already the active slot/) });
    const noEnv = spawnSync(join(dir, 'kubedos-boot'), ['status'], { encoding: 'utf8', env: { PATH: process.env.PATH, KUBEDOS_GRUBENV: join(root, 'absent.env') } });
    expect(noEnv.status).toBe(1);
    expect(noEnv.stderr).toMatch(/no boot environment at .*absent\.env/);
  });
  it('cancel withdraws a pending try (kubedos-slot-write runs it before it overwrites a slot waiting to be tried)', () => {
    const node = newNode();
    expect(kubedosBoot(node, 'cancel', 'B')).toMatchObject({ status: 0, out: expect.stringMatching(/slot B was not being tried; nothing changed/) });
    kubedosBoot(node, 'try', 'B');
    expect(kubedosBoot(node, 'cancel', 'B')).toMatchObject({ status: 0, out: expect.stringMatching(/slot B is no longer tried; the next boot is slot A/) });
    expect([boot(node), boot(node)]).toEqual(['A', 'A']);
    expect(state(node)).toMatchObject({ try: '', tries: '0', failed: '' });
    expect(kubedosBoot(node, 'cancel', 'C').out).toMatch(/cancel: SLOT must be A or B/);
  });
});

describe('kubedos-health-gate on a tried boot (checks stubbed on PATH, the counter real)', () => {
  // failUnits: not active, still starting (is-failed says no); gaveUp: systemd gave up on them (failed).
  // Planes: planesDown (wg2 missing), noPeers (none anywhere), noPeerOn (one plane without its hub
  // peer), noKey (key files missing), stale (handshakes older than 180 s), planesDelayS (status
  // takes that long); backplaneStarting: kubedos-backplane.service not active yet (activating).
  // window: gate-window's text; timeout null: no --timeout (the windows of gate-window); umask: the
  // gate's caller's (e.g. an operator's shell).
  interface GateOpts { failUnits?: string[]; gaveUp?: string[]; planesDown?: boolean; planesMissing?: boolean; noPeers?: boolean; noPeerOn?: string; noKey?: string[]; stale?: boolean; planesDelayS?: number; /** planesDown only for this many asks of kubedos-planes, then every plane up. */ planesUpAfter?: number; backplaneStarting?: boolean; fingerprint?: { expected: string; actual: string }; checks?: string; window?: string; timeout?: string | null; interval?: string; spawnTimeoutMs?: number; umask?: string }
  function gate(node: Node, o: GateOpts): { status: number; out: string; log: string; metrics: string; ms: number; triedCopy: string | undefined; mode: number | undefined } {
    const d = mkdtempSync(join(root, 'gate-'));
    const bin = join(d, 'bin');
    execFileSync('mkdir', ['-p', bin, join(d, 'conf'), join(d, 'textfile'), join(d, 'wireguard')]);
    const stub = (name: string, body: string): void => {
      writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(bin, name), 0o755);
    };
    const now = Math.floor(Date.now() / 1000);
    const plane = (name: string, up: boolean): unknown => (up ? { up: true, peers: o.noPeers || o.noPeerOn === name ? [] : [{ latestHandshake: o.stale ? now - 600 : now - 5 }] } : { up: false });
    writeFileSync(join(d, 'planes.json'), JSON.stringify({ node: 'w-1', hub: false, planes: { wg1: plane('wg1', true), wg2: plane('wg2', !o.planesDown), wg3: plane('wg3', true) } }));
    for (const p of ['wg1', 'wg2', 'wg3']) if (!o.noKey?.includes(p)) writeFileSync(join(d, 'wireguard', `${p}.key`), 'k\n');
    writeFileSync(join(d, 'planes-up.json'), JSON.stringify({ node: 'w-1', hub: false, planes: { wg1: plane('wg1', true), wg2: plane('wg2', true), wg3: plane('wg3', true) } }));
    const asks = join(d, 'planes-asks');
    const answer = o.planesUpAfter === undefined ? `cat '${join(d, 'planes.json')}'` : `n=$(($(cat '${asks}' 2>/dev/null || echo 0) + 1)); echo $n > '${asks}'\nif [ $n -gt ${o.planesUpAfter} ]; then cat '${join(d, 'planes-up.json')}'; else cat '${join(d, 'planes.json')}'; fi`;
    stub('kubedos-planes', `${o.planesDelayS ? `sleep ${o.planesDelayS}\n` : ''}${answer}`);
    const down = [...(o.failUnits ?? []), ...(o.gaveUp ?? []), ...(o.backplaneStarting ? ['kubedos-backplane.service'] : [])].join(' ');
    stub('systemctl', `echo "systemctl $*" >> '${join(d, 'log')}'\ncase "$1" in\n  is-active) case " ${down} " in *" $3 "*) exit 3 ;; esac ;;\n  is-failed) case " ${(o.gaveUp ?? []).join(' ')} " in *" $3 "*) exit 0 ;; esac; exit 1 ;;\nesac\nexit 0`);
    stub('kubedos-boot', `exec '${join(dir, 'kubedos-boot')}' "$@"`);
    writeFileSync(join(d, 'conf/gate-units'), 'ssh\netcd\n');
    if (o.checks !== undefined) writeFileSync(join(d, 'conf/gate-checks'), o.checks);
    if (o.window !== undefined) writeFileSync(join(d, 'conf/gate-window'), o.window);
    if (o.fingerprint) {
      writeFileSync(join(d, 'conf/expected-fingerprint'), `${o.fingerprint.expected}\n`);
      writeFileSync(join(d, 'conf/fingerprint.sh'), `echo ${o.fingerprint.actual}\n`);
    }
    writeFileSync(join(d, 'log'), '');
    const failing = o.failUnits || o.gaveUp || o.planesDown || o.planesMissing || o.noPeers || o.noPeerOn || o.noKey || o.stale || (o.fingerprint && o.fingerprint.expected !== o.fingerprint.actual);
    const timeout = o.timeout === null ? [] : ['--timeout', o.timeout ?? (failing ? '0' : '1')];
    const t0 = Date.now();
    const argv = [join(dir, 'kubedos-health-gate'), ...timeout, '--interval', o.interval ?? '0.5'];
    const r = spawnSync(o.umask ? '/bin/sh' : argv[0]!, o.umask ? ['-c', `umask ${o.umask} && exec "$0" "$@"`, ...argv] : argv.slice(1), {
      encoding: 'utf8',
      env: { PATH: `${bin}:${process.env.PATH}`, KUBEDOS_PLANES: o.planesMissing ? join(d, 'no-such/kubedos-planes') : join(bin, 'kubedos-planes'), KUBEDOS_WG_KEYS: join(d, 'wireguard'), KUBEDOS_GRUBENV: node.env, KUBEDOS_CMDLINE: node.cmdline, KUBEDOS_UPGRADE_CONF: join(d, 'conf'), KUBEDOS_METRICS_DIR: join(d, 'textfile'), KUBEDOS_DATA: join(d, 'data') },
      timeout: o.spawnTimeoutMs ?? 30_000,
    });
    const prom = join(d, 'textfile/kubedos.prom');
    const copy = join(d, 'data/upgrade/gate-B.prom');
    return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}`, log: readFileSync(join(d, 'log'), 'utf8'), metrics: existsSync(prom) ? readFileSync(prom, 'utf8') : '', ms: Date.now() - t0, triedCopy: existsSync(copy) ? readFileSync(copy, 'utf8') : undefined, mode: existsSync(prom) ? statSync(prom).mode & 0o777 : undefined };
  }

  it('all checks pass: the slot is marked good, no reboot', () => {
    const node = newNode();
    kubedosBoot(node, 'try', 'B');
    boot(node);
    const g = gate(node, {});
    expect(g.status).toBe(0);
    expect(g.out).toMatch(/gate: planes ok\ngate: services ok\ngate: fingerprint not checked: no expected fingerprint in .*\ngate: node-ready not checked: no \/etc\/kubernetes\/kubelet\.conf \(no Kubernetes here, or this slot not converged yet\)/);
    expect(g.out).toMatch(/gate: pass \(slot B after 0 s\)/);
    expect(g.log).not.toMatch(/reboot/);
    expect(g.triedCopy).toBeUndefined(); // only a failed tried boot leaves its pass on data
    // What node-exporter's textfile collector serves on wg2: every sample after its HELP and TYPE.
    expect(g.metrics).toMatch(/^kubedos_boot_slot\{slot="B"\} 1$/m);
    expect(g.metrics).toMatch(/^kubedos_boot_active_slot\{slot="B"\} 1$/m);
    expect(g.metrics).toMatch(/^kubedos_boot_tries_left 0$/m);
    expect(g.metrics).toMatch(/^kubedos_boot_success 1$/m);
    expect(g.metrics).toMatch(/^kubedos_health_gate_check\{check="services"\} 1$/m);
    expect(g.metrics).not.toMatch(/check="node-ready"/); // not checked: no sample
    for (const line of g.metrics.trim().split('\n')) expect(line).toMatch(/^(# (HELP|TYPE) kubedos_\w+ .+|kubedos_\w+(\{\w+="[^"]*"\})? \d+)$/);
    expect(boot(node)).toBe('B');
    expect(state(node).active).toBe('B');
  });

  it("kubedos.prom is readable by node-exporter's user (mode 0644) whatever the caller's umask", () => {
    const node = newNode();
    kubedosBoot(node, 'try', 'B');
    boot(node);
    // A root shell with umask 077 (a hardened profile, or a hand run) would leave 0600: node-exporter
    // (user prometheus) could not read it and the cluster's Prometheus would get no kubedos_boot_* series.
    const g = gate(node, { umask: '077' });
    expect(g.status).toBe(0);
    expect(g.metrics).toMatch(/^kubedos_boot_success 1$/m);
    expect(g.mode?.toString(8)).toBe('644');
  });

  it('a role service that stays down: fail with the unit named, mark-bad, reboot, and the next boot is A', () => {
    const node = newNode();
    kubedosBoot(node, 'try', 'B');
    boot(node);
    const g = gate(node, { failUnits: ['etcd'] });
    expect(g.status).toBe(1);
    expect(g.out).toMatch(/gate: fail \(services: not active: etcd\) after \d+ s on slot B/);
    expect(g.log).toMatch(/systemctl reboot/);
    expect(g.metrics).toMatch(/^kubedos_boot_success 0$/m);
    expect(g.metrics).toMatch(/^kubedos_health_gate_check\{check="services"\} 0$/m);
    expect(g.metrics).toMatch(/^kubedos_boot_active_slot\{slot="A"\} 1$/m);
    expect(boot(node)).toBe('A');
  });

  it('a unit systemd gave up on (failed) on a slot being tried: mark-bad and reboot at once, not waiting out the timeout', () => {
    const node = newNode();
    kubedosBoot(node, 'try', 'B', stagedTries);
    boot(node);
    // Planes down too: the definite failure is the reason, not the first check that failed.
    const g = gate(node, { gaveUp: ['etcd'], planesDown: true, timeout: '20' });
    expect(g.status).toBe(1);
    expect(g.ms).toBeLessThan(10_000);
    expect(g.out).toMatch(/gate: services FAILED: etcd failed \(systemd gave up\)/);
    expect(g.out).toMatch(/gate: fail \(services: etcd failed \(systemd gave up\): not waiting\) after 0 s on slot B/);
    expect(g.log).toMatch(/systemctl reboot/);
    expect(g.metrics).toMatch(/^kubedos_health_gate_unit_failed\{unit="etcd"\} 1$/m);
    // The same last pass on data, where the foundry reads it after the fallback (the textfile is the slot's).
    expect(g.triedCopy).toBe(g.metrics);
    expect(g.metrics).toMatch(/^kubedos_health_gate_check\{check="services"\} 0$/m);
    for (const line of g.metrics.trim().split('\n')) expect(line).toMatch(/^(# (HELP|TYPE) kubedos_\w+ .+|kubedos_\w+(\{\w+="[^"]*"\})? \d+)$/);
    expect(boot(node)).toBe('A');
    expect(state(node)).toMatchObject({ active: 'A', failed: 'B' });
  });

  it('a unit still starting (not active, not failed) keeps the retry loop until the timeout', () => {
    const node = newNode();
    kubedosBoot(node, 'try', 'B', stagedTries);
    boot(node);
    const g = gate(node, { failUnits: ['etcd'], timeout: '1' });
    expect(g.status).toBe(1);
    expect(g.out.match(/gate: services FAILED: not active: etcd/g)!.length).toBeGreaterThanOrEqual(2);
    expect(g.out).toMatch(/gate: fail \(services: not active: etcd\) after [12] s on slot B/);
    expect(g.out).not.toMatch(/not waiting/);
    expect(g.metrics).not.toMatch(/^kubedos_health_gate_unit_failed\{/m);
    expect(boot(node)).toBe('A');
  });

  it('a unit systemd gave up on, on the active slot: reported, nothing marked, no reboot', () => {
    const node = newNode();
    boot(node);
    const g = gate(node, { gaveUp: ['ssh'] });
    expect(g.status).toBe(1);
    expect(g.out).toMatch(/gate: fail \(services: ssh failed \(systemd gave up\)\) on the active slot A: nothing to fall back to; heal the node/);
    expect(g.log).not.toMatch(/reboot/);
    expect(state(node)).toMatchObject({ active: 'A', try: '', failed: '' });
  });

  it('on the active slot (a replaced node\'s new disk), the foundry tells from the gate\'s own output what waiting cannot mend (gateFailedForGood): a unit systemd gave up on; not a unit still starting, nor planes down', () => {
    const node = newNode();
    boot(node);
    const run = (o: GateOpts) => {
      const g = gate(node, o);
      return gateFailedForGood({ exitCode: g.status, stdout: g.out, stderr: '' });
    };
    expect(run({ gaveUp: ['ssh'] })).toEqual({ ran: true, check: 'services: ssh failed (systemd gave up)' });
    expect(run({ failUnits: ['etcd'] })).toBeUndefined();
    // Definite on a tried slot once the backplane ran, but the active slot's output does not say so: asked again.
    expect(run({ planesDown: true })).toBeUndefined();
    expect(run({})).toBeUndefined();
  });

  it('the converge fingerprint: equal passes, different fails with both values', () => {
    const good = newNode();
    kubedosBoot(good, 'try', 'B');
    boot(good);
    expect(gate(good, { fingerprint: { expected: 'f00d', actual: 'f00d' } }).out).toMatch(/gate: fingerprint ok/);
    const bad = newNode();
    kubedosBoot(bad, 'try', 'B');
    boot(bad);
    const g = gate(bad, { fingerprint: { expected: 'f00d', actual: 'beef' } });
    expect(g.out).toMatch(/gate: fingerprint FAILED: fingerprint beef, expected f00d/);
    expect(boot(bad)).toBe('A');
  });

  it('a plane that does not come up fails the gate, naming the plane', () => {
    const node = newNode();
    kubedosBoot(node, 'try', 'B');
    boot(node);
    const g = gate(node, { planesDown: true });
    expect(g.out).toMatch(/gate: planes FAILED: planes down: wg2/);
    expect(boot(node)).toBe('A');
  });

  it('the planes check runs kubedos-planes where first boot installs it, not whatever PATH holds; missing, it fails naming the command', () => {
    const node = newNode();
    kubedosBoot(node, 'try', 'B');
    boot(node);
    // A kubedos-planes that would pass is on PATH; the node's (KUBEDOS_PLANES) is missing.
    const g = gate(node, { planesMissing: true });
    expect(g.out).toMatch(/gate: planes FAILED: \S*\/no-such\/kubedos-planes status failed: .*(not found|No such file)/);
    expect(g.out).not.toMatch(/JSONDecodeError/);
    expect(boot(node)).toBe('A');
  });

  it('a spoke with no hub peer yet (a new node before enrollment): not checked on the active slot, a failure on a slot being tried', () => {
    const fresh = newNode();
    boot(fresh);
    const first = gate(fresh, { noPeers: true });
    expect(first.status).toBe(0);
    expect(first.out).toMatch(/gate: planes not checked: not enrolled yet \(no hub peer: the deploy's enroll stage adds it\)/);
    expect(first.out).toMatch(/gate: pass \(slot A, already active\)/);
    expect(first.metrics).toMatch(/^kubedos_boot_success 1$/m);
    const node = newNode();
    kubedosBoot(node, 'try', 'B');
    boot(node);
    const tried = gate(node, { noPeers: true });
    expect(tried.status).toBe(1);
    expect(tried.out).toMatch(/gate: planes FAILED: no hub peer on any plane: this node is not enrolled/);
    expect(boot(node)).toBe('A');
  });

  it('after a fallback the gate on the active slot reports the slot rolled back from; gate-checks limits the checks', () => {
    const node = newNode();
    kubedosBoot(node, 'try', 'B', '1');
    expect([boot(node), boot(node)]).toEqual(['B', 'A']);
    const g = gate(node, { checks: 'services\n', planesDown: true });
    expect(g.status).toBe(0);
    expect(g.out).toMatch(/gate: planes not checked: not in .*gate-checks/);
    expect(g.out).toMatch(/gate: services ok/);
    expect(g.out).toMatch(/gate: pass \(slot A, already active\)/);
    expect(g.metrics).toMatch(/^kubedos_boot_slot\{slot="A"\} 1$/m);
    expect(g.metrics).toMatch(/^kubedos_boot_failed_slot\{slot="B"\} 1$/m);
    expect(g.metrics).toMatch(/^kubedos_boot_success 1$/m);
    expect(g.metrics).not.toMatch(/check="planes"/);
    // Without a rollback there is no failed-slot sample.
    const fresh = newNode();
    boot(fresh);
    expect(gate(fresh, { checks: 'services\n' }).metrics).not.toMatch(/^kubedos_boot_failed_slot\{/m);
  });
  // gate-window as the build writes it (renderGateWindow, from gateConfig): no --timeout here.
  it('gate-window: each failing check is retried for its own window; the first whose window runs out ends the gate, named', () => {
    const node = newNode();
    kubedosBoot(node, 'try', 'B', stagedTries);
    boot(node);
    // A stale handshake (retried: the hub may be late) with a 1 s window; etcd still starting with 30 s.
    const g = gate(node, { stale: true, failUnits: ['etcd'], window: renderGateWindow({ checks: { planes: 1, services: 30 }, intervalS: 0.2 }), timeout: null, spawnTimeoutMs: 15_000 });
    expect(g.status).toBe(1);
    expect(g.ms).toBeLessThan(10_000);
    expect(g.out.match(/gate: planes FAILED: no hub handshake within 180 s on wg1, wg2, wg3/g)!.length).toBeGreaterThanOrEqual(2);
    expect(g.out).toMatch(/gate: planes still failing after its window of 1 s\ngate: fail \(planes: no hub handshake within 180 s on wg1, wg2, wg3\) after [12] s on slot B/);
    expect(g.out).not.toMatch(/not waiting/);
    expect(g.log).toMatch(/systemctl reboot/);
    expect(boot(node)).toBe('A');
    // The planes pass; etcd keeps starting: services' own window (2 s) decides, not planes' (1 s).
    const other = newNode();
    kubedosBoot(other, 'try', 'B', stagedTries);
    boot(other);
    const s = gate(other, { failUnits: ['etcd'], window: renderGateWindow({ checks: { planes: 1, services: 2 }, intervalS: 0.2 }), timeout: null, spawnTimeoutMs: 15_000 });
    expect(s.status).toBe(1);
    expect(s.ms).toBeGreaterThanOrEqual(2000);
    expect(s.out).toMatch(/gate: services still failing after its window of 2 s\ngate: fail \(services: not active: etcd\) after [23] s on slot B/);
    expect(boot(other)).toBe('A');
  });

  it('the window is real time: slow checks count (not only the pauses between passes)', () => {
    const node = newNode();
    kubedosBoot(node, 'try', 'B', stagedTries);
    boot(node);
    // Each pass takes 1.5 s (kubedos-planes status under a slow CPU); window 4 s, 0.5 s between passes.
    const g = gate(node, { stale: true, planesDelayS: 1.5, timeout: '4', interval: '0.5' });
    expect(g.status).toBe(1);
    const said = Number(/gate: fail \(planes: no hub handshake within 180 s on wg1, wg2, wg3\) after (\d+) s on slot B/.exec(g.out)![1]);
    expect(said).toBeGreaterThanOrEqual(4);
    // What it says is what passed (minus mark-bad, the metrics and their sync after it).
    expect(said).toBeLessThanOrEqual(g.ms / 1000);
    expect(said).toBeGreaterThan(g.ms / 1000 - 3);
  });

  it('a definite planes failure (after kubedos-backplane ran) fails a tried boot at once; the same while it still starts is retried', () => {
    const cases: [GateOpts, RegExp][] = [
      [{ planesDown: true }, /planes: planes down: wg2/],
      [{ noKey: ['wg3'] }, /planes: no private key file: \S+\/wireguard\/wg3\.key \(the keys of the planes are bound from data\)/],
      [{ noPeerOn: 'wg2' }, /planes: no hub peer configured on wg2/],
      [{ noPeers: true }, /planes: no hub peer on any plane: this node is not enrolled/],
      [{ planesMissing: true }, /planes: \S*\/no-such\/kubedos-planes status failed: [^\n]*(not found|No such file)/],
    ];
    for (const [o, why] of cases) {
      const node = newNode();
      kubedosBoot(node, 'try', 'B', stagedTries);
      boot(node);
      const g = gate(node, { ...o, timeout: '20' });
      expect(g.status, why.source).toBe(1);
      expect(g.ms, why.source).toBeLessThan(10_000);
      expect(g.out, why.source).toMatch(new RegExp(`gate: fail \\(${why.source}: not waiting\\) after \\d+ s on slot B`));
      expect(g.log, why.source).toMatch(/systemctl reboot/);
      expect(g.metrics, why.source).toMatch(/^kubedos_health_gate_check\{check="planes"\} 0$/m);
      expect(boot(node), why.source).toBe('A');
    }
    // kubedos-backplane.service not active yet (waiting to restart): the planes may still come up, so
    // the gate asks again — and passes once they are up (counted asks, not a clock: it held on a loaded machine).
    const starting = newNode();
    kubedosBoot(starting, 'try', 'B', stagedTries);
    boot(starting);
    const g = gate(starting, { planesDown: true, planesUpAfter: 1, backplaneStarting: true, timeout: '20', interval: '0.2' });
    expect(g.out.match(/gate: planes FAILED: planes down: wg2/g)).toHaveLength(1);
    expect(g.out).not.toMatch(/not waiting/);
    expect(g.out).toMatch(/gate: pass \(slot B after \d+ s\)/);
    expect(g.status).toBe(0);
    // They never come up: a failure at the gate's timeout, not at once.
    const never = newNode();
    kubedosBoot(never, 'try', 'B', stagedTries);
    boot(never);
    const f = gate(never, { planesDown: true, backplaneStarting: true, timeout: '1', interval: '0.2' });
    expect(f.status).toBe(1);
    expect(f.out).toMatch(/gate: fail \(planes: planes down: wg2\) after \d+ s on slot B/);
    expect(f.out).not.toMatch(/not waiting/);
  });
});
