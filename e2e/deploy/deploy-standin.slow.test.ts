// Deploy end to end through the Proxmox stand-in over SSH (issue "Deploy end to end": "the same
// through the Proxmox stand-in over SSH"). lab-3 with its substrate switched to proxmox (the
// stand-in's node, storages and bridges) is deployed by the real CLI with
// `--target proxmox://pve-standin --ssh-config … --known-hosts …`: every qm/pvesm/pvesh command
// and every guest-agent call goes over real OpenSSH to the strict stand-in, which runs the VMs
// with real QEMU (TCG) and puts the NICs of one bridge on one isolated L2 with no uplink
// (pve_bridge.py). Every stage must succeed, the nodes enroll with the hub over that L2,
// converge is green, the sealed bundle verifies, and a second deploy changes nothing.
// Opt-in (npm run test:deploy:standin, about 30 minutes under TCG): CI deploys one cluster per run,
// the qemu-local one (deploy.lab.test.ts); the stand-in's provisioning path stays in CI through
// e2e/substrate (proxmox-standin, provision-cli, standin-strict, upload-resume).
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plan } from '../../common/plan/index';
import type { Plan } from '../../common/plan/index';
import { parseSpec } from '../../common/spec/index';
import type { ProxmoxSshDriver } from '../../main/substrate/proxmox-ssh';
import type { ProxmoxStandIn } from '../fixtures/proxmox/standin';
import { startProxmoxStandIn } from '../fixtures/proxmox/standin';
import { dropLabBulk } from '../lab-output';
import { standInDriver } from '../substrate/helpers';
import { deployEnv, kubedosAsync, outcomes, REPO, requireRoot, standinSpecText, writeSpec } from './env';

const OUT = join(REPO, 'e2e/output/deploy-standin');
const WS = join(OUT, 'workspace');
const STAGES = ['validate', 'plan', 'build', 'provision', 'firstboot', 'backplanes', 'enroll', 'converge', 'workload', 'seal'];
const ip = (a: string) => a.replace(/\/\d+$/, '');

let standin: ProxmoxStandIn;
let driver: ProxmoxSshDriver;
let p: Plan;
let spec: string;
const node = (name: string) => p.nodes.find((n) => n.name === name)!;

function cliArgs(): string[] {
  return ['--target', 'proxmox://pve-standin', '--ssh-config', standin.sshConfig, '--known-hosts', standin.knownHosts];
}
function env(): NodeJS.ProcessEnv {
  return { ...deployEnv(WS), SSH_AUTH_SOCK: '' };
}
async function inGuest(name: string, argv: string[], timeoutS = 120) {
  return driver.guestExec(node(name).vmid, argv, { timeoutS });
}

describe('kubedos deploy lab-3 --target proxmox://pve-standin (real SSH, strict stand-in, TCG)', () => {
  beforeAll(async () => {
    requireRoot();
    // A fresh cluster every run: a fresh stand-in, an empty workspace (build cache included).
    rmSync(WS, { recursive: true, force: true });
    standin = await startProxmoxStandIn();
    const text = standinSpecText(standin);
    const parsed = parseSpec(text);
    if (!parsed.spec) throw new Error(`the stand-in spec does not validate: ${JSON.stringify(parsed.diagnostics)}`);
    expect(parsed.spec.spec.substrate.type).toBe('proxmox');
    p = plan(parsed.spec);
    spec = writeSpec(OUT, 'lab-3-standin.yaml', text);
    driver = standInDriver(standin, p);
  });

  afterAll(async () => {
    for (const n of p?.nodes ?? []) await driver?.destroy(n.vmid, { allowDestroy: true }).catch(() => undefined);
    await driver?.close().catch(() => undefined);
    await standin?.stop();
    dropLabBulk(WS, [join(WS, 'cache')]);
  });

  it('deploys over SSH: every stage succeeds', async () => {
    const r = await kubedosAsync(['deploy', spec, ...cliArgs(), '--verbose'], { env: env(), cwd: OUT, logFile: join(OUT, 'deploy-1.log'), timeoutMs: 55 * 60_000 });
    console.log(`[bench] first deploy of lab-3 through the stand-in: ${(r.ms / 1000).toFixed(0)} s`);
    expect(r.stderr + r.stdout.slice(-4000)).not.toMatch(/deploy stopped/);
    expect(r.status).toBe(0);
    const o = outcomes(r.stdout);
    expect(Object.keys(o)).toEqual(STAGES);
    for (const s of STAGES) expect(o[s], s).not.toMatch(/failed|skipped|aborted/);
    // It really went through qm on the stand-in, over SSH.
    expect(r.stdout).toMatch(/deploying lab-3 to proxmox:\/\/pve-standin/);
    expect(r.stdout).toMatch(/\$ qm create 3000 /);
    expect(r.stdout).toMatch(/\$ qm start 3002/);
  }, 56 * 60_000);

  it('the stand-in ran the VMs on one simulated bridge: one isolated L2, no route out', async () => {
    const sock = join(standin.root, 'var/run/pve-bridge/kubedos0.sock');
    const bridgePid = Number(readFileSync(join(standin.root, 'var/run/pve-bridge/kubedos0.pid'), 'utf8').trim());
    expect(readFileSync(`/proc/${bridgePid}/cmdline`, 'utf8')).toContain('pve_bridge.py');
    for (const n of p.nodes) {
      const argv = JSON.parse(readFileSync(join(standin.root, `var/run/qemu-server/${n.vmid}.cmdline`), 'utf8')) as string[];
      expect(argv, n.name).toContain(`stream,id=net0,server=off,addr.type=unix,addr.path=${sock}`);
      const routes = await inGuest(n.name, ['ip', '-4', 'route', 'show', 'default']);
      expect(routes.stdout.trim(), n.name).toBe('');
    }
    // Node to node on the LAN: the master answers ARP with its own MAC (an L2 neighbour, which a
    // per-NIC user-mode backend could not give; ICMP itself may be filtered by the node's policy).
    const m = node('master');
    const master = ip(m.lan.address);
    for (const n of p.nodes.filter((x) => x.name !== 'master')) {
      await inGuest(n.name, ['ping', '-c', '1', '-W', '3', master]);
      const neigh = await inGuest(n.name, ['ip', 'neigh', 'show', master, 'dev', 'lan0']);
      expect(neigh.stdout.toLowerCase(), `${n.name} sees master on the LAN`).toContain(`lladdr ${m.lan.mac.toLowerCase()}`);
    }
  });

  it('enrolled every node with the hub; fresh handshakes on wg1, wg2 and wg3', async () => {
    const hub = JSON.parse((await inGuest('master', ['/usr/lib/kubedos/backplane/kubedos-enroll-hub', 'status'])).stdout);
    expect(hub.enrolled).toEqual(['cp-1', 'w-1']);
    expect(hub.window).toBeNull();
    for (const n of p.nodes.filter((x) => !x.hub)) {
      for (const plane of ['wg1', 'wg2', 'wg3'] as const) {
        const r = await inGuest(n.name, ['ping', '-c', '1', '-W', '3', '-I', plane, ip(node('master').planes[plane].address)]);
        expect(r.exitCode, `${n.name} → master on ${plane}`).toBe(0);
      }
    }
    const st = JSON.parse((await inGuest('master', ['/usr/lib/kubedos/backplane/kubedos-planes', 'status'])).stdout);
    for (const plane of ['wg1', 'wg2', 'wg3']) expect(st.planes[plane].peers.filter((x: { latestHandshake: number }) => x.latestHandshake > 0), plane).toHaveLength(2);
  });

  it('converged: etcd answers on wg3 with TLS from the cluster CA', async () => {
    const wg3 = ip(node('cp-1').planes.wg3.address);
    const health = await inGuest('cp-1', ['etcdctl', `--endpoints=https://${wg3}:2379`, '--cacert=/etc/kubedos/pki/etcd/ca.crt', '--cert=/etc/kubedos/pki/etcd/peer.crt', '--key=/etc/kubedos/pki/etcd/peer.key', 'endpoint', 'health']);
    expect(health.stdout + health.stderr).toMatch(/is healthy/);
  });

  it('sealed a recovery bundle that kubedos verify accepts', async () => {
    const bundle = join(WS, 'clusters/lab-3/bundle');
    const r = await kubedosAsync(['verify', bundle], { env: env(), cwd: OUT, logFile: join(OUT, 'verify.log'), timeoutMs: 120_000 });
    expect(r.stdout + r.stderr).not.toMatch(/mismatch|FAILED/i);
    expect(r.status).toBe(0);
  });

  it('a second deploy reports every stage unchanged', async () => {
    const r = await kubedosAsync(['deploy', spec, ...cliArgs()], { env: env(), cwd: OUT, logFile: join(OUT, 'deploy-2.log'), timeoutMs: 30 * 60_000 });
    console.log(`[bench] converged re-deploy of lab-3 through the stand-in: ${(r.ms / 1000).toFixed(0)} s`);
    expect(r.status).toBe(0);
    expect(outcomes(r.stdout)).toEqual(Object.fromEntries(STAGES.map((s) => [s, 'unchanged'])));
  }, 31 * 60_000);
});
