// Attack suite, issue 16 items 1, 2 (read part) and 6: what an unprivileged local user, or a
// spec/repo someone hands you, could do to the qemu-local state of a cluster.
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Plan } from '../../common/plan/schema';
import { parseSpec } from '../../common/spec/index';
import { TEMPLATES } from '../../common/spec/templates/index';
import { ownershipTags } from '../../main/substrate/provision';
import { QemuLocalDriver } from '../../main/substrate/qemu-local';
import { acquireDeployLock, clusterWorkspace, WORKSPACE_LAYOUT } from '../../main/workspace';
import { lab3Plan } from '../substrate/helpers';

/** Every path under `root` with its mode, as `ls -l` would show the permission bits. */
function modes(root: string): { path: string; mode: number; dir: boolean }[] {
  const out: { path: string; mode: number; dir: boolean }[] = [];
  const walk = (p: string): void => {
    const st = lstatSync(p);
    out.push({ path: p, mode: st.mode & 0o7777, dir: st.isDirectory() });
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) walk(join(p, n));
  };
  walk(root);
  return out;
}

describe('security: qemu-local state and the workspace', () => {
  let home: string;
  let p: Plan;
  const env = (): NodeJS.ProcessEnv => ({ KUBEDOS_WORKSPACE: join(home, 'ws') });
  const driverAt = (stateDir: string): QemuLocalDriver => new QemuLocalDriver({ stateDir, ownership: { tags: ownershipTags(p), vmidRange: p.substrate.vmidRange }, accel: 'tcg' });

  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), 'kubedos-sec-'));
    p = lab3Plan();
  });
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('item 1: a fresh workspace after deploy + create holds nothing another user can read (dirs 0700, files 0600)', async () => {
    // The deploy path: the lock creates the cluster workspace, the driver its VM state inside it.
    const ws = clusterWorkspace(p.cluster.name, env());
    const release = acquireDeployLock(ws, 'security test');
    try {
      const d = driverAt(join(ws, WORKSPACE_LAYOUT.vms));
      const node = p.nodes[0];
      if (!node) throw new Error('lab-3 has nodes');
      await d.create(node.vm, undefined);
      const listing = modes(join(home, 'ws'));
      // Shown in the test output: the modes of a fresh workspace (issue 16 "must show").
      console.log(listing.map((e) => `${e.mode.toString(8).padStart(4, '0')} ${e.dir ? 'd' : 'f'} ${e.path.slice(home.length)}`).join('\n'));
      expect(listing.some((e) => e.path.endsWith('scsi0.qcow2'))).toBe(true);
      expect(listing.some((e) => e.path.endsWith('efivars.fd'))).toBe(true);
      const open = listing.filter((e) => (e.mode & 0o077) !== 0).map((e) => `${e.mode.toString(8)} ${e.path}`);
      expect(open).toEqual([]);
    } finally {
      release();
    }
  });

  it('item 2: with a long state dir, every socket lives in a 0700 directory of this user, never at a predictable /tmp name', () => {
    const long = join(home, 'x'.repeat(120), 'vms');
    const d = driverAt(long);
    const node = p.nodes[0];
    if (!node) throw new Error('lab-3 has nodes');
    const argv = d.qemuArgv(node.vm, undefined, 'tcg,thread=multi');
    const sockets = [join(d.runDir(node.vm.vmid), 'qmp.sock'), ...argv.flatMap((a) => [...a.matchAll(/(?:path|addr\.path)=([^,]+)/g)].map((m) => m[1] as string))];
    expect(sockets.length).toBeGreaterThan(4);
    for (const s of sockets) {
      expect(s.length).toBeLessThan(108);
      // Nothing directly in the world-writable /tmp: another user could have made it first.
      expect(dirname(s)).not.toBe('/tmp');
      // The nearest existing directory above the socket: created private by this user.
      let dir = dirname(s);
      while (!existsSync(dir)) dir = dirname(dir);
      const st = lstatSync(dir);
      expect(st.isDirectory() && !st.isSymbolicLink(), dir).toBe(true);
      expect(st.uid, dir).toBe(process.getuid?.());
      expect(st.mode & 0o077, dir).toBe(0);
    }
  });

  it('item 2: a vm.json planted or edited on disk is validated before it reaches the QEMU command line', async () => {
    const stateDir = join(home, 'tamper');
    const d = driverAt(stateDir);
    const node = p.nodes[1];
    if (!node) throw new Error('lab-3 has nodes');
    await d.create(node.vm, undefined);
    const file = join(stateDir, 'vms', String(node.vm.vmid), 'vm.json');
    const rec = JSON.parse(readFileSync(file, 'utf8')) as { shape: { name: string } };
    rec.shape.name = 'w,debug-threads=on -drive file=/etc/shadow';
    writeFileSync(file, JSON.stringify(rec));
    expect(() => d.preview({ kind: 'start', vmid: node.vm.vmid })).toThrow(/VM name|not a VM record/);
    await expect(d.start(node.vm.vmid)).rejects.toThrow(/VM name|not a VM record/);
  });

  it('item 6: a spec whose stateDir carries QEMU options is refused by the spec, the driver and the argv builder', () => {
    const text = TEMPLATES['lab-3'].text.replace(/(\n\s+qemu:\n)/, '$1      stateDir: /tmp/kd,readonly=off,logfile=/tmp/x\n');
    expect(text).toContain('stateDir: /tmp/kd,readonly=off');
    const parsed = parseSpec(text);
    expect(parsed.diagnostics.some((dg) => dg.path.includes('stateDir'))).toBe(true);
    expect(() => driverAt('/tmp/kd,readonly=off,logfile=/tmp/x')).toThrow(/stateDir/);
    expect(() => driverAt('/tmp/a/../../etc')).toThrow(/stateDir/);
  });
});
