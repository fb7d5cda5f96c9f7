// Attack suite, issue 16 item 2, replayed as the attacker: an unprivileged local user (nobody,
// via setpriv) races the driver to the L2 hub socket and to the short runtime directory. Needs
// root to switch users, hence the lab project.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Plan } from '../../common/plan/schema';
import { ownershipTags } from '../../main/substrate/provision';
import { QemuLocalDriver } from '../../main/substrate/qemu-local';
import { lab3Plan } from '../substrate/helpers';

const NOBODY = 65534;
const HUB = resolve('main/substrate/l2-hub.mjs');
const root = process.getuid?.() === 0;

describe.skipIf(!root)('security: another local user against qemu-local (as nobody)', () => {
  let home: string;
  let p: Plan;
  const started: ChildProcess[] = [];
  const ours: number[] = [];
  const driverAt = (stateDir: string): QemuLocalDriver => new QemuLocalDriver({ stateDir, ownership: { tags: ownershipTags(p), vmidRange: p.substrate.vmidRange }, accel: 'tcg' });

  beforeAll(() => {
    // Under /tmp (world-traversable) so that nobody can reach what it is allowed to reach.
    home = mkdtempSync(join('/tmp', 'kubedos-secu-'));
    statSync(home);
    p = lab3Plan();
  });
  afterEach(() => {
    for (const c of started.splice(0)) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
    for (const pid of ours.splice(0)) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
  });
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('item 2: an L2 hub another user started at the hub socket is never adopted', async () => {
    const d = driverAt(join(home, 'y'.repeat(120), 'vms'));
    const node = p.nodes[0];
    if (!node) throw new Error('lab-3 has nodes');
    const sock = /addr\.path=([^,]+)/.exec(d.qemuArgv(node.vm, undefined, 'tcg,thread=multi').find((a) => a.includes('addr.path=')) ?? '')?.[1];
    if (!sock) throw new Error('no hub socket in the argv');
    // The attacker starts its own hub where the driver will look (it fails if it cannot write there).
    const attacker = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, HUB, sock, `${sock}.pid`], { stdio: 'ignore' });
    started.push(attacker);
    for (let i = 0; i < 100 && attacker.exitCode === null && !(existsSync(sock) && existsSync(`${sock}.pid`)); i++) await new Promise((r) => setTimeout(r, 50));
    // The driver brings up the bridge's hub (the step `start` takes before QEMU).
    await (d as unknown as { ensureHub(b: string, op: object): Promise<void> }).ensureHub(node.vm.nics[0]?.bridge ?? 'kubedos0', {});
    const pid = Number(readFileSync(`${sock}.pid`, 'utf8').trim());
    ours.push(pid);
    expect(statSync(`/proc/${pid}`).uid).toBe(process.getuid?.());
    expect(statSync(sock).uid).toBe(process.getuid?.());
  });

  it('item 2: a short runtime directory another user made first is refused, not reused', () => {
    const xdg = mkdtempSync(join(tmpdir(), 'kdx-'));
    const planted = join(xdg, 'kubedos');
    mkdirSync(planted, { mode: 0o777 });
    chownSync(planted, NOBODY, NOBODY);
    const before = process.env.XDG_RUNTIME_DIR;
    process.env.XDG_RUNTIME_DIR = xdg;
    try {
      const d = driverAt(join(home, 'z'.repeat(120), 'vms'));
      let runDir: string | undefined;
      let refused: unknown;
      try {
        runDir = d.runDir(3000);
      } catch (err) {
        refused = err;
      }
      // Either refused outright, or a directory that is not the planted one and is private.
      if (refused) expect(String(refused)).toMatch(/belongs to uid 65534|not a plain directory/);
      else {
        expect(dirname(runDir ?? '')).not.toBe(planted);
        expect(statSync(dirname(runDir ?? '')).uid).toBe(process.getuid?.());
        expect(statSync(dirname(runDir ?? '')).mode & 0o077).toBe(0);
      }
    } finally {
      if (before === undefined) delete process.env.XDG_RUNTIME_DIR;
      else process.env.XDG_RUNTIME_DIR = before;
      rmSync(xdg, { recursive: true, force: true });
    }
  });
});
