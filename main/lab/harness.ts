// The network-namespace lab: "nodes" that are a network namespace + a persistent mount and UTS
// namespace each, with an overlay of the host's / as their root (private /etc, /var, /root,
// tmpfs /run and /tmp), their own hostname, an optional sshd, and a veth `lan0` on an underlay
// bridge that lives in a dedicated "lan" namespace. The REAL payload scripts run inside.
//
// Everything is named `kdlab-<pid>-<n>-…` and lives under /tmp/kdlab-<pid>-<n>; destroy() kills
// every process found in the lab's network namespaces (by PID, via `ip netns pids`), unmounts
// the namespace files and removes the directories. It is synchronous so it also runs from an
// `exit` handler after a failed or interrupted test. sweepStaleLabs() removes leftovers of dead
// processes. Needs root; createLab() fails loudly otherwise.
import type { ChildProcess } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan, PlanNode } from '../../common/plan/index';
import type { RunResult } from '../exec/runner';
import { run } from '../exec/runner';
import { payloadDir } from '../paths';

export const LAB_PREFIX = 'kdlab-';
/** Where the payload is installed inside each node (as the images do). */
export const NODE_PAYLOAD_DIR = '/usr/lib/kubedos/backplane';
/** Where the hub keeps the operator key in the lab (Ansible and the wiring check use it). */
export const OPERATOR_KEY = '/root/.ssh/id_ed25519';
const PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface LabOptions {
  /** Start an sshd (root login with the lab key, port 22) in every node. Default true. */
  sshd?: boolean;
  log?: (line: string) => void;
}

export interface LabNode {
  name: string;
  plan: PlanNode;
  netns: string;
  dir: string;
  root: string;
  mntFile: string;
  utsFile: string;
}

export interface ExecOptions {
  input?: string | Uint8Array;
  timeoutMs?: number;
  okExitCodes?: readonly number[];
  env?: Record<string, string>;
}

let labCounter = 0;
const liveLabs = new Set<Lab>();
let exitHookInstalled = false;

export function requireRoot(what: string): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    throw new Error(`${what} needs root (network namespaces, mounts, nftables); run it as root, e.g. sudo npm run test:lab`);
  }
}

export class Lab {
  readonly id: string;
  readonly dir: string;
  readonly lanNetns: string;
  readonly nodes = new Map<string, LabNode>();
  readonly sshKey: string;
  private readonly daemons = new Set<ChildProcess>();
  private destroyed = false;

  private constructor(
    readonly plan: Plan,
    private readonly opts: LabOptions,
  ) {
    this.id = `${LAB_PREFIX}${process.pid}-${++labCounter}`;
    this.dir = join('/tmp', this.id);
    this.lanNetns = `${this.id}-lan`;
    this.sshKey = join(this.dir, 'id_ed25519');
  }

  static async create(plan: Plan, opts: LabOptions = {}): Promise<Lab> {
    requireRoot('the namespace lab');
    sweepStaleLabs();
    const lab = new Lab(plan, opts);
    liveLabs.add(lab);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once('exit', () => {
        for (const l of liveLabs) l.destroy();
      });
    }
    try {
      await lab.build();
    } catch (err) {
      lab.destroy();
      throw err;
    }
    return lab;
  }

  node(name: string): LabNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`lab ${this.id}: no node ${name} (have ${[...this.nodes.keys()].join(', ')})`);
    return n;
  }

  get hub(): LabNode {
    const h = [...this.nodes.values()].find((n) => n.plan.hub);
    if (!h) throw new Error('lab: plan has no hub');
    return h;
  }

  get spokes(): LabNode[] {
    return [...this.nodes.values()].filter((n) => !n.plan.hub);
  }

  log(line: string): void {
    this.opts.log?.(`[${this.id}] ${line}`);
  }

  /** argv to run a program inside a node: its network, mount and UTS namespaces and its root. */
  nodeArgv(node: LabNode, argv: readonly string[]): string[] {
    return ['nsenter', `--mount=${node.mntFile}`, `--uts=${node.utsFile}`, `--net=/run/netns/${node.netns}`, '/usr/sbin/chroot', node.root, '/usr/bin/env', '-i', `PATH=${PATH_ENV}`, 'HOME=/root', 'LANG=C.UTF-8', ...argv];
  }

  /** Runs a command inside a node and waits for it (through the engine's runner). */
  async exec(nodeName: string, argv: readonly string[], o: ExecOptions = {}): Promise<RunResult> {
    const node = this.node(nodeName);
    const env = Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${v}`);
    const full = this.nodeArgv(node, [...env, ...argv]);
    return run(full, {
      timeoutMs: o.timeoutMs ?? 60_000,
      okExitCodes: o.okExitCodes ?? [0],
      ...(o.input !== undefined ? { input: o.input } : {}),
      hint: `lab node ${nodeName}: ${argv.join(' ')}`,
    });
  }

  /** Like exec, but returns the result whatever the exit code. */
  async try(nodeName: string, argv: readonly string[], o: ExecOptions = {}): Promise<RunResult> {
    return this.exec(nodeName, argv, { ...o, okExitCodes: Array.from({ length: 256 }, (_, i) => i) });
  }

  /** Starts a long-running process inside a node; it is killed by destroy() (by PID). */
  spawnDaemon(nodeName: string, argv: readonly string[], name: string): ChildProcess {
    const node = this.node(nodeName);
    const full = this.nodeArgv(node, argv);
    const logPath = join(node.dir, `${name}.log`);
    const child = spawn(full[0] as string, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => chunks.push(b));
    child.stderr?.on('data', (b: Buffer) => chunks.push(b));
    child.on('close', () => {
      try {
        writeFileSync(logPath, Buffer.concat(chunks));
      } catch {
        /* lab already removed */
      }
      this.daemons.delete(child);
    });
    (child as ChildProcess & { output: () => string }).output = () => Buffer.concat(chunks).toString('utf8');
    this.daemons.add(child);
    return child;
  }

  /**
   * Copies a host directory into a node (as a tar stream: the node's /tmp is private, so a
   * checkout under /tmp is not visible from inside).
   */
  async copyIn(nodeName: string, hostDir: string, nodeDir: string): Promise<void> {
    const tar = await run(['tar', '--sort=name', '-C', hostDir, '-cf', '-', '.'], { binary: true, maxBufferBytes: 256 * 1024 * 1024 });
    await this.exec(nodeName, ['/bin/sh', '-c', 'mkdir -p "$1" && tar -C "$1" -xf -', 'sh', nodeDir], { input: tar.stdoutBytes ?? Buffer.alloc(0) });
  }

  async writeFile(nodeName: string, path: string, content: string | Uint8Array, mode = 0o644): Promise<void> {
    if (!path.startsWith('/')) throw new Error(`lab writeFile: absolute path needed, got ${path}`);
    const dir = path.slice(0, path.lastIndexOf('/')) || '/';
    await this.exec(nodeName, ['/bin/sh', '-c', 'umask 077; mkdir -p "$1" && cat > "$2.tmp" && chmod "$3" "$2.tmp" && mv "$2.tmp" "$2"', 'sh', dir, path, mode.toString(8)], { input: content });
  }

  /** Gives the hub the lab's operator SSH key (/root/.ssh/id_ed25519): it reaches every node over wg1. */
  async installOperatorKey(): Promise<string> {
    const { readFileSync } = await import('node:fs');
    await this.writeFile(this.hub.name, OPERATOR_KEY, readFileSync(this.sshKey, 'utf8'), 0o600);
    return OPERATOR_KEY;
  }

  async readFile(nodeName: string, path: string): Promise<string> {
    return (await this.exec(nodeName, ['/bin/cat', path])).stdout;
  }

  /** Kills everything in the lab's namespaces, unmounts, deletes namespaces and files. Idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    liveLabs.delete(this);
    for (const d of this.daemons) if (d.pid) safeKill(d.pid, 'SIGKILL');
    const netnses = [...[...this.nodes.values()].map((n) => n.netns), this.lanNetns];
    killNetnsProcesses(netnses);
    for (const n of this.nodes.values()) {
      spawnSync('umount', ['-l', n.mntFile]);
      spawnSync('umount', ['-l', n.utsFile]);
    }
    for (const ns of netnses) spawnSync('ip', ['netns', 'del', ns]);
    rmSync(this.dir, { recursive: true, force: true });
    this.log('destroyed');
  }

  private async build(): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const t0 = performance.now();
    await sh(['ip', 'netns', 'add', this.lanNetns]);
    await sh(['ip', '-n', this.lanNetns, 'link', 'add', 'br0', 'type', 'bridge']);
    await sh(['ip', '-n', this.lanNetns, 'link', 'set', 'br0', 'up']);
    const lanPrefix = this.plan.lan.cidr.split('/')[1];
    let i = 0;
    for (const pn of this.plan.nodes) {
      i++;
      const node: LabNode = {
        name: pn.name,
        plan: pn,
        netns: `${this.id}-${pn.name}`,
        dir: join(this.dir, pn.name),
        root: join(this.dir, pn.name, 'rw', 'root'),
        mntFile: join(this.dir, pn.name, 'mnt.ns'),
        utsFile: join(this.dir, pn.name, 'uts.ns'),
      };
      this.nodes.set(pn.name, node);
      mkdirSync(node.dir, { recursive: true });
      writeFileSync(node.mntFile, '');
      writeFileSync(node.utsFile, '');
      await sh(['ip', 'netns', 'add', node.netns]);
      const rw = join(node.dir, 'rw');
      mkdirSync(rw);
      // Inside the new mount namespace: tmpfs for the overlay's upper layer, the overlay of /,
      // then /dev, /proc, /sys (of this netns), tmpfs /run and /tmp, and the hostname.
      const setup = [
        'set -e',
        `mount -t tmpfs -o mode=0755,size=256m kdlab "${rw}"`,
        `mkdir -p "${rw}/upper" "${rw}/work" "${rw}/root"`,
        `mount -t overlay kdlab -o lowerdir=/,upperdir="${rw}/upper",workdir="${rw}/work" "${rw}/root"`,
        `mount --rbind /dev "${rw}/root/dev"`,
        `mount -t proc proc "${rw}/root/proc"`,
        `mount -t sysfs sysfs "${rw}/root/sys"`,
        `mount -t tmpfs -o mode=0755 run "${rw}/root/run"`,
        `mount -t tmpfs -o mode=1777 tmp "${rw}/root/tmp"`,
        `mkdir -p "${rw}/root/run/sshd" "${rw}/root/run/wireguard" "${rw}/root/run/kubedos"`,
        `hostname "${pn.hostname}"`,
      ].join('\n');
      await sh(['nsenter', `--net=/run/netns/${node.netns}`, 'unshare', `--mount=${node.mntFile}`, `--uts=${node.utsFile}`, '--propagation', 'private', '/bin/sh', '-c', setup]);
      const peer = `v${i}`;
      await sh(['ip', '-n', this.lanNetns, 'link', 'add', peer, 'type', 'veth', 'peer', 'name', 'lan0', 'netns', node.netns]);
      await sh(['ip', '-n', this.lanNetns, 'link', 'set', peer, 'master', 'br0', 'up']);
      if (pn.lan.mac) await sh(['ip', '-n', node.netns, 'link', 'set', 'lan0', 'address', pn.lan.mac]);
      await sh(['ip', '-n', node.netns, 'addr', 'add', `${pn.lan.address}/${lanPrefix}`, 'dev', 'lan0']);
      await sh(['ip', '-n', node.netns, 'link', 'set', 'lan0', 'up']);
      await sh(['ip', '-n', node.netns, 'link', 'set', 'lo', 'up']);
    }
    this.log(`${this.nodes.size} nodes + lan namespace in ${Math.round(performance.now() - t0)} ms`);
    // Install the payload into every node the way an image carries it.
    await Promise.all([...this.nodes.keys()].map((n) => this.copyIn(n, join(payloadDir(), 'backplane'), NODE_PAYLOAD_DIR)));
    if (this.opts.sshd !== false) await this.startSshd();
  }

  private async startSshd(): Promise<void> {
    await sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `${this.id}`, '-f', this.sshKey]);
    const pub = (await sh(['ssh-keygen', '-y', '-f', this.sshKey])).stdout;
    const config = [
      'Port 22',
      'ListenAddress 0.0.0.0',
      'HostKey /etc/kubedos-lab/ssh_host_ed25519_key',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'AuthorizedKeysFile /etc/kubedos-lab/authorized_keys',
      'StrictModes no',
      'UsePAM no',
      'PidFile /run/sshd.pid',
      'Subsystem sftp internal-sftp',
      // No shell profile of the host's root in lab sessions (bash reads ~/.bashrc over SSH otherwise).
      'SetEnv SHLVL=1',
      '',
    ].join('\n');
    for (const n of this.nodes.values()) {
      await this.writeFile(n.name, '/etc/kubedos-lab/sshd_config', config);
      await this.writeFile(n.name, '/etc/kubedos-lab/authorized_keys', pub, 0o600);
      await this.exec(n.name, ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', '/etc/kubedos-lab/ssh_host_ed25519_key']);
      this.spawnDaemon(n.name, ['/usr/sbin/sshd', '-D', '-e', '-f', '/etc/kubedos-lab/sshd_config'], 'sshd');
    }
  }
}

async function sh(argv: string[]): Promise<RunResult> {
  return run(argv, { timeoutMs: 30_000, hint: 'lab setup' });
}

function safeKill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

function killNetnsProcesses(netnses: readonly string[]): void {
  for (let round = 0; round < 3; round++) {
    let found = 0;
    for (const ns of netnses) {
      const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
      for (const line of (r.stdout ?? '').split('\n')) {
        const pid = Number(line.trim());
        if (pid > 1 && pid !== process.pid) {
          found++;
          safeKill(pid, 'SIGKILL');
        }
      }
    }
    if (found === 0) return;
    spawnSync('sleep', ['0.2']);
  }
}

/** Removes namespaces, mounts and directories left by lab runs whose process is gone. */
export function sweepStaleLabs(): void {
  const owner = (name: string): number => Number(/^kdlab-(\d+)-/.exec(name)?.[1] ?? NaN);
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const stale = (name: string): boolean => name.startsWith(LAB_PREFIX) && Number.isFinite(owner(name)) && owner(name) !== process.pid && !alive(owner(name));
  const netnses = existsSync('/run/netns') ? readdirSync('/run/netns').filter(stale) : [];
  killNetnsProcesses(netnses);
  for (const d of readdirSync('/tmp').filter(stale)) {
    const base = join('/tmp', d);
    for (const n of readdirSync(base, { withFileTypes: true })) {
      if (!n.isDirectory()) continue;
      spawnSync('umount', ['-l', join(base, n.name, 'mnt.ns')]);
      spawnSync('umount', ['-l', join(base, n.name, 'uts.ns')]);
    }
    rmSync(base, { recursive: true, force: true });
  }
  for (const ns of netnses) spawnSync('ip', ['netns', 'del', ns]);
}
