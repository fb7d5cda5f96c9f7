// The lab harness itself: refuses to run without root, leaves nothing behind after destroy()
// (namespaces, processes, mounts, files), and sweeps what a dead test run left.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { bin, installContracts, makeTrust, planesUp } from '../../main/lab/backplane';
import { Lab, requireRoot, sweepStaleLabs } from '../../main/lab/harness';
import { lab3Plan } from './specs';

const netnsList = (): string[] => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);

describe('namespace lab harness', () => {
  afterEach(() => vi.restoreAllMocks());

  it('fails loudly, naming the reason, when not run as root', () => {
    vi.spyOn(process, 'getuid').mockReturnValue(1000);
    expect(() => requireRoot('the namespace lab')).toThrow(/needs root .*sudo npm run test:lab/);
  });

  it('gives each node its own root, hostname and LAN address, and destroy() leaves nothing behind', async () => {
    const lab = await Lab.create(lab3Plan(), { sshd: true });
    let pids: number[];
    try {
      expect((await lab.exec('cp-1', ['hostname'])).stdout.trim()).toBe('cp-1');
      await lab.writeFile('cp-1', '/etc/kubedos-lab-probe', 'only on cp-1\n');
      expect((await lab.try('w-1', ['/bin/cat', '/etc/kubedos-lab-probe'])).exitCode).not.toBe(0);
      expect(existsSync('/etc/kubedos-lab-probe')).toBe(false);
      expect((await lab.exec('w-1', ['ip', '-4', '-o', 'addr', 'show', 'dev', 'lan0'])).stdout).toContain(lab.node('w-1').plan.lan.address);
      const trust = await makeTrust(lab);
      await installContracts(lab, trust);
      await planesUp(lab);
      expect((await lab.exec('master', [bin('kubedos-planes'), 'status'])).stdout).toContain('"up": true');
      pids = [...lab.nodes.values()].flatMap((n) => spawnSync('ip', ['netns', 'pids', n.netns], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number));
      expect(pids.length).toBeGreaterThanOrEqual(3 * 4); // sshd + wireguard-go x3 per node
    } finally {
      lab.destroy();
    }
    expect(netnsList().filter((n) => n.startsWith(lab.id))).toEqual([]);
    expect(existsSync(lab.dir)).toBe(false);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(lab.id);
    const alive = pids.filter((p) => existsSync(`/proc/${p}`) && !readFileSync(`/proc/${p}/stat`, 'utf8').includes(') Z '));
    expect(alive).toEqual([]);
  });

  it('sweeps namespaces and directories left by a lab whose process died', () => {
    const dead = spawnSync('true').pid as number;
    const name = `kdlab-${dead}-1`;
    spawnSync('ip', ['netns', 'add', `${name}-x`]);
    mkdirSync(`/tmp/${name}/x`, { recursive: true });
    sweepStaleLabs();
    expect(netnsList()).not.toContain(`${name}-x`);
    expect(existsSync(`/tmp/${name}`)).toBe(false);
  });
});
